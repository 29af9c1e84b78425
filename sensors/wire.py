"""The canonical event batch on ``tila/v1/<site>/events/<gateway>``: JSON, documented in the README.

One MQTT message carries a batch of one or more events of one gateway, in sequence order::

    {"v": 1, "gateway": "gw-1", "events": [
        {"seq": 17, "type": "presence", "sensor": "desk-01-pir", "space": "desk-01",
         "time": "2026-11-24T08:00:00.123000+00:00", "received": "2026-11-24T08:00:00.130000+00:00",
         "occupied": true}
    ]}
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .events import (
    TYPE_NAMES,
    TYPES_BY_NAME,
    Availability,
    Battery,
    Count,
    Event,
    EventError,
    Flow,
    LinkQuality,
    Presence,
    Stamped,
)

VERSION = 1

#: The value fields of each event type on the wire, and the event's attribute for each.
_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {
    Presence: (("occupied", "occupied"),),
    Count: (("count", "count"),),
    Flow: (("entered", "entered"), ("exited", "exited")),
    Availability: (("online", "online"),),
    Battery: (("battery", "percent"),),
    LinkQuality: (("linkquality", "lqi"),),
}


class WireError(ValueError):
    """A canonical batch that cannot be read."""


def event_to_dict(stamped: Stamped) -> dict[str, Any]:
    ev = stamped.event
    cls = type(ev)
    return {
        "seq": stamped.seq,
        "type": TYPE_NAMES[cls],
        "sensor": ev.sensor,
        "space": stamped.space,
        "time": ev.time.isoformat(),
        "received": stamped.received.isoformat(),
        **{field: getattr(ev, attr) for field, attr in _FIELDS[cls]},
    }


def encode_batch(gateway: str, events: list[Stamped]) -> bytes:
    return json.dumps(
        {"v": VERSION, "gateway": gateway, "events": [event_to_dict(s) for s in events]},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def _time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise WireError(f"{name} must be an ISO 8601 string")
    try:
        t = datetime.fromisoformat(value)
    except ValueError as exc:
        raise WireError(f"{name} is not ISO 8601: {value[:40]!r}") from exc
    if t.tzinfo is None:
        raise WireError(f"{name} has no UTC offset")
    return t


def event_from_dict(gateway: str, d: Any) -> Stamped:
    if not isinstance(d, dict):
        raise WireError("an event must be a JSON object")
    cls = TYPES_BY_NAME.get(d.get("type"))  # type: ignore[arg-type]
    if cls is None:
        raise WireError(f"unknown event type {str(d.get('type'))[:40]!r}")
    for field, _ in _FIELDS[cls]:
        if field not in d:
            raise WireError(f"{TYPE_NAMES[cls]} event without {field!r}")
    try:
        event: Event = cls(d.get("sensor"), _time(d.get("time"), "time"), *(d[f] for f, _ in _FIELDS[cls]))
        return Stamped(gateway, d.get("seq"), _time(d.get("received"), "received"), d.get("space"), event)  # type: ignore[arg-type]
    except EventError as exc:
        raise WireError(str(exc)) from exc


def decode_batch(payload: bytes) -> tuple[list[Stamped], list[str]]:
    """Read one batch: its good events, and a readable reason for each malformed one.

    A batch that is not readable as a whole raises :class:`WireError`.
    """
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise WireError("a batch must be a JSON object")
    if doc.get("v") != VERSION:
        raise WireError(f"unsupported batch version {str(doc.get('v'))[:20]!r}")
    gateway = doc.get("gateway")
    if not isinstance(gateway, str) or not gateway:
        raise WireError("batch without a gateway id")
    events = doc.get("events")
    if not isinstance(events, list):
        raise WireError("batch without an events list")
    good: list[Stamped] = []
    bad: list[str] = []
    for e in events:
        try:
            good.append(event_from_dict(gateway, e))
        except WireError as exc:
            bad.append(str(exc))
    return good, bad
