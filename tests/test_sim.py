"""The simulator: behaviour model, device models, payloads, and one run against a real Mosquitto."""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import pytest
from conftest import Mosquitto

from tila.mqtt import Connection, Message, MqttUrl
from tila.sensors.events import Availability, Count, Presence
from tila.sensors.formats import FORMATS, DecodeContext
from tila.sensors.site import Site, bundled_site_path, load_site, parse_site
from tila.sim import service
from tila.sim.behaviour import Behaviour, is_tormaamo_day
from tila.sim.clock import SimClock
from tila.sim.devices import (
    COUNTER_REPORT_INTERVAL,
    OCCUPANCY_TIMEOUT,
    LoraUplink,
    ZigbeeAvailability,
    ZigbeeState,
    readings,
)
from tila.sim.payloads import empty_reading, render, truth_record
from tila.sim.simulator import Simulator

SITE = load_site(bundled_site_path())
TZ = SITE.tz
MONDAY = date(2024, 3, 4)  # the week of the first Tuesday of March 2024 (a Törmäämö day)


def local(d: date, h: int, m: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, h, m, tzinfo=TZ)


def weekdays(n: int, first: date = MONDAY) -> Iterator[date]:
    return (d for d in (first + timedelta(days=i) for i in range(n * 7 // 5 + 7)) if d.weekday() < 5)


# ------------------------------------------------------------------------------------ behaviour


def test_site_is_the_lab() -> None:
    kinds = defaultdict(int)
    for s in SITE.spaces:
        kinds[s.kind] += 1
        assert s.position is not None
        assert s.kind == "desk" or set(s.name) == {"fi", "sv", "en"}
    assert (
        kinds["desk"] >= 36 and 4 <= kinds["room"] <= 6 and 3 <= kinds["booth"] <= 4 and kinds["event"] == 1
    )
    assert all(set(z.name) == {"fi", "sv", "en"} for z in SITE.zones)
    assert {s.format for s in SITE.sensors} == {"zigbee2mqtt", "chirpstack-milesight"}


def test_behaviour_is_deterministic_for_a_seed() -> None:
    days = [MONDAY + timedelta(days=i) for i in range(7)]
    a, b, c = Behaviour(SITE, 11), Behaviour(SITE, 11), Behaviour(SITE, 12)
    assert [a.plan(d) for d in days] == [b.plan(d) for d in days]
    assert [a.plan(d) for d in days] != [c.plan(d) for d in days]
    # A day looks the same whatever was planned before it.
    assert Behaviour(SITE, 11).plan(days[3]) == a.plan(days[3])


def test_nobody_outside_opening_hours_or_at_weekends() -> None:
    b = Behaviour(SITE, 5)
    for i in range(21):
        d = MONDAY + timedelta(days=i)
        plan = b.plan(d)
        if d.weekday() >= 5:
            assert all(steps == () for steps in plan.values())
            continue
        opens, closes = local(d, 7), local(d, 20)
        for space, steps in plan.items():
            for step in steps:
                assert opens <= step.time <= closes, (space, step)
            if steps:
                assert steps[-1].count == 0, space
            for t in (local(d, 6, 59), local(d, 20), local(d, 23, 30)):
                assert b.count_at(space, t) == 0


def test_desks_follow_a_working_day() -> None:
    b = Behaviour(SITE, 21)
    desks = [s.id for s in SITE.spaces if s.kind == "desk"]

    def share(d: date, h: int, m: int = 0) -> float:
        return sum(b.count_at(x, local(d, h, m)) for x in desks) / len(desks)

    days = list(itertools.islice(weekdays(15), 15))
    early = sum(share(d, 7, 30) for d in days) / len(days)
    midday = sum(share(d, h) for d in days for h in range(10, 16)) / (6 * len(days))
    lunch = sum(share(d, 12) for d in days) / len(days)
    afternoon = sum(share(d, 13, 30) for d in days) / len(days)
    evening = sum(share(d, 19, 30) for d in days) / len(days)
    assert midday > 0.3 and midday > 5 * early
    assert lunch < afternoon  # the lunch dip
    assert evening < midday / 4


def test_counts_stay_within_capacity_and_rooms_fill_up_sometimes() -> None:
    b = Behaviour(SITE, 8)
    over_half: set[str] = set()
    for d in itertools.islice(weekdays(20), 20):
        plan = b.plan(d)
        for space in SITE.spaces:
            for step in plan[space.id]:
                assert 0 <= step.count <= space.capacity, (space.id, step)
                if space.kind == "room" and step.count > space.capacity / 2:
                    over_half.add(space.id)
    assert len(over_half) >= 3


def test_tormaamo_breakfast_fills_the_hall() -> None:
    b = Behaviour(SITE, 3)
    tuesday = MONDAY + timedelta(days=1)
    assert is_tormaamo_day(tuesday) and not is_tormaamo_day(tuesday + timedelta(days=7))
    assert b.count_at("event-hall", local(tuesday, 8, 30)) > 20
    assert b.count_at("event-hall", local(tuesday, 9, 40)) == 0
    assert b.count_at("event-hall", local(tuesday + timedelta(days=7), 8, 30)) == 0


def test_any_site_is_empty_when_closed() -> None:
    site = parse_site(
        {
            "site": {"id": "tiny", "timezone": "Europe/Helsinki", "opening_hours": {"sat": "10:00-14:00"}},
            "zones": [{"id": "z"}],
            "spaces": [
                {"id": "d", "kind": "desk", "zone": "z"},
                {"id": "r", "kind": "room", "zone": "z", "capacity": 6},
            ],
        }
    )
    b = Behaviour(site, 1)
    saturday = date(2024, 3, 9)
    for sid in ("d", "r"):
        assert b.plan(MONDAY)[sid] == ()
        for step in b.plan(saturday)[sid]:
            assert local(saturday, 10) <= step.time <= local(saturday, 14)


# -------------------------------------------------------------------------------------- devices


def take(site: Site, seed: int, start: datetime, hours: float, **kw: Any) -> list[Any]:
    end = start + timedelta(hours=hours)
    return list(
        itertools.takewhile(
            lambda r: r.at < end, readings(site, Behaviour(site, seed), start, seed=seed, **kw)
        )
    )


def test_device_stream_is_deterministic_and_ordered() -> None:
    start = local(MONDAY + timedelta(days=2), 9)
    a = take(SITE, 4, start, 2)
    assert a == take(SITE, 4, start, 2)
    assert a != take(SITE, 5, start, 2)
    assert all(x.at <= y.at for x, y in itertools.pairwise(a))


def test_pir_reports_like_zigbee2mqtt() -> None:
    start = local(MONDAY + timedelta(days=2), 8)
    stream = take(SITE, 9, start, 6, outages_per_day=0)
    by_sensor: dict[str, list[Any]] = defaultdict(list)
    for r in stream:
        by_sensor[r.sensor].append(r)
    b = Behaviour(SITE, 9)
    timeouts = heartbeats = 0
    for sensor in (s for s in SITE.sensors if s.format == "zigbee2mqtt"):
        rs = by_sensor[sensor.id]
        assert isinstance(rs[0], ZigbeeAvailability) and rs[0].online and rs[0].at == start
        assert isinstance(rs[1], ZigbeeState) and rs[1].cause == "startup"
        last_motion = None
        for r in rs[2:]:
            assert isinstance(r, ZigbeeState)
            if r.cause == "motion":
                assert r.occupancy and b.count_at(sensor.space, r.at) > 0
                last_motion = r.at
            elif r.cause == "timeout":
                timeouts += 1
                assert not r.occupancy and last_motion is not None and r.at == last_motion + OCCUPANCY_TIMEOUT
            else:
                heartbeats += 1
                assert r.cause == "heartbeat"
        # A heartbeat at least every ~53 minutes.
        beats = [r.at for r in rs if isinstance(r, ZigbeeState) and r.cause in ("heartbeat", "startup")]
        assert all(y - x <= timedelta(minutes=53) for x, y in itertools.pairwise(beats))
    assert timeouts > 20 and heartbeats > 0


def test_pir_outages_go_offline_and_come_back() -> None:
    start = local(MONDAY + timedelta(days=2), 10)
    stream = take(SITE, 2, start, 3, outages_per_day=24)
    offline: dict[str, datetime] = {}
    seen = 0
    for r in stream:
        if isinstance(r, ZigbeeAvailability) and r.at > start:
            if not r.online:
                assert r.sensor not in offline
                offline[r.sensor] = r.at
            else:
                assert r.at - offline.pop(r.sensor) >= timedelta(minutes=10)
                seen += 1
        elif isinstance(r, ZigbeeState) and r.sensor in offline:
            assert r.cause == "timeout"  # Zigbee2MQTT's own timer; the device itself is silent
    assert seen >= 5


def test_counters_report_on_change_and_periodically() -> None:
    start = local(MONDAY + timedelta(days=1), 7, 45)
    b = Behaviour(SITE, 6)
    stream = take(SITE, 6, start, 3)
    uplinks: dict[str, list[LoraUplink]] = defaultdict(list)
    for r in stream:
        if isinstance(r, LoraUplink):
            uplinks[r.sensor].append(r)
            assert r.count == b.count_at(r.space, r.at)
    counters = [s for s in SITE.sensors if s.format == "chirpstack-milesight"]
    assert set(uplinks) == {s.id for s in counters}
    for sensor in counters:
        us = uplinks[sensor.id]
        periodic = [u.at for u in us if u.count_max is not None]
        assert periodic[0] - start <= timedelta(seconds=30)
        assert all(y - x == COUNTER_REPORT_INTERVAL for x, y in itertools.pairwise(periodic))
        changes = [
            s for s in b.steps(sensor.space, start + timedelta(microseconds=1), start + timedelta(hours=3))
        ]
        assert len(us) == len(periodic) + len(changes)
        assert [u.f_cnt for u in us] == list(range(us[0].f_cnt, us[0].f_cnt + len(us)))
    hall = uplinks["event-hall-counter"]
    assert max(u.count for u in hall) > 20 and max(u.count_max or 0 for u in hall) >= max(
        u.count for u in hall
    )


def test_every_payload_decodes_to_its_truth() -> None:
    wall = datetime(2026, 11, 24, 8, 0, 0, 123456, tzinfo=UTC)
    for r in take(SITE, 1, local(MONDAY + timedelta(days=1), 7, 50), 1.5, outages_per_day=30):
        sensor = SITE.sensor(r.sensor)
        assert sensor is not None
        msg = render(r, sensor, wall)
        truth = truth_record(r, wall)
        got = decoded(SITE, msg.topic, msg.payload)
        assert got == [(truth["sensor"], truth["type"], truth["value"])]
        assert msg.retain == (truth["type"] == "availability")


def test_empty_reading_says_empty() -> None:
    when = datetime(2026, 11, 24, 15, 0, 0, 42, tzinfo=UTC)
    for sensor in SITE.sensors:
        topic, payload, rec = empty_reading(sensor, when)
        assert topic == sensor.topic
        (one,) = decoded(SITE, topic, payload)
        assert one == (sensor.id, rec["type"], rec["value"]) and rec["value"] in (False, 0)
        assert rec["space"] == sensor.space and datetime.fromisoformat(rec["time"]) == when


def test_clock_maps_simulated_onto_real_time() -> None:
    c = SimClock(local(MONDAY, 9), 100.0, 60.0)
    assert c.real_at(local(MONDAY, 10)) == pytest.approx(160.0)
    assert c.sim_at(160.0) == local(MONDAY, 10)
    with pytest.raises(ValueError):
        SimClock(local(MONDAY, 9), 0.0, 0.0)


def test_cli_options() -> None:
    parser = argparse.ArgumentParser()
    service.add_arguments(parser)
    args = parser.parse_args(
        ["--site", "bundled", "--mqtt", "mqtt://127.0.0.1:1883", "--start", "2024-03-05T09:30"]
    )
    assert args.site.id == "work20lab" and args.speed == 1.0 and args.seed is None and args.duration is None
    assert args.start == datetime(2024, 3, 5, 9, 30)
    for bad in (["--speed", "0"], ["--start", "tuesday"], ["--outage-rate", "-1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["--site", "bundled", "--mqtt", "mqtt://h:1", *bad])


# ---------------------------------------------------------------------------------- integration


def decoded(site: Site, topic: str, payload: bytes) -> list[tuple[str, str, Any]]:
    """(sensor, type, value) of the presence, count and availability events a message decodes to."""
    sensor = site.sensor_by_topic(topic) or site.sensor_by_topic(topic.rsplit("/", 1)[0])
    assert sensor is not None, topic
    ctx = DecodeContext(sensor.id, sensor.topic, datetime.now(UTC))
    out: list[tuple[str, str, Any]] = []
    for e in FORMATS[sensor.format].decode(topic, payload, ctx):
        if isinstance(e, Presence):
            out.append((e.sensor, "presence", e.occupied))
        elif isinstance(e, Count):
            out.append((e.sensor, "count", e.count))
        elif isinstance(e, Availability):
            out.append((e.sensor, "availability", e.online))
    return out


@pytest.fixture
def sim_broker(shared_broker: Mosquitto) -> MqttUrl:
    """The session's Mosquitto (the simulated site's topics are this module's own)."""
    return MqttUrl.parse(shared_broker.url)


class Collector:
    """A subscriber to the device topics, ready once it has received its own probe."""

    def __init__(self, url: MqttUrl) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.conn = Connection(
            url,
            f"test-sim-sub-{time.monotonic_ns()}",
            subscriptions=[("zigbee2mqtt/#", 1), ("application/#", 1), ("probe/#", 1)],
            on_message=self._on_message,
        )

    def _on_message(self, msg: Message) -> None:
        if msg.topic.startswith("probe/"):
            self.ready.set()
            return
        if msg.retain:  # left on the broker by an earlier test, not published now
            return
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def __enter__(self) -> Self:
        self.conn.start()
        assert self.conn.wait_connected(5)
        for _ in range(50):
            self.conn.publish("probe/x", b"1", qos=1)
            if self.ready.wait(0.1):
                return self
        raise AssertionError("subscriber never got its probe")

    def __exit__(self, *exc: object) -> None:
        self.conn.stop(publish_offline=False)

    def wait_for(self, n: int, timeout: float) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= n:
                    break
            time.sleep(0.02)
        with self.lock:
            return list(self.messages)


@pytest.mark.integration
def test_published_messages_decode_and_match_the_truth(sim_broker: MqttUrl, tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.jsonl"
    with Collector(sim_broker) as sub:
        sim = Simulator(
            SITE,
            sim_broker,
            speed=600,
            seed=17,
            start=datetime(2024, 3, 5, 9, 50),
            truth_path=truth_path,
            outages_per_day=40,
        )
        began = time.monotonic()
        assert sim.run(threading.Event(), duration=2.0) == 0
        assert time.monotonic() - began < 4.0
        truth = [json.loads(line) for line in truth_path.read_text().splitlines()]
        received = sub.wait_for(len(truth), timeout=3.0)

    assert len(truth) == sim.published == len(received) > 150
    types = {t["type"] for t in truth}
    assert types == {"presence", "count", "availability"}
    assert any(t["type"] == "availability" and not t["value"] for t in truth)

    # Per sensor and type, the messages arrive in publication order (MQTT orders a topic's QoS 1
    # messages), decode with the site's formats, and say what the truth file says.
    got: dict[tuple[str, str], list[Any]] = defaultdict(list)
    stamps: dict[tuple[str, str], list[str]] = defaultdict(list)
    for topic, payload in received:
        (one,) = decoded(SITE, topic, payload)
        got[(one[0], one[1])].append(one[2])
        doc = json.loads(payload)
        stamp = doc.get("last_seen") or doc.get("time")
        if stamp is not None:
            stamps[(one[0], one[1])].append(stamp)
    want: dict[tuple[str, str], list[Any]] = defaultdict(list)
    want_stamps: dict[tuple[str, str], list[str]] = defaultdict(list)
    for t in truth:
        assert SITE.sensor(t["sensor"]).space == t["space"]  # type: ignore[union-attr]
        want[(t["sensor"], t["type"])].append(t["value"])
        if t["type"] != "availability":
            want_stamps[(t["sensor"], t["type"])].append(t["time"])
        datetime.fromisoformat(t["time"])
    assert got == want
    assert stamps == want_stamps
    # The stamps are real wall-clock time, not simulated time.
    assert abs(datetime.fromisoformat(truth[-1]["time"]) - datetime.now(UTC)) < timedelta(seconds=30)


@pytest.mark.integration
def test_stops_promptly_and_then_publishes_nothing(sim_broker: MqttUrl, tmp_path: Path) -> None:
    stop = threading.Event()
    truth_path = tmp_path / "truth.jsonl"
    with Collector(sim_broker) as sub:
        sim = Simulator(
            SITE, sim_broker, speed=120, seed=2, start=datetime(2024, 3, 6, 10, 0), truth_path=truth_path
        )
        result: list[int] = []
        worker = threading.Thread(target=lambda: result.append(sim.run(stop)))
        worker.start()
        time.sleep(1.0)
        stop.set()
        stopped_at = time.monotonic()
        worker.join(timeout=3)
        assert not worker.is_alive() and result == [0]
        assert time.monotonic() - stopped_at < 1.2
        n = sim.published
        time.sleep(0.3)
        assert sim.published == n
        assert len(sub.wait_for(n, timeout=2.0)) == n == len(truth_path.read_text().splitlines())
