"""Making the report: read the store, compute, draw, write. Each step is its own function so the
benchmark can time them apart and the command can show its progress.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..aggregator.buckets import Bucket
from ..aggregator.metrics import Columns
from ..sensors.site import Site
from ..store import Store, StoreError, StoreUrl, open_store
from .analysis import Analysis, Period, ReportError, analyse
from .html import render
from .tables import CSV_DIR, NAMES, tables

log = logging.getLogger(__name__)

HTML_NAME = "report.html"


def open_report_store(url: StoreUrl) -> Store:
    """The store to read; an SQLite file must exist already (a report never creates an empty one)."""
    if url.kind == "sqlite" and not Path(url.path).is_file():
        raise ReportError(f"no SQLite store at {url.path}")
    try:
        store = open_store(url)
    except StoreError as exc:
        raise ReportError(f"cannot open the store {url}: {exc}") from exc
    return store


def load(store: Store, site: Site, period: Period) -> tuple[Columns, list[Bucket]]:
    """Every bucket of the site's spaces in the period, as columns in site order (and as read)."""
    a, b = period.slots()
    ids = [s.id for s in site.spaces]
    try:
        buckets = store.buckets(datetime.fromtimestamp(a, UTC), datetime.fromtimestamp(b, UTC), ids)
    except StoreError as exc:
        raise ReportError(f"cannot read the store: {exc}") from exc
    if not buckets:
        raise ReportError(f"the store holds no data for {site.id} from {period.first} to {period.last}")
    return Columns.of(buckets, ids, a, b), buckets


def chart_jobs(an: Analysis) -> list[tuple[str, Callable[[Analysis, str], str]]]:
    """The charts to draw, by name, in page order."""
    from . import charts  # matplotlib: imported only when a report is drawn, not for --help or errors

    jobs: list[tuple[str, Callable[[Analysis, str], str]]] = [("headline", charts.headline)]
    for row in an.kinds:
        kind = row["kind"]
        # U differs from F only where a space seats more than one.
        metrics = ("frequency", "utilisation") if row["seats"] > row["spaces"] else ("frequency",)
        for metric in metrics:
            jobs.append(
                (f"heatmap_{kind}_{metric}", lambda a, lang, k=kind, m=metric: charts.heatmap(a, lang, k, m))
            )
    jobs += [("trend_week", charts.trends_weeks), ("trend_month", charts.trends_months)]
    if an.rooms:
        jobs.append(("rooms", charts.rooms))
    if an.event_days:
        jobs.append(("events", charts.events))
    jobs.append(("coverage", charts.coverage))
    if an.bookings is not None and an.bookings.rooms():
        jobs.append(("bookings", charts.bookings))
    return jobs


def draw(an: Analysis, lang: str, tick: Callable[[], None] = lambda: None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, job in chart_jobs(an):
        out[name] = job(an, lang)
        tick()
    return out


def _replace(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write(out: Path, an: Analysis, drawn: dict[str, str], lang: str) -> Path:
    """report.html and csv/*.csv in ``out`` (created); other files there are left alone."""
    from .. import __version__

    data = tables(an)
    html = render(an, lang, drawn, data, __version__)
    try:
        (out / CSV_DIR).mkdir(parents=True, exist_ok=True)
        for table in data.values():
            _replace(out / table.href, table.to_csv())
        for name in NAMES:
            stale = out / CSV_DIR / f"{name}.csv"
            if name not in data and stale.is_file():
                stale.unlink()
        path = out / HTML_NAME
        _replace(path, html)
    except OSError as exc:
        raise ReportError(f"cannot write the report into {out}: {exc.strerror or exc}") from exc
    return path


@dataclass(slots=True)
class Timings:
    """Seconds spent in each step of one report."""

    read: float = 0.0
    compute: float = 0.0
    charts: float = 0.0
    write: float = 0.0
    rows: int = 0

    @property
    def total(self) -> float:
        return self.read + self.compute + self.charts + self.write


class _Steps:
    """A progress bar on stderr (only when it is a terminal) over the report's steps."""

    def __init__(self, show: bool, stop: threading.Event | None = None) -> None:
        self.bar: Any = None
        self.stop = stop
        if show:
            from tqdm import tqdm

            self.bar = tqdm(total=4, unit="step", leave=False, dynamic_ncols=True)

    def step(self, what: str) -> None:
        if self.stop is not None and self.stop.is_set():
            raise StoppedError
        if self.bar is not None:
            self.bar.set_description(what)

    def add(self, n: int) -> None:
        if self.bar is not None:
            self.bar.total += n
            self.bar.refresh()

    def tick(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass(slots=True)
class Request:
    site: Site
    period: Period
    out: Path
    lang: str = "fi"
    #: A loaded bookings section (see :mod:`tila.report.bookings`), or None.
    bookings: Any = None


class StoppedError(Exception):
    """SIGTERM or SIGINT arrived before the report was written (nothing was)."""


def make_report(
    req: Request,
    store: Store,
    *,
    progress: bool = False,
    timings: Timings | None = None,
    stop: threading.Event | None = None,
) -> Path:
    """Read, compute, draw and write one report; returns the HTML file's path.

    With ``stop`` set between steps, raises :class:`StoppedError` before anything is written.
    """
    steps = _Steps(progress, stop)
    tm = timings if timings is not None else Timings()
    try:
        _run(req, store, steps, tm)
    finally:
        steps.close()
    log.info(
        "report: %d rows read in %.2f s, computed in %.2f s, charts %.2f s, written %.2f s",
        tm.rows,
        tm.read,
        tm.compute,
        tm.charts,
        tm.write,
    )
    return req.out / HTML_NAME


def _run(req: Request, store: Store, steps: _Steps, tm: Timings) -> None:
    clock = time.perf_counter
    req.period.check_open()
    steps.step("store")
    t0 = clock()
    cols, buckets = load(store, req.site, req.period)
    tm.read, tm.rows = clock() - t0, len(cols.space)
    steps.tick()
    steps.step("figures")
    t0 = clock()
    an = analyse(req.site, cols, req.period)
    if req.bookings is not None:
        an.bookings = req.bookings.analyse(an, buckets)
    tm.compute = clock() - t0
    steps.tick()
    steps.step("charts")
    steps.add(len(chart_jobs(an)) - 1)
    t0 = clock()
    drawn = draw(an, req.lang, steps.tick)
    tm.charts = clock() - t0
    steps.step("write")
    t0 = clock()
    write(req.out, an, drawn, req.lang)
    tm.write = clock() - t0
    steps.tick()
