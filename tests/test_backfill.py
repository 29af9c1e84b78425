"""History backfill: known answers on a tiny site, the bundled site against its plan, the CLI, InfluxDB."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import TILA, wait_for
from influx_support import InfluxServer, running_influxd

from tila.aggregator.buckets import BUCKET_SECONDS, Bucket
from tila.aggregator.core import Aggregator
from tila.sensors.events import Stamped
from tila.sensors.formats import FORMATS, DecodeContext
from tila.sensors.site import Site, bundled_site_path, load_site, parse_site
from tila.sim import backfill as bf
from tila.sim.behaviour import Behaviour, Outage, Step, season
from tila.sim.devices import OCCUPANCY_TIMEOUT, LoraUplink, ZigbeeState
from tila.sim.payloads import render
from tila.store import open_store, parse_store_url
from tila.store.sqlite import SqliteStore

SITE = load_site(bundled_site_path())
TZ = SITE.tz
#: An ordinary week of March 2025 (no holidays; the first Tuesday and Thursday are in the week before).
MARCH = date(2025, 3, 10)
#: A July week: the summer holiday.
JULY = date(2025, 7, 14)
#: The week of Ascension Day 2025 (Thursday 29 May).
ASCENSION_WEEK = date(2025, 5, 26)


def local(d: date, h: int, m: int = 0, s: float = 0) -> datetime:
    return datetime(d.year, d.month, d.day, h, m, tzinfo=TZ) + timedelta(seconds=s)


def ts(d: date, h: int, m: int = 0) -> int:
    return int(local(d, h, m).timestamp())


def week(first: date, n: int = 5) -> list[date]:
    return [first + timedelta(days=i) for i in range(n)]


def rows_of(store: SqliteStore) -> list[tuple[object, ...]]:
    return sorted(store._db.execute("SELECT * FROM buckets").fetchall())


# ----------------------------------------------------------------------------------- tiny site

TINY = parse_site(
    {
        "site": {
            "id": "tiny",
            "timezone": "Europe/Helsinki",
            "holidays": "none",
            "opening_hours": {d: "08:00-16:00" for d in ("mon", "tue", "wed", "thu", "fri")},
        },
        "zones": [{"id": "z"}],
        "spaces": [
            {"id": "d", "kind": "desk", "zone": "z"},
            {"id": "r", "kind": "room", "zone": "z", "capacity": 6},
        ],
        "sensors": [
            {"id": "d-pir", "space": "d", "format": "zigbee2mqtt", "topic": "zigbee2mqtt/d-pir"},
            {
                "id": "r-vs121",
                "space": "r",
                "format": "chirpstack-milesight",
                "topic": "application/00000000-0000-4000-8000-000000000001/device/24e124000000000a/event/up",
            },
        ],
    }
)
DAY = date(2025, 3, 12)  # a Wednesday


class Planned(Behaviour):
    """A hand-made plan: on DAY the desk is used 09:00–11:00 and the room holds 3, then 5, then
    nobody; the desk's sensor is out 13:00–14:00 and the room's 14:00–15:30. Other days are empty."""

    def _make_plan(self, day: date) -> dict[str, tuple[Step, ...]]:
        if day != DAY:
            return {"d": (), "r": ()}
        return {
            "d": (Step(local(day, 9), 1), Step(local(day, 11), 0)),
            "r": (Step(local(day, 9), 3), Step(local(day, 9, 30), 5), Step(local(day, 10), 0)),
        }

    def outages(self, day: date) -> tuple[Outage, ...]:
        if day != DAY:
            return ()
        return (
            Outage("d-pir", local(day, 13), local(day, 14)),
            Outage("r-vs121", local(day, 14), local(day, 15, 30)),
        )


@pytest.fixture(scope="module")
def tiny_day() -> tuple[dict[tuple[str, int], Bucket], list[object]]:
    behaviour = Planned(TINY, 0)
    result = bf.simulate_day(TINY, behaviour, DAY)
    end = local(DAY + timedelta(days=1), 0)
    stream = list(itertools.takewhile(lambda r: r.at < end, bf.day_readings(TINY, behaviour, DAY)))
    assert result.readings == len(stream)
    return {(b.space, b.start): b for b in result.buckets}, stream


def test_tiny_site_buckets_cover_the_opening_hours_only(tiny_day) -> None:  # type: ignore[no-untyped-def]
    buckets, _ = tiny_day
    slots = {start for _, start in buckets}
    assert slots == set(range(ts(DAY, 8), ts(DAY, 16), BUCKET_SECONDS))
    assert {space for space, _ in buckets} == {"d", "r"}


def test_tiny_site_room_known_answers(tiny_day) -> None:  # type: ignore[no-untyped-def]
    """A people counter reports every change when it happens: the room's buckets are exact."""
    buckets, stream = tiny_day
    room = {start: b for (space, start), b in buckets.items() if space == "r"}
    expected_counts = {ts(DAY, 9): 3, ts(DAY, 9, 15): 3, ts(DAY, 9, 30): 5, ts(DAY, 9, 45): 5}
    for start in range(ts(DAY, 8), ts(DAY, 14), BUCKET_SECONDS):
        count = expected_counts.get(start, 0)
        b = room[start]
        assert (b.covered_s, b.occupied_s, b.count_s, b.peak) == (
            900,
            900 if count else 0,
            900 * count,
            count,
        ), datetime.fromtimestamp(start, TZ)
    # Out from 14:00: its last report before is the periodic one of the 10-minute phase; 20 minutes
    # of silence (the format's heartbeat) later the room is unknown, until the first report after
    # 15:30 (periodic again, on the same phase).
    uplinks = [r.at.timestamp() for r in stream if isinstance(r, LoraUplink)]
    phase = (uplinks[0] - ts(DAY, 0)) % 600
    last_before = max(t for t in uplinks if t < ts(DAY, 14))
    first_after = min(t for t in uplinks if t >= ts(DAY, 15, 30))
    assert last_before == ts(DAY, 13, 50) + phase and first_after == ts(DAY, 15, 30) + phase
    unknown_from, unknown_to = last_before + 1200, first_after
    for start in range(ts(DAY, 14), ts(DAY, 16), BUCKET_SECONDS):
        gap = max(0.0, min(start + 900, unknown_to) - max(start, unknown_from))
        b = room[start]
        assert b.covered_s == pytest.approx(900 - gap, abs=1e-6), datetime.fromtimestamp(start, TZ)
        assert b.occupied_s == 0 and b.count_s == 0
    assert room[ts(DAY, 14, 45)].covered_s == 0  # missing, not vacant


def test_tiny_site_desk_known_answers(tiny_day) -> None:  # type: ignore[no-untyped-def]
    """A PIR: occupied from the first detection to the 90 s timeout after the last one."""
    buckets, stream = tiny_day
    desk = {start: b for (space, start), b in buckets.items() if space == "d"}
    states = [r for r in stream if isinstance(r, ZigbeeState)]
    motions = [r.at.timestamp() for r in states if r.cause == "motion"]
    first, last = motions[0], motions[-1]
    assert ts(DAY, 9) <= first <= ts(DAY, 9) + 15  # detected within 15 s of arriving
    assert last < ts(DAY, 11)
    # Zigbee2MQTT says occupied on each detection and free 90 s after the last one: the union of
    # [detection, detection + 90 s) is the occupied time (a still sitter may read free briefly).
    timeout = OCCUPANCY_TIMEOUT.total_seconds()
    stretches: list[list[float]] = []
    for m in motions:
        if stretches and m <= stretches[-1][1]:
            stretches[-1][1] = m + timeout
        else:
            stretches.append([m, m + timeout])
    assert ts(DAY, 11) < stretches[-1][1] <= ts(DAY, 11) + 90
    for start in range(ts(DAY, 8), ts(DAY, 16), BUCKET_SECONDS):
        b = desk[start]
        occupied = sum(max(0.0, min(start + 900, y) - max(start, x)) for x, y in stretches)
        covered = 0 if ts(DAY, 13) <= start < ts(DAY, 14) else 900
        assert (b.occupied_s, b.covered_s, b.count_s, b.peak) == pytest.approx(
            (occupied, covered, occupied, 1 if occupied else 0), abs=1e-6
        ), datetime.fromtimestamp(start, TZ)


def test_canonical_events_are_what_the_decoders_make(tiny_day) -> None:  # type: ignore[no-untyped-def]
    """The shortcut past render + decode gives exactly the decoders' events (on the bundled site too)."""
    _, stream = tiny_day
    bundled = list(itertools.islice(bf.day_readings(SITE, Behaviour(SITE, 3), MARCH, seed=3), 20_000))
    for site, readings in ((TINY, stream), (SITE, bundled)):
        for r in readings:
            sensor = site.sensor(r.sensor)
            assert sensor is not None
            message = render(r, sensor, r.at)
            ctx = DecodeContext(sensor.id, sensor.topic, r.at)
            assert list(bf.canonical_events(r)) == FORMATS[sensor.format].decode(
                message.topic, message.payload, ctx
            )


def through_the_whole_aggregator(site: Site, behaviour: Behaviour, day: date, seed: int) -> list[tuple]:
    """The day's events through Aggregator.ingest and tick, as the aggregator service takes them
    (stamped by one gateway, received when sent, ticked every 100 messages on the simulated clock)."""
    b = local(day + timedelta(days=1), 0).timestamp()
    agg = Aggregator(site, lateness=10.0)
    seq = 0
    for n, r in enumerate(bf.day_readings(site, behaviour, day, seed=seed), 1):
        if r.at.timestamp() >= b:
            break
        sensor = site.sensor(r.sensor)
        assert sensor is not None
        for event in bf.canonical_events(r):
            seq += 1
            assert agg.ingest(Stamped("gw", seq, r.at, sensor.space, event), r.at.timestamp()) == "applied"
        if n % 100 == 0:
            agg.tick(r.at.timestamp())
    agg.tick(b + 10.0)  # the watermark on the next midnight
    assert agg.pending == 0 and agg.counters["late"] == 0
    return sorted(x.as_tuple() for x in agg.buckets() if x.start < b)


@pytest.mark.parametrize("site", [TINY, SITE], ids=["tiny", "bundled"])
def test_rows_are_the_whole_aggregators(site: Site) -> None:
    """Backfill feeds the aggregator's timelines directly; a whole Aggregator gives the same rows."""
    behaviour = Planned(TINY, 0) if site is TINY else Behaviour(SITE, 1)
    day = DAY if site is TINY else MARCH + timedelta(days=3)  # a Thursday with an outage (seed 1)
    rows = sorted(x.as_tuple() for x in bf.simulate_day(site, behaviour, day, seed=1).buckets)
    assert rows and rows == through_the_whole_aggregator(site, behaviour, day, seed=1)


# ------------------------------------------------------------------------------ bundled site


@pytest.fixture(scope="module")
def march(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqliteStore, bf.BackfillResult]:
    store = SqliteStore(tmp_path_factory.mktemp("march") / "tila.db")
    result = bf.backfill(SITE, store, MARCH, MARCH + timedelta(days=7), seed=1)
    return store, result


def by_space_day(buckets: list[Bucket]) -> dict[tuple[str, date], list[Bucket]]:
    out: dict[tuple[str, date], list[Bucket]] = defaultdict(list)
    for b in buckets:
        out[b.space, datetime.fromtimestamp(b.start, TZ).date()].append(b)
    return out


def truth(behaviour: Behaviour, space: str, day: date) -> tuple[float, int, dict[int, tuple[float, int]]]:
    """From the plan: occupied open seconds, occupied stretches, per slot (count-seconds, peak)."""
    steps = behaviour.plan(day)[space]
    occupied = 0.0
    slots: dict[int, tuple[float, int]] = defaultdict(lambda: (0.0, 0))
    for a, b in itertools.pairwise(steps):
        if a.count > 0:
            t0, t1 = a.time.timestamp(), b.time.timestamp()
            occupied += t1 - t0
            t = t0
            while t < t1:
                s = int(t // BUCKET_SECONDS) * BUCKET_SECONDS
                e = min(t1, s + BUCKET_SECONDS)
                cs, pk = slots[s]
                slots[s] = (cs + (e - t) * a.count, max(pk, a.count))
                t = e
    counts = [0, *(s.count for s in steps)]
    stretches = sum(1 for a, b in itertools.pairwise(counts) if a == 0 and b > 0)
    return occupied, stretches, slots


def test_march_week_is_written_whole(march) -> None:  # type: ignore[no-untyped-def]
    store, result = march
    assert (result.days, result.open_days, result.stopped) == (7, 5, False)
    assert result.events > result.readings > 0 and result.buckets == 5 * 52 * len(SITE.spaces)
    rows = store.buckets(local(MARCH, 0), local(MARCH + timedelta(days=7), 0))
    assert len(rows) == result.buckets
    days = {datetime.fromtimestamp(b.start, TZ).date() for b in rows}
    assert days == set(week(MARCH))  # nothing at the weekend
    for b in rows:
        assert 0 <= b.occupied_s <= b.covered_s <= BUCKET_SECONDS
        space = SITE.space(b.space)
        assert space is not None and b.peak <= space.capacity


def test_rooms_match_the_plan_exactly_where_covered(march) -> None:  # type: ignore[no-untyped-def]
    store, _ = march
    behaviour = Behaviour(SITE, 1)
    rooms = [s.id for s in SITE.spaces if s.kind in ("room", "event")]
    checked = 0
    groups = by_space_day(store.buckets(local(MARCH, 0), local(MARCH + timedelta(days=5), 0)))
    for room in rooms:
        for day in week(MARCH):
            _, _, slots = truth(behaviour, room, day)
            for b in groups[room, day]:
                if b.covered_s < BUCKET_SECONDS:
                    continue
                count_s, peak = slots.get(b.start, (0.0, 0))
                assert b.count_s == pytest.approx(count_s, abs=1e-6), (room, b)
                assert b.peak == peak, (room, b)
                checked += 1
    assert checked > 0.95 * len(rooms) * 5 * 52


def test_desks_match_the_plan_within_the_pir_timeout(march) -> None:  # type: ignore[no-untyped-def]
    """Each occupied stretch reads as up to 15 s late (first detection) and up to 90 s long (the
    occupancy timeout after the last detection); a still sitter may read free for a moment."""
    store, _ = march
    behaviour = Behaviour(SITE, 1)
    groups = by_space_day(store.buckets(local(MARCH, 0), local(MARCH + timedelta(days=5), 0)))
    total_truth = total_read = 0.0
    total_stretches = 0
    for space in (s.id for s in SITE.spaces if s.kind in ("desk", "booth")):
        for day in week(MARCH):
            rows = groups[space, day]
            if any(b.covered_s < BUCKET_SECONDS for b in rows):
                continue  # an outage: compared in test_outages_are_missing_not_vacant
            occupied, stretches, _ = truth(behaviour, space, day)
            read = sum(b.occupied_s for b in rows)
            assert read <= occupied + 90 * stretches + 1e-6, (space, day)
            assert read >= occupied - 15 * stretches - 0.01 * occupied, (space, day)
            total_truth += occupied
            total_read += read
            total_stretches += stretches
    # On average a stretch reads longer by the 90 s timeout after the last detection, which comes
    # about half a blind interval (~33 s) before the person leaves, less the detection delay (mean
    # 7.5 s): about 50 s.
    per_stretch = (total_read - total_truth) / total_stretches
    assert total_stretches > 500 and 35 < per_stretch < 65, per_stretch


def test_outages_are_missing_not_vacant(march) -> None:  # type: ignore[no-untyped-def]
    store, _ = march
    behaviour = Behaviour(SITE, 1)
    found = 0
    for day in week(MARCH):
        for o in behaviour.outages(day):
            sensor = SITE.sensor(o.sensor)
            assert sensor is not None
            # A Zigbee device is offline at once; a counter is unknown 20 minutes after its last report.
            lag = 0 if sensor.format == "zigbee2mqtt" else 30 * 60
            lo, hi = o.start.timestamp() + lag, o.end.timestamp()
            rows = [
                b
                for b in store.buckets(o.start, o.end, [sensor.space])
                if b.start >= lo and b.start + BUCKET_SECONDS <= hi
            ]
            for b in rows:
                assert b.covered_s == 0 and b.occupied_s == 0, (o, b)
            found += len(rows)
    assert found > 0, "the week has no outage in opening hours: pick another seed"
    # ... and a day with an outage has coverage visibly below 100 %.
    day_cov = defaultdict(lambda: [0.0, 0.0])
    for b in store.buckets(local(MARCH, 0), local(MARCH + timedelta(days=5), 0)):
        c = day_cov[datetime.fromtimestamp(b.start, TZ).date()]
        c[0] += b.covered_s
        c[1] += BUCKET_SECONDS
    assert min(cov / open_s for cov, open_s in day_cov.values()) < 0.995


def test_holidays_and_weekends_are_closed(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "tila.db")
    result = bf.backfill(SITE, store, ASCENSION_WEEK, ASCENSION_WEEK + timedelta(days=7), seed=2)
    assert (result.days, result.open_days) == (7, 4)
    rows = store.buckets(local(ASCENSION_WEEK, 0), local(ASCENSION_WEEK + timedelta(days=7), 0))
    days = {datetime.fromtimestamp(b.start, TZ).date() for b in rows}
    assert days == {date(2025, 5, 26), date(2025, 5, 27), date(2025, 5, 28), date(2025, 5, 30)}
    assert Behaviour(SITE, 2).plan(date(2025, 5, 29)) == {s.id: () for s in SITE.spaces}


def test_summer_is_quiet(march, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spring_store, _ = march
    store = SqliteStore(tmp_path / "tila.db")
    bf.backfill(SITE, store, JULY, JULY + timedelta(days=5), seed=1)

    def desk_frequency(s: SqliteStore, first: date) -> float:
        rows = [
            b
            for b in s.buckets(local(first, 0), local(first + timedelta(days=5), 0))
            if b.space.startswith("desk")
        ]
        return sum(b.occupied_s for b in rows) / (len(rows) * BUCKET_SECONDS)

    spring, july = desk_frequency(spring_store, MARCH), desk_frequency(store, JULY)
    assert spring > 0.2 and july < 0.5 * spring, (spring, july)
    assert season(date(2025, 7, 15)) < season(date(2025, 8, 20)) and season(date(2025, 8, 20)) > 1


def test_a_second_run_writes_the_same_rows(tmp_path: Path) -> None:
    a, b = SqliteStore(tmp_path / "a.db"), SqliteStore(tmp_path / "b.db")
    first = bf.backfill(SITE, a, MARCH, MARCH + timedelta(days=3), seed=4)
    rows = rows_of(a)
    again = bf.backfill(SITE, a, MARCH, MARCH + timedelta(days=3), seed=4)
    assert rows_of(a) == rows and again.buckets == first.buckets == len(rows)
    # A day's rows depend on the day alone, not on the range a run covers.
    bf.backfill(SITE, b, MARCH + timedelta(days=1), MARCH + timedelta(days=2), seed=4)
    day = {r for r in rows if ts(MARCH + timedelta(days=1), 0) <= r[1] < ts(MARCH + timedelta(days=2), 0)}
    assert set(rows_of(b)) == day and day


def test_workers_write_what_one_process_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bf, "PARALLEL_MIN_DAYS", 2)
    assert bf.worker_count(3) > 1 or len(os.sched_getaffinity(0)) == 1
    a, b = SqliteStore(tmp_path / "a.db"), SqliteStore(tmp_path / "b.db")
    bf.backfill(SITE, a, MARCH, MARCH + timedelta(days=3), seed=5)
    monkeypatch.setattr(bf, "MAX_WORKERS", 1)
    bf.backfill(SITE, b, MARCH, MARCH + timedelta(days=3), seed=5)
    assert rows_of(a) == rows_of(b) and rows_of(a)


class StopAfterFirstWrite(SqliteStore):
    def __init__(self, path: Path, stop: threading.Event) -> None:
        super().__init__(path)
        self.stop = stop
        self.writes = 0

    def write_buckets(self, buckets: list[Bucket]) -> None:
        super().write_buckets(buckets)
        self.writes += 1
        self.stop.set()


@pytest.mark.parametrize("workers", [False, True])
def test_stop_ends_after_the_day_under_way(
    tmp_path: Path, workers: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if workers:
        monkeypatch.setattr(bf, "PARALLEL_MIN_DAYS", 2)
    days = 9
    stop = threading.Event()
    store = StopAfterFirstWrite(tmp_path / "tila.db", stop)
    result = bf.backfill(SITE, store, MARCH, MARCH + timedelta(days=days), seed=1, stop=stop)
    assert result.stopped and 1 <= result.days < days
    written = {datetime.fromtimestamp(r[1], TZ).date() for r in rows_of(store)}
    # Every written day whole, and no gaps: the days from the start on.
    days_run = (MARCH + timedelta(days=i) for i in range(result.days))
    assert written == {d for d in days_run if d.weekday() < 5}
    assert len(rows_of(store)) == result.buckets == len(written) * 52 * len(SITE.spaces)
    # Set from the start: nothing at all.
    assert (
        bf.backfill(SITE, SqliteStore(tmp_path / "b.db"), MARCH, MARCH + timedelta(days=3), stop=stop).days
        == 0
    )


def test_end_before_start_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="before its start"):
        bf.backfill(SITE, SqliteStore(tmp_path / "tila.db"), MARCH, MARCH - timedelta(days=1))


# ----------------------------------------------------------------------------------------- CLI


def sim(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TILA, "sim", *args], capture_output=True, text=True, timeout=timeout)


def test_cli_backfill_prints_a_summary(tmp_path: Path) -> None:
    db = tmp_path / "tila.db"
    out = sim("--backfill", "3", "--store", f"sqlite:///{db}", "--end", "2025-03-11", "--seed", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    # Saturday to Monday: one open day.
    assert len(lines) == 1 and "2025-03-08..2025-03-10" in lines[0], lines
    assert "3 days (1 open)" in lines[0] and "events/s" in lines[0], lines
    assert f"{52 * len(SITE.spaces)} rows" in lines[0], lines
    same = SqliteStore(tmp_path / "same.db")
    bf.backfill(SITE, same, MARCH, MARCH + timedelta(days=1), seed=1)
    assert rows_of(SqliteStore(db)) == rows_of(same)


@pytest.mark.integration
def test_cli_sigterm_stops_after_whole_days(tmp_path: Path) -> None:
    db = tmp_path / "tila.db"
    args = ["sim", "--backfill", "300", "--store", f"sqlite:///{db}", "--end", "2025-12-01"]
    proc = subprocess.Popen([*TILA, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:

        def written() -> int:
            if not db.exists():
                return 0
            return len(rows_of(SqliteStore(db)))

        wait_for(written, timeout=120, what="the first day in the store")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped early" in out and len(out.strip().splitlines()) == 1, out
    per_day: dict[date, int] = defaultdict(int)
    for r in rows_of(SqliteStore(db)):
        per_day[datetime.fromtimestamp(r[1], TZ).date()] += 1
    first = date(2025, 12, 1) - timedelta(days=300)
    assert set(per_day.values()) == {52 * len(SITE.spaces)}  # every written day whole
    open_days = [d for d in (first + timedelta(days=i) for i in range(300)) if SITE.hours_on(d)]
    assert sorted(per_day) == open_days[: len(per_day)] and len(per_day) < len(open_days)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backfill", "3"], "--backfill needs --store"),
        (["--store", "sqlite:///x.db"], "for --backfill DAYS"),
        (["--backfill", "0", "--store", "sqlite:///x.db"], "must be at least 1"),
        (["--backfill", "99999999", "--store", "sqlite:///x.db"], "at most 3660 days"),
        (["--backfill", "30", "--store", "sqlite:///x.db", "--end", "0001-01-05"], "before the year 1"),
        (["--backfill", "3", "--store", "sqlite:///x.db", "--end", "soon"], "not an ISO 8601 date"),
        (["--backfill", "3", "--store", "sqlite:///x.db", "--end", "2999-01-01"], "in the future"),
        (["--backfill", "3", "--store", "postgres://x"], "store URL must be"),
        (["--backfill", "3", "--store", "sqlite:///x.db", "--truth", "t.jsonl"], "not with --backfill"),
        (["--site", "bundled"], "--mqtt is required"),
        (["--mqtt", "mqtt://127.0.0.1:1"], "--site is required"),
    ],
)
def test_cli_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    out = subprocess.run([*TILA, "sim", *args], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr, out.stderr
    assert not (tmp_path / "x.db").exists()


# ------------------------------------------------------------------------------------ InfluxDB


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    with running_influxd(tmp_path_factory.mktemp("influxd")) as server:
        yield server


@pytest.mark.integration
def test_the_same_backfill_into_influxdb(influx: InfluxServer, tmp_path: Path) -> None:
    store = open_store(parse_store_url(influx.url("backfill")))
    lite = SqliteStore(tmp_path / "tila.db")
    try:
        a = bf.backfill(SITE, store, MARCH, MARCH + timedelta(days=1), seed=1)
        b = bf.backfill(SITE, lite, MARCH, MARCH + timedelta(days=1), seed=1)
        assert a.buckets == b.buckets > 0
        window = (local(MARCH, 0), local(MARCH + timedelta(days=1), 0))
        got = sorted(x.as_tuple() for x in store.buckets(*window))
        want = sorted(x.as_tuple() for x in lite.buckets(*window))
        assert [(x[0], x[1], x[5]) for x in got] == [(x[0], x[1], x[5]) for x in want]
        assert [v for x in got for v in x[2:5]] == pytest.approx([v for x in want for v in x[2:5]])
    finally:
        store.close()


def test_midnight_is_local(tmp_path: Path) -> None:
    """Days are the site's local days: a day's rows start at its local opening, in UTC."""
    store = SqliteStore(tmp_path / "tila.db")
    bf.backfill(SITE, store, MARCH, MARCH + timedelta(days=1), seed=1)
    starts = [r[1] for r in rows_of(store)]
    assert min(starts) == ts(MARCH, 7) and max(starts) == ts(MARCH, 19, 45)
    assert datetime.fromtimestamp(min(starts), UTC).hour == 5  # 07:00 EET


# ---------------------------------------------------------------------------------------- demo


@pytest.mark.integration
def test_demo_backfills_its_history(tmp_path: Path) -> None:
    out = subprocess.run(
        [*TILA, "demo", "--port", "0", "--duration", "15", "--history", "3", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    today = datetime.now(TZ).date()
    assert f"history        3 days up to {today - timedelta(days=1)}" in out.stdout, out.stdout
    days = {datetime.fromtimestamp(r[1], TZ).date() for r in rows_of(SqliteStore(tmp_path / "tila.db"))}
    history = {today - timedelta(days=i) for i in (1, 2, 3)}
    assert days & history == {d for d in history if SITE.hours_on(d)}
    # Beyond the history, only today's live rows: the backfill leaves today to the pipeline.
    assert days - history <= {today}


def test_demo_simulates_an_open_day() -> None:
    """The demo's live simulation starts on the last open day: not a weekend, not a holiday."""
    from tila.demo import demo_start

    boxing_day = datetime(2025, 12, 26, 10, tzinfo=TZ)  # St Stephen's Day, a Friday
    assert demo_start(boxing_day, SITE) == datetime(2025, 12, 23, 8, 30, tzinfo=TZ)
    tuesday = datetime(2025, 3, 11, 15, tzinfo=TZ)
    assert demo_start(tuesday, SITE) == datetime(2025, 3, 11, 8, 30, tzinfo=TZ)
