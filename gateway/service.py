"""``tila gateway``: one Raspberry Pi gateway, device messages → canonical events, durably buffered."""

from __future__ import annotations

import argparse
import logging
import threading

from ..cli import UsageError, ident_arg, mqtt_arg, positive_float, positive_int, site_arg
from .bridge import Gateway, GatewaySettings
from .outbox import POLICIES, OutboxError

log = logging.getLogger(__name__)

HELP = "one gateway: device messages on the local broker → canonical events on the central broker"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", type=site_arg, required=True, help="site file (TOML), or 'bundled'")
    p.add_argument("--id", type=ident_arg, required=True, help="this gateway's id (in topics and events)")
    p.add_argument("--local", type=mqtt_arg, required=True, help="local broker URL (devices)")
    p.add_argument("--central", type=mqtt_arg, required=True, help="central broker URL (uplink)")
    p.add_argument("--data-dir", required=True, help="directory for the durable outbox")
    p.add_argument(
        "--max-payload", type=positive_int, default=64 * 1024, help="largest device payload in bytes"
    )
    p.add_argument(
        "--max-outbox-mb",
        type=positive_int,
        default=1024,
        help="outbox disk quota in MiB (see the README for days of outage)",
    )
    p.add_argument("--max-events", type=positive_int, default=10_000_000, help="outbox capacity in events")
    p.add_argument(
        "--full-policy", choices=POLICIES, default="drop-oldest", help="what to do when the outbox is full"
    )
    p.add_argument(
        "--health-interval", type=positive_float, default=30.0, help="seconds between health reports"
    )
    p.add_argument(
        "--max-future", type=positive_float, default=600.0, help="quarantine device times further ahead (s)"
    )
    p.add_argument(
        "--max-age",
        type=positive_float,
        default=30 * 86400.0,
        help="quarantine device times older than this (s)",
    )
    p.add_argument(
        "--live-after",
        type=positive_float,
        default=30.0,
        help="interleave live events with a backlog older than this (s)",
    )


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    settings = GatewaySettings(
        site=args.site,
        id=args.id,
        local=args.local,
        central=args.central,
        data_dir=args.data_dir,
        max_payload=args.max_payload,
        max_events=args.max_events,
        max_outbox_bytes=args.max_outbox_mb * 1024 * 1024,
        max_future=args.max_future,
        max_age=args.max_age,
        live_after=args.live_after,
        full_policy=args.full_policy,
        health_interval=args.health_interval,
    )
    try:
        gateway = Gateway(settings)
    except OutboxError as exc:
        raise UsageError(str(exc)) from exc
    log.info("gateway %s for site %s: %s → %s", args.id, args.site.id, args.local, args.central)
    gateway.run(stop)
    return 0
