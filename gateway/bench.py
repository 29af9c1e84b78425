"""The gateway's benchmarks (``tila bench --only gateway``).

- the durable outbox's appends against plain batched SQLite WAL inserts on the same disk, at the
  group sizes the intake writes (one Zigbee2MQTT message at lab load, up to ``GROUP_MAX`` in a burst),
  and the bytes each event costs the disk, WAL and checkpoints included;
- a backlog of 1M events (about 14 hours of the lab at the issue's load, 20 events/s):
  its size at rest, the outbox's start-up, the uplink's drain loop alone, and the real drain by a
  ``tila gateway`` process into a Mosquitto;
- the gateway process at lab load (200 Zigbee2MQTT sensors): peak RSS beside a bare
  ``import paho.mqtt.client``, CPU, and disk writes per event.

The events are the gateway's own: Zigbee2MQTT device messages decoded by :meth:`Gateway.decode`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..bench import (
    Context,
    Row,
    UnavailableError,
    proc_cpu_seconds,
    proc_io,
    proc_status_kib,
    stop_process,
)
from ..mqtt import Connection, Message, MqttUrl
from ..sensors import topics
from ..sensors.site import Site, load_site
from . import bridge
from .bridge import Gateway, GatewaySettings
from .outbox import Outbox

log = logging.getLogger(__name__)

#: The issue's lab load: about 200 sensors, each reporting about once per 30 s.
SENSORS = 200
LAB_PERIOD_S = 30.0
GATEWAY_ID = "bench"


def _default(name: str) -> Any:
    return next(f.default for f in dataclasses.fields(GatewaySettings) if f.name == name)


#: The uplink's batching, as the gateway is configured by default.
BATCH_SIZE: int = _default("batch_size")
INFLIGHT_BATCHES: int = _default("inflight_batches")
_SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def run(ctx: Context) -> Iterator[Row]:
    site_file = ctx.workdir / "site.toml"
    site_file.write_text(site_toml(SENSORS))
    site = load_site(site_file)
    pool = canonical_events(site, ctx.workdir / "decode", messages=2 * SENSORS)
    yield from _appends(ctx, pool)
    ctx.check()
    yield from _backlog(ctx, pool, site_file)
    ctx.check()
    yield from _lab_load(ctx, site_file)


# ----------------------------------------------------------------------------------- the events


def site_toml(sensors: int) -> str:
    """A site of ``sensors`` desks, each watched by one Zigbee2MQTT presence sensor."""
    days = ", ".join(f'{d} = "00:00-24:00"' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    parts = [
        f'[site]\nid = "bench"\nname = "bench"\ntimezone = "Europe/Helsinki"\nopening_hours = {{ {days} }}\n',
        '[[zones]]\nid = "open-office"\n',
    ]
    for i in range(1, sensors + 1):
        parts.append(
            f'[[spaces]]\nid = "desk-{i:03d}"\nkind = "desk"\nzone = "open-office"\ncapacity = 1\n\n'
            f'[[sensors]]\nid = "desk-{i:03d}-pir"\nspace = "desk-{i:03d}"\nformat = "zigbee2mqtt"\n'
            f'topic = "zigbee2mqtt/desk-{i:03d}-pir"\n'
        )
    return "\n".join(parts)


def device_message(site: Site, k: int, now: datetime) -> tuple[str, bytes]:
    """The k-th device message of the site: a presence report, every 20th an availability message.

    The report is what Zigbee2MQTT publishes for an Aqara RTCGQ11LM motion sensor with
    ``last_seen: ISO_8601``: three readings tila keeps (occupancy, battery, linkquality) and some it
    ignores.
    """
    sensor = site.sensors[k % len(site.sensors)]
    if k % 20 == 19:
        return f"{sensor.topic}/availability", b'{"state":"online"}'
    doc = {
        "battery": 100 - k % 70,
        "device_temperature": 23,
        "illuminance": 80 + k % 300,
        "illuminance_lux": 80 + k % 300,
        "linkquality": 40 + k * 7 % 200,
        "occupancy": k % 3 != 0,
        "power_outage_count": 4,
        "voltage": 3005,
        "last_seen": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    return sensor.topic, json.dumps(doc).encode()


def canonical_events(site: Site, data_dir: Path, messages: int) -> list[dict[str, Any]]:
    """Canonical events as the gateway's intake stores them: decoded by :meth:`Gateway.decode`."""
    dummy = MqttUrl.parse("mqtt://127.0.0.1:1")
    gw = Gateway(
        GatewaySettings(site=site, id=GATEWAY_ID, local=dummy, central=dummy, data_dir=str(data_dir))
    )
    try:
        # A day ago: a backlog is what piled up during an outage, and the gateway sends old events
        # differently from live ones.
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        events: list[dict[str, Any]] = []
        for k in range(messages):
            when = start + timedelta(seconds=LAB_PERIOD_S * k / len(site.sensors))
            topic, payload = device_message(site, k, when)
            events.extend(gw.decode(topic, payload, when + timedelta(milliseconds=40)))
    finally:
        gw.outbox.close()
    if not events:
        raise RuntimeError("the gateway decoded no events from the synthetic device messages")
    return events


def _batches(pool: list[dict[str, Any]], total: int, size: int) -> list[list[dict[str, Any]]]:
    """``total`` events from the pool (cycled) in groups of ``size``; built before the clock starts."""
    reps = -(-(total + size) // len(pool))
    ring = pool * reps
    return [ring[i : i + size] for i in range(0, total, size)]


def _text(ev: dict[str, Any]) -> str:
    # As the outbox stores an event (compact JSON).
    return json.dumps(ev, separators=(",", ":"))


# -------------------------------------------------------------------------------------- appends


@dataclasses.dataclass(slots=True)
class _Run:
    seconds: float
    events: int
    write_bytes: int
    wchar: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def written_per_event(self) -> float:
        return (self.write_bytes or self.wchar) / self.events


def _outbox_settings(path: Path) -> tuple[str, str, str]:
    """The outbox's journal mode and synchronous setting, read from an open outbox; and how."""
    ob = Outbox(path)
    try:
        db = getattr(ob, "_db", None)
        if isinstance(db, sqlite3.Connection):
            mode = str(db.execute("PRAGMA journal_mode").fetchone()[0]).upper()
            sync = _SYNC_NAMES.get(int(db.execute("PRAGMA synchronous").fetchone()[0]), "FULL")
            return mode, sync, ""
    finally:
        ob.close()
    # The outbox keeps its connection elsewhere now: what gateway/outbox.py set when this was written.
    return "WAL", "FULL", "; synchronous assumed FULL, as gateway/outbox.py set it when this was written"


#: Whether the outbox also records the local device messages each group came from (the intake's
#: redelivery check); the benchmark then stores them as the intake does.
RECORDS_LOCAL = "local" in inspect.signature(Outbox.append).parameters
#: Events per device message: a Zigbee2MQTT report carries presence, battery and link quality.
EVENTS_PER_MESSAGE = 3


LOCAL_NOTE = (
    f" and a record of each device message ({EVENTS_PER_MESSAGE} events) for the redelivery check"
    if RECORDS_LOCAL
    else ""
)


def _local_records(batches: list[list[dict[str, Any]]]) -> list[list[tuple[int, bytes]]]:
    """One (packet id, digest) per device message, as the intake passes them with each group."""
    out: list[list[tuple[int, bytes]]] = []
    k = 0
    for b in batches:
        recs = []
        for _ in range(-(-len(b) // EVENTS_PER_MESSAGE)):
            k += 1
            recs.append((k % 65535 + 1, hashlib.blake2b(k.to_bytes(8, "big"), digest_size=16).digest()))
        out.append(recs)
    return out


def _append(ob: Outbox, batch: list[dict[str, Any]], local: list[tuple[int, bytes]]) -> None:
    if RECORDS_LOCAL:
        ob.append(batch, local)  # type: ignore[call-arg]
    else:
        ob.append(batch)


def _append_outbox(path: Path, batches: list[list[dict[str, Any]]]) -> _Run:
    ob = Outbox(path)
    local = _local_records(batches)
    io0 = proc_io()
    t0 = time.perf_counter()
    for batch, recs in zip(batches, local, strict=True):
        _append(ob, batch, recs)
    seconds = time.perf_counter() - t0
    ob.close()  # the closing checkpoint is part of what the events cost the disk
    io1 = proc_io()
    n = sum(len(b) for b in batches)
    return _Run(seconds, n, io1["write_bytes"] - io0["write_bytes"], io1["wchar"] - io0["wchar"])


def _append_sqlite(path: Path, batches: list[list[tuple[str]]], sync: str) -> _Run:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={sync}")
    db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, event TEXT NOT NULL)")
    io0 = proc_io()
    t0 = time.perf_counter()
    for batch in batches:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO events (event) VALUES (?)", batch)
        db.execute("COMMIT")
    seconds = time.perf_counter() - t0
    db.close()
    io1 = proc_io()
    n = sum(len(b) for b in batches)
    return _Run(seconds, n, io1["write_bytes"] - io0["write_bytes"], io1["wchar"] - io0["wchar"])


def _appends(ctx: Context, pool: list[dict[str, Any]]) -> Iterator[Row]:
    d = ctx.workdir / "append"
    d.mkdir()
    mode, sync, how = _outbox_settings(d / "probe.db")
    rounds = ctx.size(3, 1)
    # Group sizes: one Zigbee2MQTT message (3 events; at lab load every message is its own group),
    # a busy minute, and the intake's largest group.
    sizes = {
        3: ctx.size(9_000, 600),
        100: ctx.size(100_000, 5_000),
        bridge.GROUP_MAX: ctx.size(200_000, 10_000),
    }
    base_fig = f"plain SQLite table, {mode}, synchronous={sync}, executemany of the same JSON"
    for size, total in sizes.items():
        log.info(
            "gateway: outbox appends, %d events per transaction, %d events × %d rounds", size, total, rounds
        )
        batches = _batches(pool, total, size)
        texts = [[(_text(ev),) for ev in b] for b in batches]
        ours: list[_Run] = []
        theirs: list[_Run] = []
        for r in range(rounds):  # interleaved, so drift in the machine's load hits both alike
            ctx.check()
            ours.append(_append_outbox(d / f"outbox-{size}-{r}.db", batches))
            theirs.append(_append_sqlite(d / f"plain-{size}-{r}.db", texts, sync))
            for f in d.glob(f"*-{size}-{r}.db*"):
                f.unlink()
        counter = (
            "write_bytes" if all(x.write_bytes for x in ours + theirs) else "wchar (write_bytes reads 0 here)"
        )
        what = {
            3: "one Zigbee2MQTT message per transaction, as at lab load",
            100: "a burst",
            bridge.GROUP_MAX: "the intake's largest group (GROUP_MAX)",
        }.get(size, "")
        yield Row(
            f"outbox_append_{size}",
            f"outbox append, {size} events/transaction",
            statistics.median(x.rate for x in ours),
            "events/s",
            statistics.median(x.rate for x in theirs),
            base_fig,
            f"{what}; {total:,} events, median of {rounds}{how}; the outbox's time includes its JSON encoding{LOCAL_NOTE}",
        )
        yield Row(
            f"outbox_disk_bytes_{size}",
            f"disk writes per event, {size} events/transaction",
            statistics.median(x.written_per_event() for x in ours),
            "B/event",
            statistics.median(x.written_per_event() for x in theirs),
            "the same plain SQLite table",
            f"{counter} of /proc/self/io across the appends and the closing checkpoint (WAL and checkpoints; not the filesystem's own journal)",
        )


# -------------------------------------------------------------------------------------- backlog


def _db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())


def _backlog(ctx: Context, pool: list[dict[str, Any]], site_file: Path) -> Iterator[Row]:
    n = ctx.size(1_000_000, 20_000)
    d = ctx.workdir / "backlog"
    path = d / "outbox.db"
    log.info("gateway: filling an outbox with a backlog of %d events", n)
    ob = Outbox(path, max_events=max(n, 2_000_000))
    t0 = time.perf_counter()
    batches = _batches(pool, n, bridge.GROUP_MAX)
    for i, (batch, recs) in enumerate(zip(batches, _local_records(batches), strict=True)):
        _append(ob, batch, recs)
        if i % 200 == 0:
            ctx.check()
    fill = time.perf_counter() - t0
    ob.close()
    yield Row(
        "outbox_fill_backlog",
        f"outbox append into a growing backlog of {n:,}",
        n / fill,
        "events/s",
        note=f"{bridge.GROUP_MAX} events/transaction; compare outbox_append_{bridge.GROUP_MAX} (empty outbox)",
    )
    at_rest = _db_bytes(path)
    text = statistics.fmean(len(_text(ev).encode()) for ev in pool)
    yield Row(
        "outbox_bytes_at_rest",
        "outbox file size per event at rest",
        at_rest / n,
        "B/event",
        text,
        "the event's JSON text",
        f"{at_rest / 1e6:,.0f} MB for {n:,} events after a clean close (WAL checkpointed)",
    )

    ctx.check()
    t0 = time.perf_counter()
    ob = Outbox(path, max_events=max(n, 2_000_000))
    opened = time.perf_counter() - t0
    ob.close()
    yield Row(
        "outbox_open_backlog",
        f"outbox open with a backlog of {n:,}",
        opened,
        "s",
        note="part of the gateway's start-up (the outbox counts its rows)",
    )

    # The real drain below works on a copy, so the drain loop and the gateway both start from n.
    e2e_dir = ctx.workdir / "e2e-data"
    e2e_dir.mkdir()
    shutil.copyfile(path, e2e_dir / "outbox.db")

    yield from _drain_loop(ctx, path, n, at_rest)
    ctx.check()
    try:
        yield from _drain_e2e(ctx, e2e_dir, site_file, n)
    except UnavailableError as exc:
        yield Row(
            "gateway_drain_e2e", "gateway drain into Mosquitto", None, "events/s", note=f"skipped: {exc}"
        )


def _drain_loop(ctx: Context, path: Path, n: int, full_bytes: int) -> Iterator[Row]:
    """What the uplink does for each batch, the broker left out: peek, encode the wire batch, remove."""
    log.info("gateway: draining the backlog in batches of %d (drain loop alone)", BATCH_SIZE)
    ob = Outbox(path, max_events=max(n, 2_000_000))
    cursor = drained = wire = 0
    t_peek = t_encode = t_remove = 0.0
    t0 = time.perf_counter()
    while True:
        a = time.perf_counter()
        rows = ob.peek(cursor, BATCH_SIZE)
        b = time.perf_counter()
        if not rows:
            break
        events = []
        for seq, ev in rows:
            ev["seq"] = seq
            events.append(ev)
        payload = json.dumps(
            {"v": 1, "gateway": GATEWAY_ID, "events": events}, separators=(",", ":")
        ).encode()
        c = time.perf_counter()
        wire += len(payload)
        ob.remove([seq for seq, _ in rows])
        t_peek += b - a
        t_encode += c - b
        t_remove += time.perf_counter() - c
        cursor = rows[-1][0]
        drained += len(rows)
        if drained % (100 * BATCH_SIZE) == 0:
            ctx.check()
    seconds = time.perf_counter() - t0
    left = ob.depth
    ob.close()
    total = t_peek + t_encode + t_remove
    yield Row(
        "outbox_drain_loop",
        f"drain loop alone, backlog of {n:,}",
        drained / seconds,
        "events/s",
        note=(
            f"peek, encode the wire batch, remove; batches of {BATCH_SIZE} (GatewaySettings.batch_size), no broker; time in peek"
            f" {t_peek / total:.0%} (incl. JSON decoding), wire encoding {t_encode / total:.0%},"
            f" remove {t_remove / total:.0%}; {wire / max(drained, 1):.0f} B/event on the wire; {left} left"
        ),
    )
    after = _db_bytes(path)
    yield Row(
        "outbox_bytes_after_drain",
        "outbox file size after draining the backlog",
        after / 1e6,
        "MB",
        full_bytes / 1e6,
        "its size holding the backlog",
        "SQLite keeps freed pages for reuse: the file does not shrink by itself"
        if after >= 0.9 * full_bytes
        else "the outbox gives freed space back to the filesystem",
    )


class _Counter:
    """Counts canonical events arriving on the central broker (and keeps the gateway's health)."""

    def __init__(self, url: str, site: str) -> None:
        self.lock = threading.Lock()
        self.events = 0
        self.seqs: set[int] = set()
        self.first: float | None = None
        self.last = 0.0
        self.first_count = 0
        self.health: dict[str, Any] = {}
        self.health_topic = topics.gateway_health(site, GATEWAY_ID)
        self.conn = Connection(
            MqttUrl.parse(url),
            f"tila-bench-counter-{os.getpid()}",
            subscriptions=[(topics.events(site, GATEWAY_ID), 1), (self.health_topic, 1)],
            on_message=self._on,
        )

    def _on(self, msg: Message) -> None:
        now = time.monotonic()
        if msg.topic == self.health_topic:
            self.health = json.loads(msg.payload)
            return
        events = json.loads(msg.payload)["events"]
        with self.lock:
            if self.first is None:
                self.first, self.first_count = now, len(events)
            self.last = now
            self.events += len(events)
            self.seqs.update(e["seq"] for e in events)

    def rate(self) -> float | None:
        """Events per second from the first message to the last (the first message's events excluded)."""
        with self.lock:
            if self.first is None or self.last <= self.first:
                return None
            return (self.events - self.first_count) / (self.last - self.first)

    def __enter__(self) -> _Counter:
        self.conn.start()
        if not self.conn.wait_connected(10):
            self.conn.stop()
            raise RuntimeError("the counting subscriber could not connect to the bench broker")
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.stop(flush_timeout=0.5)


def _gateway_args(site_file: Path, url: str, data_dir: Path, max_events: int) -> list[str]:
    return [
        "--log-level",
        "WARNING",
        "gateway",
        "--site",
        str(site_file),
        "--id",
        GATEWAY_ID,
        "--local",
        url,
        "--central",
        url,
        "--data-dir",
        str(data_dir),
        "--max-events",
        str(max_events),
    ]


def _drain_e2e(ctx: Context, data_dir: Path, site_file: Path, n: int) -> Iterator[Row]:
    """A ``tila gateway`` process starting with the backlog, into a real Mosquitto, counted there."""
    budget = ctx.size(45, 15)
    log.info("gateway: a tila gateway drains the %d backlog into Mosquitto (at most %d s)", n, budget)
    with ctx.broker("mosquitto-e2e") as broker, _Counter(broker.url, "bench") as counter:
        t0 = time.monotonic()
        args = _gateway_args(site_file, broker.url, data_dir, max(n, 2_000_000))
        with ctx.tila("gateway-e2e", args) as proc:

            def started() -> bool:
                ctx.expect_alive(proc, "gateway-e2e")
                return counter.first is not None

            ctx.wait_until(started, timeout=60, what="the first events from the gateway")
            first = (counter.first or t0) - t0
            deadline = time.monotonic() + budget
            while counter.events < n and time.monotonic() < deadline:
                ctx.expect_alive(proc, "gateway-e2e")
                ctx.sleep(0.1)
            rate = counter.rate()
            received, unique = counter.events, len(counter.seqs)
            peak = proc_status_kib(proc.pid, "VmHWM") / 1024
            stopping = stop_process(proc, timeout=10.0)
        complete = "all" if unique >= n else f"{unique:,} of"
        yield Row(
            "gateway_start_backlog",
            f"gateway start to first event, backlog of {n:,}",
            first,
            "s",
            note="process start (imports, outbox open, connect) to the first batch arriving at the subscriber",
        )
        yield Row(
            "gateway_drain_e2e",
            "gateway drain into Mosquitto (subscriber count)",
            rate,
            "events/s",
            note=(
                f"{complete} {n:,} backlog events arrived in {counter.last - (counter.first or 0):.1f} s"
                f" ({received - unique:,} duplicates); a tila gateway process, QoS 1, batches of"
                f" {BATCH_SIZE}, {INFLIGHT_BATCHES} in flight"
            ),
        )
        yield Row(
            "gateway_rss_drain",
            "gateway peak RSS while draining the backlog",
            peak,
            "MiB",
            note="VmHWM of the gateway process",
        )
        yield Row(
            "gateway_stop_backlog",
            "gateway SIGTERM to exit while draining",
            stopping,
            "s",
            note="the systemd unit allows 10 s (TimeoutStopSec)",
        )


# ------------------------------------------------------------------------------------- lab load


def _bare_paho_rss() -> float:
    """Peak RSS of a bare Python process that imports paho-mqtt (the floor for any MQTT client)."""
    code = (
        "import paho.mqtt.client\n"
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    return int(out.stdout.strip()) / 1024


def _lab_load(ctx: Context, site_file: Path) -> Iterator[Row]:
    try:
        yield from _lab_load_run(ctx, site_file)
    except UnavailableError as exc:
        yield Row("gateway_rss_lab", "gateway peak RSS at lab load", None, "MiB", note=f"skipped: {exc}")


@dataclasses.dataclass(slots=True)
class _Phase:
    period: float
    messages: int
    events: int
    seconds: float
    cpu: float
    write_bytes: int
    wchar: int

    def describe(self, sensors: int) -> str:
        faster = (
            f", {LAB_PERIOD_S / self.period:.0f}× the lab's rate"
            if self.period != LAB_PERIOD_S
            else ", the lab's rate"
        )
        return f"{sensors} sensors, one message each per {self.period:g} s{faster}: {self.messages:,} messages in {self.seconds:.0f} s"


def _publish_phase(
    ctx: Context,
    proc: subprocess.Popen[bytes],
    devices: Connection,
    counter: _Counter,
    site: Site,
    period: float,
    duration: float,
    rss: list[int],
) -> _Phase:
    """Publish every sensor once per ``period`` for ``duration``; measure until the events are out."""
    interval = period / len(site.sensors)
    messages = max(1, int(duration / interval))
    before = counter.events
    expected = 0
    io0, cpu0, t0 = proc_io(proc.pid), proc_cpu_seconds(proc.pid), time.monotonic()
    start = datetime.now(UTC)
    for k in range(messages):
        wait = t0 + k * interval - time.monotonic()
        if wait > 0:
            ctx.sleep(wait)
        topic, payload = device_message(site, k, start + timedelta(seconds=k * interval))
        # Zigbee2MQTT's default is QoS 0; 1 here walks the gateway's acknowledgement path.
        devices.publish(topic, payload, qos=1)
        expected += 1 if topic.endswith("/availability") else 3
        if k % 50 == 0:
            ctx.expect_alive(proc, "gateway-lab")
            rss.append(proc_status_kib(proc.pid, "VmRSS"))
    # The phase lasts its duration (the gateway's idle time counts too), then until its events are out.
    ctx.sleep(max(0.0, t0 + duration - time.monotonic()))
    ctx.wait_until(
        lambda: counter.events - before >= expected, timeout=30, what="every event at the subscriber"
    )
    seconds = time.monotonic() - t0
    io1, cpu1 = proc_io(proc.pid), proc_cpu_seconds(proc.pid)
    return _Phase(
        period,
        messages,
        expected,
        seconds,
        cpu1 - cpu0,
        io1["write_bytes"] - io0["write_bytes"],
        io1["wchar"] - io0["wchar"],
    )


def _lab_load_run(ctx: Context, site_file: Path) -> Iterator[Row]:
    site = load_site(site_file)
    n = len(site.sensors)
    # The lab's rate (each sensor once per 30 s), then a busy spell at 30 times that.
    phases = [(LAB_PERIOD_S, ctx.size(20, 2)), (1.0, ctx.size(10, 2))]
    baseline = _bare_paho_rss()
    data_dir = ctx.workdir / "lab-data"
    rss: list[int] = []
    results: list[_Phase] = []
    with ctx.broker("mosquitto-lab") as broker, _Counter(broker.url, site.id) as counter:
        args = _gateway_args(site_file, broker.url, data_dir, 2_000_000)
        with ctx.tila("gateway-lab", args) as proc:

            def ready() -> bool:
                ctx.expect_alive(proc, "gateway-lab")
                return bool(counter.health.get("local_connected"))

            ctx.wait_until(ready, timeout=30, what="the gateway's first health report")
            devices = Connection(MqttUrl.parse(broker.url), f"tila-bench-z2m-{os.getpid()}")
            devices.start()
            try:
                if not devices.wait_connected(10):
                    raise RuntimeError("the device publisher could not connect to the bench broker")
                for period, duration in phases:
                    log.info(
                        "gateway: %d sensors, one message each per %g s, for %d s (a tila gateway process)",
                        n,
                        period,
                        duration,
                    )
                    results.append(_publish_phase(ctx, proc, devices, counter, site, period, duration, rss))
                peak = proc_status_kib(proc.pid, "VmHWM") / 1024
            finally:
                devices.stop(flush_timeout=1.0)
    lab, busy = results
    yield Row(
        "gateway_rss_lab",
        "gateway peak RSS at lab load",
        peak,
        "MiB",
        baseline,
        "python -c 'import paho.mqtt.client' (its peak RSS)",
        f"VmHWM of the tila gateway process after both load phases below (VmRSS sampled"
        f" {min(rss) / 1024:.1f}–{max(rss) / 1024:.1f} MiB); the issue's target on the Pi: under 60 MB",
    )
    for name, ph in (("lab", lab), ("busy", busy)):
        written, how = ph.write_bytes, "write_bytes"
        if not written:
            written, how = ph.wchar, "wchar (write_bytes reads 0 here)"
        yield Row(
            f"gateway_cpu_{name}",
            f"gateway CPU, {name} load",
            100 * ph.cpu / ph.seconds,
            "% of a CPU",
            note=f"user + system time of the gateway process; {ph.describe(n)}",
        )
        yield Row(
            f"gateway_disk_bytes_{name}",
            f"gateway disk writes per event, {name} load",
            written / ph.events,
            "B/event",
            note=(
                f"{how} of /proc/<gateway>/io: outbox appends, removals after PUBACK, checkpoints;"
                f" {written / ph.seconds / 1024:.1f} KiB/s, {ph.events:,} events"
            ),
        )
    yield Row(
        "gateway_delivered_lab",
        "events delivered at lab and busy load",
        len(counter.seqs),
        "events",
        lab.events + busy.events,
        "events in the device messages sent",
        f"{counter.events - len(counter.seqs)} duplicates",
    )
