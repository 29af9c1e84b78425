"""Canonical event types: what a sensor reading means, independent of the device that sent it.

Decoders in :mod:`tila.sensors.formats` turn device payloads into these; the gateway stamps them
(:class:`Stamped`) with its id and a per-gateway sequence number; the aggregator consumes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias


class EventError(ValueError):
    """An event value is out of range or of the wrong type."""


def _check_common(sensor: str, time: datetime) -> None:
    if not isinstance(sensor, str) or not sensor:
        raise EventError("sensor id must be a non-empty string")
    if not isinstance(time, datetime) or time.tzinfo is None or time.utcoffset() is None:
        raise EventError("event time must be a timezone-aware datetime")


@dataclass(slots=True, frozen=True)
class Presence:
    """A presence sensor (PIR, radar) reports someone there (``occupied``) or not."""

    sensor: str
    time: datetime
    occupied: bool

    def __post_init__(self) -> None:
        _check_common(self.sensor, self.time)
        if not isinstance(self.occupied, bool):
            raise EventError("occupied must be a boolean")


@dataclass(slots=True, frozen=True)
class Count:
    """A people counter reports how many people are in its space now."""

    sensor: str
    time: datetime
    count: int

    def __post_init__(self) -> None:
        _check_common(self.sensor, self.time)
        if isinstance(self.count, bool) or not isinstance(self.count, int):
            raise EventError("count must be an integer")
        if self.count < 0:
            raise EventError("count must not be negative")


@dataclass(slots=True, frozen=True)
class Flow:
    """A line-crossing counter reports how many people went in and out since its previous report.

    The head count of the space follows from the sum of flows (never below zero); see the aggregator.
    """

    sensor: str
    time: datetime
    entered: int
    exited: int

    def __post_init__(self) -> None:
        _check_common(self.sensor, self.time)
        for name in ("entered", "exited"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise EventError(f"{name} must be an integer")
            if v < 0:
                raise EventError(f"{name} must not be negative")


@dataclass(slots=True, frozen=True)
class Availability:
    """The device is reachable (``online``) or not, as its radio network or hub tells."""

    sensor: str
    time: datetime
    online: bool

    def __post_init__(self) -> None:
        _check_common(self.sensor, self.time)
        if not isinstance(self.online, bool):
            raise EventError("online must be a boolean")


@dataclass(slots=True, frozen=True)
class Battery:
    """Battery level in percent (0–100)."""

    sensor: str
    time: datetime
    percent: float

    def __post_init__(self) -> None:
        _check_common(self.sensor, self.time)
        if isinstance(self.percent, bool) or not isinstance(self.percent, (int, float)):
            raise EventError("battery must be a number")
        if math.isnan(self.percent) or not 0 <= self.percent <= 100:
            raise EventError("battery must be between 0 and 100 percent")


@dataclass(slots=True, frozen=True)
class LinkQuality:
    """Radio link quality as the device's network reports it (Zigbee LQI 0–255)."""

    sensor: str
    time: datetime
    lqi: int

    def __post_init__(self) -> None:
        _check_common(self.sensor, self.time)
        if isinstance(self.lqi, bool) or not isinstance(self.lqi, int):
            raise EventError("link quality must be an integer")
        if not 0 <= self.lqi <= 255:
            raise EventError("link quality must be between 0 and 255")


Event: TypeAlias = Presence | Count | Flow | Availability | Battery | LinkQuality

#: The ``type`` name of each event on the wire, and back.
TYPE_NAMES: dict[type, str] = {
    Presence: "presence",
    Count: "count",
    Flow: "flow",
    Availability: "availability",
    Battery: "battery",
    LinkQuality: "linkquality",
}
TYPES_BY_NAME: dict[str, type] = {name: cls for cls, name in TYPE_NAMES.items()}


@dataclass(slots=True, frozen=True)
class Stamped:
    """An event as a gateway forwards it: who forwarded it, in which order, and when it was received.

    ``(gateway, seq)`` identifies the event: consumers apply each pair once.
    """

    gateway: str
    seq: int
    received: datetime
    space: str
    event: Event

    def __post_init__(self) -> None:
        if not isinstance(self.gateway, str) or not self.gateway:
            raise EventError("gateway id must be a non-empty string")
        if isinstance(self.seq, bool) or not isinstance(self.seq, int) or self.seq < 1:
            raise EventError("seq must be a positive integer")
        if not isinstance(self.received, datetime) or self.received.tzinfo is None:
            raise EventError("received must be a timezone-aware datetime")
        if not isinstance(self.space, str) or not self.space:
            raise EventError("space id must be a non-empty string")
        if not isinstance(self.event, tuple(TYPE_NAMES)):
            raise EventError("event must be a canonical event")

    @property
    def key(self) -> tuple[str, int]:
        return (self.gateway, self.seq)
