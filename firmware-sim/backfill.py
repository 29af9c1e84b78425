"""History backfill: months of the simulated site's past, written straight into a store.

:func:`backfill` writes the site's 15-minute buckets for the local days ``start <= day < end`` as
the live pipeline would have written them, had the simulated devices been running then. Nothing
goes over MQTT; the same code that computes live buckets computes these:

1. the behaviour model (:mod:`.behaviour`) plans who is where each day: the weekly rhythm, the
   Törmäämö breakfasts, workshop days, the summer dip, the quiet Christmas week, public holidays
   closed, and now and then a sensor out for some hours (:meth:`Behaviour.outages`);
2. the device models (:mod:`.devices`) turn that into what each sensor sends, in simulated time:
   the Aqara PIR's detections, blind time, Zigbee2MQTT's 90 s occupancy timeout and heartbeats,
   the VS121's reports on change and every 10 minutes, their short outages; during a planned
   outage a sensor sends nothing (a Zigbee device is reported ``offline`` and comes back with a
   ``rejoin`` state);
3. each reading becomes the canonical events (:mod:`tila.sensors.events`) its format's decoder
   makes of the message (:func:`canonical_events`; a test checks them against the real decoders);
4. the aggregator's own accounting takes them: the per-space timelines of an
   :class:`tila.aggregator.core.Aggregator` (``Timeline.apply`` and ``advance``, and through them
   ``buckets.accrue``), fed in event-time order as ``Aggregator.tick`` feeds them once events are
   past its lateness window. What ``ingest`` and ``tick`` add around that (dedup, the live view,
   the lateness heap) writes no buckets and is skipped: it took half the time, and a test checks
   that the rows are identical to those of a whole ``Aggregator`` taking the same events through
   ``ingest`` and ``tick``. The buckets go to the store (``write_buckets`` replaces rows, so a
   re-run gives the same rows).

Missing data stays missing: while a sensor is offline or silent past its format's heartbeat, its
space is ``unknown`` and its buckets get no coverage for that time, never vacancy.

Each day is simulated on its own, from local midnight to the next, with devices and an aggregator
that start at midnight (seeded from ``(seed, day)``): a day's rows depend only on the site, the seed
and the day, whatever range a run covers, so the demo's daily backfill of recent weeks rewrites the
same rows, and memory stays flat however long the range. Days without opening hours (weekends,
public holidays, closed dates) accrue nothing and are not simulated. Each simulated day is one
write to the store; ``stop`` ends a run between days, so every written day is complete.

Speed: about 7 million events a year for the bundled site, some 55 CPU seconds; a long range is
shared out, day by day, over worker processes (one per CPU, at most :data:`MAX_WORKERS`), and the
rows are the same either way, written in day order by the calling process (``tila bench --only
backfill``).
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from tila.aggregator.buckets import Bucket
from tila.aggregator.core import Aggregator
from tila.sensors.events import Availability, Count, Event, LinkQuality, Presence, Stamped
from tila.sensors.events import Battery as BatteryEvent
from tila.sensors.site import Site
from tila.store import Store

from .behaviour import Behaviour, Outage
from .devices import LoraUplink, Reading, ZigbeeAvailability, ZigbeeState, readings

log = logging.getLogger(__name__)

#: At most this many worker processes (the work is CPU-bound: more than the CPUs would not help).
MAX_WORKERS = 4
#: Fewer open days than this are simulated in the calling process: starting workers (a fresh
#: interpreter importing tila, ~0.5 s each) costs more than a few days take.
PARALLEL_MIN_DAYS = 12


@dataclass(slots=True, frozen=True)
class DayResult:
    """One simulated local day: its bucket rows and what it took to make them."""

    day: date
    buckets: list[Bucket]
    #: Device messages (readings) simulated.
    readings: int
    #: Canonical events the aggregator took in.
    events: int


@dataclass(slots=True, frozen=True)
class BackfillResult:
    #: Local days covered (written, or closed and skipped), from ``start`` on.
    days: int
    #: Canonical sensor events processed (simulated device messages decode to one or more each).
    events: int
    #: Bucket rows written.
    buckets: int
    #: Wall-clock seconds the run took.
    seconds: float
    #: Device messages simulated.
    readings: int = 0
    #: Days with opening hours, simulated and written.
    open_days: int = 0
    #: True when ``stop`` ended the run before ``end``.
    stopped: bool = False

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return (
            f"{self.days} days ({self.open_days} open), {self.events} events, {self.buckets} rows in "
            f"{self.seconds:.1f} s ({self.events_per_second:,.0f} events/s)"
            + (", stopped early" if self.stopped else "")
        )


def backfill(
    site: Site,
    store: Store,
    start: date,
    end: date,
    *,
    seed: int = 0,
    progress: bool = False,
    stop: threading.Event | None = None,
) -> BackfillResult:
    """Write the site's history for local days ``start <= day < end`` into ``store``.

    One write per open day. With ``stop`` set, ends after the day under way (every written day is
    complete). Raises ValueError when ``end`` is before ``start``; StoreError from the store.
    """
    if end < start:
        raise ValueError(f"backfill end {end} is before its start {start}")
    began = time.perf_counter()
    all_days = [start + timedelta(days=i) for i in range((end - start).days)]
    open_set = {d for d in all_days if site.hours_on(d)}
    workers = worker_count(len(open_set))
    days = events = rows = n_readings = open_days = 0
    bar = _bar(len(all_days), progress)
    results = (
        _in_workers(site, seed, sorted(open_set), workers, stop)
        if workers > 1
        else _in_process(site, seed, sorted(open_set), stop)
    )
    try:
        for day in all_days:
            if stop is not None and stop.is_set() and day not in open_set:
                break
            if day in open_set:
                result = next(results, None)
                if result is None:  # stopped before this day was simulated
                    break
                assert result.day == day
                if result.buckets:
                    store.write_buckets(result.buckets)
                events += result.events
                rows += len(result.buckets)
                n_readings += result.readings
                open_days += 1
            days += 1
            if bar is not None:
                bar.update(1)
                elapsed = time.perf_counter() - began
                bar.set_postfix_str(f"{events / elapsed if elapsed else 0:,.0f} events/s", refresh=False)
    finally:
        results.close()
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - began
    log.info(
        "backfilled %s from %s to %s: %d days, %d events, %d rows in %.1f s (%d process%s)",
        site.id,
        start,
        start + timedelta(days=days),
        days,
        events,
        rows,
        seconds,
        workers,
        "es" if workers > 1 else "",
    )
    return BackfillResult(days, events, rows, seconds, n_readings, open_days, days < len(all_days))


def worker_count(open_days: int) -> int:
    """How many processes simulate ``open_days`` days: one per usable CPU for a long range."""
    if open_days < PARALLEL_MIN_DAYS:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_WORKERS))


def _in_process(site: Site, seed: int, days: list[date], stop: threading.Event | None) -> Iterator[DayResult]:
    behaviour = Behaviour(site, seed)
    for day in days:
        if stop is not None and stop.is_set():
            return
        yield simulate_day(site, behaviour, day, seed=seed)


def _in_workers(
    site: Site, seed: int, days: list[date], workers: int, stop: threading.Event | None
) -> Iterator[DayResult]:
    """Days simulated in worker processes, yielded in day order; a few days ahead at most.

    Once ``stop`` is set, days not yet started are cancelled and those under way still come out
    (each is complete), so the caller writes a gap-free run of days.
    """
    # spawn, not fork: the caller may have threads (the demo, the API) that fork would copy mid-step.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init, initargs=(site, seed))
    ahead: deque[tuple[date, Future[DayResult]]] = deque()
    todo = iter(days)
    try:
        while True:
            while len(ahead) < 2 * workers and not (stop is not None and stop.is_set()):
                day = next(todo, None)
                if day is None:
                    break
                ahead.append((day, pool.submit(_worker_day, day)))
            if not ahead:
                return
            if stop is not None and stop.is_set():
                for _, f in ahead:
                    f.cancel()
            day, future = ahead.popleft()
            if future.cancelled():
                return
            try:
                result = future.result()
            except BrokenProcessPool as exc:
                # A worker died (killed, out of memory, or a script without the ``__main__`` guard
                # that spawned processes need): the rest is done here, more slowly but the same.
                log.warning("backfill workers failed (%s); simulating the rest in this process", exc)
                rest = [day, *(d for d, _ in ahead), *todo]
                ahead.clear()
                yield from _in_process(site, seed, rest, stop)
                return
            yield result
    finally:
        for _, f in ahead:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


_worker: tuple[Site, Behaviour, int] | None = None


def _worker_init(site: Site, seed: int) -> None:
    # Ctrl-C reaches the whole process group: the calling process decides when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _worker
    _worker = (site, Behaviour(site, seed), seed)


def _worker_day(day: date) -> DayResult:
    assert _worker is not None
    site, behaviour, seed = _worker
    return simulate_day(site, behaviour, day, seed=seed)


def _bar(total: int, progress: bool) -> Any:
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="day", file=sys.stderr, desc="backfill", dynamic_ncols=True)


# --------------------------------------------------------------------------------------- a day


def day_seed(seed: int, day: date) -> int:
    """The devices' seed for one day: stable across runs and Python processes (no ``hash()``)."""
    digest = hashlib.blake2b(f"{seed}:{day.isoformat()}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def local_midnight(site: Site, day: date) -> datetime:
    return datetime.combine(day, dtime(0), tzinfo=site.tz).astimezone(UTC)


def simulate_day(site: Site, behaviour: Behaviour, day: date, *, seed: int = 0) -> DayResult:
    """The buckets the live pipeline would have written for the site's local ``day``. Pure (no I/O)."""
    a = local_midnight(site, day).timestamp()
    b = local_midnight(site, day + timedelta(days=1)).timestamp()
    space_of = {s.id: s.space for s in site.sensors}
    # The aggregator's own accounting: its timelines (per space, with the sensors' heartbeats from
    # their formats) and opening hours, fed as its tick feeds them once events are past the
    # lateness window: in event-time order, each with Timeline.apply, then advanced to the end.
    agg = Aggregator(site, log=_NoLog())
    timelines, hours = agg.timelines, agg.hours
    for tl in timelines.values():
        tl.advance(a, hours)  # from midnight on; every device reports at its (simulated) start
    events = n = 0
    for r in day_readings(site, behaviour, day, seed=seed):
        t = r.at.timestamp()
        if t >= b:
            break
        tl = timelines[space_of[r.sensor]]
        for event in canonical_events(r):
            tl.apply(r.sensor, event, t, hours)
            events += 1
        n += 1
    # Every space up to the next midnight exactly: the day's buckets whole, nothing past it.
    for tl in timelines.values():
        tl.advance(b, hours)
    buckets = sorted((x for x in agg.buckets() if x.start < b), key=lambda x: (x.start, x.space))
    return DayResult(day, buckets, n, events)


def day_readings(site: Site, behaviour: Behaviour, day: date, *, seed: int = 0) -> Iterator[Reading]:
    """Every device message of the site's local ``day`` (from its midnight on), planned outages applied."""
    a = local_midnight(site, day)
    stream = readings(site, behaviour, a, seed=day_seed(seed, day))
    outages = behaviour.outages(day)
    return with_outages(stream, site, behaviour, outages) if outages else stream


def with_outages(
    stream: Iterable[Reading], site: Site, behaviour: Behaviour, outages: Iterable[Outage]
) -> Iterator[Reading]:
    """``stream`` with each outage's sensor silent from its start to its end.

    A Zigbee2MQTT device is reported ``offline`` at the start and, at the end, ``online`` with its
    state (``rejoin``: whether someone is there then); a LoRaWAN counter just falls silent until its
    next report (the aggregator's heartbeat makes its space unknown meanwhile).
    """
    by_sensor: dict[str, list[Outage]] = {}
    marks: list[tuple[datetime, int, str, bool]] = []
    for i, o in enumerate(sorted(outages, key=lambda o: (o.start, o.sensor))):
        sensor = site.sensor(o.sensor)
        if sensor is None:
            continue
        by_sensor.setdefault(o.sensor, []).append(o)
        if sensor.format == "zigbee2mqtt":
            marks.append((o.start, 2 * i, o.sensor, False))
            marks.append((o.end, 2 * i + 1, o.sensor, True))
    heapq.heapify(marks)
    last: dict[str, ZigbeeState] = {}

    def mark(at: datetime, sensor_id: str, online: bool) -> Iterator[Reading]:
        sensor = site.sensor(sensor_id)
        assert sensor is not None
        yield ZigbeeAvailability(at, sensor_id, sensor.space, online)
        if online:
            prev = last.get(sensor_id)
            occupied = behaviour.count_at(sensor.space, at) > 0
            battery, voltage, lqi = (
                (prev.battery, prev.voltage, prev.linkquality) if prev else (100, 3100, 120)
            )
            yield ZigbeeState(at, sensor_id, sensor.space, occupied, battery, voltage, lqi, "rejoin")

    for r in stream:
        while marks and marks[0][0] <= r.at:
            at, _, sensor_id, online = heapq.heappop(marks)
            yield from mark(at, sensor_id, online)
        if any(o.start <= r.at < o.end for o in by_sensor.get(r.sensor, ())):
            continue
        if isinstance(r, ZigbeeState):
            last[r.sensor] = r
        yield r
    while marks:
        at, _, sensor_id, online = heapq.heappop(marks)
        yield from mark(at, sensor_id, online)


def canonical_events(r: Reading) -> tuple[Event, ...]:
    """The canonical events the gateway's decoder makes of the message ``r`` is published as.

    The messages are rendered with ``last_seen``/``time`` the reading's own time (in the past, the
    wall clock of publication was the simulated one). tests/test_backfill.py checks these against
    :mod:`.payloads` and the real decoders.
    """
    if type(r) is ZigbeeState:
        return (
            Presence(r.sensor, r.at, r.occupancy),
            BatteryEvent(r.sensor, r.at, float(r.battery)),
            LinkQuality(r.sensor, r.at, r.linkquality),
        )
    if type(r) is LoraUplink:
        return (Count(r.sensor, r.at, min(r.count, 255)),)
    if type(r) is ZigbeeAvailability:
        return (Availability(r.sensor, r.at, r.online),)
    raise TypeError(f"no canonical events for {type(r).__name__}")


class _NoLog:
    """The aggregator's event log, unused: events come in order, so nothing is ever re-accrued."""

    def log(self, space: str, t: float, s: Stamped) -> None:
        pass

    def events(self, space: str, start: float, end: float) -> list[tuple[float, Stamped]]:
        return []
