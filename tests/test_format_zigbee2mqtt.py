"""Zigbee2MQTT decoder: table-driven on payload bytes, plus arbitrary bytes that must never escape.

Payload shapes follow Zigbee2MQTT's documentation: device messages on ``zigbee2mqtt/<friendly name>``
(e.g. Aqara RTCGQ11LM: ``{"battery":100,"illuminance":381,"linkquality":147,"occupancy":true,
"voltage":3055}``), ``last_seen`` as set by ``advanced.last_seen`` (ISO_8601, ISO_8601_local, epoch),
and availability on ``zigbee2mqtt/<name>/availability`` as JSON (≥ 1.32) or plain text (earlier).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tila.sensors.events import Availability, Battery, LinkQuality, Presence
from tila.sensors.formats import DecodeContext, DecodeError
from tila.sensors.formats.zigbee2mqtt import decode

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
CTX = DecodeContext("desk-01-pir", "zigbee2mqtt/desk-01-pir", T0)
TOPIC = "zigbee2mqtt/desk-01-pir"

GOOD = [
    (
        b'{"battery":100,"illuminance":381,"linkquality":147,"occupancy":true,"voltage":3055}',
        [
            Presence("desk-01-pir", T0, True),
            Battery("desk-01-pir", T0, 100.0),
            LinkQuality("desk-01-pir", T0, 147),
        ],
    ),
    (b'{"occupancy":false}', [Presence("desk-01-pir", T0, False)]),
    (
        b'{"occupancy":true,"last_seen":"2026-11-24T09:59:58.123Z"}',
        [Presence("desk-01-pir", datetime(2026, 11, 24, 9, 59, 58, 123000, tzinfo=UTC), True)],
    ),
    (
        # ISO_8601_local carries the local offset.
        b'{"occupancy":true,"last_seen":"2026-11-24T11:00:00+02:00"}',
        [Presence("desk-01-pir", datetime(2026, 11, 24, 9, 0, tzinfo=UTC), True)],
    ),
    (
        b'{"occupancy":true,"last_seen":1795510800000}',
        [Presence("desk-01-pir", datetime.fromtimestamp(1795510800, UTC), True)],
    ),
    (b'{"battery":37.5,"voltage":2900}', [Battery("desk-01-pir", T0, 37.5)]),
    (b'{"temperature":21.5,"unknown_key":[1,2]}', []),
    (b'{"occupancy":null,"battery":null}', []),
]


@pytest.mark.parametrize(("payload", "expected"), GOOD)
def test_device_messages(payload: bytes, expected: list[object]) -> None:
    assert decode(TOPIC, payload, CTX) == expected


@pytest.mark.parametrize(
    "payload",
    [b'{"state":"online"}', b"online", b"  online\n"],
)
def test_availability_online(payload: bytes) -> None:
    assert decode(TOPIC + "/availability", payload, CTX) == [Availability("desk-01-pir", T0, True)]


@pytest.mark.parametrize("payload", [b'{"state":"offline"}', b"offline"])
def test_availability_offline(payload: bytes) -> None:
    assert decode(TOPIC + "/availability", payload, CTX) == [Availability("desk-01-pir", T0, False)]


BAD = [
    (b"\xff\xfe\x00", "not_utf8"),
    (b"{occupancy: true}", "malformed_json"),
    (b"", "malformed_json"),
    (b"[1,2,3]", "not_object"),
    (b"true", "not_object"),
    (b'{"occupancy":"yes"}', "wrong_type"),
    (b'{"occupancy":1}', "wrong_type"),
    (b'{"battery":"full"}', "wrong_type"),
    (b'{"battery":true}', "wrong_type"),
    (b'{"battery":-3}', "bad_value"),
    (b'{"battery":250}', "bad_value"),
    (b'{"battery":NaN}', "malformed_json"),
    (b'{"linkquality":300}', "bad_value"),
    (b'{"linkquality":12.5}', "bad_value"),
    (b'{"occupancy":true,"last_seen":"yesterday"}', "bad_value"),
    (b'{"occupancy":true,"last_seen":"2026-11-24T10:00:00"}', "bad_value"),
    (b'{"occupancy":true,"last_seen":-5}', "bad_value"),
    (b'{"occupancy":true,"last_seen":[1]}', "wrong_type"),
    (b"[" * 100_000, "malformed_json"),
]


@pytest.mark.parametrize(("payload", "reason"), BAD)
def test_bad_payloads_are_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(TOPIC, payload, CTX)
    assert info.value.reason == reason
    assert str(info.value)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b'{"state":"sleepy"}', "bad_value"), (b"\xff", "not_utf8"), (b"maybe", "malformed_json")],
)
def test_bad_availability(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(TOPIC + "/availability", payload, CTX)
    assert info.value.reason == reason


def test_other_subtopics_are_not_device_messages() -> None:
    with pytest.raises(DecodeError) as info:
        decode(TOPIC + "/set", b'{"occupancy":true}', CTX)
    assert info.value.reason == "unknown_topic"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_arbitrary_bytes_never_escape(payload: bytes, availability: bool) -> None:
    topic = TOPIC + "/availability" if availability else TOPIC
    try:
        decode(topic, payload, CTX)
    except DecodeError:
        pass


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["occupancy", "battery", "linkquality", "last_seen", "x"]), json_values, max_size=5
    )
)
def test_arbitrary_json_objects_never_escape(doc: dict[str, object]) -> None:
    import json

    try:
        events = decode(TOPIC, json.dumps(doc).encode(), CTX)
    except DecodeError:
        return
    assert all(e.sensor == "desk-01-pir" for e in events)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"battery":' + b"9" * 400 + b"}",
        b'{"linkquality":-' + b"9" * 400 + b"}",
        b'{"occupancy":true,"last_seen":"0001-01-01T00:00:00+01:00"}',
        b'{"occupancy":true,"last_seen":"9999-12-31T23:59:59-01:00"}',
        b'{"battery":1e999}',
    ],
)
def test_extreme_values_are_bad_values_not_crashes(payload: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        decode(TOPIC, payload, CTX)
    assert info.value.reason in ("bad_value", "malformed_json")
