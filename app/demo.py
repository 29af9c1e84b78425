"""``tila demo``: the whole pipeline in one process, with no servers to install.

An embedded MQTT broker (amqtt), the simulated Work 2.0 Lab, one gateway, the aggregator, the
embedded SQLite store and the API with its pages, each on a thread of its own, wired exactly as
the separate commands are: through the broker and the store.

Once the API is up, a background thread backfills the store with the simulated site's history
(:mod:`tila.sim.backfill`: the last ``--history`` days up to yesterday), so the analyst routes and
the hosts' view have weeks to show at once; today belongs to the live pipeline and is left alone.

Bookings are on too (``bookings.db`` and ``webhooks.db`` in the data directory, and a ``booking``
token): simulated bookings of the rooms and the event hall (:mod:`tila.sim.bookings`) for the
history, written after it, and for the live simulation's days, written as the simulator starts. The
live simulation runs ``--speed`` times faster than real time from :func:`demo_start`, so its
bookings are put on the real clock the same way (:func:`live_bookings`): the rooms are occupied
during the bookings the simulated people use and empty during the no-shows, as the live monitor
sees them, and ``/v1/availability`` has bookings to show.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from .cli import UsageError, port_arg, positive_float, site_arg
from .secrets import weakness

if TYPE_CHECKING:
    from .bookings.db import BookingDb
    from .bookings.model import ImportResult
    from .sensors.site import Site
    from .store import Store

log = logging.getLogger(__name__)

#: The demo's simulated day starts at this local time on a weekday, so the lab is busy at once.
DEMO_START = (8, 30)
#: Days of history backfilled on start: eight weeks, enough for weekly patterns and a month's view.
DEMO_HISTORY_DAYS = 56
#: The demo's token scopes (tila.api.auth.SCOPES), each given a random token on start.
DEMO_SCOPES = ("host", "analyst", "booking", "admin")
#: Live bookings cover the simulated days of this many real hours from the start (at least the first
#: number of simulated days, at most the second): a demo left running keeps having bookings.
LIVE_BOOKING_HOURS = 12
LIVE_BOOKING_DAYS = (7, 60)
#: The no-show monitor's grace is simulated time in the demo (15 minutes at --speed 1, 15 s at 60),
#: plus this much real time for the pipeline's own delay before a state is live (the simulator's
#: uplink, the gateway, the broker, the aggregator's 2 s lateness), so whoever comes in the booking's
#: first quarter hour is seen in time.
GRACE_ALLOWANCE = timedelta(seconds=15)


def history_arg(value: str) -> int:
    """``--history``: a whole number of days, 0 for none."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {value[:40]!r}") from None
    if not 0 <= n <= 3660:
        raise argparse.ArgumentTypeError(f"must be 0–3660 days, not {n}")
    return n


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--port", type=port_arg, default=8000, help="HTTP port for the API and pages (0: any free port)"
    )
    p.add_argument("--host", default="127.0.0.1", help="HTTP address to listen on")
    p.add_argument("--speed", type=positive_float, default=60.0, help="simulated seconds per real second")
    p.add_argument("--duration", type=positive_float, default=None, help="stop after S seconds")
    p.add_argument("--seed", type=int, default=None, help="simulator seed (default: random)")
    p.add_argument(
        "--site", type=site_arg, default=None, help="site file (default: the bundled Work 2.0 Lab)"
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="where the store, outbox, bookings and webhooks go (default: a temporary directory)",
    )
    p.add_argument(
        "--history",
        type=history_arg,
        default=DEMO_HISTORY_DAYS,
        help=(
            "days of simulated history up to yesterday, written in the background "
            f"(default {DEMO_HISTORY_DAYS}; 0: none)"
        ),
    )


def demo_start(now: datetime, site: Site | None = None) -> datetime:
    """Today at 08:30 local if the site is open today, else on the last open day before (a weekday
    without a site: the Friday before a weekend): a working morning to simulate. Public holidays
    are closed days for the simulated lab too, so they are skipped like weekends."""
    day = now.date()
    for _ in range(31):
        if site.hours_on(day) if site is not None else day.weekday() < 5:
            break
        day -= timedelta(days=1)
    return datetime(day.year, day.month, day.day, *DEMO_START, tzinfo=now.tzinfo)


def demo_token() -> str:
    """A random token that tila's secure defaults accept (tila.secrets; a random one practically always)."""
    while True:
        token = secrets.token_urlsafe(12)
        if weakness(token) is None:
            return token


def demo_grace(speed: float) -> timedelta:
    """The live no-show monitor's grace at ``speed``: the default grace on the simulated clock, plus
    :data:`GRACE_ALLOWANCE`, never more than the default (at --speed 1 the real rule holds)."""
    from .bookings.compare import DEFAULT_GRACE

    return min(DEFAULT_GRACE, DEFAULT_GRACE / speed + GRACE_ALLOWANCE)


def live_days(speed: float) -> int:
    """How many simulated days the live bookings cover: those of LIVE_BOOKING_HOURS real hours."""
    lo, hi = LIVE_BOOKING_DAYS
    return int(max(lo, min(hi, -(-LIVE_BOOKING_HOURS * speed // 24))))


def live_bookings(
    site: Site, seed: int, sim_start: datetime, wall_start: datetime, speed: float, days: int
) -> ImportResult:
    """The simulated bookings of the ``days`` simulated days from ``sim_start`` (behaviour ``seed``,
    as the simulator has it), on the real clock: the simulator plays ``sim_start`` at ``wall_start``
    and runs ``speed`` times faster, so simulated time t is ``wall_start + (t - sim_start) / speed``.
    Bookings starting before ``sim_start`` are left out (nothing was simulated before it). Each uid
    carries the wall start, so a restarted demo's bookings do not collide with an earlier run's."""
    from .bookings.model import ImportResult
    from .sim.behaviour import Behaviour
    from .sim.bookings import SOURCE, simulated_bookings

    first = sim_start.astimezone(site.tz).date()
    last = first + timedelta(days=days)
    made = simulated_bookings(site, Behaviour(site, seed), first, last, seed=seed)

    def wall(t: datetime) -> datetime:
        return wall_start + (t - sim_start) / speed

    tag = f"@{int(wall_start.timestamp())}"
    moved = tuple(
        replace(b, uid=b.uid + tag, start=wall(b.start), end=wall(b.end))
        for b in made
        if b.start >= sim_start
    )
    midnight = datetime.combine(last, datetime.min.time(), tzinfo=site.tz)
    return ImportResult(SOURCE, moved, start=wall_start, end=wall(midnight))


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    # Imported here: only the demo needs all of them in one process.
    from .aggregator.journal import Journal
    from .aggregator.service import AggregatorService
    from .api.app import create_app
    from .api.auth import Tokens
    from .api.live import LiveState
    from .api.service import bind, serve_on, url_of
    from .bookings.db import BookingDb
    from .broker import EmbeddedBroker
    from .gateway.bridge import Gateway, GatewaySettings
    from .mqtt import MqttUrl
    from .sensors.site import bundled_site_path, load_site
    from .sim.simulator import Simulator
    from .store import open_store, parse_store_url

    site = args.site or load_site(bundled_site_path())
    tmp = None
    if args.data_dir:
        data = Path(args.data_dir)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="tila-demo-")
        data = Path(tmp.name)
    data.mkdir(parents=True, exist_ok=True)
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc

    broker = EmbeddedBroker()
    broker.start()
    url = MqttUrl.parse(broker.url)
    store = open_store(parse_store_url(f"sqlite:///{data / 'tila.db'}"))
    tokens_text = ",".join(f"{scope}:{demo_token()}" for scope in DEMO_SCOPES)
    tokens = Tokens.parse(tokens_text)

    # Threads stop in reverse order of the pipeline: devices first, the API last.
    stops = {name: threading.Event() for name in ("history", "sim", "gateway", "aggregator", "api")}
    journal = Journal(data / "aggregator.db")
    aggregator = AggregatorService(site, url, store, journal, "demo", lateness=2.0)
    gateway = Gateway(
        GatewaySettings(
            site=site,
            id="gw-demo",
            local=url,
            central=url,
            data_dir=str(data / "gateway"),
            health_interval=10.0,
        )
    )
    now = datetime.now(site.tz)
    sim_start = demo_start(now, site)
    simulator = Simulator(site, url, speed=args.speed, seed=args.seed, start=sim_start)
    live = LiveState(site, url)
    app = create_app(site, live, store, tokens, data_dir=data, noshow_grace=demo_grace(args.speed))
    bookings_db = BookingDb.in_dir(data)
    listening = threading.Event()

    threads = [
        threading.Thread(target=aggregator.run, args=(stops["aggregator"],), name="aggregator", daemon=True),
        threading.Thread(target=gateway.run, args=(stops["gateway"],), name="gateway", daemon=True),
        threading.Thread(
            target=serve_on,
            args=(sock, app, stops["api"], lambda port: listening.set()),
            name="api",
            daemon=True,
        ),
    ]
    for t in threads:
        t.start()
    listening.wait(15)
    # The simulator starts once the gateway listens, so the first readings are not missed.
    deadline = time.monotonic() + 10
    while not gateway.local.subscribed.is_set() and time.monotonic() < deadline and not stop.is_set():
        time.sleep(0.05)
    # The live simulation's bookings, on the real clock from now: the simulator starts next.
    days = live_days(args.speed)
    try:
        made = live_bookings(site, simulator.seed, sim_start, datetime.now(UTC), args.speed, days)
    except OverflowError:  # so slow a speed that the simulated days end after the year 9999
        log.warning("--speed %g: too slow for live bookings; none written", args.speed)
        booked = 0
    else:
        booked = _write_bookings(bookings_db, made)
    app.state.tila.bookings.changed()  # the no-show monitor looks at them at once
    sim_thread = threading.Thread(target=simulator.run, args=(stops["sim"],), name="sim", daemon=True)
    sim_thread.start()
    history_thread = threading.Thread(
        target=_history,
        args=(
            site,
            store,
            bookings_db,
            args.history,
            0 if args.seed is None else args.seed,
            stops["history"],
        ),
        name="history",
        daemon=True,
    )
    if args.history:
        history_thread.start()

    base = url_of(sock) if sock.fileno() >= 0 else f"http://{args.host}:{args.port}"
    scopes = dict(pair.split(":", 1) for pair in tokens_text.split(","))
    print(
        f"\ntila demo — {site.name.get('en', site.id)} simulated at {args.speed:g}× from "
        f"{demo_start(now, site):%a %H:%M} local time\n\n"
        f"  lobby screen   {base}/lobby          (?lang=fi, sv or en)\n"
        f"  hosts' view    {base}/host           (host token)\n"
        f"  spaces         {base}/v1/spaces\n"
        f"  live stream    {base}/v1/stream\n"
        f"  availability   {base}/v1/availability\n"
        f"  bookings       {base}/v1/bookings?from=...&to=...   (booking token; "
        f"{booked} simulated for {days} simulated days)\n"
        f"  utilisation    {base}/v1/utilisation?from=...&to=...   (analyst token)\n"
        f"  API reference  {base}/docs\n"
        f"  MQTT broker    {broker.url}\n"
        f"  data           {data}\n\n"
        f"  tokens         host {scopes['host']}\n"
        f"                 analyst {scopes['analyst']}\n"
        f"                 booking {scopes['booking']}\n"
        f"                 admin {scopes['admin']}\n\n"
        f"  e.g. curl -H 'Authorization: Bearer {scopes['analyst']}' '{base}/v1/utilisation?from="
        f"{(now - timedelta(hours=1)).isoformat(timespec='seconds')}&to={(now + timedelta(hours=1)).isoformat(timespec='seconds')}'".replace(
            "+", "%2B"
        )
        + "\n\n"
        f"{'Stops after ' + format(args.duration, 'g') + ' s' if args.duration else 'Ctrl-C stops'}.\n",
        flush=True,
    )
    stop.wait(args.duration)
    log.info("demo stopping")
    for name, thread in (
        ("history", history_thread),
        ("sim", sim_thread),
        ("gateway", threads[1]),
        ("aggregator", threads[0]),
        ("api", threads[2]),
    ):
        stops[name].set()
        if not thread.ident:
            continue  # never started
        thread.join(10)
        if thread.is_alive():
            log.warning("%s did not stop within 10 s", name)
    journal.close()
    store.close()
    broker.stop()
    if tmp is not None:
        tmp.cleanup()
    return 0


def _write_bookings(db: BookingDb, result: ImportResult) -> int:
    """Write simulated bookings (replacing the simulation's earlier ones in the window); how many."""
    from .bookings.db import BookingDbError

    try:
        written = db.replace(result)
    except BookingDbError as exc:
        log.error("simulated bookings not written: %s", exc)
        return 0
    if written.skipped:
        # Another source (an import into the demo's data directory) holds those times already.
        log.info("simulated bookings skipped: %s", dict(written.skipped))
    return len(written.bookings)


def _history(
    site: Site, store: Store, bookings_db: BookingDb, days: int, seed: int, stop: threading.Event
) -> None:
    """Backfill ``days`` days up to yesterday (today is the live pipeline's), then the bookings of
    those days, and say when done."""
    from .sim.backfill import backfill
    from .sim.behaviour import Behaviour
    from .sim.bookings import as_import, simulated_bookings
    from .store import StoreError

    end = datetime.now(site.tz).date()
    # The last week first: it is what a visitor looks at first.
    recent = min(days, 7)
    rows = 0
    seconds = 0.0
    try:
        for a, b in (
            (end - timedelta(days=recent), end),
            (end - timedelta(days=days), end - timedelta(days=recent)),
        ):
            if a < b:
                result = backfill(site, store, a, b, seed=seed, stop=stop)
                if result.stopped:
                    return
                rows, seconds = rows + result.buckets, seconds + result.seconds
    except StoreError as exc:
        log.error("history backfill failed: %s", exc)
        return
    first = end - timedelta(days=days)
    made = simulated_bookings(site, Behaviour(site, seed), first, end, seed=seed)
    booked = _write_bookings(bookings_db, as_import(site, made, first, end))
    print(
        f"  history        {days} days up to {end - timedelta(days=1)} in the store "
        f"({rows} rows, {seconds:.1f} s), {booked} simulated bookings",
        flush=True,
    )
