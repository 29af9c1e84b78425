"""``tila api``: the HTTP API and the pages, as a command and as pieces ``tila demo`` can reuse.

- :func:`create_app` (api/app.py) builds the app;
- :func:`bind` opens the listening socket (port 0 = any free port; the actual port is then known);
- :func:`serve` runs uvicorn on that socket in the calling thread (its own asyncio loop) until
  ``stop`` is set; :func:`serve_socket` is the same as a coroutine, for a caller with its own loop.

uvicorn installs no signal handlers here: tila's command line sets SIGTERM/SIGINT to set ``stop``.
When ``stop`` is set, open event streams are ended first and then uvicorn shuts down, so the whole
server is gone within about a second (2 s at most, uvicorn's graceful-shutdown timeout).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from ..bookings.compare import DEFAULT_GRACE
from ..bookings.db import BookingDbError
from ..cli import UsageError, mqtt_arg, port_arg, positive_float, positive_int, site_arg, store_arg
from ..store import StoreError, open_store
from .app import close_streams, create_app
from .auth import TokenError, Tokens
from .live import LiveState
from .ratelimit import BURST, RATE
from .settings import ApiSettings, SettingsError, parse_origins
from .webhooks import KEEP_DAYS, MAX_ATTEMPTS, RETRY_HOURS, DeliveryPolicy, WebhookError

log = logging.getLogger(__name__)

HELP = "the HTTP API and the pages (lobby screen, hosts' view)"
#: Seconds uvicorn waits for open requests after ``stop`` before cancelling them; the streams have
#: been ended already, so only a slow utilisation query could still be running.
GRACEFUL_SECONDS = 2


def tokens_arg(value: str) -> Tokens:
    """``--tokens``: ``scope:token`` pairs separated by commas. The error never repeats a token."""
    try:
        return Tokens.parse(value)
    except TokenError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def origins_arg(value: str) -> tuple[str, ...]:
    """``--cors-origins``: ``https://booking.example.fi,https://other.example`` or ``*``."""
    try:
        return parse_origins(value)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def rate_arg(value: str) -> float:
    """``--rate-limit``: requests a second per address, ≥ 0 (0: no limit)."""
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value[:40]!r}") from None
    if not 0 <= rate < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number ≥ 0 (0 turns the limit off), not {value[:40]!r}")
    return rate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", type=site_arg, required=True, help="site file (TOML), or 'bundled'")
    parser.add_argument("--mqtt", type=mqtt_arg, required=True, help="central broker, mqtt://host:port")
    parser.add_argument("--store", type=store_arg, required=True, help="store URL, sqlite:///PATH")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=port_arg, default=8000, help="port to listen on (default 8000; 0 = any free port)"
    )
    parser.add_argument(
        "--tokens",
        type=tokens_arg,
        default="",
        help="scope:token pairs separated by commas; scopes host, analyst, admin (admin implies the others)",
    )
    parser.add_argument("--access-log", action="store_true", help="log every HTTP request")
    parser.add_argument(
        "--cors-origins",
        type=origins_arg,
        default="",
        metavar="ORIGINS",
        help="origins whose pages may call the API from a browser, separated by commas "
        "(https://booking.example.fi), or * for any; default none (same origin only)",
    )
    parser.add_argument(
        "--rate-limit",
        type=rate_arg,
        default=RATE,
        metavar="N",
        help=f"requests a second per client address without a token (default {RATE:g}; 0 = no limit); "
        "over it: 429 with Retry-After",
    )
    parser.add_argument(
        "--rate-burst",
        type=positive_int,
        default=BURST,
        metavar="N",
        help=f"requests a client address may make at once before --rate-limit applies (default {BURST})",
    )
    parser.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        metavar="IPS",
        help="proxies whose X-Forwarded-For/-Proto are trusted for the client address (the rate limit's "
        "key), separated by commas, or * (default 127.0.0.1)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="directory for the API's own state: bookings, webhook subscriptions and deliveries "
        "(default: beside a SQLite store; without one those features are off)",
    )
    parser.add_argument(
        "--noshow-grace",
        type=positive_float,
        default=DEFAULT_GRACE.total_seconds() / 60,
        metavar="MINUTES",
        help="minutes after a booking's start within which somebody must arrive, else it is a no-show "
        f"(default {DEFAULT_GRACE.total_seconds() / 60:g})",
    )
    parser.add_argument(
        "--webhook-retry-hours",
        type=positive_float,
        default=RETRY_HOURS,
        metavar="H",
        help=f"hours a webhook delivery is retried (30 s doubling to 1 h) before it is failed "
        f"(default {RETRY_HOURS:g})",
    )
    parser.add_argument(
        "--webhook-attempts",
        type=positive_int,
        default=MAX_ATTEMPTS,
        metavar="N",
        help=f"attempts per webhook delivery at most (default {MAX_ATTEMPTS})",
    )
    parser.add_argument(
        "--webhook-keep-days",
        type=positive_int,
        default=KEEP_DAYS,
        metavar="DAYS",
        help=f"days finished webhook deliveries stay in the delivery log (default {KEEP_DAYS})",
    )


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    tokens = args.tokens if isinstance(args.tokens, Tokens) else tokens_arg(args.tokens)
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    try:
        store = open_store(args.store)
    except StoreError as exc:
        sock.close()
        raise UsageError(str(exc)) from exc
    try:
        live = LiveState(args.site, args.mqtt)
        try:
            app = create_app(
                args.site,
                live,
                store,
                tokens,
                settings_from(args),
                data_dir_of(args),
                webhook_policy=webhook_policy_of(args),
                noshow_grace=timedelta(minutes=float(args.noshow_grace)),
            )
        except (WebhookError, BookingDbError) as exc:
            raise UsageError(str(exc)) from None
        serve_on(sock, app, stop, access_log=args.access_log, forwarded_allow_ips=args.forwarded_allow_ips)
    finally:
        store.close()
    return 0


def data_dir_of(args: argparse.Namespace) -> Path | None:
    """``--data-dir``, created if missing; by default the folder of a SQLite store (as the aggregator's
    journal); None (bookings and webhooks off) for another store without ``--data-dir``."""
    path: Path | None = args.data_dir
    if path is None and args.store.kind == "sqlite":
        path = Path(args.store.path).parent
    if path is None:
        log.warning("no --data-dir: bookings and webhooks are off (their routes answer 503)")
        return None
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--data-dir {path}: cannot create: {exc.strerror or exc}") from None
    return Path(path)


def webhook_policy_of(args: argparse.Namespace) -> DeliveryPolicy:
    """Webhook retries and the log's keeping time from the parsed arguments."""
    return DeliveryPolicy(
        retry_hours=float(args.webhook_retry_hours),
        max_attempts=int(args.webhook_attempts),
        keep_days=float(args.webhook_keep_days),
    )


def settings_from(args: argparse.Namespace) -> ApiSettings:
    """The settings in parsed arguments (argparse applies the types to TILA_* defaults too)."""
    try:
        origins = args.cors_origins
        return ApiSettings(
            cors_origins=parse_origins(origins) if isinstance(origins, str) else tuple(origins),
            rate_limit=float(args.rate_limit),
            rate_burst=int(args.rate_burst),
        )
    except ValueError as exc:  # SettingsError included
        raise UsageError(str(exc)) from None


# ------------------------------------------------------------------------------------------ serve


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: the system picks a free one)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers, stopping when ``stop`` is set."""

    def __init__(
        self,
        config: uvicorn.Config,
        app: FastAPI,
        stop: threading.Event,
        on_listening: Callable[[int], None] | None,
        port: int,
    ) -> None:
        super().__init__(config)
        self._app = app
        self._stop = stop
        self._on_listening = on_listening
        self._port = port

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # tila's command line owns SIGTERM/SIGINT (they set ``stop``); uvicorn 0.54 would otherwise
        # replace them from the main thread and re-raise them after shutdown.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            base = url_of(sockets[0]) if sockets else f"http://127.0.0.1:{self._port}"
            log.info("API listening on %s (lobby %s/lobby, API description %s/docs)", base, base, base)
            if self._on_listening is not None:
                self._on_listening(self._port)

    async def on_tick(self, counter: int) -> bool:
        # uvicorn ticks every 0.1 s: that is how quickly ``stop`` is noticed.
        if self._stop.is_set() and not self.should_exit:
            close_streams(self._app)  # streams would otherwise hold shutdown until the timeout
            self.should_exit = True
        return await super().on_tick(counter)


async def serve_socket(
    app: FastAPI,
    sock: socket.socket,
    stop: threading.Event,
    on_listening: Callable[[int], None] | None = None,
    *,
    access_log: bool = False,
    forwarded_allow_ips: str = "127.0.0.1",
) -> None:
    """Serve ``app`` on a bound, listening socket until ``stop`` is set (coroutine form)."""
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,  # tila's logging (basicConfig in tila.cli) handles uvicorn's loggers too
        access_log=access_log,
        lifespan="on",
        # /v1/stream/ws: uvicorn's sans-I/O protocol on the websockets package (installed with amqtt);
        # without it uvicorn answers WebSocket upgrades as plain HTTP.
        ws="auto",
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    )
    server = _Server(config, app, stop, on_listening, port)
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits the process when the app's startup fails
        raise RuntimeError(f"the API did not start (lifespan startup failed, exit {exc.code})") from None
    finally:
        sock.close()
    log.info("API stopped")


def serve_on(
    sock: socket.socket,
    app: FastAPI,
    stop: threading.Event,
    on_listening: Callable[[int], None] | None = None,
    **kwargs: Any,
) -> None:
    """:func:`serve_socket` in a fresh event loop (blocks); keyword arguments as it takes them."""
    asyncio.run(serve_socket(app, sock, stop, on_listening, **kwargs))


def serve(
    app: FastAPI,
    host: str,
    port: int,
    stop: threading.Event,
    on_listening: Callable[[int], None] | None = None,
    **kwargs: Any,
) -> None:
    """Bind host:port (0 = any free port), then serve ``app`` in this thread until ``stop`` is set.

    ``on_listening(actual_port)`` is called once the server accepts connections. Blocks; run it in
    a thread of its own to serve beside other work (``tila demo`` does).
    """
    serve_on(bind(host, port), app, stop, on_listening, **kwargs)
