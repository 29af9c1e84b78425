"""The aggregator's benchmarks (``tila bench --only aggregator``).

- **throughput**: canonical event batches as a gateway publishes them (QoS 1, batches of the
  gateway's ``batch_size``) through a real Mosquitto into a ``tila aggregator`` process with a SQLite
  store and its journal, counted when they are committed to the journal; beside, in the same run
  and on the same broker, a bare paho subscriber that only ``json.loads`` each batch. Two cases:
  *live* events (stamped as they are sent, kept within the lateness window by holding the
  publisher at most ``WINDOW_EVENTS`` ahead of the consumer) and a *backlog* (an outage's events,
  queued in the broker before the consumer connects, then drained: the late-event path);
- **memory at 10k spaces**: a ``tila aggregator`` holding live state for 10,000 desks (each fed a
  Zigbee2MQTT report), its peak RSS beside a bare ``import paho.mqtt.client``, its start-up time,
  the size of the checkpoint the journal rewrites on every commit, and what it costs while idle.

The site is synthetic: desks, each watched by one Zigbee2MQTT presence sensor, open around the clock
so that every slot accrues whatever the time of the run (the costliest hours, and the same figures
at any hour).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from ..bench import (
    Context,
    Mosquitto,
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
from ..sensors.wire import decode_batch

log = logging.getLogger(__name__)

SITE_ID = "bench"
GATEWAY_ID = "bench-gw"
INSTANCE = "bench"
#: "A few hundred spaces": a building's site.
SPACES = 300
#: The issue's memory figure.
BIG_SITE = 10_000
#: Each sensor reports once per this many seconds of site time (the gateway bench's lab period).
REPORT_PERIOD_S = 30.0
#: The live publisher stays at most this many events ahead of what the consumer has taken: the
#: lag stays well inside the aggregator's 10 s lateness window at any rate above 4k events/s.
WINDOW_EVENTS = 40_000
ALL_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _gateway_batch_size() -> int:
    from ..gateway.bridge import GatewaySettings

    size = next(f.default for f in dataclasses.fields(GatewaySettings) if f.name == "batch_size")
    if not isinstance(size, int):
        raise RuntimeError("GatewaySettings.batch_size has no integer default")
    return size


def run(ctx: Context) -> Iterator[Row]:
    batch = _gateway_batch_size()
    site_file = ctx.workdir / "site.toml"
    site_file.write_text(site_toml(SPACES))
    site = load_site(site_file)
    n = ctx.size(400_000, 20_000)
    try:
        yield from _throughput(ctx, site, site_file, n, batch)
    except UnavailableError as exc:
        yield Row(
            "aggregator_events_live", "aggregator, live events", None, "events/s", note=f"skipped: {exc}"
        )
    ctx.check()
    yield from _big_site(ctx, ctx.size(BIG_SITE, 1_000), batch)


# ------------------------------------------------------------------------------------ the site


def space_id(i: int) -> str:
    return f"desk-{i:05d}"


def site_toml(
    spaces: int, zones: int = 4, hours: str = "00:00-24:00", days: tuple[str, ...] = ALL_DAYS
) -> str:
    """A site of ``spaces`` desks in ``zones`` zones, each desk watched by one Zigbee2MQTT sensor."""
    opening = ", ".join(f'{d} = "{hours}"' for d in days)
    parts = [
        f'[site]\nid = "{SITE_ID}"\nname = "bench"\ntimezone = "Europe/Helsinki"\n'
        f"opening_hours = {{ {opening} }}\n",
        *(f'[[zones]]\nid = "zone-{z:02d}"\n' for z in range(zones)),
    ]
    for i in range(spaces):
        sid = space_id(i)
        parts.append(
            f'[[spaces]]\nid = "{sid}"\nkind = "desk"\nzone = "zone-{i % zones:02d}"\ncapacity = 1\n\n'
            f'[[sensors]]\nid = "{sid}-pir"\nspace = "{sid}"\nformat = "zigbee2mqtt"\n'
            f'topic = "zigbee2mqtt/{sid}-pir"\n'
        )
    return "\n".join(parts)


# ---------------------------------------------------------------------------------- the events

#: Placeholders for the event and receipt times of a live batch, filled in as it is sent.
T_MARK, R_MARK = "@T@", "@R@"


@dataclasses.dataclass(slots=True)
class Batches:
    payloads: list[bytes]
    counts: list[int]

    @property
    def events(self) -> int:
        return sum(self.counts)

    @property
    def bytes(self) -> int:
        return sum(map(len, self.payloads))


def make_batches(
    site: Site, n: int, size: int, clock: Callable[[int], float] | None, sensors: int | None = None
) -> Batches:
    """At least ``n`` canonical events in wire batches of ``size``, as a gateway sends them.

    Sensor reports go round the site's sensors (the first ``sensors`` of them); report k is what the
    gateway decodes from one Zigbee2MQTT message: presence, battery and link quality, and every 20th
    an availability message instead. ``clock(k)`` gives report k's time (epoch seconds); without a
    clock, times are the placeholders ``T_MARK`` and ``R_MARK``, filled in when the batch is sent.
    Sequence numbers run from 1.
    """
    chosen = site.sensors[: sensors or len(site.sensors)]
    payloads: list[bytes] = []
    counts: list[int] = []
    events: list[dict[str, Any]] = []
    seq = k = 0

    def flush() -> None:
        doc = {"v": 1, "gateway": GATEWAY_ID, "events": events}
        payloads.append(json.dumps(doc, separators=(",", ":")).encode())
        counts.append(len(events))

    while seq < n:
        sensor = chosen[k % len(chosen)]
        if clock is None:
            when, received = T_MARK, R_MARK
        else:
            t = clock(k)
            when = datetime.fromtimestamp(t, UTC).isoformat()
            received = datetime.fromtimestamp(t + 0.04, UTC).isoformat()
        head = {"sensor": sensor.id, "space": sensor.space, "time": when, "received": received}
        if k % 20 == 19:
            values: list[tuple[str, str, Any]] = [("availability", "online", True)]
        else:
            # Occupancy changes two reports in three, so spaces change state and buckets fill.
            occupied = (k // len(chosen) + k % len(chosen)) % 3 != 0
            values = [
                ("presence", "occupied", occupied),
                ("battery", "battery", float(100 - k % 70)),
                ("linkquality", "linkquality", 40 + k * 7 % 200),
            ]
        for kind, field, value in values:
            seq += 1
            events.append({"seq": seq, "type": kind, **head, field: value})
            if len(events) == size:
                flush()
                events = []
        k += 1
    if events:
        flush()
    return Batches(payloads, counts)


def _check_wire(batches: Batches) -> None:
    """The synthetic batches must read as canonical batches (sensors/wire.py), every event good."""
    sample = batches.payloads[0]
    sample = sample.replace(T_MARK.encode(), b"2026-01-05T08:00:00+00:00")
    sample = sample.replace(R_MARK.encode(), b"2026-01-05T08:00:00.040000+00:00")
    good, bad = decode_batch(sample)
    if bad or len(good) != batches.counts[0]:
        raise RuntimeError(f"the synthetic batch does not decode cleanly: {bad[:2]}")


def _live(payload: bytes) -> bytes:
    now = datetime.now(UTC)
    t = now.isoformat().encode()
    r = (now + timedelta(milliseconds=40)).isoformat().encode()
    return payload.replace(T_MARK.encode(), t).replace(R_MARK.encode(), r)


# ----------------------------------------------------------------------------------- consumers

#: The baseline consumer: a bare paho subscriber (QoS 1, persistent session, paho's automatic
#: acknowledgements) that only decodes each batch's JSON. It reports on stdout.
BARE_SUBSCRIBER = r"""
import json, sys, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

host, port, topic, client_id, total = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
events = messages = 0

def on_connect(client, userdata, flags, reason_code, properties):
    client.subscribe(topic, 1)
    print("connected", time.monotonic(), flush=True)

def on_subscribe(client, userdata, mid, reason_codes, properties):
    print("subscribed", time.monotonic(), flush=True)

def on_message(client, userdata, msg):
    global events, messages
    doc = json.loads(msg.payload)
    events += len(doc["events"])
    messages += 1
    if messages % 10 == 0 or events >= total:
        print("progress", events, messages, time.monotonic(), flush=True)
    if events >= total:
        client.disconnect()

client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                     protocol=mqtt.MQTTv311)
client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
client.connect(host, port, keepalive=30)
client.loop_forever()
print("peak_kib", next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")), flush=True)
"""


class _Consumer:
    """What the live publisher needs of a consumer: how many events it has taken so far."""

    name: str

    def taken(self) -> int:
        raise NotImplementedError


class _Bare(_Consumer):
    def __init__(self, ctx: Context, broker: Mosquitto, topic: str, client_id: str, total: int, name: str):
        self.name = name
        self.ctx = ctx
        self._log = open(ctx.workdir / f"{name}.log", "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                BARE_SUBSCRIBER,
                "127.0.0.1",
                str(broker.port),
                topic,
                client_id,
                str(total),
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self.connected_at: float | None = None
        self.subscribed_at: float | None = None
        self.events = self.messages = 0
        self.done_at: float | None = None
        self.peak_kib = 0
        self.total = total
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, out: IO[bytes]) -> None:
        for raw in out:
            parts = raw.decode(errors="replace").split()
            if not parts:
                continue
            if parts[0] == "connected":
                self.connected_at = float(parts[1])
            elif parts[0] == "subscribed":
                self.subscribed_at = float(parts[1])
            elif parts[0] == "progress":
                self.events, self.messages = int(parts[1]), int(parts[2])
                if self.events >= self.total:
                    self.done_at = float(parts[3])
            elif parts[0] == "peak_kib":
                self.peak_kib = int(parts[1])

    def taken(self) -> int:
        if self.proc.poll() is not None:
            self._reader.join(5)  # what it printed before it exited
        if self.proc.poll() is not None and self.done_at is None:
            tail = (self.ctx.workdir / f"{self.name}.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"{self.name} exited with code {self.proc.returncode}:\n{tail}")
        return self.events

    def close(self) -> None:
        stop_process(self.proc, timeout=5.0)
        self._reader.join(2)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


class _Aggregator(_Consumer):
    """A ``tila aggregator`` process (started by the caller) seen through its journal and status."""

    def __init__(self, ctx: Context, proc: subprocess.Popen[bytes], name: str, journal: Path) -> None:
        self.ctx = ctx
        self.proc = proc
        self.name = name
        self.journal = journal
        self._db: sqlite3.Connection | None = None
        self._last = 0

    def taken(self) -> int:
        """Events committed to the journal: the largest sequence number of the one gateway (its
        events arrive in order over one connection, and a commit takes whole messages)."""
        self.ctx.expect_alive(self.proc, self.name)
        if self._db is None:
            if not self.journal.exists():
                return 0
            self._db = sqlite3.connect(self.journal, isolation_level=None, check_same_thread=False)
        try:
            row = self._db.execute("SELECT MAX(seq) FROM events WHERE gateway = ?", (GATEWAY_ID,)).fetchone()
        except sqlite3.OperationalError:  # the schema is not there yet
            return self._last
        self._last = int(row[0] or 0)
        return self._last

    def checkpoint(self) -> tuple[int, int, dict[str, Any]]:
        """The committed checkpoint's size in bytes, the events it holds (those still inside the
        lateness window) and its counters."""
        assert self._db is not None
        (text,) = self._db.execute("SELECT doc FROM checkpoint WHERE id = 1").fetchone()
        doc = json.loads(text)
        return len(text.encode()), len(doc.get("pending", ())), doc.get("counters", {})

    def logged(self) -> int:
        assert self._db is not None
        return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class _Status:
    """Watches a retained status topic (the aggregator's ``online``)."""

    def __init__(self, url: str, topic: str) -> None:
        self.topic = topic
        self.payload = b""
        self.at: float | None = None
        self.conn = Connection(
            MqttUrl.parse(url),
            f"tila-bench-status-{id(self)}",
            subscriptions=[(topic, 1)],
            on_message=self._on,
        )

    def _on(self, msg: Message) -> None:
        self.payload = msg.payload
        if msg.payload == b"online" and self.at is None:
            self.at = time.monotonic()

    def __enter__(self) -> _Status:
        self.conn.start()
        if not self.conn.wait_connected(10):
            self.conn.stop()
            raise RuntimeError("the status watcher could not connect to the bench broker")
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.stop(flush_timeout=0.2)


def _publisher(url: str, name: str) -> Connection:
    conn = Connection(MqttUrl.parse(url), f"tila-bench-{name}", max_inflight=100)
    conn.start()
    if not conn.wait_connected(10):
        conn.stop()
        raise RuntimeError("the bench publisher could not connect to the bench broker")
    return conn


def _make_session(url: str, client_id: str, topic: str) -> None:
    """Create a persistent session subscribed to ``topic``, so the broker queues what comes next."""
    conn = Connection(MqttUrl.parse(url), client_id, persistent=True, subscriptions=[(topic, 1)])
    conn.start()
    try:
        if not conn.subscribed.wait(10):
            raise RuntimeError(f"could not subscribe {client_id} on the bench broker")
    finally:
        conn.stop(flush_timeout=0.2)


def _queue_backlog(ctx: Context, url: str, topic: str, batches: Batches) -> None:
    """Publish every batch while the consumer is away; return when the broker has them all."""
    pub = _publisher(url, "backlog")
    try:
        for i, payload in enumerate(batches.payloads):
            pub.publish(topic, payload, qos=1)
            if i % 100 == 0:
                ctx.check()
        deadline = time.monotonic() + 120
        while pub.pending() and time.monotonic() < deadline:
            ctx.sleep(0.02)
        if pub.pending():
            raise RuntimeError(f"the broker did not take the backlog: {pub.pending()} batches unacknowledged")
    finally:
        pub.stop(flush_timeout=1.0)


def _wait_taken(ctx: Context, consumer: _Consumer, n: int, timeout: float) -> float:
    """Poll until the consumer has taken ``n`` events; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    while True:
        if consumer.taken() >= n:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{consumer.name}: {consumer.taken():,} of {n:,} events after {timeout:.0f} s")
        ctx.sleep(0.005)


def _publish_live(
    ctx: Context, url: str, topic: str, batches: Batches, consumer: _Consumer
) -> tuple[float, float]:
    """Send the batches stamped as they go, at most WINDOW_EVENTS ahead of the consumer; returns
    when the first was sent (monotonic) and the seconds spent waiting for the consumer (little
    waiting: the publisher, not the consumer, set the pace)."""
    pub = _publisher(url, "live")
    try:
        sent = 0
        waited = 0.0
        t0 = time.monotonic()
        for payload, count in zip(batches.payloads, batches.counts, strict=True):
            if sent - consumer.taken() > WINDOW_EVENTS:
                w0 = time.monotonic()
                while sent - consumer.taken() > WINDOW_EVENTS:
                    ctx.sleep(0.002)
                waited += time.monotonic() - w0
            pub.publish(topic, _live(payload), qos=1)
            sent += count
        return t0, waited
    finally:
        pub.stop(flush_timeout=5.0)


# ---------------------------------------------------------------------------------- throughput


@dataclasses.dataclass(slots=True)
class _Rate:
    events: int
    batches: int
    seconds: float
    cpu: float = 0.0
    peak_mib: float = 0.0
    counters: dict[str, Any] = dataclasses.field(default_factory=dict)
    checkpoint_bytes: int = 0
    checkpoint_events: int = 0
    logged: int = 0
    #: Seconds the live publisher waited for the consumer.
    waited: float = 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def batches_per_s(self) -> float:
        return self.batches / self.seconds


def _timeout(n: int) -> float:
    # Generous: at 1,000 events/s plus start-up; a stuck consumer still ends the run.
    return 60.0 + n / 1000


def _bare_run(ctx: Context, batches: Batches, mode: str) -> _Rate:
    name = f"bare-{mode}"
    client_id = f"tila-bench-bare-{mode}"
    topic = topics.events(SITE_ID, GATEWAY_ID)
    n = batches.events
    with ctx.broker(f"mosquitto-{name}") as broker:
        if mode == "backlog":
            _make_session(broker.url, client_id, topic)
            _queue_backlog(ctx, broker.url, topic, batches)
        bare = _Bare(ctx, broker, topic, client_id, n, name)
        try:
            waited = 0.0
            if mode == "backlog":
                # The queued batches come at once after the connect, before the subscription's answer.
                ctx.wait_until(
                    lambda: bare.taken() >= 0 and bare.connected_at is not None, 30, f"{name} to connect"
                )
                t0 = bare.connected_at or 0.0
            else:
                ctx.wait_until(
                    lambda: bare.taken() >= 0 and bare.subscribed_at is not None, 30, f"{name} to subscribe"
                )
                t0, waited = _publish_live(ctx, broker.url, topic, batches, bare)
            _wait_taken(ctx, bare, n, _timeout(n))
            bare.proc.wait(10)
            bare._reader.join(2)
            done = bare.done_at or time.monotonic()
            return _Rate(n, len(batches.payloads), done - t0, peak_mib=bare.peak_kib / 1024, waited=waited)
        finally:
            bare.close()


def _aggregator_args(site_file: Path, url: str, data_dir: Path) -> list[str]:
    store = data_dir / "tila.db"
    return [
        "--log-level",
        "WARNING",
        "aggregator",
        "--site",
        str(site_file),
        "--mqtt",
        url,
        "--store",
        f"sqlite:///{store}",
        "--id",
        INSTANCE,
        "--data-dir",
        str(data_dir),
    ]


def _aggregator_run(ctx: Context, site: Site, site_file: Path, batches: Batches, mode: str) -> _Rate:
    name = f"aggregator-{mode}"
    data_dir = ctx.workdir / f"{name}-data"
    data_dir.mkdir()
    journal = data_dir / f"aggregator-{site.id}-{INSTANCE}.db"
    topic = topics.events(site.id, GATEWAY_ID)
    n = batches.events
    with ctx.broker(f"mosquitto-{name}") as broker:
        if mode == "backlog":
            _make_session(broker.url, f"tila-aggregator-{site.id}-{INSTANCE}", topics.events_all(site.id))
            _queue_backlog(ctx, broker.url, topic, batches)
        with (
            _Status(broker.url, topics.aggregator_status(site.id, INSTANCE)) as status,
            ctx.tila(name, _aggregator_args(site_file, broker.url, data_dir)) as proc,
        ):
            agg = _Aggregator(ctx, proc, name, journal)
            try:

                def online() -> bool:
                    ctx.expect_alive(proc, name)
                    return status.at is not None

                ctx.wait_until(online, 120, f"{name} to connect")
                cpu0 = proc_cpu_seconds(proc.pid)
                waited = 0.0
                if mode == "backlog":
                    t0 = status.at or 0.0
                else:
                    t0, waited = _publish_live(ctx, broker.url, topic, batches, agg)
                done = _wait_taken(ctx, agg, n, _timeout(n))
                cpu = proc_cpu_seconds(proc.pid) - cpu0
                peak = proc_status_kib(proc.pid, "VmHWM") / 1024
                size, pending, counters = agg.checkpoint()
                return _Rate(
                    n,
                    len(batches.payloads),
                    done - t0,
                    cpu=cpu,
                    peak_mib=peak,
                    counters=counters,
                    checkpoint_bytes=size,
                    checkpoint_events=pending,
                    logged=agg.logged(),
                    waited=waited,
                )
            finally:
                agg.close()


def _throughput(ctx: Context, site: Site, site_file: Path, n: int, size: int) -> Iterator[Row]:
    live = make_batches(site, n, size, clock=None)
    _check_wire(live)
    # An outage's backlog: the site's own pace (each sensor every REPORT_PERIOD_S), ending an hour ago.
    reports = -(-n * 20 // 58)  # 19 reports in 20 carry 3 events, one carries 1
    start = time.time() - 3600 - reports * REPORT_PERIOD_S / len(site.sensors)
    backlog = make_batches(site, n, size, clock=lambda k: start + k * REPORT_PERIOD_S / len(site.sensors))
    _check_wire(backlog)
    n = live.events
    per_event = backlog.bytes / backlog.events
    span_h = (time.time() - 3600 - start) / 3600
    log.info(
        "aggregator: %d events in %d batches of %d (%.0f B/event)", n, len(live.payloads), size, per_event
    )

    what = f"{n:,} events, {len(site.spaces)} desks, batches of {size} ({per_event:.0f} B/event), QoS 1, one gateway"

    def counters(r: _Rate) -> str:
        c = r.counters
        return (
            f"journal holds {r.logged:,} events; counters: events {c.get('events', 0):,}, late"
            f" {c.get('late', 0):,}, spaces accrued again {c.get('reaccrued', 0):,}, duplicates"
            f" {c.get('duplicates', 0):,}"
        )

    bare_backlog = _bare_run(ctx, backlog, "backlog")
    ctx.check()
    bare_live = _bare_run(ctx, live, "live")
    ctx.check()
    agg_live = _aggregator_run(ctx, site, site_file, live, "live")
    yield Row(
        "aggregator_events_live",
        "aggregator, live events, to the journal",
        agg_live.events_per_s,
        "events/s",
        bare_live.events_per_s,
        "bare paho subscriber, json.loads only, same broker, publisher and batches",
        f"{what}; stamped as sent, the publisher at most {WINDOW_EVENTS:,} events ahead of the consumer"
        f" (within the 10 s lateness window); the publisher waited for the aggregator"
        f" {agg_live.waited / agg_live.seconds:.0%} of the run and for the bare subscriber"
        f" {bare_live.waited / bare_live.seconds:.0%}"
        + (
            " (so the baseline is the publisher's own pace, a floor for the subscriber's)"
            if bare_live.waited < 0.1 * bare_live.seconds
            else ""
        )
        + ";"
        f" a tila aggregator process, SQLite store, CPU {100 * agg_live.cpu / agg_live.seconds:.0f}% of a"
        f" core; {counters(agg_live)}",
    )
    yield Row(
        "aggregator_batches_live",
        f"aggregator, live batches of {size}, to the journal",
        agg_live.batches_per_s,
        "batches/s",
        bare_live.batches_per_s,
        "bare paho subscriber",
        "one MQTT message per batch",
    )
    paho = bare_paho_rss()
    yield Row(
        "aggregator_rss_lab",
        f"aggregator peak RSS, {len(site.spaces)} spaces, live run",
        agg_live.peak_mib,
        "MiB",
        paho,
        "python -c 'import paho.mqtt.client' (its peak RSS)",
        f"VmHWM of the tila aggregator process (SQLite store, journal, flusher) after the live run, whose"
        f" lateness window held {agg_live.checkpoint_events:,} events at the end",
    )
    yield Row(
        "aggregator_checkpoint_bytes_lab",
        f"checkpoint size, {len(site.spaces)} spaces, live run",
        agg_live.checkpoint_bytes / 1024,
        "KiB",
        note=f"at the end of the live run, holding the {agg_live.checkpoint_events:,} events still inside the"
        " 10 s lateness window; the journal rewrites it whole on every commit (every 0.1 s or 1,000 batches"
        " while events flow, every 30 s when idle)",
    )
    ctx.check()
    agg_backlog = _aggregator_run(ctx, site, site_file, backlog, "backlog")
    yield Row(
        "aggregator_events_backlog",
        "aggregator, drain of a queued backlog",
        agg_backlog.events_per_s,
        "events/s",
        bare_backlog.events_per_s,
        "bare paho subscriber draining the same queued batches",
        f"{what}; {span_h:.1f} h of the site's events ending an hour ago, queued in Mosquitto before the"
        f" consumer connects (from its connect to the last commit): the late-event path, each space"
        f" accrued again from the journal; CPU {100 * agg_backlog.cpu / agg_backlog.seconds:.0f}% of a"
        f" core; {counters(agg_backlog)}",
    )
    yield Row(
        "aggregator_batches_backlog",
        f"aggregator, drain of queued batches of {size}",
        agg_backlog.batches_per_s,
        "batches/s",
        bare_backlog.batches_per_s,
        "bare paho subscriber",
    )


# ------------------------------------------------------------------------------------- 10k spaces


def bare_paho_rss() -> float:
    """Peak RSS (MiB) of a bare Python process that imports paho-mqtt: the floor for any MQTT client."""
    code = (
        "import paho.mqtt.client\n"
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    return int(out.stdout.strip()) / 1024


def _big_site(ctx: Context, spaces: int, size: int) -> Iterator[Row]:
    try:
        yield from _big_site_run(ctx, spaces, size)
    except UnavailableError as exc:
        yield Row(
            "aggregator_rss_10k", "aggregator peak RSS, 10k spaces", None, "MiB", note=f"skipped: {exc}"
        )


def _big_site_run(ctx: Context, spaces: int, size: int) -> Iterator[Row]:
    d = ctx.workdir / "big"
    d.mkdir()
    site_file = d / "site.toml"
    site_file.write_text(site_toml(spaces, zones=20))
    site = load_site(site_file)
    # One report per sensor: every space has state in both views.
    feed = make_batches(site, len(site.sensors) * 3, size, clock=None)
    name = "aggregator-big"
    journal = d / f"aggregator-{site.id}-{INSTANCE}.db"
    idle_s = ctx.size(5.0, 2.0)
    with (
        ctx.broker("mosquitto-big") as broker,
        _Status(broker.url, topics.aggregator_status(site.id, INSTANCE)) as status,
    ):
        t0 = time.monotonic()
        with ctx.tila(name, _aggregator_args(site_file, broker.url, d)) as proc:
            agg = _Aggregator(ctx, proc, name, journal)
            try:

                def online() -> bool:
                    ctx.expect_alive(proc, name)
                    return status.at is not None

                ctx.wait_until(online, 300, f"{name} to connect")
                started = (status.at or t0) - t0
                fed0 = time.monotonic()
                _publish_live(ctx, broker.url, topics.events(site.id, GATEWAY_ID), feed, agg)
                _wait_taken(ctx, agg, feed.events, _timeout(feed.events))
                fed = time.monotonic() - fed0
                # Let the live view's changes go out and the flusher settle before the quiet phase.
                ctx.sleep(1.5)
                io0, cpu0, q0 = proc_io(proc.pid), proc_cpu_seconds(proc.pid), time.monotonic()
                ctx.sleep(idle_s)
                io1, cpu1, q1 = proc_io(proc.pid), proc_cpu_seconds(proc.pid), time.monotonic()
                peak = proc_status_kib(proc.pid, "VmHWM") / 1024
                rss = proc_status_kib(proc.pid, "VmRSS") / 1024
                ckpt, _, counters = agg.checkpoint()
            finally:
                agg.close()
    paho = bare_paho_rss()
    n = len(site.spaces)
    yield Row(
        "aggregator_start_10k",
        f"aggregator start-up, {n:,} spaces",
        started,
        "s",
        note="process start to its retained online status: imports, site file, state for every space, journal, connect",
    )
    yield Row(
        "aggregator_rss_10k",
        f"aggregator peak RSS, {n:,} spaces with live state",
        peak,
        "MiB",
        paho,
        "python -c 'import paho.mqtt.client' (its peak RSS)",
        f"VmHWM of the tila aggregator process after one Zigbee2MQTT report per desk ({feed.events:,} events,"
        f" {counters.get('events', 0):,} applied, taken in {fed:.1f} s) and {idle_s:.0f} s idle; VmRSS then {rss:.1f} MiB",
    )
    idle = q1 - q0
    written = io1["write_bytes"] or io1["wchar"]
    written -= io0["write_bytes"] if io1["write_bytes"] else io0["wchar"]
    yield Row(
        "aggregator_checkpoint_bytes_10k",
        f"checkpoint size, {n:,} spaces",
        ckpt / 1e6,
        "MB",
        note="JSON, rewritten whole by every journal commit: every 0.1 s while events flow, every 30 s when idle",
    )
    yield Row(
        "aggregator_idle_disk_10k",
        f"aggregator disk writes while idle, {n:,} spaces",
        written / idle / 1e6,
        "MB/s",
        ckpt / 1e6,
        "the checkpoint's size (MB) once a second (what committing every second would write)",
        f"{'write_bytes' if io1['write_bytes'] else 'wchar'} of /proc/<aggregator>/io over {idle:.1f} s with"
        f" no events: an idle aggregator ticks every second but commits (checkpoint and open buckets)"
        f" only every 30 s{_secure_delete()}",
    )
    yield Row(
        "aggregator_idle_cpu_10k",
        f"aggregator CPU while idle, {n:,} spaces",
        100 * (cpu1 - cpu0) / idle,
        "% of a CPU",
        note=f"user + system time over {idle:.1f} s with no events (each second: tick every space; a commit every 30 s)",
    )


def _secure_delete() -> str:
    """Why a rewritten row costs twice its size on this machine's SQLite, if it does."""
    db = sqlite3.connect(":memory:")
    try:
        on = bool(db.execute("PRAGMA secure_delete").fetchone()[0])
    finally:
        db.close()
    return (
        "; this SQLite is built with SECURE_DELETE, so the old checkpoint's pages are zeroed as well"
        if on
        else ""
    )
