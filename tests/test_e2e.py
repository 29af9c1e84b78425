"""End to end on real parts: two Mosquitto brokers and every tila service as its own process.

``tila sim`` publishes like the devices on the local broker and writes down what it published
(the truth file); ``tila gateway`` forwards to the central broker; ``tila aggregator`` keeps state
and buckets in SQLite; ``tila api`` serves them. The states and occupied seconds at the API must be
what the simulator did.
"""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import free_port, wait_for

from tila.mqtt import Connection, MqttUrl
from tila.sensors.site import bundled_site_path, load_site

ANALYST = "e2e-analyst-token"


def e2e_site(tmp_path: Path) -> Path:
    """The bundled site, open around the clock (holidays too) so that every simulated second counts."""
    text = bundled_site_path().read_text(encoding="utf-8")
    start = text.index("opening_hours")
    end = text.index("\n", start)
    days = ", ".join(f'{d} = "00:00-24:00"' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    path = tmp_path / "site.toml"
    hours = f'holidays = "none"\nopening_hours = {{ {days} }}'
    path.write_text(text[:start] + hours + text[end:], encoding="utf-8")
    return path


def get(url: str, token: str | None = None) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def read_truth(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def expected_from_truth(
    truth: list[dict[str, Any]], sensors_of: dict[str, list[str]], until: float
) -> tuple[dict[str, str], dict[str, float]]:
    """Each space's final state and its occupied seconds up to ``until``, from what was published.

    Mirrors the definitions: a space is occupied while a live sensor reads someone; a sensor
    reported offline is not live (its space is unknown, not occupied) until it is back online.
    """
    by_space: dict[str, list[dict[str, Any]]] = {}
    for rec in truth:
        by_space.setdefault(rec["space"], []).append(rec)
    states: dict[str, str] = {}
    occupied: dict[str, float] = {}
    for space, recs in by_space.items():
        recs.sort(key=lambda r: datetime.fromisoformat(r["time"]))
        reading: dict[str, int] = {}
        online: dict[str, bool] = {}
        total = 0.0
        state, since = "unknown", None

        def current(reading: dict[str, int] = reading, online: dict[str, bool] = online) -> str:
            live = [reading[s] for s in reading if online.get(s, True)]
            if not live:
                return "unknown"
            return "occupied" if max(live) > 0 else "free"

        for rec in recs:
            t = datetime.fromisoformat(rec["time"]).timestamp()
            if rec["type"] == "availability":
                online[rec["sensor"]] = bool(rec["value"])
            elif rec["type"] == "presence":
                reading[rec["sensor"]] = 1 if rec["value"] else 0
                online[rec["sensor"]] = True
            elif rec["type"] == "count":
                reading[rec["sensor"]] = int(rec["value"])
                online[rec["sensor"]] = True
            new = current()
            if new != state:
                if state == "occupied" and since is not None:
                    total += t - since
                state, since = new, t
        if state == "occupied" and since is not None:
            total += until - since
        states[space] = state
        occupied[space] = total
    return states, occupied


@pytest.mark.integration
def test_pipeline_end_to_end(tmp_path: Path, mosquitto, tila_proc) -> None:  # type: ignore[no-untyped-def]
    local, central = mosquitto("local"), mosquitto("central")
    site_file = e2e_site(tmp_path)
    site = load_site(site_file)
    store = f"sqlite:///{tmp_path / 'tila.db'}"
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"

    aggregator = tila_proc(
        "aggregator",
        ["aggregator", "--site", str(site_file), "--mqtt", central.url, "--store", store, "--lateness", "2"],
    )
    api = tila_proc(
        "api",
        ["api", "--site", str(site_file), "--mqtt", central.url, "--store", store, "--port", str(port)],
        env={"TILA_TOKENS": f"analyst:{ANALYST}"},
    )
    gateway = tila_proc(
        "gateway",
        [
            "gateway",
            "--site",
            str(site_file),
            "--id",
            "gw1",
            "--local",
            local.url,
            "--central",
            central.url,
            "--data-dir",
            str(tmp_path / "gw"),
        ],
    )

    # Every space is listed (unknown at first) once the API is up.
    spaces = wait_for(lambda: _try(get, f"{api_url}/v1/spaces"), 20, what="the API")
    assert {s["id"] for s in spaces} == {s.id for s in site.spaces}

    # Wait until the gateway is subscribed locally (its first health report says so).
    health: dict[str, bytes] = {}
    watcher = Connection(
        MqttUrl.parse(central.url),
        "e2e-watch",
        subscriptions=[("tila/v1/+/gateways/+/health", 1)],
        on_message=lambda m: health.__setitem__(m.topic, m.payload),
    )
    watcher.start()
    wait_for(
        lambda: any(json.loads(v).get("local_connected") for v in health.values()),
        20,
        what="gateway subscribed",
    )
    watcher.stop()

    truth_file = tmp_path / "truth.jsonl"
    # A simulated Tuesday from 09:00 at 600× speed: 25 s of real time are about four working hours.
    sim = tila_proc(
        "sim",
        [
            "sim",
            "--site",
            str(site_file),
            "--mqtt",
            local.url,
            "--speed",
            "600",
            "--seed",
            "7",
            "--duration",
            "25",
            "--start",
            "2026-11-24T09:00:00",
            "--truth",
            str(truth_file),
        ],
    )
    assert sim.wait(60) == 0, sim.output()
    truth = read_truth(truth_file)
    assert len(truth) > 50, "the simulator published too little to test anything"
    sensors_of = {sp.id: [s.id for s in site.sensors_of(sp.id)] for sp in site.spaces}
    want_states, _ = expected_from_truth(truth, sensors_of, time.time())

    def states_match() -> bool:
        got = {s["id"]: s["state"] for s in get(f"{api_url}/v1/spaces")}
        return all(got[k] == v for k, v in want_states.items())

    wait_for(states_match, 20, what="the API's states to match the simulator's")
    changed = [s for s in get(f"{api_url}/v1/spaces") if s["state"] != "unknown"]
    assert len(changed) >= len(site.spaces) // 2
    assert any(s["state"] == "occupied" for s in changed) and any(s["state"] == "free" for s in changed)

    # Close the day: every device reports an empty space at a known time, so the occupied seconds
    # are fully determined by what was published.
    final = datetime.now(UTC)
    closing = _close_the_day(local.url, site, final)
    truth += closing
    _, want_occupied = expected_from_truth(truth, sensors_of, final.timestamp())
    wait_for(
        lambda: all(s["state"] in ("free", "unknown") for s in get(f"{api_url}/v1/spaces")),
        20,
        what="all spaces empty",
    )
    time.sleep(2 + 1.5)  # the lateness window, then one aggregator tick

    first = min(datetime.fromisoformat(r["time"]) for r in truth)
    frm = quote((first - timedelta(minutes=15)).isoformat())
    to = quote((final + timedelta(minutes=15)).isoformat())
    rows = get(f"{api_url}/v1/utilisation?from={frm}&to={to}&interval=total", ANALYST)
    got = {r["space"]: r["occupied_seconds"] for r in rows}
    for space, seconds in want_occupied.items():
        assert got.get(space, 0.0) == pytest.approx(seconds, abs=0.5), space
    assert sum(want_occupied.values()) > 60, "nobody sat anywhere: the comparison proves little"

    for p in (gateway, aggregator, api):
        assert p.stop() == 0, p.output()[-2000:]


def _try(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except OSError:
        return None


def _close_the_day(url: str, site: Any, when: datetime) -> list[dict[str, Any]]:
    """Publish, as each device, a reading that its space is empty; return the truth records."""
    from tila.sim import payloads  # the simulator's device payloads: one place knows their shapes

    dev = Connection(MqttUrl.parse(url), "e2e-devices")
    dev.start()
    assert dev.wait_connected(5)
    records = []
    for sensor in site.sensors:
        topic, payload, rec = payloads.empty_reading(sensor, when)
        dev.publish(topic, payload, qos=1)
        records.append({**rec, "space": sensor.space, "sensor": sensor.id})
    dev.stop()
    return records
