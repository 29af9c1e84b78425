"""What happens in the field, done to the real processes, then counted end to end.

Devices publish numbered Zigbee2MQTT messages (QoS 1) on a real local Mosquitto; the gateway runs as
its own process; a persistent subscriber on the real central Mosquitto collects every canonical
event. During the stream one fault strikes: the central broker stops and restarts, the uplink is
cut (the broker unreachable through a proxy that drops every connection), the gateway is killed
with SIGKILL and restarted, or the local broker restarts. Afterwards every device message must have
arrived exactly once per (gateway, sequence number), the sequence numbers must have no gaps, and
per sensor, sequence order must be the order the device published in.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, wait_for

from tila.mqtt import Connection, Message, MqttUrl

SENSORS = 20


def site_text() -> str:
    lines = [
        '[site]\nid = "faults"\ntimezone = "Europe/Helsinki"\nopening_hours = { mon = "00:00-24:00" }\n',
        '[[zones]]\nid = "z"\n',
    ]
    for i in range(SENSORS):
        lines.append(f'[[spaces]]\nid = "d{i}"\nkind = "desk"\nzone = "z"\n')
        lines.append(
            f'[[sensors]]\nid = "d{i}-pir"\nspace = "d{i}"\nformat = "zigbee2mqtt"\ntopic = "zigbee2mqtt/d{i}-pir"\n'
        )
    return "\n".join(lines)


class Devices:
    """Publishes ``n`` messages round-robin over the sensors, each with a unique ``last_seen``."""

    def __init__(self, url: str, n: int, rate: float) -> None:
        self.n, self.rate = n, rate
        self.conn = Connection(MqttUrl.parse(url), "fault-devices", persistent=True)
        self.base_ms = int(time.time() * 1000)
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Devices:
        self.conn.start()
        assert self.conn.wait_connected(5)
        self.thread.start()
        return self

    def _run(self) -> None:
        t0 = time.monotonic()
        for i in range(self.n):
            payload = {"occupancy": i % 3 == 0, "last_seen": self.base_ms + i}
            # paho queues QoS 1 messages while the broker is away and sends them on reconnect.
            self.conn.publish(f"zigbee2mqtt/d{i % SENSORS}-pir", json.dumps(payload).encode(), qos=1)
            self.sent = i + 1
            delay = t0 + (i + 1) / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def finish(self) -> None:
        self.thread.join(60)
        assert self.conn.flush(30), "the device publisher could not deliver its messages"
        self.conn.stop()


class LocalSpy:
    """Another persistent subscriber on the local broker: the order the broker delivered in.

    That order is what the gateway can keep. A device publisher that was cut off may itself resend
    older messages after newer ones (paho lets a new message overtake those it is resending after a
    reconnect); the gateway cannot know better than the broker.
    """

    def __init__(self, url: str) -> None:
        self.order: dict[str, list[int]] = {}
        self.lock = threading.Lock()
        self.conn = Connection(
            MqttUrl.parse(url),
            "fault-spy",
            persistent=True,
            subscriptions=[("zigbee2mqtt/#", 1)],
            on_message=self._on,
        )

    def _on(self, msg: Message) -> None:
        with self.lock:
            self.order.setdefault(msg.topic.split("/")[1], []).append(json.loads(msg.payload)["last_seen"])

    def start(self) -> LocalSpy:
        self.conn.start()
        assert self.conn.wait_connected(5)
        wait_for(self.conn.subscribed.is_set, 5, what="spy subscribed")
        return self


class Collector:
    """A persistent QoS 1 subscriber on the central broker; keeps every event it receives."""

    def __init__(self, url: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.conn = Connection(
            MqttUrl.parse(url), "fault-collector", persistent=True,
            subscriptions=[("tila/v1/faults/events/+", 1)], on_message=self._on,
        )  # fmt: skip

    def _on(self, msg: Message) -> None:
        batch = json.loads(msg.payload)
        with self.lock:
            self.events.extend(batch["events"])

    def start(self) -> Collector:
        self.conn.start()
        assert self.conn.wait_connected(5)
        wait_for(self.conn.subscribed.is_set, 5, what="collector subscribed")
        return self

    def presence(self) -> dict[int, dict[str, Any]]:
        with self.lock:
            return {e["seq"]: e for e in self.events if e["type"] == "presence"}

    def seqs(self) -> set[int]:
        with self.lock:
            return {e["seq"] for e in self.events}


class Proxy:
    """A TCP proxy to a broker that can be cut (every connection dropped, new ones refused)."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = free_port()
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.restore()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def restore(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def cut(self) -> None:
        with self.lock:
            if self.listener is not None:
                self.listener.close()
                self.listener = None
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass


def check_exactly_once(col: Collector, devices: Devices, spy: LocalSpy) -> None:
    n = devices.n
    wait_for(
        lambda: len(col.presence()) >= n,
        60,
        interval=0.2,
        what=f"{n} presence events (have {len(col.presence())})",
    )
    time.sleep(0.5)  # anything still in flight would show up as an extra, wrongly numbered event
    presence = col.presence()
    # Each device message became exactly one event with one sequence number.
    by_message: dict[tuple[str, str], set[int]] = {}
    for seq, e in presence.items():
        by_message.setdefault((e["sensor"], e["time"]), set()).add(seq)
    assert len(by_message) == n, f"{n - len(by_message)} device messages missing"
    doubled = {k: v for k, v in by_message.items() if len(v) > 1}
    assert not doubled, f"device messages stored twice: {list(doubled.items())[:3]}"
    # No sequence number is missing or reused for another event.
    seqs = col.seqs()
    assert seqs == set(range(1, max(seqs) + 1)), "gaps in the sequence numbers"
    assert len(seqs) == n
    # Per sensor, sequence order is the order the local broker delivered in (publication order,
    # unless the device itself resent out of order).
    wait_for(lambda: sum(len(v) for v in spy.order.values()) >= n, 30, what="the spy's copy")
    per_sensor: dict[str, list[int]] = {}
    for _, e in sorted(presence.items()):
        ms = round(datetime.fromisoformat(e["time"]).timestamp() * 1000)
        per_sensor.setdefault(e["sensor"], []).append(ms)
    for sensor, times in per_sensor.items():
        delivered = list(dict.fromkeys(spy.order[sensor]))  # a redelivered copy keeps its first place
        assert times == delivered, f"{sensor}: sequence order is not the order the broker delivered in"


def start_gateway(tila_proc, name: str, site: Path, local: str, central: str, data: Path, *extra: str):  # type: ignore[no-untyped-def]
    return tila_proc(name, [
        "gateway", "--site", str(site), "--id", "gw1", "--local", local, "--central", central,
        "--data-dir", str(data), "--health-interval", "0.5", *extra,
    ])  # fmt: skip


def wait_gateway_ready(central: str) -> None:
    ready = threading.Event()

    def on(msg: Message) -> None:
        if json.loads(msg.payload).get("local_connected"):
            ready.set()

    c = Connection(
        MqttUrl.parse(central),
        "fault-health",
        subscriptions=[("tila/v1/faults/gateways/+/health", 1)],
        on_message=on,
    )
    c.start()
    try:
        assert ready.wait(15), "the gateway did not come up"
    finally:
        c.stop()


@pytest.fixture
def setup(tmp_path: Path, mosquitto):  # type: ignore[no-untyped-def]
    site = tmp_path / "site.toml"
    site.write_text(site_text())
    return site, mosquitto("local"), mosquitto("central"), tmp_path / "gw"


@pytest.mark.integration
def test_central_broker_restarts_mid_stream(setup, tila_proc) -> None:  # type: ignore[no-untyped-def]
    site, local, central, data = setup
    col = Collector(central.url).start()
    spy = LocalSpy(local.url).start()
    gw = start_gateway(tila_proc, "gateway", site, local.url, central.url, data)
    wait_gateway_ready(central.url)
    devices = Devices(local.url, 1500, rate=300).start()
    wait_for(lambda: devices.sent > 400, 10, what="devices under way")
    central.stop()
    time.sleep(2)
    central.start()
    devices.finish()
    check_exactly_once(col, devices, spy)
    assert gw.stop() == 0


@pytest.mark.integration
def test_uplink_cut_for_a_while(setup, tila_proc) -> None:  # type: ignore[no-untyped-def]
    """At the lab's rate (~200 sensors, a message a minute each) 2,400 messages are ten minutes."""
    site, local, central, data = setup
    proxy = Proxy(central.port)
    col = Collector(central.url).start()
    spy = LocalSpy(local.url).start()
    gw = start_gateway(tila_proc, "gateway", site, local.url, proxy.url, data, "--live-after", "1")
    wait_gateway_ready(central.url)
    devices = Devices(local.url, 3000, rate=400).start()
    wait_for(lambda: devices.sent > 300, 10, what="devices under way")
    proxy.cut()
    time.sleep(6)
    proxy.restore()
    devices.finish()
    check_exactly_once(col, devices, spy)
    assert gw.stop() == 0
    proxy.cut()


@pytest.mark.integration
def test_gateway_killed_mid_stream_and_restarted(setup, tila_proc) -> None:  # type: ignore[no-untyped-def]
    site, local, central, data = setup
    col = Collector(central.url).start()
    spy = LocalSpy(local.url).start()
    gw = start_gateway(tila_proc, "gateway", site, local.url, central.url, data)
    wait_gateway_ready(central.url)
    devices = Devices(local.url, 2000, rate=400).start()
    wait_for(lambda: devices.sent > 500, 10, what="devices under way")
    gw.stop(sig=signal.SIGKILL)
    time.sleep(1)
    gw2 = start_gateway(tila_proc, "gateway2", site, local.url, central.url, data)
    devices.finish()
    check_exactly_once(col, devices, spy)
    assert gw2.stop() == 0


@pytest.mark.integration
def test_local_broker_restarts_mid_stream(setup, tila_proc) -> None:  # type: ignore[no-untyped-def]
    site, local, central, data = setup
    col = Collector(central.url).start()
    spy = LocalSpy(local.url).start()
    gw = start_gateway(tila_proc, "gateway", site, local.url, central.url, data)
    wait_gateway_ready(central.url)
    devices = Devices(local.url, 1500, rate=300).start()
    wait_for(lambda: devices.sent > 400, 10, what="devices under way")
    local.stop()
    time.sleep(1.5)
    local.start()
    devices.finish()
    check_exactly_once(col, devices, spy)
    assert gw.stop() == 0


@pytest.mark.integration
def test_sigterm_flushes_and_exits_quickly(setup, tila_proc) -> None:  # type: ignore[no-untyped-def]
    site, local, central, data = setup
    col = Collector(central.url).start()
    spy = LocalSpy(local.url).start()
    gw = start_gateway(tila_proc, "gateway", site, local.url, central.url, data)
    wait_gateway_ready(central.url)
    devices = Devices(local.url, 1000, rate=500).start()
    wait_for(lambda: devices.sent > 300, 10, what="devices under way")
    t0 = time.monotonic()
    assert gw.stop(sig=signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 5, "SIGTERM took 5 s or more"
    gw2 = start_gateway(tila_proc, "gateway2", site, local.url, central.url, data)
    devices.finish()
    check_exactly_once(col, devices, spy)
    assert gw2.stop() == 0


@pytest.mark.integration
def test_live_events_do_not_wait_behind_a_backlog(setup, tila_proc) -> None:  # type: ignore[no-untyped-def]
    """A gateway starts with 100,000 events waiting (a long outage); a live reading overtakes them."""
    from datetime import UTC, datetime, timedelta

    from tila.gateway.outbox import Outbox

    site, local, central, data = setup
    old = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    outbox = Outbox(data / "outbox.db")
    for _ in range(100):
        outbox.append([
            {"type": "presence", "sensor": "d0-pir", "space": "d0", "time": old, "received": old, "occupied": j % 2 == 0}
            for j in range(1000)
        ])  # fmt: skip
    outbox.close()
    col = Collector(central.url).start()
    start_gateway(tila_proc, "gateway", site, local.url, central.url, data)
    wait_gateway_ready(central.url)
    devices = Devices(local.url, 1, rate=1).start()
    devices.finish()
    wait_for(lambda: len(col.seqs()) >= 100_001, 60, interval=0.2, what="backlog and live event")
    with col.lock:
        arrival = [e["seq"] for e in col.events]
    live_at = arrival.index(100_001)
    assert live_at < arrival.index(100_000), "the live event waited for the whole backlog"
