"""``tila sim``: simulated sensor firmware for every sensor in a site, publishing like the real devices."""

from __future__ import annotations

import argparse
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from tila.cli import UsageError, mqtt_arg, positive_float, site_arg

from .devices import DEFAULT_OUTAGES_PER_DAY
from .simulator import Simulator

HELP = "simulated sensor firmware for every sensor in the site, publishing like the real devices"


def start_arg(value: str) -> datetime:
    """``--start``: an ISO 8601 date-time; without an offset it is local time in the site's zone."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {value!r}") from None


def non_negative_float(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 <= f < float("inf"):
        raise argparse.ArgumentTypeError(f"must be zero or a positive number, not {value!r}")
    return f


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", type=site_arg, required=True, help="site file (or 'bundled')")
    parser.add_argument("--mqtt", type=mqtt_arg, required=True, help="broker to publish to, mqtt://host:port")
    parser.add_argument(
        "--speed", type=positive_float, default=1.0, help="simulated seconds per real second (default 1)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random seed; the same seed repeats the same behaviour (default: random)",
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


def run(args: Any, stop: threading.Event) -> int:
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
