"""The ``tila`` command line: one console script, a subcommand per service.

Every option may also come from the environment as ``TILA_<OPTION>`` (``--data-dir`` → ``TILA_DATA_DIR``).
A bad option, site file or URL ends the command with exit code 2 and one line saying what is wrong.
SIGTERM and SIGINT set a stop event that each service watches to flush and exit cleanly.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

#: Subcommand → (module with ``add_arguments(parser)`` and ``run(args, stop) -> int``, summary).
#: Only the chosen command's module is imported: the gateway on a Pi never loads the web stack.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("tila.demo", "the whole pipeline in one process, no servers needed"),
    "gateway": (
        "tila.gateway.service",
        "one gateway: device messages on the local broker → canonical events on the central broker",
    ),
    "aggregator": (
        "tila.aggregator.service",
        "canonical events → per-space state and utilisation in the store",
    ),
    "api": ("tila.api.service", "the HTTP API and the pages"),
    "sim": ("tila.sim.service", "simulated sensor firmware for every sensor of a site"),
    "bench": ("tila.bench", "the benchmarks, printing figures and side-by-side ratios"),
    "report": ("tila.report.service", "the continuation-assessment report (HTML with charts, CSV beside it)"),
    "token": ("tila.tokens", "a new random API token and its hashed form for --tokens"),
    "bookings": ("tila.bookings.cli", "bookings from iCalendar files and feeds, for no-shows and availability"),
}


class UsageError(Exception):
    """Bad configuration found after parsing; ends the command with exit 2 and this one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:  # type: ignore[override]
        """Options fall back to ``TILA_<OPTION>`` from the environment."""
        action = super().add_argument(*args, **kwargs)
        longs = [s for s in action.option_strings if s.startswith("--")]
        if longs and action.dest != "help":
            env = "TILA_" + longs[0][2:].upper().replace("-", "_")
            action.help = f"{action.help or ''} [env {env}]".strip()
            if env in os.environ:
                value: Any = os.environ[env]
                if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
                    value = value.strip().lower() in ("1", "true", "yes", "on")
                action.default = value
                action.required = False
        return action


# --------------------------------------------------------------------------- shared argument types


def site_arg(value: str) -> Any:
    """``--site FILE``: a validated site; ``bundled`` (or ``bundled:NAME``) for a site tila ships."""
    from .sensors.site import SiteError, bundled_site_path, load_site

    path: str | Path = value
    if value == "bundled" or value.startswith("bundled:"):
        path = bundled_site_path(value.partition(":")[2] or "work20lab")
    try:
        return load_site(path)
    except SiteError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def mqtt_arg(value: str) -> Any:
    """A broker URL: no credentials at all, or a user with a real password (tila.secrets)."""
    from .mqtt import MqttUrl, UrlError
    from .secrets import WeakSecretError, check_credentials, hide_password

    try:
        url = MqttUrl.parse(value)
        # A password_file's password is read into url.password at parsing (app/mqtt.py) and checked
        # here like one written in the URL.
        elsewhere = bool(getattr(url, "password_file", None))
        check_credentials(url.username, url.password, f"MQTT URL {url}", password_elsewhere=elsewhere)
    except UrlError as exc:
        raise argparse.ArgumentTypeError(hide_password(str(exc), value)) from exc
    except WeakSecretError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return url


def store_arg(value: str) -> Any:
    """A store URL; InfluxDB credentials or token, when given, must be real ones (tila.secrets)."""
    from .secrets import WeakSecretError, check_credentials, check_secret
    from .store import StoreUrlError, parse_store_url

    try:
        url = parse_store_url(value)
        if url.kind == "influxdb":
            check_credentials(url.username, url.password or None, f"store URL {url}")
            if url.token:
                check_secret(url.token, f"store URL {url}: the token")
    except StoreUrlError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    except WeakSecretError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return url


def positive_float(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not f > 0 or f != f or f == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {value!r}")
    return f


def positive_int(value: str) -> int:
    """A whole number of at least 1 (sizes, counts, bursts)."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value[:40]!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def port_arg(value: str) -> int:
    try:
        p = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= p <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0–65535, not {p}")
    return p


def ident_arg(value: str) -> str:
    import re

    if not re.match(r"^[a-z0-9][a-z0-9_.-]{0,63}$", value):
        raise argparse.ArgumentTypeError(
            f"must be lower-case letters, digits, '-', '_' or '.', not {value!r}"
        )
    return value


# ------------------------------------------------------------------------------------------- main


def build_parser(argv: Sequence[str]) -> tuple[Parser, dict[str, Any]]:
    from . import __version__

    parser = Parser(prog="tila", description="Occupancy of a shared workspace, live and over time.")
    parser.add_argument("--version", action="version", version=f"tila {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="logging level"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    chosen = next((a for a in argv if a in COMMANDS), None)
    modules: dict[str, Any] = {}
    for name, (modname, summary) in COMMANDS.items():
        p = sub.add_parser(name, help=summary, description=summary)
        if name == chosen:
            module = importlib.import_module(modname)
            modules[name] = module
            module.add_arguments(p)
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, modules = build_parser(argv)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        logging.getLogger("tila").info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        return int(modules[args.command].run(args, stop) or 0)
    except UsageError as exc:
        print(f"tila {args.command}: error: {exc}", file=sys.stderr)
        return 2
