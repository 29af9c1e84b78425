"""The report's benchmark (``tila bench --only report``): a year of the bundled site, step by step.

History comes from :func:`tila.sim.backfill.backfill` (the simulated Work 2.0 Lab, 50 spaces,
about 700k bucket rows a year) into an embedded SQLite store. Then ``tila report`` for the year,
timed in its four steps (store read, computation, charts, writing), beside the same report for the
first quarter of that year, measured in the same run: the ratio shows how each step grows with the
period (the charts hardly do; the read and the arithmetic grow with the rows).

``--quick`` uses six spaces of the site (three desks, a room, a booth, the hall) and two months
against two weeks, so the history is written in seconds.
"""

from __future__ import annotations

import logging
import time
import tomllib
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from ..bench import Context, Row
from ..sensors.site import Site, bundled_site_path, load_site, parse_site
from ..store.sqlite import SqliteStore
from .analysis import Period
from .build import HTML_NAME, Request, Timings, make_report

log = logging.getLogger(__name__)

#: A whole past year, so the figures do not depend on the day of the run.
YEAR = 2025
#: The quick run's part of the bundled site.
QUICK_SPACES = {"desk-01", "desk-02", "desk-03", "room-aalto", "booth-1", "event-hall"}
STEPS = (
    ("read", "store read (store.buckets → columns)"),
    ("compute", "computation (F, O, U, heatmaps, trends, sizing, events)"),
    ("charts", "charts (matplotlib → SVG)"),
    ("write", "writing (HTML and CSV)"),
    ("total", "the whole report"),
)


def small_site() -> Site:
    doc = tomllib.loads(bundled_site_path().read_text(encoding="utf-8"))
    doc["spaces"] = [s for s in doc["spaces"] if s["id"] in QUICK_SPACES]
    doc["sensors"] = [s for s in doc["sensors"] if s["space"] in QUICK_SPACES]
    return parse_site(doc, "work20lab (6 spaces)")


def run(ctx: Context) -> Iterator[Row]:
    from ..sim.backfill import backfill

    if ctx.quick:
        site = small_site()
        long, short = (date(YEAR, 1, 1), date(YEAR, 3, 1)), (date(YEAR, 1, 1), date(YEAR, 1, 15))
        names = ("two months", "two weeks")
    else:
        site = load_site(bundled_site_path())
        long, short = (date(YEAR, 1, 1), date(YEAR + 1, 1, 1)), (date(YEAR, 1, 1), date(YEAR, 4, 1))
        names = ("a year", "a quarter")
    store = SqliteStore(ctx.workdir / "tila.db")
    try:
        t0 = time.perf_counter()
        history = backfill(site, store, *long, seed=1, stop=ctx.stop)
        ctx.check()
        size = f"{len(site.spaces)} spaces of the bundled site, {long[0]} to {long[1]} (exclusive)"
        yield Row(
            "report_history_rows",
            f"history rows ({names[0]}, backfilled)",
            float(history.buckets),
            "rows",
            note=f"{size}; backfill took {time.perf_counter() - t0:.0f} s",
        )
        # The first report of a process pays for imports (matplotlib, fonts): measured apart.
        warm = _report(store, site, short, ctx.workdir / "warm")
        ctx.check()
        year = _report(store, site, long, ctx.workdir / "long")
        ctx.check()
        quarter = _report(store, site, short, ctx.workdir / "short")
    finally:
        store.close()
    yield Row(
        "report_first_run",
        f"first report in a process ({names[1]}), imports included",
        warm.total,
        "s",
        baseline=quarter.total,
        baseline_figure=f"the same report again, {names[1]}",
    )
    for key, figure in STEPS:
        value = getattr(year, key)
        base = getattr(quarter, key)
        yield Row(
            f"report_{key}",
            f"report {names[0]}: {figure}",
            value,
            "s",
            baseline=base,
            baseline_figure=f"the same step for {names[1]} ({short[0]} to {short[1]}, {quarter.rows:,} rows)",
            note=_note(year, names[0]) if key == "total" else "",
        )
    html = ctx.workdir / "long" / HTML_NAME
    yield Row("report_html_bytes", f"report.html for {names[0]}", float(html.stat().st_size), "bytes")


def _report(store: SqliteStore, site: Site, period: tuple[date, date], out: Path) -> Timings:
    tm = Timings()
    make_report(Request(site, Period(site, *period), out, "fi"), store, timings=tm)
    log.info("report %s–%s: %.2f s (%d rows)", period[0], period[1], tm.total, tm.rows)
    return tm


def _note(tm: Timings, name: str) -> str:
    shares = ", ".join(f"{key} {getattr(tm, key) / tm.total:.0%}" for key, _ in STEPS[:-1] if tm.total > 0)
    return f"{tm.rows:,} rows for {name}; share of the time: {shares}"
