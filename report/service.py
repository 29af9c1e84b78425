"""``tila report``: the continuation-assessment report (HTML with charts, CSV beside it).

``--from`` and ``--to`` are local dates of the site; ``--to`` is exclusive, as ``to`` of
``/v1/utilisation``: ``--from 2026-01-01 --to 2027-01-01`` is the year 2026.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import threading
from datetime import date
from pathlib import Path
from typing import Any

from tila.cli import UsageError, site_arg, store_arg

from .analysis import Period, ReportError
from .build import Request, StoppedError, make_report, open_report_store
from .text import DEFAULT_LANG, LANGS

log = logging.getLogger(__name__)

#: Years a date may name, as the API's times (tila.api.routes.utilisation): slots count from 1970.
EARLIEST_YEAR, LATEST_YEAR = 1970, 9000
#: The heatmaps cover at most ten years (tila.aggregator.metrics.MAX_HEATMAP_DAYS).
MAX_DAYS = 3660
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def date_arg(value: str) -> date:
    """A local date, ``YYYY-MM-DD``."""
    text = value.strip()
    try:
        if not _DATE.match(text):
            raise ValueError
        d = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {value[:40]!r}") from None
    if not EARLIEST_YEAR <= d.year <= LATEST_YEAR:
        raise argparse.ArgumentTypeError(f"{text} is outside the years {EARLIEST_YEAR}–{LATEST_YEAR}")
    return d


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--site", type=site_arg, required=True, metavar="FILE", help="site file (or 'bundled')"
    )
    parser.add_argument(
        "--store",
        type=store_arg,
        required=True,
        metavar="URL",
        help="store to read: sqlite:///PATH or influxdb://…",
    )
    parser.add_argument(
        "--from",
        dest="first",
        type=date_arg,
        required=True,
        metavar="DATE",
        help="first local date included, YYYY-MM-DD",
    )
    parser.add_argument(
        "--to",
        dest="end",
        type=date_arg,
        required=True,
        metavar="DATE",
        help="first local date not included, YYYY-MM-DD (exclusive, as /v1/utilisation's to)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="directory for report.html and csv/ (created; other files kept)",
    )
    parser.add_argument(
        "--lang", choices=LANGS, default=DEFAULT_LANG, help=f"language of the report (default {DEFAULT_LANG})"
    )
    parser.add_argument(
        "--bookings",
        default=None,
        metavar="SOURCE",
        help="bookings to compare with measured use: an .ics file or URL, or the API's bookings database",
    )


def run(args: Any, stop: threading.Event) -> int:
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: not a directory: {out}")
    try:
        period = Period(args.site, args.first, args.end)
        if period.days > MAX_DAYS:
            raise ReportError(
                f"the period covers {period.days} days, at most {MAX_DAYS}; choose a shorter one"
            )
        section = None
        if args.bookings:
            from .bookings import load_bookings

            period.check_open()
            section = load_bookings(args.bookings, args.site, period)
        store = open_report_store(args.store)
        try:
            req = Request(args.site, period, out, args.lang, section)
            path = make_report(req, store, progress=sys.stderr.isatty(), stop=stop)
        finally:
            store.close()
    except ReportError as exc:
        raise UsageError(str(exc)) from exc
    except StoppedError:
        log.warning("stopped before the report was written; nothing was written")
        return 1
    print(path)
    return 0
