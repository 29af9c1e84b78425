"""The API's benchmarks (``tila bench --only api``).

- **sensor-to-browser latency**: space states published retained on a real Mosquitto as the aggregator
  publishes them (QoS 1, ``topics.space_state``), at 1,000 a second, through a ``tila api`` process
  to one Server-Sent-Events client; the time from each publish to its event arriving, p50 and p99.
  The "sensor" end is the aggregator's publish: this is the broker and API hop of the pipeline;
- **fan-out**: 1,000 SSE clients (asyncio, one process), every one counted to get every event: paced
  changes (20 a second), with the time until the *last* client has each one; then a burst of changes
  back to back, with the time until every client has all of them;
- **/v1/spaces requests a second** against a bare FastAPI app returning the same JSON from a
  constant, both as processes served the same way (:func:`tila.api.service.serve_on`, the same
  uvicorn settings), driven by the same keep-alive load generator, in turn.

Everything runs on this machine: the API and the baseline as their own processes, the clients and the
publisher in this one. The clients and publisher are Python too, so on a 2-core machine they compete
with the server for the CPUs: the figures are what this machine does end to end, not the server alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..bench import Context, Mosquitto, Row, free_port, stop_process
from ..mqtt import Connection, MqttUrl
from ..sensors import topics

log = logging.getLogger(__name__)

SITE_ID = "bench"
#: Spaces of the synthetic site: a building's worth (the aggregator bench's "few hundred").
SPACES = 300
#: The issue's rate and client count.
RATE = 1000
CLIENTS = 1000
#: Paced fan-out: changes a second, a busy lab's whole day compressed (it makes a few a minute).
FANOUT_RATE = 20
#: Concurrent keep-alive connections of the load generator: enough to keep one server process busy.
CONNECTIONS = 16
TOKEN = "bench-token"


def run(ctx: Context) -> Iterator[Row]:
    _raise_fd_limit(4 * CLIENTS + 256)
    site_file = ctx.workdir / "site.toml"
    site_file.write_text(site_toml(SPACES))
    with ctx.broker() as broker, _api(ctx, "api", site_file, broker) as port:
        yield from _latency(ctx, broker, port)
        ctx.check()
        yield from _fanout(ctx, broker, port)
    ctx.check()
    yield from _requests(ctx)


# -------------------------------------------------------------------------------------- helpers


def site_toml(spaces: int) -> str:
    """``spaces`` rooms, open around the clock (the figures do not depend on the hour)."""
    days = ", ".join(f'{d} = "00:00-24:00"' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    parts = [
        f'[site]\nid = "{SITE_ID}"\nname = "bench"\ntimezone = "Europe/Helsinki"\nopening_hours = {{ {days} }}\n',
        '[[zones]]\nid = "floor"\n',
    ]
    for i in range(1, spaces + 1):
        parts.append(f'[[spaces]]\nid = "room-{i:03d}"\nkind = "room"\nzone = "floor"\ncapacity = 8\n')
    return "\n".join(parts)


def state(count: int) -> bytes:
    """What the aggregator publishes for a space (aggregator/service.py ``space_payload``)."""
    return json.dumps(
        {"state": "occupied", "count": count, "since": "2026-11-24T08:00:00.000000+00:00"}
    ).encode()


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))  # inherited by the API process


@contextlib.contextmanager
def _api(
    ctx: Context, name: str, site: Path | str, broker: Mosquitto, *, rate_limit: bool = False
) -> Iterator[int]:
    """A ``tila api`` process on a free port, ready (its broker connected), stopped afterwards.
    Without ``rate_limit`` its limit is off: every client here is 127.0.0.1, and the anonymous
    budget of one address would be gone at once."""
    port = free_port()
    args = [
        "--log-level", "WARNING", "api",
        "--site", str(site), "--mqtt", broker.url,
        "--store", f"sqlite:///{ctx.workdir / (name + '.db')}",
        "--port", str(port), "--tokens", f"host:{TOKEN}",
    ]  # fmt: skip
    if not rate_limit:
        args += ["--rate-limit", "0"]
    with ctx.tila(name, args) as proc:

        def ready() -> bool:
            ctx.expect_alive(proc, name)
            try:
                status, body = _get(port, "/healthz")
            except OSError:
                return False
            return status == 200 and json.loads(body)["mqtt"] is True

        ctx.wait_until(ready, 30, f"{name} to answer with its broker connected")
        yield port


def _get(port: int, path: str, headers: str = "") -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n{headers}\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _publisher(broker: Mosquitto, name: str) -> Connection:
    conn = Connection(MqttUrl.parse(broker.url), f"bench-{name}", max_inflight=100)
    conn.start()
    if not conn.wait_connected(10):
        conn.stop(publish_offline=False)
        raise RuntimeError("the bench publisher could not connect to Mosquitto")
    return conn


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1]


class SseParser:
    """Server-Sent Events from a raw HTTP/1.1 answer: headers, then chunked transfer coding, each
    chunk holding whole events (the API sends one event per chunk). ``feed`` returns complete events
    as (id, data) pairs; comments (pings) are skipped."""

    _EVENT = re.compile(rb"^id: (\d+)\nevent: [^\n]*\ndata: ([^\n]*)\n\n", re.MULTILINE)

    def __init__(self) -> None:
        self._buf = b""
        self._headers_done = False
        self._body = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        if not self._headers_done:
            head, sep, rest = self._buf.partition(b"\r\n\r\n")
            if not sep:
                return []
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"stream refused: {head[:80]!r}")
            self._headers_done, self._buf = True, rest
        # chunked: <hex size>\r\n<data>\r\n
        buf, body = self._buf, []
        while True:
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                break
            size = int(buf[:line_end], 16)
            if len(buf) < line_end + 2 + size + 2:
                break
            body.append(buf[line_end + 2 : line_end + 2 + size])
            buf = buf[line_end + 2 + size + 2 :]
        self._buf = buf
        text = self._body + b"".join(body)
        complete, sep, self._body = text.rpartition(b"\n\n")
        if not sep:
            self._body = text
            return []
        return [(int(m[1]), m[2]) for m in self._EVENT.finditer(complete + b"\n\n")]


# -------------------------------------------------------------------------------------- latency


def _latency(ctx: Context, broker: Mosquitto, port: int) -> Iterator[Row]:
    n = ctx.size(20 * RATE, 3 * RATE)
    warmup = RATE // 4
    sent: list[float] = [0.0] * (n + 1)
    got: dict[int, float] = {}
    snapshot_ids: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()
    ready = threading.Event()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: bench\r\n\r\n")

    def read() -> None:
        parser = SseParser()
        try:
            while not done.is_set():
                data = sock.recv(65536)
                if not data:
                    return
                now = time.perf_counter()
                for ident, body in parser.feed(data):
                    if len(snapshot_ids) < SPACES:
                        snapshot_ids.append(ident)
                        if len(snapshot_ids) == SPACES:
                            ready.set()
                        continue
                    # the count is the publish's sequence number
                    got[json.loads(body)["count"]] = now
                    if len(got) == n:
                        done.set()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            done.set()
            ready.set()

    reader = threading.Thread(target=read, name="bench-sse", daemon=True)
    reader.start()
    pub = _publisher(broker, "latency")
    try:
        if not ready.wait(10) or errors:
            raise RuntimeError(f"no snapshot on the stream: {errors}")
        interval = 1.0 / RATE
        t0 = time.perf_counter()
        for seq in range(1, n + 1):
            target = t0 + seq * interval
            while (now := time.perf_counter()) < target:
                time.sleep(min(target - now, 0.0005))
            sent[seq] = time.perf_counter()
            pub.publish(
                topics.space_state(SITE_ID, f"room-{seq % SPACES + 1:03d}"), state(seq), qos=1, retain=True
            )
            if seq % 1000 == 0:
                ctx.check()
        rate = n / (time.perf_counter() - t0)
        done.wait(10)
    finally:
        done.set()
        sock.close()
        reader.join(5)
        pub.stop(publish_offline=False)
    if errors:
        raise RuntimeError(f"the stream client failed: {errors[0]!r}")
    lat = [(got[s] - sent[s]) * 1000 for s in range(warmup + 1, n + 1) if s in got]
    if not lat:
        raise RuntimeError("no event came through the stream")
    note = (
        f"{n:,} space states at {rate:,.0f}/s (QoS 1, retained, {SPACES} spaces) → Mosquitto → "
        f"tila api → 1 SSE client; first {warmup} left out as warm-up"
    )
    yield Row("api_latency_p50", "sensor-to-browser latency p50 (publish → SSE event)",
              _percentile(lat, 0.5), "ms", note=note)  # fmt: skip
    yield Row("api_latency_p99", "sensor-to-browser latency p99 (goal < 50 ms)",
              _percentile(lat, 0.99), "ms", note=f"max {max(lat):.1f} ms")  # fmt: skip
    yield Row("api_latency_delivered", "state changes delivered to the stream", float(len(got)),
              "events", float(n), "changes published", note="ratio 1: none lost, none skipped")  # fmt: skip


# -------------------------------------------------------------------------------------- fan-out


class _Client:
    __slots__ = ("head", "count", "last")

    def __init__(self) -> None:
        self.head = 0
        self.count = 0
        self.last = 0


async def _stream_client(
    port: int,
    client: _Client,
    connected: Callable[[], None],
    on_event: Callable[[int, float], None],
    stop: asyncio.Event,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /v1/stream HTTP/1.1\r\nHost: bench\r\n\r\n")
        parser = SseParser()
        seen = 0
        while not stop.is_set():
            data = await reader.read(65536)
            if not data:
                return
            now = time.perf_counter()
            for ident, _ in parser.feed(data):
                if seen < SPACES:  # the snapshot: every event carries the stream's position
                    seen += 1
                    client.head = ident
                    if seen == SPACES:
                        client.last = ident
                        connected()
                    continue
                if ident != client.last + 1:
                    raise RuntimeError(f"event {client.last + 1} missing (got {ident})")
                client.count += 1
                client.last = ident
                on_event(ident, now)
    finally:
        writer.close()


def _fanout(ctx: Context, broker: Mosquitto, port: int) -> Iterator[Row]:
    clients = ctx.size(CLIENTS, 200)
    paced = ctx.size(10 * FANOUT_RATE, 2 * FANOUT_RATE)
    burst = ctx.size(200, 50)  # below the per-client queue (256): a burst never forces a resync
    pub = _publisher(broker, "fanout")
    try:
        result = asyncio.run(_fanout_run(ctx, pub, port, clients, paced, burst))
    finally:
        pub.stop(publish_offline=False)
    delivered, expected, connect_s, per_event_ms, burst_s = result
    note = f"{clients:,} SSE clients in one asyncio process, connected in {connect_s:.1f} s"
    yield Row("api_fanout_delivered", f"events delivered to {clients:,} clients (every client, every event)",
              float(delivered), "events", float(expected), "clients × changes published", note=note)  # fmt: skip
    yield Row("api_fanout_p50", f"fan-out: change → the last of {clients:,} clients, p50",
              _percentile(per_event_ms, 0.5), "ms", note=f"{paced} changes at {FANOUT_RATE}/s")  # fmt: skip
    yield Row("api_fanout_p99", f"fan-out: change → the last of {clients:,} clients, p99",
              _percentile(per_event_ms, 0.99), "ms")  # fmt: skip
    yield Row("api_fanout_time", f"fan-out: burst of {burst} changes to all {clients:,} clients", burst_s, "s",
              note=f"{clients * burst / burst_s:,.0f} events delivered a second")  # fmt: skip


async def _fanout_run(
    ctx: Context, pub: Connection, port: int, clients: int, paced: int, burst: int
) -> tuple[int, int, float, list[float], float]:
    stop = asyncio.Event()
    state_of = [_Client() for _ in range(clients)]
    connected = 0
    all_connected = asyncio.Event()
    arrivals: dict[int, int] = {}
    last_arrival: dict[int, float] = {}

    def on_connected() -> None:
        nonlocal connected
        connected += 1
        if connected == clients:
            all_connected.set()

    def on_event(ident: int, now: float) -> None:
        arrivals[ident] = arrivals.get(ident, 0) + 1
        last_arrival[ident] = now

    tasks: list[asyncio.Task[None]] = []
    t0 = time.perf_counter()
    for start in range(0, clients, 100):  # in steps: the listen backlog is 128
        batch = [
            asyncio.create_task(_stream_client(port, c, on_connected, on_event, stop))
            for c in state_of[start : start + 100]
        ]
        tasks += batch
        while connected < min(start + 100, clients):
            await asyncio.sleep(0.005)
            _raise_failed(tasks)
            ctx.check()
    await asyncio.wait_for(all_connected.wait(), 60)
    connect_s = time.perf_counter() - t0
    head = max(c.head for c in state_of)

    async def all_have(ident: int, timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while arrivals.get(ident, 0) < clients:
            _raise_failed(tasks)
            if time.perf_counter() > deadline:
                raise RuntimeError(f"event {ident}: {arrivals.get(ident, 0)} of {clients} clients got it")
            await asyncio.sleep(0.002)

    # paced changes: the time until the last client has each
    seq = 0
    sent: dict[int, float] = {}
    t0 = time.perf_counter()
    for k in range(paced):
        await asyncio.sleep(max(0.0, t0 + k / FANOUT_RATE - time.perf_counter()))
        seq += 1
        sent[head + seq] = time.perf_counter()
        pub.publish(
            topics.space_state(SITE_ID, f"room-{seq % SPACES + 1:03d}"),
            state(10**6 + seq),
            qos=1,
            retain=True,
        )
        ctx.check()
    await all_have(head + seq, 30)
    per_event = [(last_arrival[i] - sent[i]) * 1000 for i in sent]

    # a burst, back to back
    first = head + seq + 1
    t0 = time.perf_counter()
    for _ in range(burst):
        seq += 1
        pub.publish(
            topics.space_state(SITE_ID, f"room-{seq % SPACES + 1:03d}"),
            state(10**6 + seq),
            qos=1,
            retain=True,
        )
    await all_have(head + seq, 60)
    burst_s = max(last_arrival[i] for i in range(first, head + seq + 1)) - t0

    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    delivered = sum(c.count for c in state_of)
    if any(c.last != head + seq for c in state_of):
        raise RuntimeError("a client's last event is not the last one published")
    return delivered, clients * seq, connect_s, per_event, burst_s


def _raise_failed(tasks: list[asyncio.Task[None]]) -> None:
    for t in tasks:
        if t.done() and not t.cancelled() and t.exception() is not None:
            raise RuntimeError(f"a stream client failed: {t.exception()!r}")


# ---------------------------------------------------------------------------- requests a second


def serve_bare(body_file: str, port: int) -> None:
    """The baseline: a bare FastAPI app whose /v1/spaces returns a constant (the JSON tila answered),
    served exactly as tila's (:func:`tila.api.service.serve_on`). Runs until SIGTERM."""
    import signal

    from fastapi import FastAPI

    from .service import bind, serve_on

    spaces = json.loads(Path(body_file).read_text())
    app = FastAPI()

    @app.get("/v1/spaces")
    async def list_spaces() -> Any:
        return spaces

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    serve_on(bind("127.0.0.1", port), app, stop)


async def _load(port: int, path: str, headers: str, seconds: float, connections: int) -> tuple[int, int]:
    """Requests completed in ``seconds`` over ``connections`` keep-alive connections (after a short
    warm-up), and the body length of the last answer."""
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n{headers}\r\n".encode()
    counting = False
    done = 0
    length = 0
    stop = time.perf_counter() + 0.5 + seconds

    async def worker() -> None:
        nonlocal done, length
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"{path}: {head[:60]!r}")
                size = int(re.search(rb"(?i)\r\ncontent-length: (\d+)", head)[1])  # type: ignore[index]
                await reader.readexactly(size)
                length = size
                if counting:
                    done += 1
        finally:
            writer.close()

    tasks = [asyncio.create_task(worker()) for _ in range(connections)]
    await asyncio.sleep(0.5)
    counting = True
    await asyncio.gather(*tasks)
    return done, length


def _requests(ctx: Context) -> Iterator[Row]:
    seconds = ctx.size(5, 1)
    rounds = ctx.size(2, 1)
    with (
        ctx.broker("mosquitto-rps") as broker,
        _api(ctx, "api-rps", "bundled", broker, rate_limit=True) as port,
    ):
        status, body = _get(port, "/v1/spaces", f"Authorization: Bearer {TOKEN}\r\n")
        if status != 200:
            raise RuntimeError(f"/v1/spaces answered {status}")
        body_file = ctx.workdir / "spaces.json"
        body_file.write_bytes(body)
        bare_port = free_port()
        log_file = open(ctx.workdir / "bare.log", "ab")
        bare = subprocess.Popen(
            [sys.executable, "-c", "import sys; from tila.api.bench import serve_bare; "
             "serve_bare(sys.argv[1], int(sys.argv[2]))", str(body_file), str(bare_port)],
            stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            ctx.wait_until(lambda: _answers(bare_port), 20, "the bare FastAPI app to answer")
            tila_rps: list[float] = []
            bare_rps: list[float] = []
            auth = f"Authorization: Bearer {TOKEN}\r\n"
            for _ in range(rounds):
                n, size = asyncio.run(_load(port, "/v1/spaces", auth, seconds, CONNECTIONS))
                tila_rps.append(n / seconds)
                ctx.check()
                m, bare_size = asyncio.run(_load(bare_port, "/v1/spaces", auth, seconds, CONNECTIONS))
                bare_rps.append(m / seconds)
                ctx.check()
        finally:
            stop_process(bare, timeout=5)  # type: ignore[arg-type]
            log_file.close()
    if abs(size - bare_size) > 16:
        log.warning("the bare app's answer is %d bytes, tila's %d", bare_size, size)
    yield Row(
        "api_spaces_rps",
        "GET /v1/spaces (bundled site) requests a second",
        max(tila_rps),
        "req/s",
        max(bare_rps),
        "bare FastAPI route returning the same JSON from a constant",
        note=f"{CONNECTIONS} keep-alive connections from one asyncio client, {seconds} s × {rounds}, best "
        f"round; {size:,}-byte answers; tila with its middleware (metrics, headers, rate-limit check of "
        "the token)",
    )


def _answers(port: int) -> bool:
    try:
        return _get(port, "/v1/spaces")[0] == 200
    except OSError:
        return False
