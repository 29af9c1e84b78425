"""Per-space occupancy state from sensor events: pure, no I/O, all times in UTC epoch seconds.

A sensor is *live* while it is not reported offline, has a reading, and has been heard from within
its format's heartbeat. A space is ``unknown`` when none of its sensors is live, else ``occupied``
when any live sensor sees somebody (presence, or a head count above zero), else ``free``. Its head
count is the largest live reading (a presence sensor reads 1 or 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..sensors.events import Availability, Battery, Count, Event, Flow, LinkQuality, Presence
from .buckets import Bucket, OpenHours, accrue

FREE, OCCUPIED, UNKNOWN = "free", "occupied", "unknown"


@dataclass(slots=True)
class SensorState:
    id: str
    heartbeat: float
    online: bool | None = None
    last_seen: float | None = None
    occupied: bool | None = None
    count: int | None = None
    battery: float | None = None
    lqi: int | None = None
    #: Event time of the newest presence or count reading (device time where the format has it;
    #: availability carries the gateway's receipt time, so it is not compared with readings).
    reading_time: float | None = None

    def update(self, event: Event, t: float) -> None:
        if isinstance(event, Availability):
            self.online = event.online
        else:
            # Any report from the device shows it is reachable.
            self.online = True
            if isinstance(event, Presence):
                self.occupied = event.occupied
                self.reading_time = t
            elif isinstance(event, Count):
                self.count = event.count
                self.reading_time = t
            elif isinstance(event, Flow):
                # In minus out since the last report; a head count never goes below zero.
                self.count = max(0, (self.count or 0) + event.entered - event.exited)
                # Flows add up in any order (a history record may come late): never move back.
                self.reading_time = t if self.reading_time is None else max(self.reading_time, t)
            elif isinstance(event, Battery):
                self.battery = event.percent
            elif isinstance(event, LinkQuality):
                self.lqi = event.lqi
        if event.__class__ is not Availability or event.online:
            self.last_seen = t if self.last_seen is None else max(self.last_seen, t)

    def reading(self) -> int | None:
        if self.count is not None:
            return self.count
        if self.occupied is not None:
            return 1 if self.occupied else 0
        return None

    def expiry(self) -> float | None:
        """When this sensor stops being live if nothing more is heard."""
        if self.online is False or self.last_seen is None or self.reading() is None:
            return None
        return self.last_seen + self.heartbeat

    def live(self, t: float) -> bool:
        e = self.expiry()
        return e is not None and t < e

    def to_dict(self) -> dict[str, Any]:
        return {
            "online": self.online,
            "last_seen": self.last_seen,
            "occupied": self.occupied,
            "count": self.count,
            "battery": self.battery,
            "lqi": self.lqi,
            "reading_time": self.reading_time,
        }

    def load(self, d: dict[str, Any]) -> None:
        for k in ("online", "last_seen", "occupied", "count", "battery", "lqi", "reading_time"):
            setattr(self, k, d.get(k))


@dataclass(slots=True)
class SpaceState:
    """The state of one space, re-evaluated whenever a sensor changes or time passes."""

    id: str
    sensors: dict[str, SensorState]
    state: str = UNKNOWN
    count: int = 0
    since: float | None = None

    def evaluate(self, t: float) -> bool:
        """Re-derive state and count at time ``t``; True when either changed (``since`` = t)."""
        readings = [r for s in self.sensors.values() if s.live(t) and (r := s.reading()) is not None]
        if readings:
            count = max(readings)
            state = OCCUPIED if count > 0 else FREE
        else:
            state, count = UNKNOWN, 0
        if state != self.state or count != self.count or self.since is None:
            self.state, self.count, self.since = state, count, t
            return True
        return False

    def next_expiry(self, after: float) -> float | None:
        times = [e for s in self.sensors.values() if (e := s.expiry()) is not None and e > after]
        return min(times) if times else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "count": self.count,
            "since": self.since,
            "sensors": {k: s.to_dict() for k, s in self.sensors.items()},
        }

    def load(self, d: dict[str, Any]) -> None:
        self.state, self.count, self.since = d["state"], d["count"], d["since"]
        for k, sd in d.get("sensors", {}).items():
            if k in self.sensors:
                self.sensors[k].load(sd)


@dataclass(slots=True)
class Timeline:
    """A space's state in event-time order, accrued into 15-minute buckets up to ``accrued``."""

    space: SpaceState
    accrued: float | None = None
    buckets: dict[int, Bucket] = field(default_factory=dict)

    def advance(self, to: float, hours: OpenHours) -> None:
        """Accrue the current state up to ``to``, switching state where a sensor falls silent."""
        sp = self.space
        if self.accrued is None:
            self.accrued = to
            sp.evaluate(to)
            return
        while self.accrued < to:
            nxt = sp.next_expiry(self.accrued)
            stop = to if nxt is None else min(to, nxt)
            accrue(self.buckets, sp.id, hours, self.accrued, stop, sp.state, sp.count)
            self.accrued = stop
            sp.evaluate(stop)

    def apply(self, sensor: str, event: Event, t: float, hours: OpenHours) -> None:
        """Apply an event at ``t`` ≥ ``accrued`` (the caller orders events and clamps late ones)."""
        self.advance(t, hours)
        self.space.sensors[sensor].update(event, t)
        self.space.evaluate(t)
