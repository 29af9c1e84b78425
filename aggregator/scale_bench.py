"""The load simulation past one machine (``tila bench --only scale``).

100 sites of 200 sensors each (20,000 sensors: per site 180 desks with a Zigbee2MQTT presence sensor
and 20 meeting rooms with a Milesight people counter), one gateway per site publishing canonical
event batches through one real Mosquitto into two ``tila aggregator`` processes, each serving 50
sites from a directory of site files (``--site DIR``) with its own SQLite store. ``--quick``: 4
sites of 20 sensors.

- **ramp**: offered 1k, 5k and 20k events/s, each for a while; every gateway sends one batch every
  0.1 s holding the events of that tenth of a second (as a live gateway sends what came in since its
  last batch), QoS 1. Per step: events/s offered and absorbed (committed to the aggregators'
  journals; read from the journals, whose largest sequence number per gateway is what that gateway's
  in-order events reached), the end-to-end lag, each process's CPU and memory from ``/proc``.
- **lag** is event time → a space's retained state reaching a subscriber on the broker: what a lobby
  screen sees. Each event is stamped when the gateway sends it; every desk report and every counter
  report changes its space's state, whose ``since`` is that event's time. Measured on the spaces of
  four sites (two per aggregator), p50 and p95 over every state of the step, including those that
  came out while the aggregators worked off what queued in the broker during the step;
- **saturation**: the same batches as fast as the publisher goes (kept at most ``WINDOW_EVENTS``
  ahead of the aggregators, so that events stay live rather than late), into two aggregators of 50
  sites each and then, on a fresh broker, into one aggregator serving all 100 sites (``--site``
  given twice): the events/s each configuration absorbs, and the ratio two ÷ one;
- **per-site overhead**: start-up of a 50-site aggregator (process start to every site's retained
  ``online``), its CPU and memory while idle (each site has its own loop, flusher and broker
  connection: see aggregator/service.py).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..bench import Context, Mosquitto, Row, UnavailableError, proc_cpu_seconds, proc_io, proc_status_kib
from ..mqtt import Connection, Message, MqttUrl
from ..sensors import topics
from ..sensors.site import load_site
from ..sensors.wire import decode_batch
from .bench import bare_paho_rss

log = logging.getLogger(__name__)

INSTANCE = "scale"
#: The portfolio sketch of docs/scale.md: 100 buildings of 200 sensors, 20,000 sensors in all.
SITES, SENSORS = 100, 200
QUICK_SITES, QUICK_SENSORS = 4, 20
#: Meeting rooms per site, each with a people counter; the other sensors watch desks.
ROOM_SHARE = 0.1
#: Offered rates of the ramp (events/s), and how long each step lasts (seconds).
STEPS = (1_000, 5_000, 20_000)
QUICK_STEPS = (200, 500, 1_000)
STEP_S, QUICK_STEP_S = 15.0, 3.0
STEP_NAMES = ("low", "mid", "high")
#: Each gateway sends one batch per tick holding that tick's events (a live gateway sends at once
#: what came in since its last batch; tila's gateway sends up to 200 events per batch).
TICK_S = 0.1
MAX_BATCH = 200
#: Events in the saturation run (at the top step's batch size).
SATURATE, QUICK_SATURATE = 200_000, 20_000
#: The saturation publisher stays at most this many events ahead of what the aggregators committed:
#: at the rates measured here (3k events/s and more) that keeps events inside the aggregator's 10 s
#: lateness window, so that the figure is the live path's, not the late one's.
WINDOW_EVENTS = 20_000
#: Sites whose space states are watched for the lag (indices; two per aggregator).
SAMPLED = (0, 1, 50, 51)
#: After a step, how long the aggregators may take to commit what queued in the broker.
DRAIN_TIMEOUT_S = 300.0
ALL_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# ------------------------------------------------------------------------------------ the sites


def site_id(i: int) -> str:
    return f"site-{i:03d}"


def site_toml(i: int, sensors: int) -> str:
    """Site ``i``: desks with Zigbee2MQTT presence sensors and rooms with Milesight counters, open
    around the clock (so that every event accrues whatever the time of the run). Space ids carry the
    site's number, so that the sites of one aggregator can share its store."""
    sid = site_id(i)
    rooms = max(1, round(sensors * ROOM_SHARE))
    opening = ", ".join(f'{d} = "00:00-24:00"' for d in ALL_DAYS)
    parts = [
        f'[site]\nid = "{sid}"\nname = "scale {i}"\ntimezone = "Europe/Helsinki"\nholidays = "none"\n'
        f"opening_hours = {{ {opening} }}\n",
        '[[zones]]\nid = "desks"\n',
        '[[zones]]\nid = "rooms"\n',
    ]
    for k in range(sensors - rooms):
        space = f"s{i:03d}-d{k:03d}"
        parts.append(
            f'[[spaces]]\nid = "{space}"\nkind = "desk"\nzone = "desks"\ncapacity = 1\n\n'
            f'[[sensors]]\nid = "{space}-pir"\nspace = "{space}"\nformat = "zigbee2mqtt"\n'
            f'topic = "zigbee2mqtt/{space}-pir"\n'
        )
    for k in range(rooms):
        space = f"s{i:03d}-r{k:02d}"
        # Milesight DevEUIs start with its OUI 24e124 (as in the bundled site).
        eui = f"24e124{i:05x}{k:05x}"
        parts.append(
            f'[[spaces]]\nid = "{space}"\nkind = "room"\nzone = "rooms"\ncapacity = 8\n\n'
            f'[[sensors]]\nid = "{space}-vs121"\nspace = "{space}"\nformat = "chirpstack-milesight"\n'
            f'topic = "application/scale/device/{eui}/event/up"\n'
        )
    return "\n".join(parts)


# ----------------------------------------------------------------------------------- the gateways


@dataclass(slots=True)
class Gateway:
    """One site's gateway: goes round its sensors, each report giving the events its gateway decodes
    from one device message (Zigbee2MQTT: presence, battery, link quality; the counter: a count)."""

    site: str
    id: str
    #: Per sensor: (id, space, is a counter).
    sensors: list[tuple[str, str, bool]]
    seq: int = 0
    report: int = 0
    #: Events of the current report not yet sent (a report may span two batches).
    rest: list[str] = field(default_factory=list)
    credit: float = 0.0

    @property
    def topic(self) -> str:
        return topics.events(self.site, self.id)

    def _report(self, when: str, received: str) -> list[str]:
        sensor, space, counter = self.sensors[self.report % len(self.sensors)]
        turn = self.report // len(self.sensors)
        self.report += 1
        head = f'"sensor":"{sensor}","space":"{space}","time":"{when}","received":"{received}"'
        if counter:
            # 0, 3, 6, 1, 4, 7, ...: a different head count on every report (capacity 8).
            return [f'"type":"count",{head},"count":{turn * 3 % 8}']
        occupied = "true" if turn % 2 == 0 else "false"
        return [
            f'"type":"presence",{head},"occupied":{occupied}',
            f'"type":"battery",{head},"battery":{100 - turn % 70}.0',
            f'"type":"linkquality",{head},"linkquality":{40 + turn * 7 % 200}',
        ]

    def batch(self, n: int, now: float) -> bytes:
        """The next ``n`` events as one canonical batch, stamped ``now``."""
        when = datetime.fromtimestamp(now, UTC).isoformat()
        received = datetime.fromtimestamp(now + 0.01, UTC).isoformat()
        out = []
        while len(out) < n:
            if not self.rest:
                self.rest = self._report(when, received)
            self.seq += 1
            out.append(f'{{"seq":{self.seq},{self.rest.pop(0)}}}')
        return f'{{"v":1,"gateway":"{self.id}","events":[{",".join(out)}]}}'.encode()


def gateways_for(site_files: list[Path]) -> list[Gateway]:
    out = []
    for f in site_files:
        site = load_site(f)
        sensors = [(s.id, s.space, s.format != "zigbee2mqtt") for s in site.sensors]
        out.append(Gateway(site.id, f"gw-{site.id}", sensors))
    return out


def _check_wire(gw: Gateway) -> None:
    """The generated batches must read as canonical batches (sensors/wire.py), every event good."""
    probe = Gateway(gw.site, gw.id, gw.sensors)
    good, bad = decode_batch(probe.batch(len(gw.sensors) * 2, time.time()))
    if bad or len(good) != len(gw.sensors) * 2:
        raise RuntimeError(f"the generated batch does not decode cleanly: {bad[:2]}")


class Publishers:
    """The gateways' connections to the central broker (10 connections carrying 100 gateways)."""

    def __init__(self, url: str, count: int) -> None:
        self.conns = [
            Connection(MqttUrl.parse(url), f"tila-bench-scale-gw-{k}", max_inflight=100) for k in range(count)
        ]
        for c in self.conns:
            c.start()
        for c in self.conns:
            if not c.wait_connected(10):
                self.close()
                raise RuntimeError("the bench publisher could not connect to the bench broker")

    def publish(self, k: int, topic: str, payload: bytes) -> None:
        self.conns[k % len(self.conns)].publish(topic, payload, qos=1)

    def pending(self) -> int:
        return sum(c.pending() for c in self.conns)

    def close(self) -> None:
        for c in self.conns:
            c.stop(flush_timeout=5.0)


# ------------------------------------------------------------------------------------- watching


class Watcher:
    """One subscriber on the broker: aggregators' retained ``online`` per site, and the lag of the
    sampled sites' space states (arrival − ``since``, the event time of the change)."""

    def __init__(self, url: str, sampled: list[str]) -> None:
        self.lock = threading.Lock()
        self.online: dict[str, set[str]] = {}
        #: (arrival, since) of every space state of the sampled sites.
        self.states: list[tuple[float, float]] = []
        subs = [(topics.aggregator_status("+", "+"), 1), *((topics.space_state_all(s), 0) for s in sampled)]
        self.conn = Connection(
            MqttUrl.parse(url), "tila-bench-scale-watch", subscriptions=subs, on_message=self._on
        )

    def _on(self, msg: Message) -> None:
        now = time.time()
        parsed = topics.parse(msg.topic)
        if parsed is None:
            return
        site, kind, ident, _ = parsed
        if kind == "aggregators":
            with self.lock:
                members = self.online.setdefault(ident, set())
                (members.add if msg.payload == b"online" else members.discard)(site)
        elif kind == "spaces":
            since = json.loads(msg.payload).get("since")
            if since:
                with self.lock:
                    self.states.append((now, datetime.fromisoformat(since).timestamp()))

    def sites_online(self, instance: str) -> int:
        with self.lock:
            return len(self.online.get(instance, ()))

    def lags(self, start: float, end: float) -> list[float]:
        """Lags of the states of events stamped in [start, end)."""
        with self.lock:
            return [a - s for a, s in self.states if start <= s < end]

    def __enter__(self) -> Watcher:
        self.conn.start()
        if not self.conn.subscribed.wait(10):
            self.conn.stop()
            raise RuntimeError("the bench watcher could not subscribe on the bench broker")
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.stop(flush_timeout=0.2)


@dataclass(slots=True)
class Aggregator:
    """A ``tila aggregator`` process serving a set of sites, seen through /proc and its journals."""

    name: str
    proc: subprocess.Popen[bytes]
    data_dir: Path
    instance: str
    sites: list[str]
    _dbs: dict[str, sqlite3.Connection] = field(default_factory=dict)

    def taken(self, gateways: dict[str, Gateway]) -> int:
        """Events committed to the journals: per site, its one gateway's largest sequence number."""
        total = 0
        for s in self.sites:
            db = self._dbs.get(s)
            path = self.data_dir / f"aggregator-{s}-{self.instance}.db"
            if db is None:
                if not path.exists():
                    continue
                db = self._dbs[s] = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            try:
                row = db.execute(
                    "SELECT MAX(seq) FROM events WHERE gateway = ?", (gateways[s].id,)
                ).fetchone()
            except sqlite3.OperationalError:  # the schema is not there yet
                continue
            total += int(row[0] or 0)
        return total

    def counters(self) -> dict[str, int]:
        """The sum of every site's checkpoint counters (committed)."""
        out: dict[str, int] = {}
        for db in self._dbs.values():
            row = db.execute("SELECT doc FROM checkpoint WHERE id = 1").fetchone()
            for k, v in (json.loads(row[0]).get("counters", {}) if row else {}).items():
                out[k] = out.get(k, 0) + int(v)
        return out

    def close(self) -> None:
        for db in self._dbs.values():
            db.close()
        self._dbs.clear()


@dataclass(slots=True)
class Probe:
    """CPU seconds of each process at a point in time."""

    at: float
    cpu: dict[int, float]

    @classmethod
    def take(cls, pids: list[int]) -> Probe:
        return cls(time.monotonic(), {p: proc_cpu_seconds(p) for p in pids})

    def percent(self, later: Probe, pid: int) -> float:
        return 100 * (later.cpu[pid] - self.cpu[pid]) / (later.at - self.at)


# -------------------------------------------------------------------------------------- the run


@dataclass(slots=True)
class Setup:
    ctx: Context
    broker: Mosquitto
    gateways: dict[str, Gateway]
    aggs: list[Aggregator]
    watcher: Watcher
    pubs: Publishers

    @property
    def order(self) -> list[Gateway]:
        return list(self.gateways.values())

    def taken(self) -> int:
        for a in self.aggs:
            self.ctx.expect_alive(a.proc, a.name)
        return sum(a.taken(self.gateways) for a in self.aggs)

    def sent(self) -> int:
        return sum(g.seq for g in self.gateways.values())

    def drain(self, timeout: float) -> float:
        """Wait until every event sent is committed; returns when (monotonic)."""
        target = self.sent()
        deadline = time.monotonic() + timeout
        while self.taken() < target:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"aggregators: {self.taken():,} of {target:,} events after {timeout:.0f} s"
                )
            self.ctx.sleep(0.05)
        return time.monotonic()


def _aggregator_args(site_args: list[str], url: str, data_dir: Path) -> list[str]:
    return [
        "--log-level", "WARNING", "aggregator", *site_args, "--mqtt", url,
        "--store", f"sqlite:///{data_dir / 'tila.db'}", "--id", INSTANCE, "--data-dir", str(data_dir),
    ]  # fmt: skip


def _start(
    ctx: Context, stack: ExitStack, label: str, groups: list[list[Path]], site_args: list[list[str]]
) -> tuple[Setup, float]:
    """A broker, the watcher, one aggregator per group of sites, the publishers; returns the setup
    and the seconds from the aggregators' start to every site's retained ``online``."""
    files = [f for g in groups for f in g]
    gateways = {g.site: g for g in gateways_for(files)}
    _check_wire(next(iter(gateways.values())))
    broker = stack.enter_context(ctx.broker(f"mosquitto-{label}"))
    sampled = [site_id(i) for i in SAMPLED if i < len(files)]
    watcher = stack.enter_context(Watcher(broker.url, sampled))
    aggs = []
    t0 = time.monotonic()
    for k, (group, args) in enumerate(zip(groups, site_args, strict=True)):
        name = f"aggregator-{label}-{k}"
        data_dir = ctx.workdir / f"{name}-data"
        data_dir.mkdir()
        proc = stack.enter_context(ctx.tila(name, _aggregator_args(args, broker.url, data_dir)))
        agg = Aggregator(name, proc, data_dir, INSTANCE, [load_site(f).id for f in group])
        stack.callback(agg.close)
        aggs.append(agg)

    def online() -> bool:
        for a in aggs:
            ctx.expect_alive(a.proc, a.name)
        return watcher.sites_online(INSTANCE) >= len(files)

    ctx.wait_until(online, 300, f"{len(files)} sites' aggregators to connect", interval=0.05)
    started = time.monotonic() - t0
    pubs = Publishers(broker.url, min(10, len(files)))
    stack.callback(pubs.close)
    return Setup(ctx, broker, gateways, aggs, watcher, pubs), started


def _batch_size(rate: float, gateways: int) -> int:
    return max(1, min(MAX_BATCH, round(rate * TICK_S / gateways)))


@dataclass(slots=True)
class Step:
    offered: float
    absorbed: float
    target: float
    seconds: float
    drain_s: float
    lags: list[float]
    cpu: dict[str, float]
    rss_mib: dict[str, float]
    batch: int
    messages: int
    #: Bytes the aggregators sent towards the disk during the step (journals and stores).
    written: int
    #: The machine's 1-minute load average at the end of the step (others' work shows here).
    load: float


def _step(s: Setup, rate: float, seconds: float) -> Step:
    """Offer ``rate`` events/s for ``seconds``: every gateway one batch per tick."""
    gws = s.order
    share = rate * TICK_S / len(gws)
    pids = [a.proc.pid for a in s.aggs] + [s.broker.proc.pid]  # type: ignore[union-attr]
    taken0, sent0 = s.taken(), s.sent()
    p0 = Probe.take(pids)
    io0 = sum(_written(a.proc.pid) for a in s.aggs)
    wall0 = time.time()
    t0 = time.monotonic()
    messages = tick = 0
    while True:
        due = t0 + tick * TICK_S
        now = time.monotonic()
        if now >= t0 + seconds:
            break
        if due > now:
            s.ctx.sleep(due - now)
        stamp = time.time()
        for k, g in enumerate(gws):
            g.credit += share
            n = int(g.credit)
            while n > 0:
                m = min(n, MAX_BATCH)
                s.pubs.publish(k, g.topic, g.batch(m, stamp))
                g.credit -= m
                n -= m
                messages += 1
        tick += 1
        if tick % 10 == 0:
            s.ctx.check()
    elapsed = time.monotonic() - t0
    wall1 = time.time()
    taken1 = s.taken()
    p1 = Probe.take(pids)
    io1 = sum(_written(a.proc.pid) for a in s.aggs)
    rss = {a.name: proc_status_kib(a.proc.pid, "VmRSS") / 1024 for a in s.aggs}
    rss["mosquitto"] = proc_status_kib(s.broker.proc.pid, "VmRSS") / 1024  # type: ignore[union-attr]
    done = s.drain(DRAIN_TIMEOUT_S)
    s.ctx.sleep(0.5)  # the last states on their way to the watcher
    cpu = {a.name: p0.percent(p1, a.proc.pid) for a in s.aggs}
    cpu["mosquitto"] = p0.percent(p1, s.broker.proc.pid)  # type: ignore[union-attr]
    sent = s.sent() - sent0
    return Step(
        offered=sent / elapsed,
        absorbed=(taken1 - taken0) / elapsed,
        target=rate,
        seconds=elapsed,
        drain_s=done - (t0 + elapsed),
        lags=s.watcher.lags(wall0, wall1),
        cpu=cpu,
        rss_mib=rss,
        batch=_batch_size(rate, len(gws)),
        messages=messages,
        written=io1 - io0,
        load=os.getloadavg()[0],
    )


def _written(pid: int) -> int:
    io = proc_io(pid)
    return io["write_bytes"] or io["wchar"]


def _saturate(s: Setup, n: int, batch: int) -> tuple[float, float, float]:
    """Send ``n`` events in batches of ``batch``, round the gateways, as fast as the publisher goes
    while at most WINDOW_EVENTS ahead of the aggregators; returns events/s absorbed (first send to
    last commit), the aggregators' CPU (% of a core, all together) and Mosquitto's."""
    gws = s.order
    pids = [a.proc.pid for a in s.aggs] + [s.broker.proc.pid]  # type: ignore[union-attr]
    base = s.sent()
    p0 = Probe.take(pids)
    t0 = time.monotonic()
    sent = k = 0
    taken = s.taken()
    while sent < n:
        if sent - (taken - base) > WINDOW_EVENTS:
            taken = s.taken()
            while sent - (taken - base) > WINDOW_EVENTS:
                s.ctx.sleep(0.01)
                taken = s.taken()
        g = gws[k % len(gws)]
        m = min(batch, n - sent)
        s.pubs.publish(k, g.topic, g.batch(m, time.time()))
        sent += m
        k += 1
        if k % 200 == 0:
            s.ctx.check()
    done = s.drain(DRAIN_TIMEOUT_S)
    p1 = Probe.take(pids)
    aggs = sum(p0.percent(p1, a.proc.pid) for a in s.aggs)
    return n / (done - t0), aggs, p0.percent(p1, s.broker.proc.pid)  # type: ignore[union-attr]


def _quantile(xs: list[float], q: float) -> float | None:
    if len(xs) < 2:
        return xs[0] if xs else None
    return statistics.quantiles(xs, n=100, method="inclusive")[round(q * 100) - 1]


def run(ctx: Context) -> Iterator[Row]:
    # Twelve connections per configuration: their connect and disconnect lines would bury the table.
    mqtt_log = logging.getLogger("tila.mqtt")
    level = mqtt_log.level
    mqtt_log.setLevel(max(logging.WARNING, level))
    try:
        yield from _run(ctx)
    except UnavailableError as exc:
        yield Row(
            "scale_absorbed_high", "two aggregators, absorbed", None, "events/s", note=f"skipped: {exc}"
        )
    finally:
        mqtt_log.setLevel(level)


def _run(ctx: Context) -> Iterator[Row]:
    n_sites = ctx.size(SITES, QUICK_SITES)
    n_sensors = ctx.size(SENSORS, QUICK_SENSORS)
    steps = QUICK_STEPS if ctx.quick else STEPS
    step_s = QUICK_STEP_S if ctx.quick else STEP_S
    half = n_sites // 2
    dirs = [ctx.workdir / "sites-a", ctx.workdir / "sites-b"]
    groups: list[list[Path]] = [[], []]
    for i in range(n_sites):
        k = 0 if i < half else 1
        dirs[k].mkdir(exist_ok=True)
        f = dirs[k] / f"{site_id(i)}.toml"
        f.write_text(site_toml(i, n_sensors))
        groups[k].append(f)
    sensors = n_sites * n_sensors
    what = f"{n_sites} sites × {n_sensors} sensors ({sensors:,}), one gateway each"
    paho = bare_paho_rss()

    # ------------------------------------------------------------- two aggregators of half the sites
    with ExitStack() as stack:
        s, started = _start(ctx, stack, "two", groups, [["--site", str(d)] for d in dirs])
        a = s.aggs[0]
        yield Row(
            "scale_start_half",
            f"aggregator start-up, {len(a.sites)} sites ({len(a.sites) * n_sensors:,} sensors)",
            started,
            "s",
            note="both aggregators started together, each with --site DIR of its half; process start to"
            " every site's retained online status (imports, site files, a journal and a broker connection per site)",
        )
        idle_s = ctx.size(5.0, 1.5)
        ctx.sleep(1.0)
        p0 = Probe.take([a.proc.pid])
        ctx.sleep(idle_s)
        p1 = Probe.take([a.proc.pid])
        yield Row(
            "scale_idle_cpu_half",
            f"aggregator CPU while idle, {len(a.sites)} sites",
            p0.percent(p1, a.proc.pid),
            "% of a CPU",
            note=f"user + system over {idle_s:.1f} s without events: each site's loop wakes every commit interval (0.1–1 s), its"
            " flusher every 0.5 s, its clock ticks every second",
        )
        yield Row(
            "scale_idle_rss_half",
            f"aggregator RSS while idle, {len(a.sites)} sites",
            proc_status_kib(a.proc.pid, "VmRSS") / 1024,
            "MiB",
            paho,
            "python -c 'import paho.mqtt.client' (its peak RSS)",
            f"VmRSS of the aggregator serving {len(a.sites)} sites, every space's state published (unknown until its first event)",
        )
        for name, rate in zip(STEP_NAMES, steps, strict=True):
            ctx.check()
            st = _step(s, rate, step_s)
            p50, p95 = _quantile(st.lags, 0.5), _quantile(st.lags, 0.95)
            agg_cpu = sum(v for k, v in st.cpu.items() if k != "mosquitto")
            agg_rss = max(v for k, v in st.rss_mib.items() if k != "mosquitto")
            common = (
                f"{what}; target {st.target:,.0f} events/s for {st.seconds:.0f} s, batches of {st.batch}"
                f" per gateway every {TICK_S} s ({st.messages / st.seconds:,.0f} messages/s), QoS 1"
            )
            yield Row(
                f"scale_absorbed_{name}",
                f"two aggregators, {st.target / 1000:g}k events/s offered: absorbed",
                st.absorbed,
                "events/s",
                st.offered,
                "events/s offered (published by the gateways)",
                f"{common}; committed to the journals during the step; the rest was committed"
                f" {st.drain_s:.1f} s after it ended; load average {st.load:.1f} on {_cpus()} CPUs",
            )
            yield Row(
                f"scale_lag_p50_{name}",
                f"lag event → retained space state, p50, {st.target / 1000:g}k/s",
                p50,
                "s",
                note=f"{len(st.lags):,} state changes of {len(SAMPLED)} sampled sites; event time (stamped as"
                " the gateway sends) to the retained state's arrival at a subscriber on the broker",
            )
            yield Row(
                f"scale_lag_p95_{name}",
                f"lag event → retained space state, p95, {st.target / 1000:g}k/s",
                p95,
                "s",
            )
            yield Row(
                f"scale_cpu_{name}",
                f"aggregators' CPU at {st.target / 1000:g}k events/s",
                agg_cpu,
                "% of a CPU",
                note=", ".join(f"{k} {v:.0f}%" for k, v in st.cpu.items() if k != "mosquitto")
                + f"; user + system over the step, on this machine's {_cpus()} CPUs",
            )
            yield Row(
                f"scale_rss_{name}",
                f"aggregator RSS at {st.target / 1000:g}k events/s (larger of two)",
                agg_rss,
                "MiB",
                paho,
                "python -c 'import paho.mqtt.client' (its peak RSS)",
                ", ".join(f"{k} {v:.1f} MiB" for k, v in st.rss_mib.items() if k != "mosquitto")
                + " (VmRSS at the end of the step)",
            )
            yield Row(
                f"scale_disk_{name}",
                f"aggregators' disk writes at {st.target / 1000:g}k events/s",
                st.written / st.seconds / 1e6,
                "MB/s",
                note="write_bytes of /proc/<aggregator>/io, both together: journals (events, checkpoints, bucket"
                " rows waiting) and the SQLite stores (every open bucket rewritten at each flush)",
            )
            yield Row(
                f"scale_mosquitto_cpu_{name}",
                f"Mosquitto CPU at {st.target / 1000:g}k events/s",
                st.cpu["mosquitto"],
                "% of a CPU",
                note=f"VmRSS {st.rss_mib['mosquitto']:.1f} MiB at the end of the step; it carries the batches"
                " in and every retained space and sensor state out",
            )
            yield Row(
                f"scale_mosquitto_rss_{name}",
                f"Mosquitto RSS at {st.target / 1000:g}k events/s",
                st.rss_mib["mosquitto"],
                "MiB",
            )
        ctx.check()
        batch = _batch_size(steps[-1], n_sites)
        n = ctx.size(SATURATE, QUICK_SATURATE)
        two, two_cpu, two_mq = _saturate(s, n, batch)
        load_two = os.getloadavg()[0]
        counters: dict[str, int] = {}
        for a in s.aggs:
            for k, v in a.counters().items():
                counters[k] = counters.get(k, 0) + v

    # -------------------------------------------------------------- one aggregator for every site
    ctx.check()
    with ExitStack() as stack:
        s1, started1 = _start(ctx, stack, "one", [groups[0] + groups[1]], [[f"--site={d}" for d in dirs]])
        one, one_cpu, one_mq = _saturate(s1, n, batch)
        load_one = os.getloadavg()[0]
        rss_one = proc_status_kib(s1.aggs[0].proc.pid, "VmRSS") / 1024
        counters1 = s1.aggs[0].counters()

    def tally(c: dict[str, int]) -> str:
        return (
            f"applied {c.get('events', 0):,}, late {c.get('late', 0):,}, duplicates {c.get('duplicates', 0):,},"
            f" quarantined {sum(v for k, v in c.items() if k.startswith('quarantined')):,}"
        )

    yield Row(
        "scale_saturate_two",
        f"two aggregators of {half} sites, as fast as it goes",
        two,
        "events/s",
        one,
        f"one aggregator serving all {n_sites} sites (--site given twice), same events",
        f"{n:,} events in batches of {batch}, round the {n_sites} gateways, the publisher at most"
        f" {WINDOW_EVENTS:,} events ahead; first send to last commit; CPU: aggregators {two_cpu:.0f}%, Mosquitto"
        f" {two_mq:.0f}% (two) against {one_cpu:.0f}% and {one_mq:.0f}% (one), on this machine's"
        f" {_cpus()} CPUs, load average {load_two:.1f} and {load_one:.1f} at the ends; counters over the whole"
        f" run: {tally(counters)}",
    )
    yield Row(
        "scale_saturate_one",
        f"one aggregator of {n_sites} sites, as fast as it goes",
        one,
        "events/s",
        note=f"started in {started1:.1f} s; VmRSS {rss_one:.1f} MiB after the run; counters: {tally(counters1)}",
    )


def _cpus() -> int:
    return os.cpu_count() or 1
