"""One ``tila aggregator`` process serving several sites, on a real Mosquitto and real stores.

Sites come from a directory of site files or from ``--site`` given more than once; every site gets
its own journal, broker session, retained states and health, exactly as a single-site aggregator.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import TILA, wait_for

from tila.mqtt import Connection, Message, MqttUrl
from tila.sensors import topics
from tila.sensors.events import Presence, Stamped
from tila.sensors.wire import encode_batch
from tila.store import open_store, parse_store_url

DESKS = 3
ALL_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def site_toml(site: str, prefix: str) -> str:
    days = ", ".join(f'{d} = "00:00-24:00"' for d in ALL_DAYS)
    lines = [
        f'[site]\nid = "{site}"\ntimezone = "Europe/Helsinki"\nholidays = "none"\nopening_hours = {{ {days} }}\n',
        '[[zones]]\nid = "z"\n',
    ]
    for i in range(DESKS):
        desk = f"{prefix}d{i}"
        lines.append(f'[[spaces]]\nid = "{desk}"\nkind = "desk"\nzone = "z"\n')
        lines.append(
            f'[[sensors]]\nid = "{desk}-pir"\nspace = "{desk}"\nformat = "zigbee2mqtt"\n'
            f'topic = "zigbee2mqtt/{desk}-pir"\n'
        )
    return "\n".join(lines)


def write_site(path: Path, site: str, prefix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(site_toml(site, prefix))
    return path


def desk_events(gateway: str, prefix: str, start: float, occupied_at_end: bool) -> list[Stamped]:
    """Every desk occupied at ``start``, free ten minutes later, then as ``occupied_at_end`` 60 s ago."""
    now = datetime.now(UTC).timestamp()
    out = []
    for t, occ in ((start, True), (start + 600, False), (now - 60, occupied_at_end)):
        for i in range(DESKS):
            when = datetime.fromtimestamp(t, UTC)
            out.append(
                Stamped(
                    gateway, len(out) + 1, when, f"{prefix}d{i}", Presence(f"{prefix}d{i}-pir", when, occ)
                )
            )
    return out


def publish(url: str, site: str, gateway: str, evs: list[Stamped]) -> None:
    conn = Connection(MqttUrl.parse(url), f"multisite-test-{gateway}")
    conn.start()
    assert conn.wait_connected(5)
    conn.publish(topics.events(site, gateway), encode_batch(gateway, evs), qos=1)
    assert conn.flush(10)
    conn.stop()


class Watch:
    """Retained space states, aggregator statuses and health of every site on the broker."""

    def __init__(self, url: str) -> None:
        self.lock = threading.Lock()
        self.states: dict[tuple[str, str], dict[str, Any]] = {}
        self.status: dict[str, bytes] = {}
        self.health: dict[str, dict[str, Any]] = {}
        self.conn = Connection(
            MqttUrl.parse(url),
            "multisite-test-watch",
            subscriptions=[(topics.space_state_all("+"), 1), (topics.aggregators_all("+"), 1)],
            on_message=self._on,
        )
        self.conn.start()
        assert self.conn.subscribed.wait(5)

    def _on(self, msg: Message) -> None:
        parsed = topics.parse(msg.topic)
        assert parsed is not None
        site, kind, ident, leaf = parsed
        with self.lock:
            if kind == "spaces":
                self.states[(site, ident)] = json.loads(msg.payload)
            elif leaf == "status":
                self.status[site] = msg.payload
            elif leaf == "health":
                self.health[site] = json.loads(msg.payload)

    def state(self, site: str, space: str) -> str | None:
        with self.lock:
            return self.states.get((site, space), {}).get("state")

    def close(self) -> None:
        self.conn.stop(flush_timeout=0.2)


def bucket_spaces(store_url: str, start: float) -> dict[str, float]:
    """Occupied seconds per space in the store since ``start``."""
    store = open_store(parse_store_url(store_url))
    try:
        rows = store.buckets(datetime.fromtimestamp(start - 900, UTC), datetime.now(UTC))
    finally:
        store.close()
    out: dict[str, float] = {}
    for b in rows:
        out[b.space] = out.get(b.space, 0.0) + b.occupied_s
    return out


def run_sites(
    tmp_path: Path,
    mosquitto,  # type: ignore[no-untyped-def]
    tila_proc,  # type: ignore[no-untyped-def]
    site_args: list[str],
    store: str,
    stores: dict[str, str],
    prefixes: dict[str, str],
) -> None:
    """One aggregator for the sites; feed each its gateway's events; every state, health and bucket
    must come out under its own site; then a clean stop says offline for every site."""
    broker = mosquitto("central")
    watch = Watch(broker.url)
    agg = tila_proc(
        "aggregator",
        ["aggregator", *site_args, "--mqtt", broker.url, "--store", store,
         "--id", "multi", "--data-dir", str(tmp_path / "data"), "--lateness", "1"],
    )  # fmt: skip
    try:
        wait_for(
            lambda: all(watch.status.get(s) == b"online" for s in prefixes), 30, what="every site online"
        )
        start = datetime.now(UTC).timestamp() - 1800
        # Site by site the desks end differently: one site's states cannot pass for the other's.
        ends = {s: k % 2 == 0 for k, s in enumerate(sorted(prefixes))}
        for site, prefix in prefixes.items():
            publish(broker.url, site, f"gw-{site}", desk_events(f"gw-{site}", prefix, start, ends[site]))
        expected = {
            (site, f"{prefix}d{i}"): ("occupied" if ends[site] else "free")
            for site, prefix in prefixes.items()
            for i in range(DESKS)
        }
        wait_for(
            lambda: all(watch.state(s, sp) == want for (s, sp), want in expected.items()),
            30,
            what="every space's retained state from its site's events",
        )
        # Each site's desks in its store: occupied for the ten minutes after ``start``.
        for site, prefix in prefixes.items():
            desks = [f"{prefix}d{i}" for i in range(DESKS)]

            def stored(site: str = site, desks: list[str] = desks) -> bool:
                occupied = bucket_spaces(stores[site], start)
                return all(occupied.get(d, 0) >= 600 - 1 for d in desks)

            wait_for(stored, 30, what=f"site {site}'s buckets in its store")
        wait_for(lambda: set(watch.health) >= set(prefixes), 30, what="a health report per site")
        for site in prefixes:
            h = watch.health[site]
            assert h["aggregator"] == "multi" and h["sites_in_process"] == len(prefixes), h
            assert (tmp_path / "data" / f"aggregator-{site}-multi.db").exists()
        assert agg.stop() == 0, agg.output()[-2000:]
        wait_for(
            lambda: all(watch.status.get(s) == b"offline" for s in prefixes), 10, what="every site offline"
        )
    finally:
        watch.close()


@pytest.mark.integration
def test_one_process_serves_a_directory_of_sites(tmp_path: Path, mosquitto, tila_proc) -> None:  # type: ignore[no-untyped-def]
    sites = tmp_path / "sites"
    write_site(sites / "north.toml", "north", "n-")
    write_site(sites / "south.toml", "south", "s-")
    (sites / "README.txt").write_text("not a site file: ignored")
    # Both sites in the one store they share (their space ids differ).
    store = f"sqlite:///{tmp_path / 'tila.db'}"
    run_sites(
        tmp_path, mosquitto, tila_proc, ["--site", str(sites)], store, {"north": store, "south": store},
        {"north": "n-", "south": "s-"},
    )  # fmt: skip


@pytest.mark.integration
def test_repeated_site_with_a_store_per_site(tmp_path: Path, mosquitto, tila_proc) -> None:  # type: ignore[no-untyped-def]
    # The same space ids in both sites: fine, since each site has its own store.
    a = write_site(tmp_path / "a" / "site.toml", "east")
    b = write_site(tmp_path / "b" / "site.toml", "west")
    template = f"sqlite:///{tmp_path / 'stores' / '{site}.db'}"
    stores = {site: template.replace("{site}", site) for site in ("east", "west")}
    run_sites(
        tmp_path, mosquitto, tila_proc, ["--site", str(a), "--site", str(b)], template, stores,
        {"east": "", "west": ""},
    )  # fmt: skip
    for site in ("east", "west"):
        assert sorted(bucket_spaces(stores[site], datetime.now(UTC).timestamp() - 1800)) == [
            f"d{i}" for i in range(DESKS)
        ]


def aggregator_cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TILA, "aggregator", *args, "--mqtt", "mqtt://127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_bad_site_sets_end_with_exit_2_and_one_line(tmp_path: Path) -> None:
    store = ["--store", f"sqlite:///{tmp_path / 'tila.db'}"]
    dup = tmp_path / "dup"
    write_site(dup / "one.toml", "same", "a-")
    write_site(dup / "two.toml", "same", "b-")
    (tmp_path / "empty").mkdir()
    write_site(tmp_path / "x.toml", "x")
    write_site(tmp_path / "y.toml", "y")
    cases = [
        (["--site", str(dup), *store], None, "site id 'same' is in two site files"),
        (
            ["--site", str(tmp_path / "x.toml"), "--site", str(tmp_path / "x.toml"), *store],
            None,
            "site id 'x'",
        ),
        (["--site", str(tmp_path / "empty"), *store], None, "no site files (*.toml) in directory"),
        ([*store], {"TILA_SITE": str(tmp_path / "empty")}, "no site files (*.toml) in directory"),
        # --site on the command line replaces TILA_SITE (which is then not even read).
        (
            ["--site", str(tmp_path / "x.toml"), "--site", str(tmp_path / "x.toml"), *store],
            {"TILA_SITE": str(tmp_path / "empty")},
            "site id 'x' is in two site files",
        ),
        (
            ["--site", str(tmp_path / "x.toml"), "--site", str(tmp_path / "y.toml"), *store],
            None,
            "space id 'd0' is in sites 'x' and 'y', which would share one store",
        ),
        (
            ["--site", str(tmp_path / "x.toml"), "--store", "influxdb://127.0.0.1/{site}/x"],
            None,
            "argument --store: InfluxDB database",
        ),
    ]
    for args, env, message in cases:
        res = aggregator_cli(args, env)
        assert res.returncode == 2, (args, res.stderr)
        assert message in res.stderr, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
