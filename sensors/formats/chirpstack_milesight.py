"""ChirpStack v4 uplink events of Milesight people counters (VS121 AI workplace occupancy sensor).

ChirpStack v4's MQTT integration publishes every device event as JSON (the Protobuf JSON mapping of
``integration.proto``) on ``application/<application_id>/device/<dev_eui>/event/<type>``. A sensor's
topic in the site file is its full ``…/event/up`` topic. An uplink event carries ``deduplicationId``,
``time`` (RFC 3339), ``deviceInfo`` (``devEui``, ``deviceName``, …), ``fCnt``, ``fPort``, ``data``
(the base64 FRMPayload) and, when the device profile has a codec, ``object``: the codec's output.
Milesight's VS121 codec (Milesight-IoT/SensorDecoders, ``VS_Series/VS121``) puts the current head
count in ``object.people_count_all`` (a uint8 on the wire; ChirpStack's ``Struct`` turns it into a
JSON double, so ``3.0`` is read as 3). Milesight codecs of battery-powered devices report
``object.battery`` in percent; the mains-powered VS121 has none, but it is read when present.

Decoding: ``people_count_all`` → :class:`Count`, ``battery`` → :class:`Battery`, both at the event's
``time`` (the gateway's receive time) or, without one, when the tila gateway received the message.
An uplink without a count (the VS121's device-information packet after a join, a line-crossing-only
report, or no codec configured) decodes to no events.

The other event types (``status``, ``join``, ``ack``, ``txack``, ``log``, ``location``,
``integration``) and downlink commands are ``ignored``. ``status`` does carry ``batteryLevel``, but
it is a sibling of ``event/up``, not below it, so reading it would need the gateway to route
sibling topics; and the VS121 runs on USB-C or PoE power, so its status says
``externalPowerSource: true`` and no battery level worth keeping. Simplest honest choice: ignore it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..events import Battery, Count, Event
from .base import DecodeContext, DecodeError, Format, json_object, number, timestamp

#: ChirpStack v4's default event topic is application/APPLICATION_ID/device/DEV_EUI/event/EVENT
#: (chirpstack.io/docs/chirpstack/integrations/mqtt.html).
_EVENT_TYPES_IGNORED = ("status", "join", "ack", "txack", "log", "location", "integration")


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
    events: list[Event] = []
    count = _number(obj, "people_count_all", 0, 255)
    if count is not None:
        if count != int(count):
            raise DecodeError("bad_value", f"people_count_all must be a whole number: {count!r}")
        events.append(Count(ctx.sensor, when, int(count)))
    battery = _number(obj, "battery", 0, 100)
    if battery is not None:
        events.append(Battery(ctx.sensor, when, float(battery)))
    return events


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
    # guide), and on every change; twice that.
    heartbeat=timedelta(minutes=20),
)
