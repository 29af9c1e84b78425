"""The aggregator as a process on real parts: a store outage, and two aggregators sharing a site.

Canonical event batches are published on a real Mosquitto as a gateway would. Their times lie in
the last two hours, so the aggregators also accrue them as late data. Every test compares
finished 15-minute buckets with those of an undisturbed aggregator fed the same events.
"""

from __future__ import annotations

import json
import random
import threading
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, wait_for
from influx_support import InfluxServer, require_influxd

from tila.aggregator.buckets import BUCKET_SECONDS, slot
from tila.mqtt import Connection, Message, MqttUrl
from tila.sensors.events import Presence, Stamped
from tila.sensors.wire import encode_batch
from tila.store import open_store, parse_store_url

SPACES = 8


def site_file(tmp_path: Path) -> Path:
    days = ", ".join(f'{d} = "00:00-24:00"' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    lines = [
        f'[site]\nid = "aggr"\ntimezone = "Europe/Helsinki"\nholidays = "none"\nopening_hours = {{ {days} }}\n',
        '[[zones]]\nid = "z"\n',
    ]
    for i in range(SPACES):
        lines.append(f'[[spaces]]\nid = "d{i}"\nkind = "desk"\nzone = "z"\n')
        lines.append(
            f'[[sensors]]\nid = "d{i}-pir"\nspace = "d{i}"\nformat = "zigbee2mqtt"\ntopic = "zigbee2mqtt/d{i}-pir"\n'
        )
    path = tmp_path / "site.toml"
    path.write_text("\n".join(lines))
    return path


def events(seed: int, start: float, end: float) -> list[Stamped]:
    """Presence toggles for every desk between start and end, then every desk free at ``end``."""
    rnd = random.Random(seed)
    out: list[tuple[float, str, bool]] = []
    for i in range(SPACES):
        t, occ = start + rnd.uniform(0, 300), True
        while t < end:
            out.append((t, f"d{i}", occ))
            t += rnd.uniform(60, 1200)
            occ = not occ
        out.append((end, f"d{i}", False))
    out.sort()
    return [
        Stamped(
            "gw1",
            n + 1,
            datetime.fromtimestamp(t, UTC),
            space,
            Presence(f"{space}-pir", datetime.fromtimestamp(t, UTC), occ),
        )
        for n, (t, space, occ) in enumerate(out)
    ]


def publish(url: str, evs: list[Stamped], batch: int = 50) -> None:
    conn = Connection(MqttUrl.parse(url), "aggr-test-gateway")
    conn.start()
    assert conn.wait_connected(5)
    for i in range(0, len(evs), batch):
        conn.publish("tila/v1/aggr/events/gw1", encode_batch("gw1", evs[i : i + batch]), qos=1)
    assert conn.flush(10)
    conn.stop()


class Health:
    def __init__(self, url: str) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.conn = Connection(
            MqttUrl.parse(url),
            "aggr-test-health",
            subscriptions=[("tila/v1/aggr/aggregators/+/health", 1)],
            on_message=self._on,
        )
        self.conn.start()
        assert self.conn.wait_connected(5)

    def _on(self, msg: Message) -> None:
        with self.lock:
            self.docs[msg.topic.split("/")[4]] = json.loads(msg.payload)

    def get(self, instance: str) -> dict[str, Any]:
        with self.lock:
            return self.docs.get(instance, {})


def final_rows(
    store_url: str, start: float, end: float
) -> dict[tuple[str, int], tuple[float, float, float, int]]:
    store = open_store(parse_store_url(store_url))
    try:
        rows = store.buckets(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
    finally:
        store.close()
    return {
        (b.space, b.start): (round(b.occupied_s, 3), round(b.covered_s, 3), round(b.count_s, 3), b.peak)
        for b in rows
    }


def aggregator(tila_proc, name: str, site: Path, mqtt: str, store: str, data: Path, *extra: str):  # type: ignore[no-untyped-def]
    return tila_proc(name, [
        "aggregator", "--site", str(site), "--mqtt", mqtt, "--store", store, "--id", name,
        "--data-dir", str(data), "--lateness", "1", *extra,
    ])  # fmt: skip


@pytest.mark.integration
def test_store_outage_loses_nothing(tmp_path: Path, mosquitto, tila_proc) -> None:  # type: ignore[no-untyped-def]
    require_influxd()
    broker = mosquitto("central")
    influx = InfluxServer(tmp_path / "influx")
    influx.start()
    try:
        site = site_file(tmp_path)
        influx_url = influx.url("tila")
        sqlite_url = f"sqlite:///{tmp_path / 'ref.db'}"
        health = Health(broker.url)
        main = aggregator(tila_proc, "main", site, broker.url, influx_url, tmp_path / "main")
        ref = aggregator(tila_proc, "ref", site, broker.url, sqlite_url, tmp_path / "ref")
        wait_for(lambda: health.get("main") and health.get("ref"), 20, what="both aggregators up")
        port = free_port()
        api = tila_proc(
            "api",
            ["api", "--site", str(site), "--mqtt", broker.url, "--store", influx_url, "--port", str(port)],
        )

        def healthz() -> dict[str, Any] | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    return json.loads(r.read())
            except OSError:
                return None

        wait_for(lambda: (healthz() or {}).get("status") == "ok", 20, what="the API healthy")

        now = datetime.now(UTC).timestamp()
        t0 = slot(now) - 2 * 3600
        evs = events(1, t0, t0 + 3600)
        half = len(evs) // 2
        publish(broker.url, evs[:half])
        wait_for(lambda: final_rows(influx_url, t0, t0 + 900), 20, what="first rows in InfluxDB")

        influx.stop()
        publish(broker.url, evs[half:])
        # The aggregator keeps consuming while the store is down, and says it is degraded.
        wait_for(
            lambda: health.get("main").get("counters", {}).get("events") == len(evs),
            30,
            what="all events consumed",
        )
        wait_for(
            lambda: health.get("main").get("status") == "degraded", 30, interval=0.5, what="degraded health"
        )
        assert health.get("main")["store"]["pending_rows"] > 0
        h = healthz()
        assert h is not None and h["status"] == "degraded" and h["store"] is False
        wait_for(
            lambda: (healthz() or {}).get("aggregators", {}).get("main") == "degraded",
            20,
            what="/healthz names it",
        )

        influx.start()
        wait_for(
            lambda: health.get("main").get("status") == "ok", 60, interval=0.5, what="the store back in use"
        )
        end = slot(now) - BUCKET_SECONDS
        # The rows that waited are written: the finished buckets equal the undisturbed ones.
        wait_for(
            lambda: final_rows(influx_url, t0, end) == final_rows(sqlite_url, t0, end), 30, what="same rows"
        )
        want = final_rows(sqlite_url, t0, end)
        assert sum(v[0] for v in want.values()) > 3600, "too little occupancy to prove anything"
        wait_for(
            lambda: (healthz() or {}).get("status") == "ok", 30, interval=0.5, what="the API healthy again"
        )
        for p in (main, ref, api):
            assert p.stop() == 0, p.output()[-2000:]
    finally:
        influx.stop()


@pytest.mark.integration
def test_two_partitions_give_the_figures_of_one_aggregator(tmp_path: Path, mosquitto, tila_proc) -> None:  # type: ignore[no-untyped-def]
    broker = mosquitto("central")
    site = site_file(tmp_path)
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    single = f"sqlite:///{tmp_path / 'single.db'}"
    health = Health(broker.url)
    procs = [
        aggregator(tila_proc, "p0", site, broker.url, shared, tmp_path / "p", "--partition", "0/2"),
        aggregator(tila_proc, "p1", site, broker.url, shared, tmp_path / "p", "--partition", "1/2"),
        aggregator(tila_proc, "one", site, broker.url, single, tmp_path / "one"),
    ]
    wait_for(lambda: all(health.get(i) for i in ("p0", "p1", "one")), 20, what="three aggregators up")
    now = datetime.now(UTC).timestamp()
    t0 = slot(now) - 2 * 3600
    evs = events(2, t0, t0 + 3600)
    publish(broker.url, evs)
    wait_for(
        lambda: health.get("one").get("counters", {}).get("events") == len(evs),
        30,
        what="the single one done",
    )
    wait_for(
        lambda: sum(health.get(i).get("counters", {}).get("events", 0) for i in ("p0", "p1")) == len(evs),
        30,
        what="partitions done",
    )
    parts = [health.get(i) for i in ("p0", "p1")]
    assert all(p["spaces"] > 0 for p in parts) and sum(p["spaces"] for p in parts) == SPACES
    end = slot(now) - BUCKET_SECONDS
    wait_for(
        lambda: final_rows(shared, t0, end).keys() == final_rows(single, t0, end).keys(),
        20,
        what="same slots",
    )
    assert final_rows(shared, t0, end) == final_rows(single, t0, end)
    for p in procs:
        assert p.stop() == 0, p.output()[-2000:]
