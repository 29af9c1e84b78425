"""The thingsee format on byte fixtures, and arbitrary bytes and JSON never breaking it.

Where the fixtures come from (tests/fixtures/thingsee/):

- ``presence_2100_occupied.json``: the Occupancy State (tsmId 2100) example of Haltian's Thingsee
  PRESENCE CBOR uplink reference (developer.haltian.io/haltian-iot/devices/sensors/thingsee-presence/
  cbor-reference/uplink/: ``state`` 0 = vacant, 1 = occupied; ``tsmEv`` 7 state change, 10 timed;
  ``tsmTs`` UTC seconds added by the gateway), verbatim. The same page gives the 13100 movement-count
  example in ``presence_13100_move_count.json``, also verbatim.
- ``presence_2100_vacant_akenza.json``: the ``data`` object of akenza-io/device-type-library
  ``types/haltian/thingseePresence/uplink.spec.js`` (a Thingsee message as delivered, with
  ``deploymentGroupId``), verbatim.
- ``battery_1110_common_profile.json``: the Thing Battery Info (1110) example of Haltian's Common
  Profile (developer.haltian.io/thingsee-iot/apis/message-profiles/common-profile: ``batl`` battery
  level in %, ``chrg`` charging state), verbatim, an array as the profile pages write messages.
- ``count_13103.json``: a People Counting Report (tsmId 13103) as Haltian's ENTRYWAY uplink
  reference defines it (developer.haltian.io/haltian-iot/devices/sensors/haltian-entryway/
  uplink-messages: ``in``/``out`` people entered and exited since the last report, ``tsmSeq``,
  diagnostic ``averaging`` and ``errorCount`` arrays; "tsmId … shared across sensor types that use
  the same format"). Header values follow the page's example; the TUID's tail and the counts are made
  up (the stored copy of the example stops at ``"XXCN01TSC``).
- ``environment_12100_stream_sample.json``: the sample message of "How to connect to Thingsee IoT
  data stream" (support.haltian.com/knowledgebase/how-to-connect-to-thingsee-iot-data-stream), which
  also gives the stream's topic ``cloudext/json/{env}/{country}/{customer}/{tuid}/{tsmId}``, verbatim.
- ``push_*.json``: arrays of one PRESENCE's messages, as the Thingsee message header spec writes them
  ("Thingsee Messages are always sent as an array of JSON objects", wiki.thingsee.com/messages/
  thingsee_messages_overview), mixing 13102 (Presence profile: occupancy ``count``/``duration``),
  2100, 1110 and 1202 (network, ``rssi``); values made up in the documented shapes.
- ``bad_*`` are the good shape with one thing broken.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tila.mqtt import topic_matches
from tila.sensors.events import Battery, Flow, Presence
from tila.sensors.formats import FORMATS, DecodeContext, DecodeError
from tila.sensors.formats.thingsee import FORMAT, decode

FIXTURES = Path(__file__).parent / "fixtures" / "thingsee"
RECEIVED = datetime(2025, 8, 13, 6, 40, tzinfo=UTC)
STREAM = "cloudext/json/pr/fi/work20lab"
PRESENCE_TUID = "TSPR04TSC20205001"


def ctx_for(tuid: str, base: str = "thingsee") -> DecodeContext:
    return DecodeContext(sensor=f"s-{tuid.lower()}", base_topic=f"{base}/{tuid}", received=RECEIVED)


def at(epoch: int | float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def run(name: str, tuid: str = PRESENCE_TUID) -> list[Any]:
    ctx = ctx_for(tuid)
    return decode(ctx.base_topic, fixture(name), ctx)


P = ctx_for(PRESENCE_TUID).sensor

GOOD: list[tuple[str, str, list[Any]]] = [
    ("presence_2100_occupied.json", PRESENCE_TUID, [Presence(P, at(1755064700), True)]),
    (
        "presence_2100_vacant_akenza.json",
        "TSPR04EZU20400472",
        [Presence("s-tspr04ezu20400472", at(1657195118), False)],
    ),
    ("battery_1110_common_profile.json", "TSPOD6789", [Battery("s-tspod6789", at(1492603998), 34.6)]),
    ("count_13103.json", "XXCN01TSC20205003", [Flow("s-xxcn01tsc20205003", at(1755064655), 4, 1)]),
    # Movement detections are not people: nothing to read.
    ("presence_13100_move_count.json", PRESENCE_TUID, []),
    ("environment_12100_stream_sample.json", "XXXX03X2Z80562557", []),
    (
        "push_mixed_presence.json",
        PRESENCE_TUID,
        [Presence(P, at(1755064700), True), Battery(P, at(1755064701), 97.0)],
    ),
    ("push_empty.json", PRESENCE_TUID, []),
]

BAD: list[tuple[str, str, str]] = [
    ("bad_state_2.json", PRESENCE_TUID, "bad_value"),
    ("bad_state_bool.json", PRESENCE_TUID, "wrong_type"),
    ("bad_state_string.json", PRESENCE_TUID, "wrong_type"),
    ("bad_state_missing.json", PRESENCE_TUID, "bad_value"),
    ("bad_in_negative.json", "XXCN01TSC20205003", "bad_value"),
    ("bad_in_fraction.json", "XXCN01TSC20205003", "bad_value"),
    ("bad_in_huge.json", "XXCN01TSC20205003", "bad_value"),
    ("bad_out_string.json", "XXCN01TSC20205003", "wrong_type"),
    ("bad_out_missing.json", "XXCN01TSC20205003", "bad_value"),
    ("bad_nan.json", "XXCN01TSC20205003", "malformed_json"),
    ("bad_batl_150.json", PRESENCE_TUID, "bad_value"),
    ("bad_tuid_other_device.json", PRESENCE_TUID, "bad_value"),
    ("bad_tuid_number.json", PRESENCE_TUID, "wrong_type"),
    ("bad_tsmts_string.json", PRESENCE_TUID, "wrong_type"),
    ("bad_tsmts_negative.json", PRESENCE_TUID, "bad_value"),
    ("bad_tsmts_huge.json", PRESENCE_TUID, "bad_value"),
    ("bad_tsmid_missing.json", PRESENCE_TUID, "bad_value"),
    ("bad_tsmid_string.json", PRESENCE_TUID, "wrong_type"),
    ("bad_push_one_element_bad.json", PRESENCE_TUID, "bad_value"),
    ("bad_push_other_device.json", PRESENCE_TUID, "bad_value"),
    ("bad_push_of_numbers.json", PRESENCE_TUID, "not_object"),
    ("bad_scalar.json", PRESENCE_TUID, "not_object"),
    ("bad_truncated.json", PRESENCE_TUID, "malformed_json"),
    ("bad_not_utf8.bin", PRESENCE_TUID, "not_utf8"),
]


def test_registered() -> None:
    assert FORMATS["thingsee"] is FORMAT


@pytest.mark.parametrize(("name", "tuid", "expected"), GOOD, ids=[g[0] for g in GOOD])
def test_decodes_fixture(name: str, tuid: str, expected: list[Any]) -> None:
    assert run(name, tuid) == expected


@pytest.mark.parametrize(("name", "tuid", "reason"), BAD, ids=[b[0] for b in BAD])
def test_rejects_fixture(name: str, tuid: str, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        run(name, tuid)
    assert info.value.reason == reason
    assert str(info.value)


def test_every_fixture_is_used() -> None:
    used = {g[0] for g in GOOD} | {b[0] for b in BAD}
    assert {p.name for p in FIXTURES.iterdir()} == used


def test_single_object_on_the_cloud_stream_subtopic() -> None:
    ctx = ctx_for(PRESENCE_TUID, STREAM)
    events = decode(f"{ctx.base_topic}/2100", fixture("presence_2100_occupied.json"), ctx)
    assert events == [Presence(ctx.sensor, at(1755064700), True)]
    assert "2100" in FORMAT.subtopics and "13103" in FORMAT.subtopics and "1110" in FORMAT.subtopics


def test_subtopic_must_match_the_message_type() -> None:
    ctx = ctx_for(PRESENCE_TUID, STREAM)
    with pytest.raises(DecodeError) as info:
        decode(f"{ctx.base_topic}/1110", fixture("presence_2100_occupied.json"), ctx)
    assert info.value.reason == "bad_value"


@pytest.mark.parametrize("leaf", ["13100", "1202", "set", "2100/extra"])
def test_other_subtopics_are_not_read(leaf: str) -> None:
    ctx = ctx_for(PRESENCE_TUID, STREAM)
    with pytest.raises(DecodeError) as info:
        decode(f"{ctx.base_topic}/{leaf}", fixture("presence_13100_move_count.json"), ctx)
    assert info.value.reason == "unknown_topic"


def test_other_stream_messages_are_housekeeping() -> None:
    base = f"{STREAM}/{PRESENCE_TUID}"
    for topic in (f"{base}/13100", f"{base}/1202", f"{STREAM}/TSPR04OTHER000001/2100"):
        assert any(topic_matches(f, topic) for f in FORMAT.ignored)
    assert any(topic_matches(f, f"thingsee/{PRESENCE_TUID}/1111") for f in FORMAT.ignored)
    # The sensors' own topics are never ignored.
    assert not any(topic_matches(f, f"thingsee/{PRESENCE_TUID}") for f in FORMAT.ignored)


def test_tuid_match_ignores_case() -> None:
    ctx = ctx_for(PRESENCE_TUID.lower())
    assert decode(ctx.base_topic, fixture("presence_2100_occupied.json"), ctx) == [
        Presence(ctx.sensor, at(1755064700), True)
    ]


def test_time_falls_back_to_received() -> None:
    ctx = ctx_for("XXCN01TSC20205003")
    payload = json.dumps({"tsmId": 13103, "in": 0, "out": 2}).encode()
    assert decode(ctx.base_topic, payload, ctx) == [Flow(ctx.sensor, RECEIVED, 0, 2)]


def test_event_times_are_aware_utc() -> None:
    for event in run("push_mixed_presence.json"):
        assert event.time.utcoffset() == timedelta(0)


def test_floats_that_are_whole_are_counts() -> None:
    ctx = ctx_for("XXCN01TSC20205003")
    payload = json.dumps({"tsmId": 13103, "tsmTs": 1755064655.5, "in": 3.0, "out": 0}).encode()
    assert decode(ctx.base_topic, payload, ctx) == [Flow(ctx.sensor, at(1755064655.5), 3, 0)]


def test_heartbeat_covers_two_idle_reports() -> None:
    assert FORMAT.heartbeat == timedelta(hours=2)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512), st.sampled_from(["", "/2100", "/13103", "/1110"]))
def test_arbitrary_bytes_only_raise_decode_error(payload: bytes, leaf: str) -> None:
    ctx = ctx_for(PRESENCE_TUID, STREAM)
    try:
        events = decode(ctx.base_topic + leaf, payload, ctx)
    except DecodeError:
        return
    assert isinstance(events, list)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_value = st.one_of(
    _json,
    st.sampled_from([0, 1, 2, -1, 0.5, 1.0, 100, 100.5, 2100, 13103, 1110]),
    st.integers(min_value=0, max_value=10**400),
    st.integers(min_value=-(2**40), max_value=2**40),
)
_message = st.one_of(
    st.dictionaries(
        st.sampled_from(["tsmId", "tsmTs", "tsmTuid", "tsmEv", "state", "in", "out", "batl", "x"]),
        _value,
        max_size=6,
    ),
    st.fixed_dictionaries(
        {"tsmId": st.sampled_from([2100, 13103, 1110, 13100])},
        optional={
            "tsmTuid": st.sampled_from([PRESENCE_TUID, PRESENCE_TUID.lower(), "TSOTHER"]) | _json,
            "tsmTs": _value,
            "state": _value,
            "in": _value,
            "out": _value,
            "batl": _value,
        },
    ),
    _json,
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_message, st.lists(_message, max_size=5)), st.sampled_from(["", "/2100", "/13103"]))
def test_arbitrary_json_only_raises_decode_error(doc: Any, leaf: str) -> None:
    ctx = ctx_for(PRESENCE_TUID, STREAM)
    try:
        events = decode(ctx.base_topic + leaf, json.dumps(doc).encode(), ctx)
    except DecodeError as exc:
        assert exc.reason and str(exc)
        return
    assert all(isinstance(e, (Presence, Flow, Battery)) for e in events)
    assert all(e.time.tzinfo is not None for e in events)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2**32),
            st.integers(min_value=0, max_value=1000),
            st.integers(min_value=0, max_value=1000),
        ),
        max_size=10,
    )
)
def test_a_push_of_counts_is_every_count(reports: list[tuple[int, int, int]]) -> None:
    ctx = ctx_for("XXCN01TSC20205003")
    push = [
        {"tsmId": 13103, "tsmTs": ts, "tsmTuid": "XXCN01TSC20205003", "in": i, "out": o}
        for ts, i, o in reports
    ]
    events = decode(ctx.base_topic, json.dumps(push).encode(), ctx)
    assert events == [Flow(ctx.sensor, at(ts), i, o) for ts, i, o in reports]
