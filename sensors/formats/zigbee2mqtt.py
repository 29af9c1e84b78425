"""Zigbee2MQTT device messages: presence (PIR, mmWave) sensors and their availability.

``zigbee2mqtt/<name>`` carries a JSON object: ``occupancy`` (bool), and optionally ``battery`` (%),
``linkquality`` (LQI 0–255) and ``last_seen`` (ISO 8601 or epoch ms, as Zigbee2MQTT's
``advanced.last_seen`` setting chooses; absent when it is ``disable``). Other keys are ignored.
``zigbee2mqtt/<name>/availability`` carries ``{"state":"online"}`` (Zigbee2MQTT ≥ 1.32) or plain
``online`` / ``offline`` (earlier versions).
"""

from __future__ import annotations

from datetime import timedelta

from ..events import Availability, Battery, Event, LinkQuality, Presence
from .base import DecodeContext, DecodeError, Format, json_object, number, timestamp

AVAILABILITY = "availability"


def decode(topic: str, payload: bytes, ctx: DecodeContext) -> list[Event]:
    if topic == f"{ctx.base_topic}/{AVAILABILITY}":
        return [Availability(ctx.sensor, ctx.received, _availability(payload))]
    if topic != ctx.base_topic:
        raise DecodeError("unknown_topic", f"not a Zigbee2MQTT device topic: {topic[:80]!r}")
    doc = json_object(payload)
    when = timestamp(doc["last_seen"], "last_seen") if doc.get("last_seen") is not None else ctx.received
    events: list[Event] = []
    if "occupancy" in doc and doc["occupancy"] is not None:
        occ = doc["occupancy"]
        if not isinstance(occ, bool):
            raise DecodeError("wrong_type", f"occupancy must be true or false, not {type(occ).__name__}")
        events.append(Presence(ctx.sensor, when, occ))
    battery = number(doc, "battery", 0, 100)
    if battery is not None:
        events.append(Battery(ctx.sensor, when, float(battery)))
    lqi = number(doc, "linkquality", 0, 255)
    if lqi is not None:
        if lqi != int(lqi):
            raise DecodeError("bad_value", f"linkquality must be a whole number: {lqi!r}")
        events.append(LinkQuality(ctx.sensor, when, int(lqi)))
    return events


def _availability(payload: bytes) -> bool:
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise DecodeError("not_utf8", "availability payload is not UTF-8") from exc
    if text in ("online", "offline"):
        return text == "online"
    doc = json_object(payload)
    state = doc.get("state")
    if state not in ("online", "offline"):
        raise DecodeError(
            "bad_value", f"availability state must be online or offline, not {str(state)[:20]!r}"
        )
    return state == "online"


FORMAT = Format(
    name="zigbee2mqtt",
    decode=decode,
    subtopics=(AVAILABILITY,),
    # The bridge's own topics, and commands other clients send to devices.
    ignored=("zigbee2mqtt/bridge/#", "zigbee2mqtt/+/set", "zigbee2mqtt/+/get", "zigbee2mqtt/+/set/#"),
    # Aqara and IKEA PIR sensors report battery at least hourly (Aqara: every ~50 min); twice that.
    heartbeat=timedelta(hours=2),
)
