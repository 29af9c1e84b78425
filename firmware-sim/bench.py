"""The history backfill's benchmarks (``tila bench --only backfill``).

A year of the bundled Work 2.0 Lab (2025, seed 0) written by ``tila sim --backfill`` as its own
process into SQLite, then into a real InfluxDB 1.x (``influxd`` on free loopback ports, when it
is installed): events/s, days/s, rows written, the seconds against the target (a year in well
under 3 minutes), and the peak resident set of the process and its workers. Beside them, measured
in the same run: the same simulation in this one process with no store (what the worker
processes gain), that against the same events taken through a whole ``Aggregator`` (``ingest``
and ``tick``, as ``tila aggregator`` takes them: what feeding its timelines directly gains), and
SQLite against InfluxDB. ``--quick`` writes one March week instead.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from tila.aggregator.core import Aggregator
from tila.bench import Context, Row, StoppedError, UnavailableError
from tila.sensors.events import Stamped
from tila.sensors.site import Site, bundled_site_path, load_site
from tila.store.bench import Influxd

from .backfill import canonical_events, day_readings, local_midnight, simulate_day
from .behaviour import Behaviour

log = logging.getLogger(__name__)

#: A whole past year, so the figures do not depend on the day of the run.
YEAR = 2025
#: The quick run: an ordinary week of March (five open days).
QUICK_FIRST = date(2025, 3, 10)
#: The target for a year of the bundled site, in seconds.
TARGET_YEAR_S = 180.0
#: Open days the one-process baseline simulates (a full working week shows the weekly rhythm).
BASELINE_DAYS = (5, 2)

_SUMMARY = re.compile(r"(\d+) days \((\d+) open\), (\d+) events, (\d+) rows in ([\d.]+) s")


@dataclass(slots=True, frozen=True)
class Run:
    days: int
    open_days: int
    events: int
    rows: int
    seconds: float
    rss_mib: float
    cpu_s: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def days_per_s(self) -> float:
        return self.days / self.seconds


def run(ctx: Context) -> Iterator[Row]:
    site = load_site(bundled_site_path())
    first, days = (QUICK_FIRST, 7) if ctx.quick else (date(YEAR, 1, 1), 365)
    span = f"{first}..{first + timedelta(days=days - 1)}"
    what = "a week" if ctx.quick else "a year"

    one = _one_process(site, ctx.size(*BASELINE_DAYS))
    ctx.check()
    whole = _whole_aggregator(site, ctx.size(*BASELINE_DAYS))
    yield Row(
        "backfill_one_process_events",
        "backfill's simulation in one process, no store",
        one,
        "events/s",
        baseline=whole,
        baseline_figure="the same events through Aggregator.ingest and tick (no MQTT, no journal)",
        note=f"{ctx.size(*BASELINE_DAYS)} open days from {QUICK_FIRST}, seed 0; the same rows either way",
    )
    ctx.check()
    sqlite = _backfill(ctx, "sqlite", f"sqlite:///{ctx.workdir / 'backfill.db'}", first, days)
    note = (
        f"{span}: {sqlite.days} days ({sqlite.open_days} open), {sqlite.events:,} events, seed 0; "
        f"tila sim --backfill as its own process, {sqlite.cpu_s:.0f} CPU s with its workers"
    )
    yield Row(
        "backfill_sqlite_events",
        f"backfill, {what} of the bundled site into SQLite",
        sqlite.events_per_s,
        "events/s",
        baseline=one,
        baseline_figure="the same simulation in one process, no store",
        note=note,
    )
    yield Row("backfill_sqlite_days", "backfill into SQLite, days", sqlite.days_per_s, "days/s", note=span)
    yield Row(
        "backfill_sqlite_seconds",
        f"backfill, {what} into SQLite",
        sqlite.seconds,
        "s",
        baseline=TARGET_YEAR_S * days / 365,
        baseline_figure="the target: a year in 3 minutes" + (", pro rata" if days != 365 else ""),
        note=note,
    )
    yield Row(
        "backfill_sqlite_cpu",
        f"backfill, {what} into SQLite, CPU time of the process and its workers",
        sqlite.cpu_s,
        "s",
        baseline=TARGET_YEAR_S * days / 365,
        baseline_figure="the target's wall-clock time" + (", pro rata" if days != 365 else ""),
        note="CPU seconds do not depend on other load on the machine: the time on one idle core",
    )
    yield Row("backfill_sqlite_rows", "backfill into SQLite, rows written", sqlite.rows, "rows", note=span)
    yield Row(
        "backfill_sqlite_rss",
        "backfill into SQLite, peak RSS",
        sqlite.rss_mib,
        "MiB",
        note="the largest of the process and its worker processes (rusage of the reaped tree)",
    )
    ctx.check()

    try:
        with Influxd(ctx.workdir / "influxd") as server:
            influx = _backfill(ctx, "influx", server.url("tila"), first, days)
            version = server.version
    except UnavailableError as exc:
        for key, figure, unit in (
            ("events", "backfill into InfluxDB", "events/s"),
            ("days", "backfill into InfluxDB, days", "days/s"),
            ("rows", "backfill into InfluxDB, rows written", "rows"),
            ("rss", "backfill into InfluxDB, peak RSS", "MiB"),
        ):
            yield Row(f"backfill_influx_{key}", figure, None, unit, note=f"skipped: {exc}")
        return
    yield Row(
        "backfill_influx_events",
        f"backfill, {what} of the bundled site into {version}",
        influx.events_per_s,
        "events/s",
        baseline=sqlite.events_per_s,
        baseline_figure="the same into SQLite",
        note=f"{span}; {influx.seconds:.1f} s, {influx.cpu_s:.0f} CPU s with its workers",
    )
    yield Row(
        "backfill_influx_days",
        f"backfill into {version}, days",
        influx.days_per_s,
        "days/s",
        baseline=sqlite.days_per_s,
        baseline_figure="the same into SQLite",
        note=span,
    )
    yield Row(
        "backfill_influx_rows", f"backfill into {version}, rows written", influx.rows, "rows", note=span
    )
    yield Row(
        "backfill_influx_rss",
        f"backfill into {version}, peak RSS",
        influx.rss_mib,
        "MiB",
        baseline=sqlite.rss_mib,
        baseline_figure="the same into SQLite",
    )


def _one_process(site: Site, open_days: int) -> float:
    """Events/s of the simulation and the aggregator's core alone, in this process, no store."""
    behaviour = Behaviour(site, 0)
    day, done, events = QUICK_FIRST, 0, 0
    began = time.perf_counter()
    while done < open_days:
        if site.hours_on(day):
            events += simulate_day(site, behaviour, day, seed=0).events
            done += 1
        day += timedelta(days=1)
    return events / (time.perf_counter() - began)


def _whole_aggregator(site: Site, open_days: int) -> float:
    """Events/s of the same days' events through a whole Aggregator, as ``tila aggregator`` takes
    them once decoded: stamped by one gateway, ``ingest``, ``tick`` every 100 messages."""
    behaviour = Behaviour(site, 0)
    day, done, events = QUICK_FIRST, 0, 0
    began = time.perf_counter()
    while done < open_days:
        if site.hours_on(day):
            end = local_midnight(site, day + timedelta(days=1))
            agg = Aggregator(site)
            for n, r in enumerate(day_readings(site, behaviour, day, seed=0), 1):
                if r.at >= end:
                    break
                sensor = site.sensor(r.sensor)
                assert sensor is not None
                now = r.at.timestamp()
                for event in canonical_events(r):
                    events += 1
                    agg.ingest(Stamped("bench", events, r.at, sensor.space, event), now)
                if n % 100 == 0:
                    agg.tick(now)
            agg.tick(end.timestamp() + agg.lateness)
            done += 1
        day += timedelta(days=1)
    return events / (time.perf_counter() - began)


def _backfill(ctx: Context, name: str, store: str, first: date, days: int) -> Run:
    """``tila sim --backfill`` as a process; its summary line, and its tree's peak RSS and CPU."""
    end = first + timedelta(days=days)
    args = [sys.executable, "-m", "tila", "--log-level", "WARNING", "sim", "--backfill", str(days)]
    args += ["--store", store, "--end", end.isoformat(), "--seed", "0"]
    logfile = ctx.workdir / f"backfill-{name}.log"
    with open(logfile, "wb") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err)
    # wait4, not Popen.wait: its rusage holds the largest RSS of the process and the workers it reaped.
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            ctx.sleep(0.1)
    except StoppedError:
        proc.send_signal(signal.SIGTERM)  # it ends after the day under way
        os.wait4(proc.pid, 0)
        proc.returncode = -1
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.stdout is not None
    out = proc.stdout.read().decode(errors="replace")
    proc.stdout.close()
    found = _SUMMARY.search(out)
    if proc.returncode != 0 or found is None:
        tail = logfile.read_text(errors="replace")[-1500:]
        raise RuntimeError(f"tila sim --backfill into {name} exited with {proc.returncode}: {out}{tail}")
    d, o, e, r, s = found.groups()
    log.info("backfill %s: %s", name, out.strip())
    return Run(
        int(d), int(o), int(e), int(r), float(s), usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
    )
