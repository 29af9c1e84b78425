"""The canonical batch: every event type round-trips; malformed batches and events are reported."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tila.sensors.events import Availability, Battery, Count, Flow, LinkQuality, Presence, Stamped
from tila.sensors.wire import WireError, decode_batch, encode_batch

T = datetime(2026, 11, 24, 8, 0, 0, 123000, tzinfo=UTC)
EVENTS = [
    Presence("s", T, True),
    Count("s", T, 7),
    Flow("s", T, 3, 1),
    Availability("s", T, False),
    Battery("s", T, 87.5),
    LinkQuality("s", T, 120),
]


def test_every_type_round_trips() -> None:
    batch = [Stamped("gw1", i + 1, T, "room-1", ev) for i, ev in enumerate(EVENTS)]
    good, bad = decode_batch(encode_batch("gw1", batch))
    assert good == batch and bad == []


def test_flow_on_the_wire() -> None:
    doc = json.loads(encode_batch("gw1", [Stamped("gw1", 5, T, "room-1", Flow("c", T, 2, 0))]))
    assert doc["events"][0] == {
        "seq": 5, "type": "flow", "sensor": "c", "space": "room-1", "time": T.isoformat(),
        "received": T.isoformat(), "entered": 2, "exited": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff", "not JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"v":2,"gateway":"g","events":[]}', "unsupported batch version"),
        (b'{"v":1,"events":[]}', "without a gateway id"),
        (b'{"v":1,"gateway":"g"}', "without an events list"),
    ],
)
def test_bad_batches(payload: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message):
        decode_batch(payload)


def test_bad_events_are_reported_and_the_rest_kept() -> None:
    good_event = json.loads(encode_batch("g", [Stamped("g", 1, T, "sp", Presence("s", T, True))]))["events"][
        0
    ]
    events = [
        good_event,
        {**good_event, "seq": 0},
        {**good_event, "type": "smell"},
        {**good_event, "time": "yesterday"},
        {**good_event, "time": "2026-11-24T08:00:00"},
        {k: v for k, v in good_event.items() if k != "occupied"},
        {**good_event, "type": "count", "count": -1},
        {**good_event, "type": "flow", "entered": 1},
        "not an object",
    ]
    good, bad = decode_batch(json.dumps({"v": 1, "gateway": "g", "events": events}).encode())
    assert len(good) == 1 and len(bad) == len(events) - 1
    assert all(isinstance(reason, str) and reason for reason in bad)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_a_wire_error(payload: bytes) -> None:
    try:
        decode_batch(payload)
    except WireError:
        pass
