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
- ``bad_*`` are the good shape with one thing broken.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tila.mqtt import topic_matches
from tila.sensors.events import Battery, Count
from tila.sensors.formats import FORMATS, DecodeContext, DecodeError
from tila.sensors.formats.chirpstack_milesight import FORMAT, decode

FIXTURES = Path(__file__).parent / "fixtures" / "chirpstack"
APP = "8c2a3b6e-5d41-4f0a-9e37-0b6c1d2f4a58"
EUI = "24e124538b223401"
TOPIC = f"application/{APP}/device/{EUI}/event/up"
RECEIVED = datetime(2024, 3, 5, 9, 41, tzinfo=UTC)
CTX = DecodeContext(sensor="room-kide-counter", base_topic=TOPIC, received=RECEIVED)
S = CTX.sensor


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
