"""The aggregator's pure core: state, dedup, lateness, buckets and checkpoint/restore."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tila.aggregator.buckets import Bucket
from tila.aggregator.core import Aggregator, MemoryLog, partition
from tila.aggregator.metrics import utilisation
from tila.sensors.events import Availability, Count, Flow, Presence, Stamped
from tila.sensors.site import Site, parse_site

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # a Monday, on a slot boundary
E0 = T0.timestamp()


def site(hours: str = "00:00-24:00") -> Site:
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return parse_site(
        {
            "site": {"id": "t", "timezone": "Europe/Helsinki", "opening_hours": {d: hours for d in days}},
            "zones": [{"id": "z"}],
            "spaces": [
                {"id": "d1", "kind": "desk", "zone": "z"},
                {"id": "d2", "kind": "desk", "zone": "z"},
                {"id": "r1", "kind": "room", "zone": "z", "capacity": 10},
            ],
            "sensors": [
                {"id": "d1-pir", "space": "d1", "format": "zigbee2mqtt", "topic": "zigbee2mqtt/d1-pir"},
                {"id": "d2-pir", "space": "d2", "format": "zigbee2mqtt", "topic": "zigbee2mqtt/d2-pir"},
                {"id": "r1-count", "space": "r1", "format": "zigbee2mqtt", "topic": "zigbee2mqtt/r1-count"},
            ],
        }
    )


class Feed:
    def __init__(self, gateway: str = "gw") -> None:
        self.gateway = gateway
        self.seq = 0

    def __call__(self, sensor: str, at: float, event_cls: type, value: object) -> Stamped:
        self.seq += 1
        t = T0 + timedelta(seconds=at)
        space = sensor.split("-")[0]
        values = value if isinstance(value, tuple) else (value,)
        return Stamped(self.gateway, self.seq, t, space, event_cls(sensor, t, *values))


def totals(agg: Aggregator, s: Site, until: float = 3600) -> dict[str, dict[str, object]]:
    rows = utilisation(
        s, agg.buckets(), T0, T0 + timedelta(seconds=until), [sp.id for sp in s.spaces], "total"
    )
    return {r["space"]: r for r in rows}


def run(agg: Aggregator, events: list[Stamped], end: float = 3600) -> None:
    for s in events:
        t = s.event.time.timestamp()
        agg.tick(t)  # time passes up to each event
        agg.ingest(s, t)
    agg.tick(E0 + end + agg.lateness)


def test_desk_occupied_seconds_and_live_state() -> None:
    s = site()
    agg = Aggregator(s, lateness=5)
    agg.tick(E0)
    # The first tick publishes every space once, as unknown.
    spaces, _ = agg.take_changes()
    assert {sp.id: sp.state for sp in spaces} == {"d1": "unknown", "d2": "unknown", "r1": "unknown"}
    f = Feed()
    agg.ingest(f("d1-pir", 100, Presence, True), E0 + 100)
    assert agg.live["d1"].state == "occupied" and agg.live["d1"].count == 1
    spaces, _ = agg.take_changes()
    assert [sp.id for sp in spaces] == ["d1"]
    agg.ingest(f("d1-pir", 400, Presence, False), E0 + 400)
    agg.tick(E0 + 3600 + 5)
    row = totals(agg, s)["d1"]
    assert row["occupied_seconds"] == 300
    assert row["open_seconds"] == 3600
    assert row["frequency"] == round(300 / 3600, 6)
    assert row["occupancy"] == 1.0 and row["utilisation"] == row["frequency"]
    # Known from the first reading at 100 s on; before that unknown (lost coverage, not vacancy).
    assert row["coverage"] == round(3500 / 3600, 6)
    assert totals(agg, s)["d2"]["coverage"] == 0.0


def test_duplicates_are_applied_once() -> None:
    s = site()
    agg = Aggregator(s, lateness=5)
    agg.tick(E0)
    f = Feed()
    on, off = f("d1-pir", 100, Presence, True), f("d1-pir", 400, Presence, False)
    for ev in (on, on, off, on, off):
        agg.ingest(ev, ev.event.time.timestamp())
    agg.tick(E0 + 3600 + 5)
    assert agg.counters["duplicates"] == 3
    assert totals(agg, s)["d1"]["occupied_seconds"] == 300


def test_out_of_order_within_lateness_is_accrued_in_event_order() -> None:
    s = site()
    agg = Aggregator(s, lateness=600)
    agg.tick(E0)
    a, b = Feed("a"), Feed("b")
    on = a("d1-pir", 100, Presence, True)
    off = b("d1-pir", 400, Presence, False)
    agg.ingest(off, E0 + 401)
    # Arrives after the later event, while the watermark (now - 600 s) is still before 100 s.
    agg.tick(E0 + 420)
    agg.ingest(on, E0 + 420)
    agg.tick(E0 + 3600 + 600)
    assert totals(agg, s)["d1"]["occupied_seconds"] == 300
    assert agg.counters["late"] == 0


def test_late_event_is_accrued_again_in_its_place() -> None:
    s = site()
    agg = Aggregator(s, lateness=5)
    agg.tick(E0)
    f = Feed()
    agg.tick(E0 + 1000)
    agg.ingest(f("d1-pir", 100, Presence, True), E0 + 1000)
    agg.tick(E0 + 1010)
    agg.ingest(f("d1-pir", 1300, Presence, False), E0 + 1300)
    agg.tick(E0 + 3605)
    assert agg.counters["late"] == 1 and agg.counters["reaccrued"] == 1
    # As if it had come in time: occupied from 100 s to 1300 s.
    assert totals(agg, s)["d1"]["occupied_seconds"] == 1200


def test_offline_sensor_makes_space_unknown_and_loses_coverage() -> None:
    s = site()
    agg = Aggregator(s, lateness=5)
    f = Feed()
    run(
        agg,
        [
            f("d1-pir", 0, Presence, True),
            f("d1-pir", 600, Availability, False),
            f("d1-pir", 900, Availability, True),  # back, but its reading is kept: occupied again
            f("d1-pir", 1200, Presence, False),
        ],
    )
    row = totals(agg, s)["d1"]
    assert row["occupied_seconds"] == 600 + 300
    assert row["coverage"] == round((3600 - 300) / 3600, 6)


def test_silent_sensor_turns_unknown_after_its_heartbeat() -> None:
    s = site()
    agg = Aggregator(s, lateness=5)
    f = Feed()
    run(agg, [f("d1-pir", 0, Presence, True)], end=4 * 3600)
    # zigbee2mqtt heartbeat allowance: 2 h, then unknown.
    rows = utilisation(s, agg.buckets(), T0, T0 + timedelta(hours=4), ["d1"], "1h")
    assert [r["occupied_seconds"] for r in rows] == [3600, 3600, 0, 0]
    assert [r["coverage"] for r in rows] == [1.0, 1.0, 0.0, 0.0]
    assert agg.live["d1"].state == "unknown"


def test_room_counts_mean_and_peak() -> None:
    s = site()
    agg = Aggregator(s, lateness=5)
    f = Feed()
    run(
        agg,
        [
            f("r1-count", 0, Count, 0),
            f("r1-count", 900, Count, 4),
            f("r1-count", 1800, Count, 8),
            f("r1-count", 2700, Count, 0),
        ],
    )
    row = totals(agg, s)["r1"]
    assert row["occupied_seconds"] == 1800
    assert row["mean_count"] == 6.0
    assert row["peak_count"] == 8
    assert row["occupancy"] == 0.6
    assert row["utilisation"] == round(0.5 * 0.6, 6)


def test_closed_hours_do_not_count() -> None:
    s = site("10:30-11:00")  # 08:30–09:00 UTC in Helsinki winter time
    agg = Aggregator(s, lateness=5)
    f = Feed()
    run(agg, [f("d1-pir", 0, Presence, True)])
    row = totals(agg, s)["d1"]
    assert row["open_seconds"] == 1800 and row["occupied_seconds"] == 1800 and row["frequency"] == 1.0


def stream(seed: int, n: int = 60) -> list[Stamped]:
    rnd = random.Random(seed)
    feeds = {"a": Feed("a"), "b": Feed("b")}
    out = []
    t = 0.0
    for _ in range(n):
        t += rnd.uniform(1, 120)
        sensor = rnd.choice(["d1-pir", "d2-pir", "r1-count"])
        if sensor == "r1-count":
            out.append(feeds[rnd.choice("ab")](sensor, t, Count, rnd.randint(0, 12)))
        else:
            out.append(feeds[rnd.choice("ab")](sensor, t, Presence, rnd.random() < 0.5))
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 59))
def test_restart_from_checkpoint_gives_the_same_figures(seed: int, cut: int) -> None:
    s = site()
    events = stream(seed)
    whole = Aggregator(s, lateness=5)
    run(whole, events)

    log = MemoryLog()  # the journal, which survives the restart with the checkpoint
    first = Aggregator(s, lateness=5, log=log)
    for ev in events[:cut]:
        first.tick(ev.event.time.timestamp())
        first.ingest(ev, ev.event.time.timestamp())
    doc = json.loads(json.dumps(first.checkpoint()))
    buckets_so_far = {(b.space, b.start): b for b in first.buckets()}
    second = Aggregator(s, lateness=5, log=log)
    second.restore(doc)
    # Redelivery of everything before the cut (as a broker does for unacknowledged messages).
    run(second, events)
    merged = {**buckets_so_far, **{(b.space, b.start): b for b in second.buckets()}}
    got = utilisation(s, merged.values(), T0, T0 + timedelta(hours=3), ["d1", "d2", "r1"], "total")
    want = utilisation(s, whole.buckets(), T0, T0 + timedelta(hours=3), ["d1", "d2", "r1"], "total")
    assert got == want
    assert second.counters["duplicates"] >= cut


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_totals_are_conserved(seed: int) -> None:
    s = site()
    agg = Aggregator(s, lateness=5)
    run(agg, stream(seed), end=3 * 3600)
    for r in utilisation(s, agg.buckets(), T0, T0 + timedelta(hours=3), ["d1", "d2", "r1"], "15m"):
        assert 0 <= r["occupied_seconds"] <= r["open_seconds"] * r["coverage"] + 0.01
        assert r["coverage"] <= 1 + 1e-9


def test_availability_stamped_on_receipt_does_not_hide_an_earlier_device_reading() -> None:
    # The device publishes availability, then its reading; the gateway stamps availability with
    # its own receipt time (a few ms later than the reading's device time).
    s = site()
    agg = Aggregator(s, lateness=5)
    f = Feed()
    agg.ingest(f("d1-pir", 10.005, Availability, True), E0 + 10.005)
    agg.ingest(f("d1-pir", 10.002, Presence, True), E0 + 10.006)
    assert agg.live["d1"].state == "occupied"
    # An older reading arriving after a newer one does not undo it in the live view.
    agg.ingest(f("d1-pir", 9.0, Presence, False), E0 + 10.1)
    assert agg.live["d1"].state == "occupied"


def test_flows_sum_to_a_head_count_that_never_goes_below_zero() -> None:
    s = site()
    agg = Aggregator(s, lateness=5)
    f = Feed()
    run(agg, [
        f("r1-count", 0, Flow, (3, 0)),
        f("r1-count", 900, Flow, (2, 1)),
        f("r1-count", 1800, Flow, (0, 9)),  # more out than in: a missed entry, clamp to zero
        f("r1-count", 2700, Flow, (1, 0)),
    ])  # fmt: skip
    row = totals(agg, s)["r1"]
    assert row["occupied_seconds"] == 2700
    assert row["mean_count"] == round((3 * 900 + 4 * 900 + 1 * 900) / 2700, 6)
    assert agg.live["r1"].count == 1


def slot_rows(
    agg_buckets: list, s: Site, hours: int = 6
) -> dict[tuple[str, str], tuple[float, float, float, int]]:  # type: ignore[type-arg]
    rows = utilisation(s, agg_buckets, T0, T0 + timedelta(hours=hours), ["d1", "d2", "r1"], "15m")
    return {
        (r["space"], r["start"]): (r["occupied_seconds"], r["coverage"], r["mean_count"], r["peak_count"])
        for r in rows
    }


def collect(agg: Aggregator) -> list:  # type: ignore[type-arg]
    """Every bucket the aggregator produced, as a store would hold them (latest write wins)."""
    return list(agg._store.values())  # type: ignore[attr-defined]


class Recording(Aggregator):
    """Keeps every bucket version it would commit, as the store would (latest write wins)."""

    def __init__(self, *a, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*a, **kw)
        self._store: dict[tuple[str, int], object] = {}

    def tick(self, now: float) -> None:
        super().tick(now)
        for b in self.buckets():
            self._store[(b.space, b.start)] = Bucket(*b.as_tuple())
        self.forget_closed()


def feed(agg: Aggregator, arrivals: list[tuple[float, Stamped]], end: float) -> None:
    for at, ev in sorted(arrivals, key=lambda x: x[0]):
        agg.tick(E0 + at)
        agg.ingest(ev, E0 + at)
    agg.tick(E0 + end + agg.lateness + 1)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.randoms(use_true_random=False))
def test_arrival_order_does_not_change_the_figures(seed: int, rnd: random.Random) -> None:
    s = site()
    events = stream(seed, n=80)
    in_order = Recording(s, lateness=5)
    feed(in_order, [(ev.event.time.timestamp() - E0, ev) for ev in events], 4 * 3600)
    shuffled = Recording(s, lateness=5)
    # Each event arrives any time from when it happened up to two hours later.
    feed(shuffled, [(ev.event.time.timestamp() - E0 + rnd.uniform(0, 7200), ev) for ev in events], 4 * 3600)
    want, got = slot_rows(collect(in_order), s), slot_rows(collect(shuffled), s)
    assert want.keys() == got.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-3), k


def test_a_gateway_outage_and_backlog_drain_give_the_figures_of_an_undisturbed_day() -> None:
    s = site()
    events = stream(42, n=200)  # several hours of two gateways
    undisturbed = Recording(s, lateness=5)
    feed(undisturbed, [(ev.event.time.timestamp() - E0, ev) for ev in events], 6 * 3600)
    # Gateway "a" loses its uplink from 1 h to 3 h; its events arrive in a burst at 3 h 05.
    outage = Recording(s, lateness=5)
    arrivals = []
    for ev in events:
        t = ev.event.time.timestamp() - E0
        arrivals.append((3 * 3600 + 300 + t / 1000 if ev.gateway == "a" and 3600 <= t < 3 * 3600 else t, ev))
    feed(outage, arrivals, 6 * 3600)
    assert outage.counters["late"] > 0
    want, got = slot_rows(collect(undisturbed), s), slot_rows(collect(outage), s)
    assert want.keys() == got.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-3), k


def test_partitions_share_a_site_without_splitting_a_space() -> None:
    s = site()
    events = stream(7, n=120)
    whole = Recording(s, lateness=5)
    feed(whole, [(ev.event.time.timestamp() - E0, ev) for ev in events], 4 * 3600)
    parts = [Recording(s, lateness=5, owns=partition(i, 2)) for i in range(2)]
    for p in parts:
        feed(p, [(ev.event.time.timestamp() - E0, ev) for ev in events], 4 * 3600)
    assert set(parts[0].timelines).isdisjoint(parts[1].timelines)
    assert set(parts[0].timelines) | set(parts[1].timelines) == {"d1", "d2", "r1"}
    merged = collect(parts[0]) + collect(parts[1])
    assert slot_rows(merged, s) == slot_rows(collect(whole), s)
