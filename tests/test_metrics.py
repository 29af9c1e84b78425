"""Utilisation metrics: holidays, hand-computed rows per space and per group, DST, properties."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tila.aggregator.buckets import Bucket
from tila.aggregator.calendar import Calendar, utc_offsets
from tila.aggregator.metrics import Columns, QueryError, heatmap, utilisation
from tila.sensors.holidays import easter, finnish
from tila.sensors.site import DAYS, Site, SiteError, bundled_site_path, load_site, parse_site

HEL = ZoneInfo("Europe/Helsinki")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=HEL)  # type: ignore[misc]


def ts(t: datetime) -> int:
    return int(t.timestamp())


def make_site(hours: str = "00:00-24:00", days: tuple[str, ...] = DAYS, **extra: Any) -> Site:
    """Zone a: desks d1, d2 and room r1 (4 seats); zone b: desk d3 and booth b1."""
    return parse_site(
        {
            "site": {
                "id": "t",
                "timezone": "Europe/Helsinki",
                "opening_hours": {d: hours for d in days},
                **extra,
            },
            "zones": [{"id": "a"}, {"id": "b"}],
            "spaces": [
                {"id": "d1", "kind": "desk", "zone": "a"},
                {"id": "d2", "kind": "desk", "zone": "a"},
                {"id": "r1", "kind": "room", "zone": "a", "capacity": 4},
                {"id": "d3", "kind": "desk", "zone": "b"},
                {"id": "b1", "kind": "booth", "zone": "b"},
            ],
        },
        "<test>",
    )


ALL = ["d1", "d2", "r1", "d3", "b1"]


# --------------------------------------------------------------------------------------- holidays


@pytest.mark.parametrize(
    ("year", "day"),
    [
        (1943, date(1943, 4, 25)),  # the latest possible
        (2000, date(2000, 4, 23)),
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2027, date(2027, 3, 28)),
        (2038, date(2038, 4, 25)),
        (2285, date(2285, 3, 22)),  # the earliest possible
    ],
)
def test_easter(year: int, day: date) -> None:
    assert easter(year) == day


def test_finnish_holidays_2026() -> None:
    assert [d.isoformat() for d in finnish(2026)] == [
        "2026-01-01",
        "2026-01-06",
        "2026-04-03",  # Good Friday
        "2026-04-05",
        "2026-04-06",
        "2026-05-01",
        "2026-05-14",  # Ascension: Easter + 39
        "2026-05-24",  # Whit Sunday
        "2026-06-19",  # Midsummer Eve, Friday 19–25 June
        "2026-06-20",  # Midsummer Day, Saturday 20–26 June
        "2026-10-31",  # All Saints', Saturday 31 Oct – 6 Nov
        "2026-12-06",
        "2026-12-24",
        "2026-12-25",
        "2026-12-26",
    ]
    # The "Saturday between" rules at the ends of their weeks.
    assert date(2027, 6, 26) in finnish(2027) and date(2027, 11, 6) in finnish(2027)


def test_a_year_of_the_bundled_site_has_the_hand_computed_open_seconds() -> None:
    site = load_site(bundled_site_path())
    year = (local(2026, 1, 1), local(2027, 1, 1))
    # 2026 starts on a Thursday: 52 weeks and one day (Thu 31 Dec) = 261 weekdays. Nine holidays
    # fall on weekdays: 1 Jan Thu, 6 Jan Tue, Good Friday 3 Apr, Easter Monday 6 Apr, 1 May Fri,
    # Ascension 14 May Thu, Midsummer Eve 19 Jun Fri, 24 Dec Thu, 25 Dec Fri (6 Dec is a Sunday,
    # 26 Dec, Midsummer Day and All Saints' are Saturdays). 07–20 is 13 h on DST days too.
    assert site.open_seconds(*year) == (261 - 9) * 13 * 3600 == 11_793_600
    # The metrics' calendar agrees with the site, slot by slot.
    cal = Calendar.of(site, ts(year[0]), ts(year[1]))
    assert cal.open_s.sum() == 11_793_600
    doc = _bundled_doc('holidays = "none"')
    assert parse_site(doc).open_seconds(*year) == 261 * 13 * 3600


def _bundled_doc(*lines: str) -> dict[str, Any]:
    import tomllib

    text = bundled_site_path().read_text(encoding="utf-8")
    text = text.replace("[site]\n", "[site]\n" + "".join(f"{x}\n" for x in lines), 1)
    return tomllib.loads(text)


def test_closed_and_open_dates(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    text = bundled_site_path().read_text(encoding="utf-8")
    extra = (
        'closed_dates = ["2026-12-23", 2026-12-28]\n'  # a string and a TOML date
        'open_dates = { "2026-05-01" = "10:00-14:00", 2026-05-02 = "10:00-12:00,13:00-15:00" }\n'
    )
    path.write_text(text.replace("[site]\n", "[site]\n" + extra, 1), encoding="utf-8")
    site = load_site(path)

    def day(d: date) -> float:
        return site.open_seconds(local(d.year, d.month, d.day), local(d.year, d.month, d.day) + timedelta(1))

    assert day(date(2026, 12, 22)) == 13 * 3600
    assert day(date(2026, 12, 23)) == 0  # closed_dates
    assert day(date(2026, 12, 24)) == 0  # Christmas Eve
    assert day(date(2026, 12, 28)) == 0
    assert day(date(2026, 5, 1)) == 4 * 3600  # May Day, opened with its own hours
    assert day(date(2026, 5, 2)) == 4 * 3600  # a Saturday, opened
    assert site.holiday(date(2026, 5, 1)) == "May Day (vappu)"
    # A list opens a holiday on its weekday's hours.
    opened = parse_site(_bundled_doc('open_dates = ["2026-12-24"]'))
    assert opened.open_seconds(local(2026, 12, 24), local(2026, 12, 25)) == 13 * 3600


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('holidays = "SE"', "site.holidays: unknown holiday calendar 'SE' (known: FI, none)"),
        ("holidays = 1", "site.holidays: unknown holiday calendar 1"),
        ('closed_dates = "2026-12-23"', "site.closed_dates: must be a list of dates"),
        (
            'closed_dates = ["2026-13-01"]',
            "site.closed_dates[0]: must be a date YYYY-MM-DD, not '2026-13-01'",
        ),
        ('closed_dates = ["tomorrow"]', "site.closed_dates[0]: must be a date YYYY-MM-DD"),
        (
            'open_dates = ["2026-05-02"]',
            "site.open_dates[0]: 2026-05-02 is a sat, which has no opening hours",
        ),
        ('open_dates = { "2026-05-02" = "12-14" }', 'site.open_dates.2026-05-02: must be "HH:MM-HH:MM"'),
        ('open_dates = { "May Day" = "10:00-14:00" }', "site.open_dates.May Day: must be a date"),
        ("open_dates = 3", "site.open_dates: must be a list of dates or a table"),
        (
            'closed_dates = ["2026-05-04"]\nopen_dates = ["2026-05-04"]',
            "site.open_dates: 2026-05-04 is also in site.closed_dates",
        ),
    ],
)
def test_bad_holiday_keys_are_one_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "site.toml"
    text = bundled_site_path().read_text(encoding="utf-8")
    path.write_text(text.replace("[site]\n", f"[site]\n{line}\n", 1), encoding="utf-8")
    with pytest.raises(SiteError) as info:
        load_site(path)
    assert str(info.value).startswith(f"{path}: {message}")
    assert "\n" not in str(info.value)


def test_dst_days_have_23_and_25_open_hours() -> None:
    site = make_site(holidays="none")
    assert site.open_seconds(local(2026, 3, 29), local(2026, 3, 30)) == 23 * 3600
    assert site.open_seconds(local(2026, 10, 25), local(2026, 10, 26)) == 25 * 3600
    offsets = utc_offsets(HEL, Calendar.of(site, ts(local(2026, 3, 1)), ts(local(2026, 11, 1))).starts)
    assert sorted(set(offsets.tolist())) == [7200, 10800]
    # The change happens at 01:00 UTC exactly, found by bisection between daily samples.
    spring = Calendar.of(site, ts(local(2026, 3, 29)), ts(local(2026, 3, 30)))
    change = int(spring.starts[1:][spring.offsets[1:] != spring.offsets[:-1]][0])
    assert change == ts(datetime(2026, 3, 29, 1, tzinfo=UTC))


# -------------------------------------------------------------------------- hand-computed metrics

T0 = local(2026, 1, 12, 9)  # a Monday, no holiday
E0 = ts(T0)


def hand_buckets() -> list[Bucket]:
    return [
        # d1: the whole first quarter, half the second
        Bucket("d1", E0, occupied_s=900, covered_s=900, count_s=900, peak=1),
        Bucket("d1", E0 + 900, occupied_s=450, covered_s=900, count_s=450, peak=1),
        # d2: five minutes of the first quarter
        Bucket("d2", E0, occupied_s=300, covered_s=900, count_s=300, peak=1),
        # r1 (4 seats): 3 people for the first quarter, 2 on average for 10 minutes of the second
        Bucket("r1", E0, occupied_s=900, covered_s=900, count_s=2700, peak=3),
        Bucket("r1", E0 + 900, occupied_s=600, covered_s=900, count_s=1200, peak=2),
        # d3 and b1: never heard from (no coverage)
    ]


def one(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, rows)
    return found[0]


def metrics_of(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("frequency", "occupancy", "utilisation", "mean_count", "peak_count", "coverage")
    return {k: row[k] for k in keys}


def test_space_rows_follow_the_published_formulas() -> None:
    rows = utilisation(make_site(), hand_buckets(), T0, T0 + timedelta(hours=1), ALL)
    assert [r["space"] for r in rows] == ALL
    assert one(rows, space="d1") == {
        "space": "d1",
        "start": "2026-01-12T09:00:00+02:00",
        "occupied_seconds": 1350.0,
        "open_seconds": 3600.0,
        "frequency": 0.375,  # F = 1350 / 3600
        "occupancy": 1.0,  # a desk
        "utilisation": 0.375,  # U = F for a desk
        "mean_count": 1.0,
        "peak_count": 1,
        "coverage": 0.5,
    }
    r1 = one(rows, space="r1")
    assert r1["frequency"] == round(1500 / 3600, 6)
    assert r1["mean_count"] == 2.6  # 3900 head-count-seconds over 1500 occupied seconds
    assert r1["occupancy"] == 0.65  # 2.6 of 4 seats
    assert r1["utilisation"] == round(1500 / 3600 * 0.65, 6) == round(3900 / (4 * 3600), 6)
    assert r1["peak_count"] == 3
    d3 = one(rows, space="d3")
    assert metrics_of(d3) == {
        "frequency": 0.0,
        "occupancy": None,  # never occupied: undefined, not zero
        "utilisation": 0.0,
        "mean_count": None,
        "peak_count": 0,
        "coverage": 0.0,
    }


def test_zone_kind_and_site_rollups_are_sums_over_their_spaces() -> None:
    site = make_site()
    window = (T0, T0 + timedelta(hours=1))
    zones = utilisation(site, hand_buckets(), *window, ALL, group="zone")
    assert [(r["group"], r["zone"]) for r in zones] == [("zone", "a"), ("zone", "b")]
    a = zones[0]
    assert a == {
        "group": "zone",
        "zone": "a",
        "start": "2026-01-12T09:00:00+02:00",
        "occupied_seconds": 3150.0,  # 1350 + 300 + 1500 space-seconds
        "open_seconds": 10800.0,  # 3 spaces × 3600
        "frequency": round(3150 / 10800, 6),
        # seat-weighted: 5550 head-count-seconds ÷ (1×1350 + 1×300 + 4×1500)
        "occupancy": round(5550 / 7650, 6),
        # 5550 ÷ (6 seats × 3600 s)
        "utilisation": round(5550 / 21600, 6),
        "mean_count": round(5550 / 3150, 6),
        # first quarter: 1 + 1 + 3 people at their peaks; second: 1 + 0 + 2
        "peak_count": 5,
        "coverage": round(4500 / 10800, 6),
        "spaces": 3,
        "capacity": 6,
    }
    assert metrics_of(zones[1]) == {
        "frequency": 0.0,
        "occupancy": None,
        "utilisation": 0.0,
        "mean_count": None,
        "peak_count": 0,
        "coverage": 0.0,
    }
    kinds = utilisation(site, hand_buckets(), *window, ALL, group="kind")
    assert [r["kind"] for r in kinds] == ["desk", "room", "booth"]
    desk = kinds[0]
    assert (desk["spaces"], desk["capacity"], desk["open_seconds"]) == (3, 3, 10800.0)
    assert desk["frequency"] == desk["utilisation"] == round(1650 / 10800, 6)  # desks only: U = F
    assert desk["occupancy"] == 1.0 and desk["peak_count"] == 2
    # The room's kind row is the room's own row.
    room = one(utilisation(site, hand_buckets(), *window, ALL), space="r1")
    assert metrics_of(kinds[1]) == metrics_of(room)
    whole = utilisation(site, hand_buckets(), *window, ALL, group="site")
    assert len(whole) == 1 and whole[0]["site"] == "t" and whole[0]["group"] == "site"
    assert (whole[0]["spaces"], whole[0]["capacity"]) == (5, 8)
    assert whole[0]["utilisation"] == round(5550 / (8 * 3600), 6)
    assert whole[0]["peak_count"] == 5
    # Filters choose the spaces; the group sums what was chosen.
    only = utilisation(site, hand_buckets(), *window, ["d1", "d3"], group="site")
    assert only[0]["spaces"] == 2 and only[0]["occupied_seconds"] == 1350.0


def test_group_rows_per_quarter_and_hour() -> None:
    site = make_site()
    rows = utilisation(site, hand_buckets(), T0, T0 + timedelta(hours=1), ALL, "15m", "zone")
    assert [(r["zone"], r["start"][11:16]) for r in rows] == [
        *(("a", t) for t in ("09:00", "09:15", "09:30", "09:45")),
        *(("b", t) for t in ("09:00", "09:15", "09:30", "09:45")),
    ]
    q1 = rows[0]
    assert (q1["occupied_seconds"], q1["open_seconds"], q1["peak_count"]) == (2100.0, 2700.0, 5)
    assert rows[1]["peak_count"] == 3
    hours = utilisation(
        site, hand_buckets(), T0 - timedelta(hours=1), T0 + timedelta(hours=1), ALL, "1h", "site"
    )
    assert [(r["start"], r["occupied_seconds"]) for r in hours] == [
        ("2026-01-12T08:00:00+02:00", 0.0),
        ("2026-01-12T09:00:00+02:00", 3150.0),
    ]


def test_bad_group_and_too_many_rows() -> None:
    site = make_site()
    with pytest.raises(QueryError, match="group must be one of space, zone, kind, site, not 'floor'"):
        utilisation(site, [], T0, T0 + timedelta(hours=1), ALL, group="floor")
    with pytest.raises(QueryError, match="rows"):
        utilisation(site, [], T0, T0 + timedelta(days=450), ALL, "15m")
    # A coarser group fits where per-space rows would not.
    assert len(utilisation(site, [], T0, T0 + timedelta(days=60), ALL, "15m", "site")) == 60 * 96


def test_columns_and_bucket_objects_give_the_same_rows() -> None:
    site = make_site()
    a, b = E0, E0 + 3600
    cols = Columns.of(hand_buckets() + [Bucket("zz", E0, 900, 900, 900, 1)], ALL, a, b)
    assert len(cols.space) == 5  # the unknown space is left out
    for group in ("space", "zone", "site"):
        want = utilisation(site, hand_buckets(), T0, T0 + timedelta(hours=1), ALL, "15m", group)
        assert utilisation(site, cols, T0, T0 + timedelta(hours=1), ALL, "15m", group) == want


# ------------------------------------------------------------------------------- DST and holidays


def test_hour_rows_on_daylight_saving_days() -> None:
    site = make_site(holidays="none")
    spring = utilisation(site, [], local(2026, 3, 29), local(2026, 3, 30), ["d1"], "1h")
    assert len(spring) == 23
    assert [r["start"][11:] for r in spring[2:4]] == ["02:00:00+02:00", "04:00:00+03:00"]
    autumn = utilisation(site, [], local(2026, 10, 25), local(2026, 10, 26), ["d1"], "1h")
    assert len(autumn) == 25
    assert [r["start"][11:] for r in autumn[3:5]] == ["03:00:00+03:00", "03:00:00+02:00"]
    assert all(r["open_seconds"] == 3600 for r in spring + autumn)
    assert len(utilisation(site, [], local(2026, 10, 25), local(2026, 10, 26), ["d1"], "15m")) == 100
    days = utilisation(site, [], local(2026, 3, 28), local(2026, 3, 31), ["d1"], "1d")
    assert [(r["start"], r["open_seconds"]) for r in days] == [
        ("2026-03-28T00:00:00+02:00", 86400.0),
        ("2026-03-29T00:00:00+02:00", 82800.0),
        ("2026-03-30T00:00:00+03:00", 86400.0),
    ]
    days = utilisation(site, [], local(2026, 10, 24), local(2026, 10, 27), ["d1"], "1d", "zone")
    assert [r["open_seconds"] for r in days] == [86400.0, 90000.0, 86400.0]


def test_a_slot_belongs_to_the_local_hour_it_starts_in() -> None:
    site = make_site(holidays="none")
    # Sunday 25 October 2026: 03:00–04:00 local happens twice.
    e = ts(datetime(2026, 10, 25, 0, 30, tzinfo=UTC))  # 03:30+03:00, the first 03:00 hour
    buckets = [Bucket("d1", e, 900, 900, 900, 1), Bucket("d1", e + 3600, 900, 900, 900, 1)]
    cells = heatmap(site, buckets, local(2026, 10, 25), local(2026, 10, 26), ["d1"])
    by_hour = {c["hour"]: c for c in cells}
    assert len(cells) == 24 and all(c["day"] == "sun" for c in cells)
    assert by_hour[3]["open_seconds"] == 7200.0 and by_hour[3]["frequency"] == 0.25
    spring = heatmap(site, [], local(2026, 3, 29), local(2026, 3, 30), ["d1"])
    assert [c["hour"] for c in spring] == [h for h in range(24) if h != 3]


def test_a_holiday_has_no_open_time_and_no_rows_unless_used() -> None:
    site = make_site("07:00-20:00", DAYS[:5])  # the Lab's hours, Finnish holidays
    week = (local(2026, 12, 21), local(2026, 12, 28))
    days = utilisation(site, [], *week, ["d1"], "1d")
    assert [r["start"][:10] for r in days] == ["2026-12-21", "2026-12-22", "2026-12-23"]
    assert all(r["open_seconds"] == 13 * 3600 for r in days)
    # Time recorded on Christmas Eve anyway (a bucket from elsewhere) shows, with no frequency.
    eve = Bucket("d1", ts(local(2026, 12, 24, 10)), 900, 900, 900, 1)
    days = utilisation(site, [eve], *week, ["d1"], "1d")
    row = one(days, start="2026-12-24T00:00:00+02:00")
    assert (row["open_seconds"], row["occupied_seconds"], row["frequency"]) == (0.0, 900.0, None)
    cells = heatmap(site, [], *week, ALL)
    assert {c["day"] for c in cells} == {"mon", "tue", "wed"}


# -------------------------------------------------------------------------------------- heatmap


def test_heatmap_per_group_from_the_same_sums() -> None:
    site = make_site()
    window = (T0, T0 + timedelta(hours=1))
    cells = heatmap(site, hand_buckets(), *window, ALL, group="zone")
    assert [(c["zone"], c["day"], c["hour"]) for c in cells] == [("a", "mon", 9), ("b", "mon", 9)]
    row = utilisation(site, hand_buckets(), *window, ALL, group="zone")[0]
    a = cells[0]
    assert a["open_seconds"] == 3600.0  # one space's open time
    for k in ("frequency", "occupancy", "utilisation", "coverage"):
        assert a[k] == row[k]
    whole = heatmap(site, hand_buckets(), *window, ALL)
    assert whole[0]["group"] == "site" and whole[0]["site"] == "t" and whole[0]["spaces"] == 5
    spaces = heatmap(site, hand_buckets(), *window, ["d1", "r1"], group="space")
    assert [c["space"] for c in spaces] == ["d1", "r1"]
    with pytest.raises(QueryError, match="at most 3660 days"):
        heatmap(site, [], T0, T0 + timedelta(days=3661), ALL)


# ----------------------------------------------------------------------------------- properties

#: A window start within a week around the autumn change, on a slot boundary.
START = st.integers(0, 7 * 96).map(lambda i: local(2026, 10, 22) + timedelta(minutes=15 * i))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Site, datetime, datetime, list[Bucket]]:
    hours = draw(st.sampled_from(["00:00-24:00", "07:00-20:00", "02:30-04:15,22:00-24:00"]))
    site = make_site(hours, holidays="none")
    start = draw(START)
    end = start + timedelta(minutes=15 * draw(st.integers(1, 4 * 96)))
    cal = Calendar.of(site, ts(start), ts(end))
    buckets = []
    for space in ALL:
        cap = site.space(space).capacity  # type: ignore[union-attr]
        for i in draw(st.sets(st.integers(0, cal.n - 1), max_size=30)):
            open_s = int(cal.open_s[i])
            if open_s == 0:
                continue
            covered = draw(st.integers(0, open_s))
            occupied = draw(st.integers(0, covered))
            peak = draw(st.integers(1, cap + 2)) if occupied else 0
            count_s = draw(st.integers(occupied, occupied * peak)) if occupied else 0
            buckets.append(Bucket(space, int(cal.starts[i]), occupied, covered, count_s, peak))
    return site, start, end, buckets


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.01)


@settings(max_examples=60, deadline=None)
@given(scenarios(), st.sampled_from(["space", "zone", "kind", "site"]))
def test_totals_are_conserved_across_intervals(
    scenario: tuple[Site, datetime, datetime, list[Bucket]], group: str
) -> None:
    site, start, end, buckets = scenario
    sums = {}
    for interval in ("15m", "1h", "1d", "total"):
        rows = utilisation(site, buckets, start, end, ALL, interval, group)
        sums[interval] = (
            sum(r["occupied_seconds"] for r in rows),
            sum(r["open_seconds"] for r in rows),
            sum(r["frequency"] * r["open_seconds"] for r in rows if r["frequency"] is not None),
            sum(r["coverage"] * r["open_seconds"] for r in rows if r["coverage"] is not None),
        )
    occupied = sum(b.occupied_s for b in buckets)
    open_s = len(ALL) * site.open_seconds(start, end)
    for got in sums.values():
        assert close(got[0], occupied) and close(got[1], open_s)
        # Ratios are rounded to 6 decimals: multiplied back by open seconds that is up to 5e-7 × open.
        tol = max(0.5, 1e-6 * open_s)
        assert math.isclose(got[2], occupied, rel_tol=1e-5, abs_tol=tol)
        assert math.isclose(got[3], sum(b.covered_s for b in buckets), rel_tol=1e-5, abs_tol=tol)
    cells = heatmap(site, buckets, start, end, ALL)
    assert close(sum(c["open_seconds"] for c in cells), site.open_seconds(start, end))


@settings(max_examples=60, deadline=None)
@given(scenarios(), st.sampled_from(["15m", "1h", "1d", "total"]))
def test_rollups_bound_and_reduce_to_their_spaces(
    scenario: tuple[Site, datetime, datetime, list[Bucket]], interval: str
) -> None:
    site, start, end, buckets = scenario
    per_space = utilisation(site, buckets, start, end, ALL, interval)
    for r in per_space:
        if r["frequency"] is None:
            continue
        assert 0 <= r["frequency"] <= 1 and 0 <= r["coverage"] <= 1
        assert r["frequency"] <= r["coverage"] + 1e-6
        assert r["utilisation"] >= 0
        if r["occupancy"] is not None:
            assert math.isclose(r["utilisation"], r["frequency"] * r["occupancy"], abs_tol=2e-6)
        else:
            assert r["utilisation"] == 0
    # A group of one space is that space.
    for sid in ALL:
        mine = [metrics_of(r) for r in per_space if r["space"] == sid]
        for group in ("zone", "kind", "site"):
            rows = utilisation(site, buckets, start, end, [sid], interval, group)
            assert [metrics_of(r) for r in rows] == mine
    # A group's figures lie between its spaces'; its peak between the largest and the sum.
    for group in ("zone", "kind", "site"):
        for g in utilisation(site, buckets, start, end, ALL, interval, group):
            members = [
                r
                for r in per_space
                if r["start"] == g["start"]
                and (group == "site" or getattr(site.space(r["space"]), group) == g[group])
            ]
            assert len(members) == g["spaces"]
            for k in ("frequency", "utilisation", "coverage", "occupancy"):
                vals = [r[k] for r in members if r[k] is not None]
                if g[k] is None:
                    assert not vals
                    continue
                assert min(vals) - 1e-6 <= g[k] <= max(vals) + 1e-6
            assert max(r["peak_count"] for r in members) <= g["peak_count"]
            assert g["peak_count"] <= sum(r["peak_count"] for r in members)
            if group == "kind" and g["kind"] == "desk" and g["frequency"] is not None:
                occ = [r["occupancy"] for r in members if r["occupancy"] is not None]
                assert g["utilisation"] <= g["frequency"] * max(occ, default=0) + 1e-5
