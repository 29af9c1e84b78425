"""The aggregator's pure core: canonical events in; live state, buckets and a checkpoint out.

Two views of every space are kept:

- the **live** view follows each sensor's newest reading at once, for the lobby and booking tools;
- the **accounting** view replays events in event-time order once they are older than the
  lateness window (``lateness`` seconds behind the clock), so events from several gateways that
  arrive slightly out of order are still accrued in the order they happened. An event older than
  what has already been accrued is *late* (a gateway draining a backlog): the space's buckets are
  accrued again from the slot the late event falls in, replaying the event log in event-time
  order. The state at that slot's start follows from the events of the heartbeat allowance
  before it (a sensor silent for longer is not live, whatever it last said), so the replay needs
  nothing older. The result is the same as if the events had come in order.

Everything needed to resume exactly (dedup trackers, both views, the not-yet-accrued events and the
open buckets) is in :meth:`Aggregator.checkpoint`, which the service commits together with the
buckets before it acknowledges the messages they came from.
"""

from __future__ import annotations

import heapq
import zlib
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from ..sensors.events import Battery, Count, LinkQuality, Presence, Stamped
from ..sensors.formats import FORMATS
from ..sensors.site import Site
from .buckets import BUCKET_SECONDS, Bucket, OpenHours, slot
from .dedup import SeqTracker
from .state import SensorState, SpaceState, Timeline

CHECKPOINT_VERSION = 1
#: Events stamped further ahead of the aggregator's clock than this are taken as happening now
#: (a gateway clock running fast); counted as ``clock_ahead``.
MAX_AHEAD = 2.0
#: A sensor's health is republished at most this often when only ``last_seen`` moved.
SENSOR_REPUBLISH = 60.0


class EventLog(Protocol):
    """Where applied events are kept for accruing again (the service's journal; memory in tests)."""

    def log(self, space: str, t: float, s: Stamped) -> None: ...

    def events(self, space: str, start: float, end: float) -> list[tuple[float, Stamped]]: ...


class MemoryLog:
    def __init__(self) -> None:
        self._events: dict[str, list[tuple[float, Stamped]]] = {}

    def log(self, space: str, t: float, s: Stamped) -> None:
        self._events.setdefault(space, []).append((t, s))

    def events(self, space: str, start: float, end: float) -> list[tuple[float, Stamped]]:
        found = [(t, s) for t, s in self._events.get(space, []) if start <= t <= end]
        return sorted(found, key=lambda x: (x[0], x[1].gateway, x[1].seq))


def partition(index: int, count: int) -> Callable[[str], bool]:
    """Which spaces an aggregator instance owns when ``count`` instances share a site."""
    return lambda space: zlib.crc32(space.encode()) % count == index


def _sensors_of(site: Site, space_id: str) -> dict[str, SensorState]:
    return {
        s.id: SensorState(s.id, FORMATS[s.format].heartbeat.total_seconds())
        for s in site.sensors_of(space_id)
    }


class Aggregator:
    def __init__(
        self,
        site: Site,
        lateness: float = 10.0,
        owns: Callable[[str], bool] | None = None,
        log: EventLog | None = None,
    ) -> None:
        self.site = site
        self.lateness = lateness
        self.owns = owns or (lambda space: True)
        self.log: EventLog = log if log is not None else MemoryLog()
        self.hours = OpenHours(site)
        self.trackers: dict[str, SeqTracker] = {}
        mine = [sp for sp in site.spaces if self.owns(sp.id)]
        self.live: dict[str, SpaceState] = {sp.id: SpaceState(sp.id, _sensors_of(site, sp.id)) for sp in mine}
        self.timelines: dict[str, Timeline] = {
            sp.id: Timeline(SpaceState(sp.id, _sensors_of(site, sp.id))) for sp in mine
        }
        self._heartbeat = {
            sp.id: max((st.heartbeat for st in _sensors_of(site, sp.id).values()), default=0.0) for sp in mine
        }
        self._pending: list[tuple[float, str, int, Stamped]] = []
        #: Events taken into the accounting view so far (the service commits when this moves).
        self.accounted = 0
        self.counters: Counter[str] = Counter()
        self.changed_spaces: set[str] = set()
        self.changed_sensors: set[str] = set()
        self._sensor_sent: dict[str, tuple[Any, ...]] = {}

    # ---------------------------------------------------------------------------------- events

    def ingest(self, s: Stamped, now: float) -> str:
        """Take one stamped event; returns ``applied``, ``duplicate`` or ``quarantined:<reason>``."""
        sensor = self.site.sensor(s.event.sensor)
        if sensor is None:
            self.counters["quarantined_unknown_sensor"] += 1
            return "quarantined:unknown_sensor"
        tracker = self.trackers.get(s.gateway)
        if tracker is None:
            tracker = self.trackers[s.gateway] = SeqTracker()
        if not tracker.add(s.seq):
            self.counters["duplicates"] += 1
            return "duplicate"
        if sensor.space not in self.live:
            self.counters["other_partition"] += 1
            return "other_partition"
        self.counters["events"] += 1
        t = s.event.time.timestamp()
        if t > now + MAX_AHEAD:
            self.counters["clock_ahead"] += 1
            t = now
        self._apply_live(sensor.space, sensor.id, s, t)
        self.log.log(sensor.space, t, s)
        heapq.heappush(self._pending, (t, s.gateway, s.seq, s))
        return "applied"

    def _apply_live(self, space_id: str, sensor_id: str, s: Stamped, t: float) -> None:
        space = self.live[space_id]
        st = space.sensors[sensor_id]
        if isinstance(s.event, (Presence, Count)) and st.reading_time is not None and t < st.reading_time:
            # Older than the reading the live view already shows: it only matters to the accounting.
            return
        st.update(s.event, t)
        if space.evaluate(max(t, space.since or t)):
            self.changed_spaces.add(space_id)
        self._note_sensor(sensor_id, st, force=not isinstance(s.event, (Battery, LinkQuality)))

    def _note_sensor(self, sensor_id: str, st: SensorState, force: bool) -> None:
        sent = self._sensor_sent.get(sensor_id)
        key = (st.online, st.battery, st.lqi)
        if sent is None or sent[:3] != key or (st.last_seen or 0) - sent[3] >= SENSOR_REPUBLISH:
            self.changed_sensors.add(sensor_id)
            self._sensor_sent[sensor_id] = (*key, st.last_seen or 0)

    # ------------------------------------------------------------------------------------ time

    def tick(self, now: float) -> None:
        """Accrue everything older than the lateness window; let silent sensors expire."""
        watermark = now - self.lateness
        late: dict[str, float] = {}
        while self._pending and self._pending[0][0] <= watermark:
            t, _, _, s = heapq.heappop(self._pending)
            self.accounted += 1
            sensor = self.site.sensor(s.event.sensor)
            assert sensor is not None  # checked on ingest
            tl = self.timelines[sensor.space]
            if tl.accrued is not None and t < tl.accrued:
                # Already logged: the replay below accrues it in its place.
                self.counters["late"] += 1
                late[sensor.space] = min(t, late.get(sensor.space, t))
                continue
            tl.apply(sensor.id, s.event, t, self.hours)
        for space_id, since in late.items():
            self._reaccrue(space_id, since)
        for tl in self.timelines.values():
            tl.advance(watermark, self.hours)
        for space in self.live.values():
            if space.evaluate(now):
                self.changed_spaces.add(space.id)

    def _reaccrue(self, space_id: str, since: float) -> None:
        """Accrue the space again from the slot holding ``since`` up to where it had got."""
        tl = self.timelines[space_id]
        end = tl.accrued
        assert end is not None
        start = slot(since)
        events = self.log.events(space_id, start - self._heartbeat[space_id], end)
        fresh = Timeline(SpaceState(space_id, _sensors_of(self.site, space_id)))
        for t, s in events:
            if t < start:
                fresh.space.sensors[s.event.sensor].update(s.event, t)
        fresh.advance(start, self.hours)  # the state at the slot's start
        for t, s in events:
            if t >= start:
                fresh.apply(s.event.sensor, s.event, t, self.hours)
        fresh.advance(end, self.hours)
        for k in [k for k in tl.buckets if k >= start]:
            del tl.buckets[k]
        tl.buckets.update(fresh.buckets)
        tl.space = fresh.space
        self.counters["reaccrued"] += 1

    # ---------------------------------------------------------------------------------- output

    def buckets(self) -> list[Bucket]:
        """Every bucket held in memory: the open ones and those closed since :meth:`forget_closed`."""
        return [b for tl in self.timelines.values() for b in tl.buckets.values()]

    def forget_closed(self) -> None:
        """Drop buckets that can no longer change; call once they are committed."""
        for tl in self.timelines.values():
            if tl.accrued is not None:
                for start in [k for k in tl.buckets if k + BUCKET_SECONDS <= tl.accrued]:
                    del tl.buckets[start]

    def take_changes(self) -> tuple[list[SpaceState], list[SensorState]]:
        spaces = [self.live[i] for i in sorted(self.changed_spaces)]
        sensors = []
        for sid in sorted(self.changed_sensors):
            sensor = self.site.sensor(sid)
            if sensor is not None:
                sensors.append(self.live[sensor.space].sensors[sid])
        self.changed_spaces.clear()
        self.changed_sensors.clear()
        return spaces, sensors

    @property
    def pending(self) -> int:
        return len(self._pending)

    # ------------------------------------------------------------------------------ checkpoint

    def checkpoint(self) -> dict[str, Any]:
        return {
            "v": CHECKPOINT_VERSION,
            "site": self.site.id,
            "trackers": {g: t.to_dict() for g, t in self.trackers.items()},
            "live": {k: v.to_dict() for k, v in self.live.items()},
            "timelines": {
                k: {
                    "accrued": tl.accrued,
                    "space": tl.space.to_dict(),
                    "buckets": [list(b.as_tuple()[1:]) for b in tl.buckets.values()],
                }
                for k, tl in self.timelines.items()
            },
            # Events still inside the lateness window are not copied here: they are in the event
            # log, and restore() takes back those newer than what each space has accrued.
            "counters": dict(self.counters),
        }

    def restore(self, doc: dict[str, Any]) -> None:
        if doc.get("v") != CHECKPOINT_VERSION or doc.get("site") != self.site.id:
            raise ValueError(
                f"checkpoint is for site {doc.get('site')!r} version {doc.get('v')!r}, "
                f"not site {self.site.id!r} version {CHECKPOINT_VERSION}"
            )
        self.trackers = {g: SeqTracker.from_dict(d) for g, d in doc["trackers"].items()}
        for k, d in doc["live"].items():
            if k in self.live:
                self.live[k].load(d)
        for k, d in doc["timelines"].items():
            tl = self.timelines.get(k)
            if tl is None:
                continue  # a space removed from the site file since
            tl.accrued = d["accrued"]
            tl.space.load(d["space"])
            tl.buckets = {row[0]: Bucket(k, *row) for row in d["buckets"]}
        self._pending = []
        for k, tl in self.timelines.items():
            after = tl.accrued if tl.accrued is not None else float("-inf")
            for t, s in self.log.events(k, after if after != float("-inf") else 0.0, float("inf")):
                if t > after:
                    heapq.heappush(self._pending, (t, s.gateway, s.seq, s))
        self.counters = Counter(doc.get("counters", {}))
