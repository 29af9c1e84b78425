"""The stores' benchmarks (``tila bench --only store``): utilisation over a year × 500 spaces.

A synthetic site of 500 desks in 10 zones, open weekdays 07–20 (Europe/Helsinki, Finnish public
holidays), and a year of 15-minute buckets for its open slots only (about 6.5M rows), written
through ``write_buckets`` in the aggregator flusher's batches to the embedded SQLite store and to a
real InfluxDB 1.x (``influxd`` started here on free loopback ports). Then the analyst's query as
the API answers it: ``store.buckets(...)`` and ``metrics.utilisation(...)``, the whole year by zone
(``interval="total"``) and day by day (``interval="1d"``), timed together, beside the metrics
arithmetic alone on the same buckets already in columns (the floor any store adds to).

InfluxDB takes its writes for at most ``INFLUX_WRITE_BUDGET_S`` (days in time order, all spaces
each): when the year does not fit, its figures cover the days written, and say so.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..aggregator.bench import site_toml
from ..aggregator.buckets import BUCKET_SECONDS, Bucket
from ..aggregator.calendar import Calendar
from ..aggregator.metrics import Columns, utilisation
from ..bench import Context, Row, UnavailableError, free_port
from ..sensors.site import Site, load_site
from . import Store, parse_store_url
from .influx import InfluxStore
from .sqlite import SqliteStore

log = logging.getLogger(__name__)

SPACES = 500
ZONES = 10
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
#: A whole past year, so the figures do not depend on the day of the run.
YEAR = 2025
#: Rows per ``write_buckets`` call: what the aggregator's flusher hands a store at most.
WRITE_ROWS = 5000
#: Seconds of InfluxDB writes at most; the rest of the year is left out (and the note says so).
INFLUX_WRITE_BUDGET_S = 60.0
#: The queries: (key suffix, interval, group).
QUERIES = (("total", "total", "zone"), ("1d", "1d", "zone"))

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


def run(ctx: Context) -> Iterator[Row]:
    spaces = ctx.size(SPACES, 50)
    site_file = ctx.workdir / "site.toml"
    site_file.write_text(site_toml(spaces, zones=ZONES, hours="07:00-20:00", days=WEEKDAYS))
    site = load_site(site_file)
    tz = site.tz
    start = datetime(YEAR, 1, 1, tzinfo=tz)
    end = datetime(YEAR + 1, 1, 1, tzinfo=tz) if not ctx.quick else datetime(YEAR, 2, 1, tzinfo=tz)
    data = Year.of(site, start, end)
    span = "a year" if not ctx.quick else "a month"
    size = f"{data.rows:,} rows: {span} × {spaces} desks, open slots only (weekdays 07–20)"
    log.info("store: %s", size)

    floor = {key: _metrics_alone(site, data, start, end, interval, group) for key, interval, group in QUERIES}
    for key, interval, group in QUERIES:
        yield Row(
            f"metrics_alone_{key}",
            f"utilisation arithmetic alone, {interval} by {group}",
            floor[key],
            "s",
            note=f"{size}; buckets already in numpy columns (no store, no Bucket objects), best of 3",
        )
    ctx.check()

    sqlite = SqliteStore(ctx.workdir / "tila.db")
    try:
        yield from _measure(ctx, "sqlite", "SQLite", sqlite, site, data, start, end, floor, budget=None)
    finally:
        sqlite.close()
    ctx.check()

    try:
        with Influxd(ctx.workdir / "influxd") as server:
            store = InfluxStore(parse_store_url(server.url("tila")))
            yield from _measure(
                ctx, "influx", server.version, store, site, data, start, end, floor, INFLUX_WRITE_BUDGET_S
            )
    except UnavailableError as exc:
        for key, interval, _ in QUERIES:
            yield Row(
                f"query_influx_{key}",
                f"InfluxDB query, interval={interval}",
                None,
                "s",
                note=f"skipped: {exc}",
            )


# ------------------------------------------------------------------------------------------ data


@dataclass(slots=True, frozen=True)
class Year:
    """Synthetic buckets of every open slot × space of a window, as columns, slot-major."""

    site: Site
    spaces: list[str]
    a: int
    #: Window slot index and open seconds of each open slot.
    slots: Ints
    open_s: Floats
    #: One value per (open slot, space), slot-major.
    occupied_s: Floats
    covered_s: Floats
    peak: Ints

    @classmethod
    def of(cls, site: Site, start: datetime, end: datetime) -> Year:
        a, b = int(start.timestamp()), int(end.timestamp())
        cal = Calendar.of(site, a, b)
        slots = np.flatnonzero(cal.open_s > 0).astype(np.int64)
        open_s = cal.open_s[slots]
        n = len(slots) * len(site.spaces)
        rng = np.random.default_rng(1)
        # Half the slots of a desk empty, the rest occupied for part of the slot; coverage mostly full.
        busy = rng.random(n) < 0.5
        occupied = np.where(busy, np.round(rng.random(n) * np.repeat(open_s, len(site.spaces)), 3), 0.0)
        covered = np.repeat(open_s, len(site.spaces))
        covered = np.where(rng.random(n) < 0.02, covered / 2, covered)
        occupied = np.minimum(occupied, covered)
        return cls(
            site,
            [s.id for s in site.spaces],
            a,
            slots,
            open_s,
            occupied,
            covered,
            (occupied > 0).astype(np.int64),
        )

    @property
    def rows(self) -> int:
        return len(self.occupied_s)

    def columns(self, upto: int | None = None) -> Columns:
        """The first ``upto`` rows as metrics columns (space index, window slot index)."""
        n = self.rows if upto is None else upto
        s = len(self.spaces)
        index = np.arange(n, dtype=np.int64)
        occupied = self.occupied_s[:n]
        return Columns(
            index % s,
            self.slots[index // s],
            occupied,
            self.covered_s[:n],
            occupied.copy(),  # a desk holds one person while occupied
            self.peak[:n].astype(np.float64),
        )

    def chunks(self, rows: int) -> Iterator[tuple[int, list[Bucket]]]:
        """(rows so far, Bucket rows) in time order, ``rows`` at a time, as the flusher writes them."""
        s = len(self.spaces)
        index = np.arange(self.rows, dtype=np.int64)
        for lo in range(0, self.rows, rows):
            hi = min(self.rows, lo + rows)
            space = (index[lo:hi] % s).tolist()
            start = (self.a + self.slots[index[lo:hi] // s] * BUCKET_SECONDS).tolist()
            occ, cov = self.occupied_s[lo:hi].tolist(), self.covered_s[lo:hi].tolist()
            peak = self.peak[lo:hi].tolist()
            names = self.spaces
            yield (
                hi,
                [
                    Bucket(names[i], t, o, c, o, p)
                    for i, t, o, c, p in zip(space, start, occ, cov, peak, strict=True)
                ],
            )

    def end_of(self, rows: int) -> int:
        """The end (epoch seconds) of the slot holding the last of the first ``rows`` rows."""
        return int(self.a + (self.slots[(rows - 1) // len(self.spaces)] + 1) * BUCKET_SECONDS)


def _best(fn: Callable[[], Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _metrics_alone(
    site: Site, data: Year, start: datetime, end: datetime, interval: str, group: str, rows: int | None = None
) -> float:
    """Seconds the arithmetic takes on the first ``rows`` rows (those of [start, end)), best of 3."""
    cols = data.columns(rows)
    spaces = data.spaces
    return _best(lambda: utilisation(site, cols, start, end, spaces, interval=interval, group=group))


# ---------------------------------------------------------------------------------------- stores


def _measure(
    ctx: Context,
    key: str,
    name: str,
    store: Store,
    site: Site,
    data: Year,
    start: datetime,
    end: datetime,
    floor: dict[str, float],
    budget: float | None,
) -> Iterator[Row]:
    log.info(
        "store: writing %d rows to %s%s", data.rows, name, f" (at most {budget:.0f} s)" if budget else ""
    )
    written = 0
    seconds = 0.0
    for i, (upto, rows) in enumerate(data.chunks(WRITE_ROWS)):
        t0 = time.perf_counter()
        store.write_buckets(rows)
        seconds += time.perf_counter() - t0
        written = upto
        if i % 20 == 0:
            ctx.check()
        if budget is not None and seconds >= budget and upto < data.rows:
            # Out of time: the query window below ends at the midnight before the last row written.
            break
    cut = written < data.rows
    q_end = end
    if cut:
        q_end = datetime.fromtimestamp(data.end_of(written), site.tz)
        q_end = q_end.replace(hour=0, minute=0, second=0, microsecond=0)
        # The rows of the cut day are left out of the query window.
        kept = int(np.searchsorted(data.slots, (int(q_end.timestamp()) - data.a) // BUCKET_SECONDS))
        kept *= len(data.spaces)
        window = f"{start:%Y-%m-%d} to {q_end:%Y-%m-%d} ({kept:,} rows, the whole days {budget:g} s of writes took)"
    else:
        kept = data.rows
        window = f"{start:%Y-%m-%d} to {end:%Y-%m-%d} ({kept:,} rows)"
    yield Row(
        f"write_{key}",
        f"{name}: write_buckets, {WRITE_ROWS:,} rows a call",
        written / seconds,
        "rows/s",
        note=f"{written:,} rows in {seconds:.1f} s"
        + (f"; stopped at the {budget:g} s budget, of the window's {data.rows:,} rows" if cut else ""),
    )
    spaces = data.spaces
    for qkey, interval, group in QUERIES:
        ctx.check()
        if cut:
            base = _metrics_alone(site, data, start, q_end, interval, group, kept)
            base_fig = "the arithmetic alone on the same window, buckets in numpy columns"
        else:
            base, base_fig = floor[qkey], "the arithmetic alone, buckets in numpy columns (metrics_alone)"
        t0 = time.perf_counter()
        rows = store.buckets(start, q_end, spaces)
        t1 = time.perf_counter()
        out = utilisation(site, rows, start, q_end, spaces, interval=interval, group=group)
        t2 = time.perf_counter()
        if len(rows) != kept:
            raise RuntimeError(f"{name} returned {len(rows):,} rows, not the {kept:,} written")
        yield Row(
            f"query_{key}_{qkey}",
            f"{name}: utilisation, {interval} by {group}",
            t2 - t0,
            "s",
            base,
            base_fig,
            f"{window}; store.buckets {t1 - t0:.1f} s ({kept / (t1 - t0):,.0f} rows/s), utilisation()"
            f" {t2 - t1:.1f} s (Bucket objects to columns, then the arithmetic); {len(out):,} rows answered",
        )
        del rows


# --------------------------------------------------------------------------------------- influxd

INFLUXD_PATHS = ("/usr/bin/influxd", "/usr/local/bin/influxd", "/opt/homebrew/bin/influxd")


class Influxd:
    """An InfluxDB 1.x ``influxd`` on free loopback ports with its data under ``workdir``, stopped
    on exit; UnavailableError when it is not installed (Debian: ``apt install influxdb``)."""

    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("influxd") or next((p for p in INFLUXD_PATHS if os.access(p, os.X_OK)), None)
        if exe is None:
            raise UnavailableError("influxd is not installed (apt install influxdb)")
        self.exe = exe
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        # The RPC service (backup/restore) listens too, by default on 8088: keep it off shared ports.
        rpc = free_port()
        self.log = self.dir / "influxd.log"
        self.conf = self.dir / "influxdb.conf"
        self.conf.write_text(
            "\n".join(
                [
                    "reporting-enabled = false",
                    f'bind-address = "127.0.0.1:{rpc}"',
                    "[meta]",
                    f'  dir = "{self.dir}/meta"',
                    "  logging-enabled = false",
                    "[data]",
                    f'  dir = "{self.dir}/data"',
                    f'  wal-dir = "{self.dir}/wal"',
                    "  query-log-enabled = false",
                    "[monitor]",
                    "  store-enabled = false",
                    "[http]",
                    "  enabled = true",
                    f'  bind-address = "127.0.0.1:{self.port}"',
                    "  auth-enabled = false",
                    "  log-enabled = false",
                    "  pprof-enabled = false",
                    "[continuous_queries]",
                    "  enabled = false",
                    "[subscriber]",
                    "  enabled = false",
                    "[logging]",
                    '  level = "warn"',
                    "  suppress-logo = true",
                ]
            )
            + "\n"
        )
        out = subprocess.run([exe, "version"], capture_output=True, text=True, timeout=10, check=False)
        words = out.stdout.split()
        self.version = f"InfluxDB {words[1].split('~')[0].lstrip('v')}" if len(words) > 1 else "InfluxDB"
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        return f"influxdb://127.0.0.1:{self.port}/{database}"

    def _ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=1) as r:
                return bool(r.status == 204)
        except (OSError, urllib.error.URLError):
            return False

    def __enter__(self) -> Influxd:
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                [self.exe, "-config", str(self.conf)], stdout=fh, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"influxd exited with {self.proc.returncode}: {self._tail()}")
            if self._ping():
                return self
            time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"influxd did not answer /ping within 30 s: {self._tail()}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def _tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-800:].strip() or "(no output)"
