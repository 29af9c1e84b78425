"""The chirpstack-milesight format on byte fixtures, and arbitrary bytes never breaking it.

Where the fixtures' shape comes from (tests/fixtures/chirpstack/):

- The envelope is ChirpStack v4's ``integration.UplinkEvent`` / ``StatusEvent`` in the Protobuf JSON
  mapping (chirpstack/chirpstack ``api/proto/integration/integration.proto``; ``rxInfo`` and
  ``txInfo`` from ``api/proto/gw/gw.proto``: ``gatewayId``, ``uplinkId``, ``nsTime``, ``rssi``,
  ``snr``, ``crcStatus: "CRC_OK"``, ``modulation.lora.codeRate: "CR_4_5"``), published on
  ``application/<application_id>/device/<dev_eui>/event/<type>``
  (chirpstack.io/docs/chirpstack/integrations/mqtt.html). ``object`` is a ``google.protobuf.Struct``,
  whose numbers are doubles, hence ``3.0``. The tenant id is ChirpStack's default tenant's.
- ``data`` and ``object`` are Milesight's: fPort 85, byte examples and decoded fields from
  Milesight-IoT/SensorDecoders ``VS_Series/VS121/README.md`` and ``VS121_Chirpstack_v4.js``
  (``04c9 <count> <regions> <mask:u16be>`` → ``people_count_all``, ``region_count``, ``region_N``;
  ``06cd <max>`` → ``people_count_max``; ``ff01…ff1f…`` → the device-information packet).
  DevEUIs start with Milesight's OUI 24e124.
- ``up_synthetic_battery.json`` is made up: a count plus Milesight's battery channel ``0175``
  (``battery`` in %), as Milesight codecs of battery-powered devices report it.
- ``up_vs133_*`` are VS133 uplinks in the same envelope. Channels and decoded names from
  Milesight-IoT/SensorDecoders ``vs-series/vs133/vs133-decoder.js`` (shared by VS133/VS135):
  ``03/06/09/0c d2`` → ``line_N_total_in`` (uint32 LE), ``04/07/0a/0d d2`` → ``line_N_total_out``,
  ``05/08/0b/0e cc`` → ``line_N_period_in`` + ``line_N_period_out`` (uint16 LE each), and
  ``20 ce`` → one ``history`` record: ``timestamp`` (uint32 LE epoch s) + data type (one channel id)
  + its value, i.e. ``{"timestamp": …, "line_1_period_in": …, "line_1_period_out": …}``
  ("HISTORY (v1.0.9)" in the codec). ``up_vs133_readme_periods.json`` and
  ``up_vs133_readme_totals.json`` carry the byte examples of ``vs-series/vs133/README.md`` verbatim;
  ``up_vs133_device_info.json`` carries the basic-information example of Milesight's VS13x LoRaWAN
  uplink page (milesight.com/products/docs/en/vs135/protocol/vs1xx/vs13x-lora-uplink.html, which also
  names the periodic and children counters). The others (totals, periods, a history resend after a
  gap, whose retransmission Milesight describes in "How to use data retransmission function on
  Milesight sensors", support.milesight-iot.com) are made up with the same channels; each fixture's
  ``data`` is what its ``object`` was decoded from (checked below).
- ``bad_*`` are the good shape with one thing broken.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tila.mqtt import topic_matches
from tila.sensors.events import Battery, Count, Flow
from tila.sensors.formats import FORMATS, DecodeContext, DecodeError
from tila.sensors.formats.chirpstack_milesight import FORMAT, decode

FIXTURES = Path(__file__).parent / "fixtures" / "chirpstack"
APP = "8c2a3b6e-5d41-4f0a-9e37-0b6c1d2f4a58"
EUI = "24e124538b223401"
TOPIC = f"application/{APP}/device/{EUI}/event/up"
RECEIVED = datetime(2024, 3, 5, 9, 41, tzinfo=UTC)
CTX = DecodeContext(sensor="room-kide-counter", base_topic=TOPIC, received=RECEIVED)
S = CTX.sensor
VS133_EUI = "24e124136d124519"
VS133_TOPIC = f"application/{APP}/device/{VS133_EUI}/event/up"
VS133_CTX = DecodeContext(sensor="event-hall-entrance", base_topic=VS133_TOPIC, received=RECEIVED)
V = VS133_CTX.sensor


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


GOOD: list[tuple[str, list[Any]]] = [
    ("up_vs121_periodic.json", [Count(S, utc("2024-03-05T09:40:12.518734+00:00"), 3)]),
    ("up_vs121_change.json", [Count(S, utc("2024-03-05T10:02:47.004118+00:00"), 0)]),
    ("up_vs121_integers.json", [Count(S, utc("2024-03-05T13:15:00.250000+00:00"), 12)]),
    ("up_vs121_device_info.json", []),
    ("up_no_codec.json", []),
    (
        "up_synthetic_battery.json",
        [
            Count(S, utc("2024-03-05T11:20:00.000001+00:00"), 2),
            Battery(S, utc("2024-03-05T11:20:00.000001+00:00"), 100.0),
        ],
    ),
]

GOOD_VS133: list[tuple[str, list[Any]]] = [
    ("up_vs133_periodic.json", [Flow(V, utc("2024-03-05T12:00:03.118204+00:00"), 7, 3)]),
    # Two lines, two doors of one space: summed.
    ("up_vs133_two_lines.json", [Flow(V, utc("2024-03-05T12:10:03.402117+00:00"), 6, 4)]),
    ("up_vs133_readme_periods.json", [Flow(V, utc("2024-03-05T12:20:03.733410+00:00"), 5, 7)]),
    # Totals only: a stateless decoder cannot difference them.
    ("up_vs133_readme_totals.json", []),
    ("up_vs133_device_info.json", []),
    # One Flow per resent timestamp, lines summed, the total and the region record ignored.
    (
        "up_vs133_history.json",
        [
            Flow(V, utc("2024-03-05T10:00:00+00:00"), 4, 0),
            Flow(V, utc("2024-03-05T10:10:00+00:00"), 0, 3),
        ],
    ),
    (
        "up_vs133_history_and_live.json",
        [
            Flow(V, utc("2024-03-05T11:20:00+00:00"), 2, 5),
            Flow(V, utc("2024-03-05T11:32:12.577120+00:00"), 1, 0),
        ],
    ),
]

BAD_VS133: list[tuple[str, str]] = [
    ("bad_vs133_period_negative.json", "bad_value"),
    ("bad_vs133_period_too_big.json", "bad_value"),
    ("bad_vs133_period_fraction.json", "bad_value"),
    ("bad_vs133_period_string.json", "wrong_type"),
    ("bad_vs133_period_nan.json", "malformed_json"),
    ("bad_vs133_period_half.json", "bad_value"),
    ("bad_vs133_history_not_list.json", "wrong_type"),
    ("bad_vs133_history_record_not_object.json", "wrong_type"),
    ("bad_vs133_history_no_timestamp.json", "bad_value"),
    ("bad_vs133_history_timestamp_string.json", "wrong_type"),
    ("bad_vs133_history_timestamp_too_big.json", "bad_value"),
    ("bad_vs133_history_conflict.json", "bad_value"),
]

BAD: list[tuple[str, str]] = [
    ("bad_count_fraction.json", "bad_value"),
    ("bad_count_negative.json", "bad_value"),
    ("bad_count_too_big.json", "bad_value"),
    ("bad_count_string.json", "wrong_type"),
    ("bad_count_bool.json", "wrong_type"),
    ("bad_object_list.json", "wrong_type"),
    ("bad_time.json", "bad_value"),
    ("bad_time_no_offset.json", "bad_value"),
    ("bad_deveui.json", "bad_value"),
    ("bad_battery.json", "bad_value"),
    ("bad_not_utf8.bin", "not_utf8"),
    ("bad_malformed.json", "malformed_json"),
    ("bad_not_object.json", "not_object"),
]


def test_registered() -> None:
    assert FORMATS["chirpstack-milesight"] is FORMAT


@pytest.mark.parametrize(("name", "expected"), GOOD, ids=[g[0] for g in GOOD])
def test_decodes_fixture(name: str, expected: list[Any]) -> None:
    assert decode(TOPIC, fixture(name), CTX) == expected


@pytest.mark.parametrize(("name", "reason"), BAD, ids=[b[0] for b in BAD])
def test_rejects_fixture(name: str, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(TOPIC, fixture(name), CTX)
    assert info.value.reason == reason


@pytest.mark.parametrize(("name", "expected"), GOOD_VS133, ids=[g[0] for g in GOOD_VS133])
def test_decodes_vs133_fixture(name: str, expected: list[Any]) -> None:
    assert decode(VS133_TOPIC, fixture(name), VS133_CTX) == expected


@pytest.mark.parametrize(("name", "reason"), BAD_VS133, ids=[b[0] for b in BAD_VS133])
def test_rejects_vs133_fixture(name: str, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(VS133_TOPIC, fixture(name), VS133_CTX)
    assert info.value.reason == reason
    assert str(info.value)


_PERIOD_CHANNELS = {0x05: 1, 0x08: 2, 0x0B: 3, 0x0E: 4}
_TOTAL_CHANNELS = {0x03: "1_total_in", 0x04: "1_total_out", 0x06: "2_total_in", 0x07: "2_total_out"}
_TOTAL_CHANNELS |= {0x09: "3_total_in", 0x0A: "3_total_out", 0x0C: "4_total_in", 0x0D: "4_total_out"}


def _vs13x_value(channel: int, value: bytes) -> dict[str, float]:
    if channel in _PERIOD_CHANNELS:
        n = _PERIOD_CHANNELS[channel]
        return {
            f"line_{n}_period_in": float(int.from_bytes(value[0:2], "little")),
            f"line_{n}_period_out": float(int.from_bytes(value[2:4], "little")),
        }
    if channel in _TOTAL_CHANNELS:
        return {f"line_{_TOTAL_CHANNELS[channel]}": float(int.from_bytes(value[0:4], "little"))}
    if channel == 0x0F:
        return {f"region_{n}_count": float(value[n - 1]) for n in range(1, 5)}
    raise AssertionError(f"channel {channel:#04x} is not used by the fixtures")


def _vs133_codec(raw: bytes) -> dict[str, Any]:
    """The channels of Milesight's VS13x codec that the fixtures use, to check data against object."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(raw):
        channel, kind = raw[i], raw[i + 1]
        if (channel, kind) == (0x20, 0xCE):  # history: timestamp (4) + data type (1) + value (4)
            record = {"timestamp": float(int.from_bytes(raw[i + 2 : i + 6], "little"))}
            out.setdefault("history", []).append(record | _vs13x_value(raw[i + 6], raw[i + 7 : i + 11]))
            i += 11
        else:
            assert kind == (0xCC if channel in _PERIOD_CHANNELS else 0xD2)
            out |= _vs13x_value(channel, raw[i + 2 : i + 6])
            i += 6
    return out


@pytest.mark.parametrize(
    "name",
    [
        "up_vs133_periodic.json",
        "up_vs133_two_lines.json",
        "up_vs133_readme_periods.json",
        "up_vs133_readme_totals.json",
        "up_vs133_history.json",
        "up_vs133_history_and_live.json",
    ],
)
def test_vs133_fixtures_are_consistent(name: str) -> None:
    """Each VS133 fixture's object is what Milesight's codec makes of its data, on its topic's device."""
    doc = json.loads(fixture(name))
    assert doc["deviceInfo"]["devEui"] == VS133_EUI and doc["fPort"] == 85
    assert _vs133_codec(base64.b64decode(doc["data"])) == doc["object"]


def test_vs133_readme_bytes_are_verbatim() -> None:
    periods = json.loads(fixture("up_vs133_readme_periods.json"))["data"]
    totals = json.loads(fixture("up_vs133_readme_totals.json"))["data"]
    assert base64.b64decode(periods).hex().upper() == "05CC0000000008CC000000000BCC000000000ECC05000700"
    assert base64.b64decode(totals).hex().upper() == (
        "03D24800000004D2C800000006D20000000007D20000000009D2000000000AD2000000000CD2B41400000DD28D1A0000"
    )


def test_history_timestamps_are_utc_epoch_seconds() -> None:
    obj = {"history": [{"timestamp": 0.0, "line_3_period_in": 1.0, "line_3_period_out": 2.0}]}
    events = decode(VS133_TOPIC, json.dumps({"object": obj}).encode(), VS133_CTX)
    assert events == [Flow(V, datetime(1970, 1, 1, tzinfo=UTC), 1, 2)]
    assert events[0].time.utcoffset() == timedelta(0)


def test_duplicate_history_record_counts_once() -> None:
    record = {"timestamp": 1709632800.0, "line_1_period_in": 3.0, "line_1_period_out": 1.0}
    payload = json.dumps({"object": {"history": [record, dict(record)]}}).encode()
    assert decode(VS133_TOPIC, payload, VS133_CTX) == [Flow(V, utc("2024-03-05T10:00:00+00:00"), 3, 1)]


def test_integers_as_well_as_doubles() -> None:
    obj = {"line_2_period_in": 3, "line_2_period_out": 0}
    assert decode(VS133_TOPIC, json.dumps({"object": obj}).encode(), VS133_CTX) == [Flow(V, RECEIVED, 3, 0)]


def test_fixtures_are_consistent() -> None:
    """Each good fixture's object is what Milesight's codec makes of its data, on its topic's device."""
    for name in ("up_vs121_periodic.json", "up_vs121_change.json", "up_vs121_integers.json"):
        doc = json.loads(fixture(name))
        assert doc["deviceInfo"]["devEui"] == EUI and doc["deviceInfo"]["applicationId"] == APP
        raw = base64.b64decode(doc["data"])
        assert raw[0:2] == b"\x04\xc9" and raw[2] == doc["object"]["people_count_all"]
        assert raw[3] == doc["object"]["region_count"]


def test_time_falls_back_to_received() -> None:
    payload = json.dumps({"object": {"people_count_all": 4.0}}).encode()
    assert decode(TOPIC, payload, CTX) == [Count(S, RECEIVED, 4)]


def test_other_topic_is_refused() -> None:
    with pytest.raises(DecodeError) as info:
        decode(TOPIC.replace("/event/up", "/event/status"), fixture("status_vs121.json"), CTX)
    assert info.value.reason == "unknown_topic"


@pytest.mark.parametrize("event", ["status", "join", "ack", "txack", "log", "location", "integration"])
def test_other_event_types_are_ignored(event: str) -> None:
    topic = f"application/{APP}/device/{EUI}/event/{event}"
    assert any(topic_matches(f, topic) for f in FORMAT.ignored)
    assert not any(topic_matches(f, TOPIC) for f in FORMAT.ignored)


def test_downlink_commands_are_ignored() -> None:
    assert any(topic_matches(f, f"application/{APP}/device/{EUI}/command/down") for f in FORMAT.ignored)


def test_heartbeat_covers_two_report_intervals() -> None:
    assert FORMAT.heartbeat.total_seconds() == 20 * 60


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_only_raise_decode_error(payload: bytes) -> None:
    try:
        events = decode(TOPIC, payload, CTX)
    except DecodeError:
        return
    assert isinstance(events, list)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_time = st.one_of(
    _json,
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00", "2024-03-05T09:40:12Z"]),
)


@settings(max_examples=300, deadline=None)
@given(
    obj=st.one_of(
        _json, st.dictionaries(st.sampled_from(["people_count_all", "battery", "x"]), _json, max_size=3)
    ),
    when=_time,
    info=st.one_of(_json, st.fixed_dictionaries({"devEui": st.one_of(st.just(EUI), _json)})),
    big=st.integers(min_value=0, max_value=10**400),
)
def test_arbitrary_json_only_raises_decode_error(obj: Any, when: Any, info: Any, big: int) -> None:
    for doc in (
        {"time": when, "deviceInfo": info, "object": obj},
        {"object": {"people_count_all": big}},
        {"time": when, "object": {"people_count_all": 1}},
    ):
        payload = json.dumps(doc).encode()
        try:
            events = decode(TOPIC, payload, CTX)
        except DecodeError:
            continue
        assert all(isinstance(e, (Count, Battery)) for e in events)


_VS133_KEYS = [f"line_{n}_period_{d}" for n in (1, 2, 3, 4) for d in ("in", "out")]
_VS133_KEYS += ["line_1_total_in", "timestamp", "people_count_all", "battery", "x"]
_value = st.one_of(
    _json,
    st.integers(min_value=-2, max_value=70_000),
    st.integers(min_value=0, max_value=2**33).map(float),
    st.floats(),  # NaN and infinities too: json.dumps writes them as non-JSON tokens
    st.integers(min_value=0, max_value=10**400),
)
_record = st.dictionaries(st.sampled_from(_VS133_KEYS), _value, max_size=6)


@settings(max_examples=300, deadline=None)
@given(live=_record, history=st.one_of(_json, st.lists(st.one_of(_record, _json), max_size=5)))
def test_arbitrary_vs133_json_only_raises_decode_error(live: dict[str, Any], history: Any) -> None:
    for obj in (live, {**live, "history": history}):
        payload = json.dumps({"time": "2024-03-05T12:00:00Z", "object": obj}).encode()
        try:
            events = decode(VS133_TOPIC, payload, VS133_CTX)
        except DecodeError:
            continue
        assert all(isinstance(e, (Count, Flow, Battery)) for e in events)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.tuples(st.integers(min_value=0, max_value=2**32 - 1), st.sampled_from([1, 2, 3, 4])),
        st.tuples(st.integers(min_value=0, max_value=0xFFFF), st.integers(min_value=0, max_value=0xFFFF)),
        max_size=8,
    ),
    st.randoms(use_true_random=False),
)
def test_history_sums_lines_per_timestamp(records: dict[tuple[int, int], tuple[int, int]], rnd: Any) -> None:
    history = [
        {"timestamp": float(ts), f"line_{n}_period_in": float(i), f"line_{n}_period_out": float(o)}
        for (ts, n), (i, o) in records.items()
    ]
    rnd.shuffle(history)
    events = decode(VS133_TOPIC, json.dumps({"object": {"history": history}}).encode(), VS133_CTX)
    stamps = sorted({ts for ts, _ in records})
    assert [e.time for e in events] == [datetime.fromtimestamp(ts, UTC) for ts in stamps]
    assert sum(e.entered for e in events) == sum(i for i, _ in records.values())
    assert sum(e.exited for e in events) == sum(o for _, o in records.values())
