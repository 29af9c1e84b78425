"""Simulated bookings: the generator against the behaviour model's plan, the comparison with a
backfilled month, the demo's live bookings on its fast clock, and the demo answering with them."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import TILA, wait_for

from tila.api.auth import Tokens
from tila.bookings.compare import BOOKABLE_KINDS, compare
from tila.bookings.db import BookingDb
from tila.bookings.model import Booking
from tila.demo import demo_grace, demo_token, live_bookings
from tila.secrets import weakness
from tila.sensors.site import bundled_site_path, load_site
from tila.sim.backfill import backfill
from tila.sim.behaviour import Behaviour
from tila.sim.bookings import SOURCE, as_import, simulated_bookings
from tila.store.sqlite import SqliteStore

SITE = load_site(bundled_site_path())
TZ = SITE.tz
BOOKABLE = {s.id for s in SITE.spaces if s.kind in BOOKABLE_KINDS}
#: March 2025: an ordinary month, with a Törmäämö, a workshop day and the change to summer time.
MARCH = (date(2025, 3, 1), date(2025, 4, 1))
#: October 2025: a busy month (rooms full, fewer empty slots for no-shows).
OCTOBER = (date(2025, 10, 1), date(2025, 11, 1))


def peak(behaviour: Behaviour, bk: Booking) -> int:
    """The most people the plan has in the booked space during the booking."""
    counts = [behaviour.count_at(bk.space, bk.start)]
    counts += [s.count for s in behaviour.steps(bk.space, bk.start, bk.end)]
    return max(counts)


def plan_meetings(behaviour: Behaviour, start: date, end: date) -> list[tuple[str, datetime, datetime]]:
    """Every stretch with somebody in a bookable space, from the plan."""
    out = []
    day = start
    while day < end:
        for sid, steps in behaviour.plan(day).items():
            if sid not in BOOKABLE:
                continue
            begin = None
            for s in steps:
                if s.count > 0 and begin is None:
                    begin = s.time
                elif s.count == 0 and begin is not None:
                    out.append((sid, begin, s.time))
                    begin = None
        day += timedelta(days=1)
    return out


# ------------------------------------------------------------------------------------ generator


@pytest.mark.parametrize(("seed", "month"), [(0, MARCH), (1, OCTOBER)])
def test_shares_of_no_shows_unbooked_meetings_and_oversized_bookings(
    seed: int, month: tuple[date, date]
) -> None:
    behaviour = Behaviour(SITE, seed)
    bookings = simulated_bookings(SITE, behaviour, *month, seed=seed)
    peaks = {b.uid: peak(behaviour, b) for b in bookings}
    no_shows = [b for b in bookings if peaks[b.uid] == 0]
    used = [b for b in bookings if peaks[b.uid] > 0]
    assert 300 <= len(bookings) <= 500, len(bookings)
    assert 0.08 <= len(no_shows) / len(bookings) <= 0.17

    meetings = plan_meetings(behaviour, *month)
    unbooked = [m for m in meetings if not any(b.space == m[0] and b.overlaps(m[1], m[2]) for b in bookings)]
    assert 0.05 <= len(unbooked) / len(meetings) <= 0.15

    # A few bookings are made for at least twice the people who come (the 12-seat room for two).
    oversized = [b for b in used if b.expected is not None and b.expected >= 2 * peaks[b.uid]]
    assert 0.02 <= len(oversized) / len(used) <= 0.12
    assert any(SITE.space(b.space).capacity >= 12 and peaks[b.uid] <= 4 for b in oversized)  # type: ignore[union-attr]
    # The others expect the meeting's own head count.
    assert Counter(b.expected == peaks[b.uid] for b in used)[True] >= 0.85 * len(used)


def test_the_same_seed_and_day_give_the_same_bookings_whatever_the_range() -> None:
    behaviour = Behaviour(SITE, 7)
    week = simulated_bookings(SITE, behaviour, date(2025, 3, 3), date(2025, 3, 10), seed=7)
    wednesday = simulated_bookings(SITE, Behaviour(SITE, 7), date(2025, 3, 5), date(2025, 3, 6), seed=7)
    assert wednesday and wednesday == [b for b in week if b.start.astimezone(TZ).date() == date(2025, 3, 5)]
    assert week == simulated_bookings(SITE, Behaviour(SITE, 7), date(2025, 3, 3), date(2025, 3, 10), seed=7)
    other = simulated_bookings(SITE, Behaviour(SITE, 8), date(2025, 3, 5), date(2025, 3, 6), seed=8)
    assert [(b.space, b.start) for b in other] != [(b.space, b.start) for b in wednesday]


def test_every_booking_is_of_a_bookable_space_on_quarter_hours_in_opening_hours_without_overlaps() -> None:
    bookings = simulated_bookings(SITE, Behaviour(SITE, 3), *MARCH, seed=3)
    assert {b.space for b in bookings} == BOOKABLE
    assert len({b.uid for b in bookings}) == len(bookings)
    for b in bookings:
        assert b.source == SOURCE and b.expected is not None and b.expected >= 1
        a, z = b.start.astimezone(TZ), b.end.astimezone(TZ)
        assert a.date() == z.date()
        for t in (a, z):
            assert t.minute % 15 == 0 and t.second == 0 and t.microsecond == 0, b
        minutes = (a.hour * 60 + a.minute, z.hour * 60 + z.minute)
        assert any(lo <= minutes[0] and minutes[1] <= hi for lo, hi in SITE.hours_on(a.date())), b
    by_space: dict[str, list[Booking]] = {}
    for b in bookings:
        by_space.setdefault(b.space, []).append(b)
    for mine in by_space.values():
        mine.sort(key=lambda b: b.start)
        assert all(x.end <= y.start for x, y in zip(mine, mine[1:], strict=False))
    # No bookings on closed days: weekends, and none at all in a closed week.
    assert all(SITE.hours_on(b.start.astimezone(TZ).date()) for b in bookings)
    assert simulated_bookings(SITE, Behaviour(SITE, 3), date(2025, 3, 8), date(2025, 3, 10), seed=3) == []


def test_written_twice_the_bookings_replace_themselves(tmp_path: Path) -> None:
    start, end = date(2025, 3, 3), date(2025, 3, 8)
    bookings = simulated_bookings(SITE, Behaviour(SITE, 0), start, end)
    db = BookingDb.in_dir(tmp_path)
    first = db.replace(as_import(SITE, bookings, start, end))
    again = db.replace(as_import(SITE, bookings, start, end))
    assert len(first.bookings) == len(again.bookings) == len(bookings) and not again.skipped
    assert again.replaced == len(bookings)
    assert db.query(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)) == bookings


# ----------------------------------------------------------------------------------- comparison


def test_the_comparison_finds_the_no_shows_generated(tmp_path: Path) -> None:
    """A backfilled month against its bookings: the used ones are used, the no-shows no-shows
    (unless a sensor was out: unknown), and the no-show rate found is the one generated."""
    seed = 4
    start, end = MARCH
    store = SqliteStore(tmp_path / "tila.db")
    backfill(SITE, store, start, end, seed=seed)
    behaviour = Behaviour(SITE, seed)
    bookings = simulated_bookings(SITE, behaviour, start, end, seed=seed)
    a = datetime.combine(start, datetime.min.time(), tzinfo=TZ)
    z = datetime.combine(end, datetime.min.time(), tzinfo=TZ)
    result = compare(SITE, bookings, store.buckets(a, z, sorted(BOOKABLE)))
    store.close()

    generated = Counter("no_show" if peak(behaviour, o.booking) == 0 else "used" for o in result.outcomes)
    found = Counter(o.outcome for o in result.outcomes)
    mismatched = [
        o
        for o in result.outcomes
        if o.outcome != "unknown" and o.outcome != ("no_show" if peak(behaviour, o.booking) == 0 else "used")
    ]
    assert mismatched == []
    assert found["unknown"] <= 0.05 * len(bookings)
    rate_generated = generated["no_show"] / len(bookings)
    rate_found = found["no_show"] / (found["no_show"] + found["used"])
    assert rate_found == pytest.approx(rate_generated, abs=0.02)
    assert sum(s.no_shows for s in result.spaces) == found["no_show"]
    # The meetings held without a booking are the comparison's unbooked use.
    assert result.unbooked and all(u.space in BOOKABLE for u in result.unbooked)


# ------------------------------------------------------------------------------------ the demo


def test_live_bookings_run_on_the_demo_clock() -> None:
    """At --speed 60 a simulated hour is a real minute: the bookings from the simulated start on,
    moved to the real clock from the wall start, and a later start's uids differ."""
    sim_start = datetime(2025, 3, 4, 8, 30, tzinfo=TZ)
    wall = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    result = live_bookings(SITE, 9, sim_start, wall, 60.0, 7)
    made = [
        b
        for b in simulated_bookings(SITE, Behaviour(SITE, 9), date(2025, 3, 4), date(2025, 3, 11), seed=9)
        if b.start >= sim_start
    ]
    assert len(result.bookings) == len(made) > 0
    for moved, b in zip(result.bookings, made, strict=True):
        assert moved.space == b.space and moved.expected == b.expected
        assert moved.start == wall + (b.start - sim_start) / 60
        assert moved.end - moved.start == (b.end - b.start) / 60
        assert re.fullmatch(re.escape(b.uid) + r"@\d+", moved.uid)
    assert result.start == wall and result.end == wall + timedelta(days=7, hours=-8.5) / 60
    later = live_bookings(SITE, 9, sim_start, wall + timedelta(hours=1), 60.0, 7)
    assert not {b.uid for b in later.bookings} & {b.uid for b in result.bookings}


def test_demo_grace_and_tokens() -> None:
    assert demo_grace(1.0) == timedelta(minutes=15)
    assert demo_grace(60.0) == timedelta(seconds=30)  # 15 simulated minutes, and 15 s of delay
    assert demo_grace(2.0) == timedelta(minutes=7.5, seconds=15)
    tokens = [demo_token() for _ in range(50)]
    assert all(weakness(t) is None for t in tokens) and len(set(tokens)) == 50
    Tokens.parse(",".join(f"{scope}:{t}" for scope, t in zip(("host", "booking"), tokens, strict=False)))


@pytest.mark.integration
def test_demo_answers_availability_and_bookings(tila_proc, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    demo = tila_proc(
        "demo",
        [
            "demo",
            "--port",
            "0",
            "--duration",
            "120",
            "--history",
            "7",
            "--speed",
            "300",
            "--seed",
            "3",
            "--data-dir",
            str(data),
        ],
    )

    def banner() -> str | None:
        text = demo.output()
        return text if "admin " in text else None

    out = wait_for(banner, 60, what="the demo's banner")
    base = re.search(r"availability   (http://\S+)/v1/availability", out).group(1)  # type: ignore[union-attr]
    booking = {"Authorization": "Bearer " + re.search(r"^ +booking (\S+)$", out, re.MULTILINE).group(1)}  # type: ignore[union-attr]
    assert re.search(r"booking token; [1-9]\d* simulated", out), out

    rows = httpx.get(base + "/v1/availability", timeout=10).json()
    assert {r["id"] for r in rows} == BOOKABLE
    assert any(r["booked_now"] or r["next_booking"] for r in rows), rows

    now = datetime.now(UTC)
    window = {"from": (now - timedelta(days=8)).isoformat(), "to": (now + timedelta(days=1)).isoformat()}
    assert httpx.get(base + "/v1/bookings", params=window, timeout=10).status_code == 401
    r = httpx.get(base + "/v1/bookings", params=window, headers=booking, timeout=10)
    assert r.status_code == 200, r.text
    live = r.json()
    assert live and {b["space"] for b in live} <= BOOKABLE and {b["source"] for b in live} == {SOURCE}

    # The history's bookings once it is in; the live monitor decides the first live bookings.
    wait_for(lambda: "simulated bookings" in demo.output(), 90, what="the history line")
    every = httpx.get(base + "/v1/bookings", params=window, headers=booking, timeout=10).json()
    today = datetime.now(TZ).date()
    assert any(datetime.fromisoformat(b["start"]).date() < today for b in every)

    def decided() -> list[str]:
        r = httpx.get(base + "/v1/bookings/noshows", params=window, headers=booking, timeout=10)
        assert r.status_code == 200, r.text
        return [b["detected"] for b in r.json()["bookings"] if b["detected"] is not None]

    assert set(wait_for(decided, 60, interval=1, what="a live decision")) <= {"used", "no_show", "unknown"}
    assert demo.stop() == 0
    assert (data / "bookings.db").is_file() and (data / "webhooks.db").is_file()


# ------------------------------------------------------------------------------ tila sim --backfill


@pytest.mark.integration
def test_sim_backfill_writes_bookings_for_the_report(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'tila.db'}"
    args = [*TILA, "sim", "--backfill", "3", "--store", store, "--end", "2025-03-06", "--seed", "2"]
    out = subprocess.run([*args, "--bookings", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    want = simulated_bookings(SITE, Behaviour(SITE, 2), date(2025, 3, 3), date(2025, 3, 6), seed=2)
    assert f"simulated bookings: {len(want)} in {tmp_path / 'bookings.db'}" in out.stdout
    got = BookingDb.in_dir(tmp_path).query(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 8, tzinfo=UTC))
    assert got == want

    (tmp_path / "file").write_text("")
    bad = subprocess.run(
        [*args, "--bookings", str(tmp_path / "file")], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].endswith(
        "--bookings: not a directory: " + str(tmp_path / "file")
    )
    live = subprocess.run(
        [*TILA, "sim", "--bookings", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert live.returncode == 2 and "for --backfill DAYS" in live.stderr
