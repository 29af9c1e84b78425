"""``tila sim``: simulated sensor firmware for every sensor in a site, publishing like the real devices.

With ``--backfill DAYS --store URL`` it writes the site's history instead (:mod:`.backfill`): the
DAYS local days before ``--end`` (default today, so the history reaches yesterday), straight into
the store, and exits with a one-line summary. SIGTERM and SIGINT end a backfill after the day under
way.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from tila.cli import UsageError, mqtt_arg, positive_float, positive_int, site_arg, store_arg

from .devices import DEFAULT_OUTAGES_PER_DAY
from .simulator import Simulator

log = logging.getLogger(__name__)

#: The longest backfill: ten years (the Lab's whole trial, Dec 2019 – Oct 2023, fits twice over).
MAX_BACKFILL_DAYS = 3660

HELP = "simulated sensor firmware for every sensor in the site, publishing like the real devices"


def start_arg(value: str) -> datetime:
    """``--start``: an ISO 8601 date-time; without an offset it is local time in the site's zone."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {value!r}") from None


def date_arg(value: str) -> date:
    """``--end``: an ISO 8601 date (YYYY-MM-DD), a local day of the site."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date (YYYY-MM-DD): {value[:40]!r}") from None


def non_negative_float(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 <= f < float("inf"):
        raise argparse.ArgumentTypeError(f"must be zero or a positive number, not {value!r}")
    return f


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--site", type=site_arg, default=None, help="site file (or 'bundled'; --backfill defaults to it)"
    )
    parser.add_argument(
        "--mqtt", type=mqtt_arg, default=None, help="broker to publish to, mqtt://host:port (live only)"
    )
    parser.add_argument(
        "--speed", type=positive_float, default=1.0, help="simulated seconds per real second (default 1)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random seed; the same seed repeats the same behaviour (default: random; 0 for --backfill)",
    )
    parser.add_argument(
        "--duration",
        type=positive_float,
        default=None,
        help="stop after S real seconds (default: run until stopped)",
    )
    parser.add_argument(
        "--start",
        type=start_arg,
        default=None,
        help="simulated clock at start, ISO 8601 local date-time in the site's time zone (default: now)",
    )
    parser.add_argument(
        "--truth",
        type=Path,
        default=None,
        help="write the ground truth of every published reading to FILE as JSON lines",
    )
    parser.add_argument(
        "--outage-rate",
        type=non_negative_float,
        default=DEFAULT_OUTAGES_PER_DAY,
        help=(
            "mean simulated outages per Zigbee sensor per simulated day "
            f"(default {DEFAULT_OUTAGES_PER_DAY:g}; 0: none)"
        ),
    )
    parser.add_argument(
        "--backfill",
        type=positive_int,
        default=None,
        metavar="DAYS",
        help="write DAYS days of simulated history ending before --end into --store, then exit",
    )
    parser.add_argument(
        "--store", type=store_arg, default=None, help="with --backfill: sqlite:///PATH or an InfluxDB URL"
    )
    parser.add_argument(
        "--end",
        type=date_arg,
        default=None,
        help="with --backfill: the day after the last one written (default: today in the site's zone)",
    )
    parser.add_argument(
        "--bookings",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --backfill: also write simulated bookings of those days into DIR/bookings.db",
    )


def run(args: Any, stop: threading.Event) -> int:
    if args.backfill is not None or args.store is not None or args.end is not None or args.bookings:
        return run_backfill(args, stop)
    if args.site is None:
        raise UsageError("--site is required (a site file, or 'bundled')")
    if args.mqtt is None:
        raise UsageError("--mqtt is required to simulate live (or use --backfill DAYS --store URL)")
    if args.truth is not None and not args.truth.parent.is_dir():
        raise UsageError(f"--truth: no such directory: {args.truth.parent}")
    sim = Simulator(
        args.site,
        args.mqtt,
        speed=args.speed,
        seed=args.seed,
        start=args.start,
        truth_path=args.truth,
        outages_per_day=args.outage_rate,
    )
    try:
        return sim.run(stop, args.duration)
    except OSError as exc:
        if args.truth is None:
            raise
        raise UsageError(f"--truth: cannot write {args.truth}: {exc.strerror or exc}") from exc


def run_backfill(args: Any, stop: threading.Event) -> int:
    """``--backfill DAYS --store URL``: the history, straight into the store; a summary line."""
    from tila.sensors.site import bundled_site_path, load_site
    from tila.store import StoreError, open_store

    from .backfill import backfill

    if args.backfill is None:
        raise UsageError(
            "--store, --end and --bookings are for --backfill DAYS (live simulation publishes to --mqtt)"
        )
    if args.store is None:
        raise UsageError("--backfill needs --store URL, the store to write the history to")
    live_only = [f"--{k}" for k in ("start", "truth", "duration") if getattr(args, k) is not None]
    if live_only:
        raise UsageError(f"{', '.join(live_only)}: for live simulation, not with --backfill")
    site = args.site or load_site(bundled_site_path())
    today = datetime.now(site.tz).date()
    end: date = args.end or today
    if end > today:
        raise UsageError(f"--end {end} is in the future: a backfill writes history (--end {today} at most)")
    if args.backfill > MAX_BACKFILL_DAYS:
        raise UsageError(f"--backfill {args.backfill}: at most {MAX_BACKFILL_DAYS} days")
    try:
        start = end - timedelta(days=args.backfill)
    except OverflowError:
        raise UsageError(f"--backfill {args.backfill} days before {end} is before the year 1") from None
    bookings = _bookings_db(args.bookings) if args.bookings is not None else None
    try:
        store = open_store(args.store)
        if not store.ping():
            store.close()
            raise UsageError(f"cannot reach the store at {args.store}")
    except StoreError as exc:
        raise UsageError(str(exc)) from exc
    try:
        result = backfill(
            site, store, start, end, seed=args.seed or 0, progress=sys.stderr.isatty(), stop=stop
        )
    except StoreError as exc:
        log.error("backfill stopped: %s", exc)
        return 1
    finally:
        store.close()
    span = f"{start}..{start + timedelta(days=result.days - 1)}" if result.days else "no days"
    print(f"backfilled {site.id} {span}: {result.summary()}", flush=True)
    if bookings is not None and result.days:
        from tila.bookings.db import BookingDbError

        from .behaviour import Behaviour
        from .bookings import as_import, simulated_bookings

        last = start + timedelta(days=result.days)  # a stopped run: the days written
        made = simulated_bookings(site, Behaviour(site, args.seed or 0), start, last, seed=args.seed or 0)
        try:
            written = bookings.replace(as_import(site, made, start, last))
        except BookingDbError as exc:
            log.error("simulated bookings not written: %s", exc)
            return 1
        print(
            f"simulated bookings: {len(written.bookings)} in {bookings.path} ({written.replaced} replaced)",
            flush=True,
        )
    return 0


def _bookings_db(path: Path) -> Any:
    """``--bookings DIR``: its bookings.db, opened (and made) before anything is simulated."""
    from tila.bookings.db import BookingDb, BookingDbError

    if path.exists() and not path.is_dir():
        raise UsageError(f"--bookings: not a directory: {path}")
    try:
        return BookingDb.in_dir(path)
    except BookingDbError as exc:
        raise UsageError(f"--bookings: {exc}") from exc
