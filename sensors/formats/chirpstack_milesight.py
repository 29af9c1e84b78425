"""ChirpStack v4 uplink events of Milesight people counters: VS121 head counts, VS133/VS135 line crossings.

ChirpStack v4's MQTT integration publishes every device event as JSON (the Protobuf JSON mapping of
``integration.proto``) on ``application/<application_id>/device/<dev_eui>/event/<type>``. A sensor's
topic in the site file is its full ``…/event/up`` topic. An uplink event carries ``deduplicationId``,
``time`` (RFC 3339), ``deviceInfo`` (``devEui``, ``deviceName``, …), ``fCnt``, ``fPort``, ``data``
(the base64 FRMPayload) and, when the device profile has a codec, ``object``: the codec's output.
ChirpStack's ``Struct`` turns every codec number into a JSON double, so ``3.0`` is read as 3.

VS121 (AI workplace occupancy sensor; Milesight-IoT/SensorDecoders ``VS_Series/VS121``): the current
head count in ``object.people_count_all`` (a uint8 on the wire) → :class:`Count`. Milesight codecs of
battery-powered devices report ``object.battery`` in percent → :class:`Battery`; the VS121 and VS13x
run on mains or PoE and have none, but it is read when present.

VS133/VS135 (ToF line-crossing counters; SensorDecoders ``vs-series/vs133/vs133-decoder.js``, shared
by both models): each of up to four lines reports

- ``line_N_period_in`` / ``line_N_period_out`` (uint16, channels 05/08/0b/0e type cc): people who
  crossed line N since the previous periodic report, and
- ``line_N_total_in`` / ``line_N_total_out`` (uint32, channels 03/04… type d2): running totals since
  the last (possibly scheduled) reset.

One report becomes one :class:`Flow` of the *period* counts **summed over lines 1–4**: tila models a
sensor as watching one space, so several lines of one device are read as several doors of that space.
(Lines drawn twice across the same door would double-count; a site must not configure that.) A
report with lines present on one side only (``in`` without ``out``) is refused; the codec always
writes both from one 4-byte channel.

Totals are **not** read. A stateless decoder cannot difference two totals (it would need the
previous report, and totals reset on the device's schedule), and ``total_in - total_out`` is not a
head count either. A report with totals only decodes to no events, which the gateway counts as
``no_reading``; configure the device to report period counts. The codec's ``*_child_*`` (VS13x) and
``*_staff_*`` (ODM variant) sub-counts and the region counts are not read either.

History (channel ``20 ce``, "HISTORY (v1.0.9)" in the codec): after a network gap the device resends what it stored
as ``object.history``, a list of records ``{"timestamp": <epoch s>, <one data type>}``: each record
carries *one* channel (one line's period pair, one total, or one region reading) stamped with the
device's clock. Records of the same ``timestamp`` are one report: their line periods are summed into
one Flow at that time (aware UTC). A timestamp with only totals or region data yields nothing. Two
records of one line at one timestamp must agree, or the uplink is refused. History Flows come first,
oldest first, then the live report's events. The device clock must be synchronised (Milesight asks
for a time sync before enabling retransmission); the decoder cannot tell a wrong clock.

Live events are stamped with the event's ``time`` (the network's receive time) or, without one, when
the tila gateway received the message. An uplink without anything to read (the device-information
packet after a join, totals only, no codec configured) decodes to no events.

The other event types (``status``, ``join``, ``ack``, ``txack``, ``log``, ``location``,
``integration``) and downlink commands are ``ignored``. ``status`` does carry ``batteryLevel``, but
it is a sibling of ``event/up``, not below it, so reading it would need the gateway to route
sibling topics; and the VS121 runs on USB-C or PoE power, so its status says
``externalPowerSource: true`` and no battery level worth keeping. Simplest honest choice: ignore it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from ..events import Battery, Count, Event, Flow
from .base import DecodeContext, DecodeError, Format, json_object, number, timestamp

#: ChirpStack v4's default event topic is application/APPLICATION_ID/device/DEV_EUI/event/EVENT
#: (chirpstack.io/docs/chirpstack/integrations/mqtt.html).
_EVENT_TYPES_IGNORED = ("status", "join", "ack", "txack", "log", "location", "integration")

#: VS13x lines 1–4: period channels 05, 08, 0b, 0e (vs-series/vs133/vs133-decoder.js, period_chns).
_LINES = (1, 2, 3, 4)
#: Period counts are uint16 on the wire (readUInt16LE in the VS13x codec).
_PERIOD_MAX = 0xFFFF
#: History timestamps are uint32 epoch seconds on the wire (readUInt32LE in readHistory).
_EPOCH_MAX = 0xFFFFFFFF


def decode(topic: str, payload: bytes, ctx: DecodeContext) -> list[Event]:
    if topic != ctx.base_topic:
        raise DecodeError("unknown_topic", f"not a ChirpStack uplink topic of this sensor: {topic[:80]!r}")
    doc = json_object(payload)
    _check_device(topic, doc)
    when = _time(doc["time"]) if doc.get("time") is not None else ctx.received
    obj = doc.get("object")
    if obj is None:
        # No codec in the device profile, or the codec failed (ChirpStack then sends a log event).
        return []
    if not isinstance(obj, dict):
        raise DecodeError("wrong_type", f"object must be a JSON object, not {type(obj).__name__}")
    events: list[Event] = [Flow(ctx.sensor, t, i, o) for t, (i, o) in _history(obj.get("history"))]
    count = _number(obj, "people_count_all", 0, 255)
    if count is not None:
        if count != int(count):
            raise DecodeError("bad_value", f"people_count_all must be a whole number: {count!r}")
        events.append(Count(ctx.sensor, when, int(count)))
    flow = _periods(obj, "object")
    if flow is not None:
        events.append(Flow(ctx.sensor, when, *flow))
    battery = _number(obj, "battery", 0, 100)
    if battery is not None:
        events.append(Battery(ctx.sensor, when, float(battery)))
    return events


def _periods(record: dict[str, Any], where: str) -> tuple[int, int] | None:
    """(in, out) summed over the lines present in one report or history record, or None if none."""
    lines = _lines(record, where)
    if not lines:
        return None
    return sum(i for i, _ in lines.values()), sum(o for _, o in lines.values())


def _lines(record: dict[str, Any], where: str) -> dict[int, tuple[int, int]]:
    found: dict[int, tuple[int, int]] = {}
    for n in _LINES:
        keys = (f"line_{n}_period_in", f"line_{n}_period_out")
        values = [_whole(record, k, _PERIOD_MAX, where) for k in keys]
        if values[0] is None and values[1] is None:
            continue
        if values[0] is None or values[1] is None:
            raise DecodeError("bad_value", f"{where}: line {n} has period in or out but not both")
        found[n] = (values[0], values[1])
    return found


def _history(value: Any) -> list[tuple[datetime, tuple[int, int]]]:
    """History records grouped by timestamp → [(time, (in, out))], oldest first."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise DecodeError("wrong_type", f"history must be a list, not {type(value).__name__}")
    by_time: dict[int, dict[int, tuple[int, int]]] = {}
    for k, record in enumerate(value):
        where = f"history[{k}]"
        if not isinstance(record, dict):
            raise DecodeError("wrong_type", f"{where} must be a JSON object, not {type(record).__name__}")
        ts = _whole(record, "timestamp", _EPOCH_MAX, where)
        if ts is None:
            raise DecodeError("bad_value", f"{where} has no timestamp")
        lines = by_time.setdefault(ts, {})
        for n, pair in _lines(record, where).items():
            if lines.setdefault(n, pair) != pair:
                raise DecodeError("bad_value", f"{where}: line {n} at {ts} reported twice, differently")
    return [
        (datetime.fromtimestamp(ts, tz=UTC), (sum(i for i, _ in ls.values()), sum(o for _, o in ls.values())))
        for ts, ls in sorted(by_time.items())
        if ls
    ]


def _whole(record: dict[str, Any], key: str, hi: int, where: str) -> int | None:
    """An optional whole number in [0, hi]; ChirpStack sends it as a double (``7.0``)."""
    if key not in record or record[key] is None:
        return None
    v = record[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DecodeError("wrong_type", f"{where}.{key} must be a number, not {type(v).__name__}")
    # Compare before any conversion: a huge JSON integer would overflow float(), NaN fails both tests.
    if not 0 <= v <= hi or (isinstance(v, float) and (math.isnan(v) or v != int(v))):
        raise DecodeError("bad_value", f"{where}.{key} must be a whole number in 0..{hi}: {str(v)[:40]}")
    return int(v)


def _check_device(topic: str, doc: dict[str, Any]) -> None:
    """The event's own devEui must be the one in the topic (a mis-set topic template shows here)."""
    info = doc.get("deviceInfo")
    if info is None:
        return
    if not isinstance(info, dict):
        raise DecodeError("wrong_type", f"deviceInfo must be a JSON object, not {type(info).__name__}")
    eui = info.get("devEui")
    if eui is None:
        return
    if not isinstance(eui, str):
        raise DecodeError("wrong_type", f"deviceInfo.devEui must be a string, not {type(eui).__name__}")
    parts = topic.split("/")
    default_topic = (
        len(parts) == 6 and parts[0] == "application" and parts[2] == "device" and parts[4] == "event"
    )
    if default_topic and parts[3].lower() != eui.lower():
        raise DecodeError("bad_value", f"deviceInfo.devEui {eui[:20]!r} is not the topic's {parts[3][:20]!r}")


def _time(value: Any) -> datetime:
    try:
        return timestamp(value, "time")
    except OverflowError as exc:  # a valid ISO date whose UTC form falls outside datetime's range
        raise DecodeError("bad_value", "time out of range") from exc


def _number(doc: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    try:
        return number(doc, key, lo, hi)
    except OverflowError as exc:  # an integer too large for a float
        raise DecodeError("bad_value", f"{key} out of range") from exc


FORMAT = Format(
    name="chirpstack-milesight",
    decode=decode,
    ignored=(
        *(f"application/+/device/+/event/{t}" for t in _EVENT_TYPES_IGNORED),
        # Downlinks other clients enqueue for devices.
        "application/+/device/+/command/#",
    ),
    # The VS121 reports the head count periodically, every 10 minutes by default (Milesight VS121
    # user guide, LoRaWAN settings: reporting interval; to be re-checked against the current
    # guide), and on every change; twice that. The VS13x default was not found in public docs; its
    # sibling VS360 documents 10 minutes (milesight.com VS360 uplink protocol), so one heartbeat is
    # assumed to serve both; a site that lengthens a device's interval will see it go unknown.
    heartbeat=timedelta(minutes=20),
)
