"""``tila bookings import SOURCE``: an iCalendar file or feed into the API's bookings database.

The import replaces the bookings of its source (``--source``, by default named after the file or the
feed's host) that start within the window, in one transaction, and prints what was imported and what
was skipped, by reason. A broken file or an unreachable feed ends it with exit 2 and one line; then
nothing is written.
"""

from __future__ import annotations

import argparse
import threading
from datetime import date, datetime, time
from pathlib import Path

from ..cli import UsageError, site_arg
from .db import BookingDb, BookingDbError
from .model import SKIP_REASONS, BookingError

HELP = "bookings from iCalendar files and feeds"


def when_arg(value: str) -> date | datetime:
    """``--from``/``--to``: a date (local midnight at the site) or an ISO 8601 time with offset."""
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        t = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date or time: {value[:40]!r} (use 2026-11-24 or 2026-11-24T08:00:00+02:00)"
        ) from None
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value[:40]!r} has no UTC offset (add one, e.g. +02:00 or Z)")
    return t


def source_arg(value: str) -> str:
    if not 1 <= len(value) <= 120:
        raise argparse.ArgumentTypeError("a source name is 1-120 characters")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    sub.required = True
    imp = sub.add_parser(
        "import",
        help="import an .ics file or an http(s) feed",
        description="Import an iCalendar file or feed, replacing that source's bookings in the window. "
        "Skipped events are counted by reason: " + "; ".join(f"{k}: {v}" for k, v in SKIP_REASONS.items()),
    )
    imp.add_argument("source", metavar="SOURCE", help="an .ics file, or an http(s)/webcal feed URL")
    imp.add_argument("--site", type=site_arg, required=True, help="site file (TOML), or 'bundled'")
    imp.add_argument(
        "--data-dir", type=Path, required=True, help="the API's data directory (bookings.db is kept there)"
    )
    imp.add_argument(
        "--space",
        default=None,
        help="every event is this space's (a room's own calendar); default: match LOCATION to spaces",
    )
    imp.add_argument(
        "--from", dest="start", type=when_arg, default=None, help="window start (default: a year back)"
    )
    imp.add_argument(
        "--to", dest="end", type=when_arg, default=None, help="window end (default: a year ahead)"
    )
    imp.add_argument(
        "--source",
        dest="name",
        type=source_arg,
        default=None,
        help="name of this import's bookings (default: file:NAME, or feed:HOST#HASH for a URL)",
    )


def _aware(value: date | datetime | None, tz: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.combine(value, time(), tzinfo=tz)  # type: ignore[arg-type]


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    from . import ical

    site = args.site
    if args.space is not None and site.space(args.space) is None:
        known = ", ".join(s.id for s in site.spaces[:12])
        raise UsageError(f"--space: unknown space {args.space[:64]!r} (known: {known})")
    start, end = _aware(args.start, site.tz), _aware(args.end, site.tz)
    try:
        result = ical.import_source(args.source, site, space=args.space, start=start, end=end, name=args.name)
        written = BookingDb.in_dir(args.data_dir).replace(result)
    except BookingDbError as exc:
        raise UsageError(str(exc)) from None
    except BookingError as exc:
        raise UsageError(str(exc)) from None
    s = written.summary()
    print(f"source {s['source']}: window {s['from']} to {s['to']}")
    print(f"imported {s['imported']} bookings (replacing {s['replaced']})")
    print(f"skipped {s['skipped']}")
    for reason, n in written.skipped.most_common():
        print(f"  {reason}: {n} ({SKIP_REASONS.get(reason, '')})")
    return 0
