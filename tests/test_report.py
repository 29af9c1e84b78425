"""``tila report``: a hand-computed week, the HTML and its CSV files, bad input, PDF printing in real
headless Chromium, and a year of backfilled history.

The week: a tiny site open Monday to Friday 08:00–16:00 (8 h a day, 40 h in the week of 9 March
2026: no holiday, no daylight-saving change), with a desk, a 6-seat room, a phone booth and a 20-seat
event hall, and buckets written straight into a real SqliteStore:

- desk d1: occupied 09:00–13:00 Monday to Thursday, no data at all on Friday:
  F = 4 × 4 h / 40 h = 0.4, coverage = 32 h / 40 h = 0.8 (low), F on covered time = 16 / 32 = 0.5;
- room r1 (6 seats): 3 people 10:00–12:00 and 6 people 14:00–15:00 every day:
  F = 5 × 3 h / 40 h = 0.375, O = (2 h × 3 + 1 h × 6) / (6 × 3 h) = 2/3, U = 5 × 12 person-hours
  / (6 × 40 h) = 0.25; two thirds of its occupied time at 3 people (half its seats), a third at 6;
- booth b1: occupied 12:00–12:30 every day: F = U = 2.5 h / 40 h = 0.0625;
- hall e1 (20 seats): 16 people 08:00–09:00 on Tuesday (a crowd: an event day), 3 people 14:00–15:00
  on Thursday (not one): F = 2 h / 40 h = 0.05, O = (16 + 3) / (2 × 20) = 0.475, U = 19 / 800 = 0.02375.
"""

from __future__ import annotations

import csv
import re
import subprocess
import threading
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from browser_support import chromium_path, launch_chromium
from conftest import TILA
from influx_support import running_influxd

from tila.aggregator.buckets import BUCKET_SECONDS, Bucket
from tila.aggregator.calendar import Calendar
from tila.aggregator.metrics import Columns, headcounts, utilisation
from tila.report.analysis import Period, ReportError
from tila.report.build import HTML_NAME, Request, StoppedError, Timings, make_report
from tila.report.html import SECTIONS
from tila.report.tables import NAMES
from tila.sensors.site import Site, bundled_site_path, load_site, parse_site
from tila.store import parse_store_url
from tila.store.influx import InfluxStore
from tila.store.sqlite import SqliteStore

HEL = ZoneInfo("Europe/Helsinki")
MONDAY = date(2026, 3, 9)
WEEK = ("2026-03-09", "2026-03-16")

SITE_TOML = """
[site]
id = "mini"
name = { fi = "Minilabra", sv = "Minilabbet", en = "Mini lab" }
timezone = "Europe/Helsinki"
opening_hours = { mon = "08:00-16:00", tue = "08:00-16:00", wed = "08:00-16:00", thu = "08:00-16:00", fri = "08:00-16:00" }

[[zones]]
id = "open"
name = { fi = "Avotila", sv = "Öppet kontor", en = "Open office" }

[[zones]]
id = "rooms"
name = { fi = "Huoneet", sv = "Rum", en = "Rooms" }

[[spaces]]
id = "d1"
kind = "desk"
zone = "open"

[[spaces]]
id = "r1"
kind = "room"
zone = "rooms"
capacity = 6

[[spaces]]
id = "b1"
kind = "booth"
zone = "open"

[[spaces]]
id = "e1"
kind = "event"
zone = "rooms"
capacity = 20
name = { fi = "Tapahtumasali", sv = "Evenemangssalen", en = "Event hall" }
"""


def at(day: date, hour: float) -> int:
    h, m = int(hour), round((hour % 1) * 60)
    return int(datetime(day.year, day.month, day.day, h, m, tzinfo=HEL).timestamp())


def slots(day: date, start: float, end: float) -> range:
    return range(at(day, start), at(day, end), BUCKET_SECONDS)


def week_buckets() -> list[Bucket]:
    out: list[Bucket] = []
    for i in range(5):
        day = MONDAY + timedelta(days=i)
        for s in slots(day, 8, 16):
            local = datetime.fromtimestamp(s, HEL)
            hour = local.hour + local.minute / 60
            # d1: no data on Friday; otherwise known all day, occupied 09–13.
            if i < 4:
                busy = 9 <= hour < 13
                out.append(Bucket("d1", s, 900.0 * busy, 900.0, 900.0 * busy, int(busy)))
            people = 3 if 10 <= hour < 12 else 6 if 14 <= hour < 15 else 0
            out.append(Bucket("r1", s, 900.0 * (people > 0), 900.0, 900.0 * people, people))
            booth = 12 <= hour < 12.5
            out.append(Bucket("b1", s, 900.0 * booth, 900.0, 900.0 * booth, int(booth)))
            hall = 16 if i == 1 and 8 <= hour < 9 else 3 if i == 3 and 14 <= hour < 15 else 0
            out.append(Bucket("e1", s, 900.0 * (hall > 0), 900.0, 900.0 * hall, hall))
    return out


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> tuple[Site, Path, Path]:
    """The tiny site's file and a store holding the hand-written week."""
    tmp_path = tmp_path_factory.mktemp("mini")
    site_file = tmp_path / "site.toml"
    site_file.write_text(SITE_TOML, encoding="utf-8")
    db = tmp_path / "tila.db"
    store = SqliteStore(db)
    store.write_buckets(week_buckets())
    store.close()
    return load_site(site_file), site_file, db


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def by(rows: list[dict[str, str]], key: str) -> dict[str, dict[str, str]]:
    return {r[key]: r for r in rows}


def report(
    site: Site, db: Path, out: Path, lang: str = "en", first: str = WEEK[0], end: str = WEEK[1]
) -> Path:
    store = SqliteStore(db)
    try:
        period = Period(site, date.fromisoformat(first), date.fromisoformat(end))
        return make_report(Request(site, period, out, lang), store)
    finally:
        store.close()


@pytest.fixture(scope="module")
def week(mini: tuple[Site, Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The week's report in each language, made once for the module: language → HTML file."""
    site, _, db = mini
    out = tmp_path_factory.mktemp("week")
    return {lang: report(site, db, out / lang, lang=lang) for lang in ("fi", "sv", "en")}


def tila_report(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TILA, "report", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


# ------------------------------------------------------------------------------- the hand week

#: (F, O, U, coverage, F on covered time) per kind, computed by hand above.
WANT_KIND = {
    "desk": (0.4, 1.0, 0.4, 0.8, 0.5),
    "room": (0.375, 2 / 3, 0.25, 1.0, 0.375),
    "booth": (0.0625, 1.0, 0.0625, 1.0, 0.0625),
    "event": (0.05, 0.475, 0.02375, 1.0, 0.05),
}


def check(row: dict[str, str], f: float, o: float, u: float, cov: float, fc: float) -> None:
    got = [float(row[k]) for k in ("frequency", "occupancy", "utilisation", "coverage", "frequency_covered")]
    assert got == pytest.approx([f, o, u, cov, fc], abs=1e-6), row


def test_hand_computed_week_as_a_function(week: dict[str, Path]) -> None:
    path = week["en"]
    out = path.parent
    assert path == out / HTML_NAME and path.is_file()
    csvdir = out / "csv"

    kinds = by(read_csv(csvdir / "headline_kind.csv"), "kind")
    assert list(kinds) == ["desk", "room", "booth", "event"]
    for kind, want in WANT_KIND.items():
        check(kinds[kind], *want)
        assert kinds[kind]["from"] == "2026-03-09" and kinds[kind]["to"] == "2026-03-16"
    assert float(kinds["desk"]["open_seconds"]) == 40 * 3600
    assert float(kinds["desk"]["covered_seconds"]) == 32 * 3600

    # The site: sums over the four spaces (28 seats, 160 space-hours open).
    (whole,) = read_csv(csvdir / "headline_site.csv")
    occupied = 16 + 15 + 2.5 + 2  # hours
    people_hours = 16 + 5 * (2 * 3 + 6) + 2.5 + (16 + 3)
    seat_hours = 16 * 1 + 15 * 6 + 2.5 * 1 + 2 * 20
    check(
        whole, occupied / 160, people_hours / seat_hours, people_hours / (28 * 40), 152 / 160, occupied / 152
    )
    assert (whole["spaces"], whole["seats"]) == ("4", "28")

    zones = by(read_csv(csvdir / "headline_zone.csv"), "zone")
    check(zones["open"], 18.5 / 80, 1.0, 18.5 / 80, 72 / 80, 18.5 / 72)
    check(zones["rooms"], 17 / 80, (60 + 19) / (90 + 40), (60 + 19) / (26 * 40), 1.0, 17 / 80)

    # One week and one month: the same figures as the whole period.
    weeks = [r for r in read_csv(csvdir / "trend_week.csv") if r["kind"] == "room"]
    assert [w["start"] for w in weeks] == ["2026-03-09T00:00:00+02:00"]
    check(weeks[0], *WANT_KIND["room"])
    months = [r for r in read_csv(csvdir / "trend_month.csv") if r["kind"] == "desk"]
    assert [m["start"] for m in months] == ["2026-03-01T00:00:00+02:00"]
    check(months[0], *WANT_KIND["desk"])

    # The heatmap: the desk is busy 09–13 on Monday (known all day), unknown all Friday.
    heat = [r for r in read_csv(csvdir / "heatmap_kind.csv") if r["kind"] == "desk"]
    cell = {(r["day"], int(r["hour"])): r for r in heat}
    assert len(heat) == 5 * 8
    assert float(cell["mon", 9]["frequency"]) == 1.0 and float(cell["mon", 8]["frequency"]) == 0.0
    assert float(cell["fri", 10]["coverage"]) == 0.0 and cell["fri", 10]["frequency_covered"] == ""

    # The room holds 3 people two thirds of its occupied time, 6 a third; the hall 16 or 3.
    rooms = by(read_csv(csvdir / "rooms_summary.csv"), "space")
    r1 = rooms["r1"]
    assert (r1["capacity"], r1["median_people"], r1["p90_people"]) == ("6", "3", "6")
    assert float(r1["share_at_most_half"]) == pytest.approx(2 / 3, abs=1e-6)
    assert float(r1["share_over_capacity"]) == 0.0
    counts = {
        int(r["people"]): float(r["occupied_seconds"])
        for r in read_csv(csvdir / "rooms_headcount.csv")
        if r["space"] == "r1"
    }
    assert counts == {1: 0, 2: 0, 3: 10 * 3600, 4: 0, 5: 0, 6: 5 * 3600, 7: 0}
    assert set(rooms) == {"r1", "e1"}  # spaces seating more than one

    # Tuesday is the one event day (16 ≥ a quarter of 20); Thursday's 3 people are not a crowd.
    (event,) = read_csv(csvdir / "event_days.csv")
    assert (event["date"], event["space"], event["peak_count"], event["crowd"]) == (
        "2026-03-10",
        "e1",
        "16",
        "5",
    )
    compare = {(r["kind"], r["days"]): r for r in read_csv(csvdir / "event_compare.csv")}
    assert compare["desk", "event"]["day_count"] == "1" and compare["desk", "ordinary"]["day_count"] == "4"
    assert float(compare["desk", "event"]["frequency"]) == 0.5  # 4 h of Tuesday's 8
    assert float(compare["desk", "ordinary"]["frequency"]) == pytest.approx(12 / 32)

    # Coverage per space and week: the desk's missing Friday shows as 0.8, not as vacancy.
    cov = {r["space"]: r for r in read_csv(csvdir / "coverage_week.csv")}
    assert float(cov["d1"]["coverage"]) == 0.8 and float(cov["r1"]["coverage"]) == 1.0


def test_csv_files_are_utf8_with_iso_times_and_dot_decimals(week: dict[str, Path]) -> None:
    out = week["fi"].parent
    files = sorted((out / "csv").glob("*.csv"))
    assert {f.stem for f in files} <= set(NAMES) and len(files) >= 12
    for f in files:
        text = f.read_bytes().decode("utf-8")
        header, *rows = text.splitlines()
        assert header and "," in header, f.name
        for row in rows:
            # Finnish HTML writes 45,3 %; CSV cells never carry a decimal comma or a per cent sign.
            for cell in next(csv.reader([row])):
                assert "%" not in cell and not re.fullmatch(r"-?\d+,\d+", cell), (f.name, cell)
    starts = [r["start"] for r in read_csv(out / "csv" / "trend_week.csv")]
    assert all(datetime.fromisoformat(s).utcoffset() is not None for s in starts)


def svgs(html: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", html, flags=re.S)


def test_html_has_every_section_inline_charts_and_links(week: dict[str, Path]) -> None:
    out = week["en"].parent
    html = week["en"].read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'<section id="{section}">' in html, section
    for words in (
        "Continuation assessment",
        "Use by kind and zone",
        "Weekday and hour",
        "Week by week and month by month",
        "Room right-sizing",
        "Event days and ordinary days",
        "Sensor coverage",
        "Bookings",
        "15-minute buckets",
        "UK Higher Education Space Management Group",
        "U = F × O",
        "Mini lab",
    ):
        assert words in html, words
    # Self-contained: nothing loaded from elsewhere, no scripts.
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    charts = svgs(html)
    # headline; heatmaps: desk F, room F and U, booth F, event F and U; weeks; months; rooms; events; coverage
    assert len(charts) == 12
    for svg in charts:
        root = ET.fromstring(svg)
        assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("viewBox")
        assert root.get("role") == "img" and root.get("aria-label")
    # Every chart is followed by its CSV link; every link points at a file that exists.
    for figure in re.findall(r"<figure>.*?</figure>", html, flags=re.S):
        assert re.search(r'href="csv/[a-z_]+\.csv"', figure), figure[-300:]
    links = set(re.findall(r'href="(csv/[a-z_]+\.csv)"', html))
    assert len(links) >= 12
    for link in links:
        assert (out / link).is_file(), link
    # The low-coverage desk and the F on covered time are marked.
    assert "⚠" in html and "F†" in html


def test_languages_and_deterministic_output(
    mini: tuple[Site, Path, Path], week: dict[str, Path], tmp_path: Path
) -> None:
    site, _, db = mini
    texts = {lang: path.read_text(encoding="utf-8") for lang, path in week.items()}
    for lang, text in texts.items():
        assert f'<html lang="{lang}">' in text
    assert (
        "Jatkoarviointi" in texts["fi"] and "Minilabra" in texts["fi"] and "Huoneiden mitoitus" in texts["fi"]
    )
    assert "40,0\u00a0%" in texts["fi"]  # the desk's F, written the Finnish way
    assert "Fortsättningsbedömning" in texts["sv"] and "Minilabbet" in texts["sv"]
    assert "Continuation assessment" in texts["en"] and "40.0%" in texts["en"]
    assert "Jatkoarviointi" not in texts["en"]
    # Same data, same bytes (fixed SVG ids, no dates in the metadata), CSV the same in every language.
    again = report(site, db, tmp_path / "again", lang="fi").read_text(encoding="utf-8")
    assert again == texts["fi"]
    for name in ("headline_kind", "heatmap_kind", "rooms_headcount"):
        fi, en = (week[lang].parent / "csv" / f"{name}.csv" for lang in ("fi", "en"))
        assert fi.read_bytes() == en.read_bytes()


def test_out_directory_keeps_other_files_and_replaces_its_own(
    mini: tuple[Site, Path, Path], tmp_path: Path
) -> None:
    site, _, db = mini
    out = tmp_path / "out"
    (out / "csv").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    (out / "csv" / "mine.csv").write_text("a,b\n")
    (out / "csv" / "bookings_rooms.csv").write_text("stale from an earlier run\n")
    (out / HTML_NAME).write_text("old")
    report(site, db, out)
    assert (out / "notes.txt").read_text() == "mine" and (out / "csv" / "mine.csv").read_text() == "a,b\n"
    assert not (out / "csv" / "bookings_rooms.csv").exists()  # no bookings this time
    assert (out / HTML_NAME).read_text().startswith("<!DOCTYPE html>")
    assert not list(out.rglob(".*.tmp"))


def test_the_command_line_writes_the_report_and_prints_its_path(
    mini: tuple[Site, Path, Path], tmp_path: Path
) -> None:
    _, site_file, db = mini
    out = tmp_path / "cli"
    res = tila_report(
        "--site", str(site_file), "--store", f"sqlite:///{db}", "--from", WEEK[0], "--to", WEEK[1],
        "--out", str(out), "--lang", "en",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(out / HTML_NAME)
    kinds = by(read_csv(out / "csv" / "headline_kind.csv"), "kind")
    for kind, want in WANT_KIND.items():
        check(kinds[kind], *want)
    assert "Continuation assessment" in (out / HTML_NAME).read_text(encoding="utf-8")


@pytest.mark.integration
def test_the_same_report_from_a_real_influxdb(mini: tuple[Site, Path, Path], tmp_path: Path) -> None:
    _, site_file, _ = mini
    with running_influxd(tmp_path / "influxd") as server:
        url = server.url("tila_report")
        store = InfluxStore(parse_store_url(url))
        store.write_buckets(week_buckets())
        store.close()
        out = tmp_path / "out"
        res = tila_report(
            "--site", str(site_file), "--store", url, "--from", WEEK[0], "--to", WEEK[1], "--out", str(out),
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        kinds = by(read_csv(out / "csv" / "headline_kind.csv"), "kind")
        for kind, want in WANT_KIND.items():
            check(kinds[kind], *want)
        server.stop()
        # The server gone: one line, exit 2, nothing written.
        res = tila_report(
            "--site", str(site_file), "--store", url, "--from", WEEK[0], "--to", WEEK[1],
            "--out", str(tmp_path / "down"),
        )  # fmt: skip
        assert res.returncode == 2, res.stderr
        assert "cannot read the store" in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert not (tmp_path / "down" / HTML_NAME).exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--from": "2026-13-01"}, "--from: not a date YYYY-MM-DD: '2026-13-01'"),
        ({"--to": "next week"}, "--to: not a date YYYY-MM-DD"),
        ({"--from": "1969-12-31"}, "outside the years 1970–9000"),
        ({"--to": "2026-03-09"}, "--to 2026-03-09 must be after --from 2026-03-09"),
        ({"--to": "2026-03-01"}, "must be after --from"),
        ({"--from": "2026-03-14", "--to": "2026-03-16"}, "no opening hours from 2026-03-14 to 2026-03-15"),
        (
            {"--from": "2026-04-06", "--to": "2026-04-13"},
            "the store holds no data for mini from 2026-04-06 to 2026-04-12",
        ),
        ({"--from": "2000-01-01", "--to": "2026-01-01"}, "at most 3660"),
        ({"--store": "sqlite:///{tmp}/nothing-here.db"}, "no SQLite store at"),
        ({"--store": "sqlite:///{tmp}/garbage.db"}, "cannot"),
        ({"--store": "postgres://x/y"}, "--store: store URL must be"),
        ({"--out": "{tmp}/a-file"}, "--out: not a directory"),
        ({"--lang": "de"}, "--lang: invalid choice: 'de'"),
        ({"--site": "{tmp}/missing.toml"}, "--site:"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    mini: tuple[Site, Path, Path], tmp_path: Path, change: dict[str, str], message: str
) -> None:
    _, site_file, db = mini
    (tmp_path / "garbage.db").write_bytes(b"this is not an SQLite database at all, just text" * 100)
    (tmp_path / "a-file").write_text("x")
    args = {
        "--site": str(site_file),
        "--store": f"sqlite:///{db}",
        "--from": WEEK[0],
        "--to": WEEK[1],
        "--out": str(tmp_path / "out"),
        **{k: v.format(tmp=tmp_path) for k, v in change.items()},
    }
    res = tila_report(*(x for kv in args.items() for x in kv), timeout=60)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "nothing-here.db").exists()  # a report never creates a store
    assert not (tmp_path / "out" / HTML_NAME).exists()


def test_a_stop_before_the_end_writes_nothing(mini: tuple[Site, Path, Path], tmp_path: Path) -> None:
    site, _, db = mini
    stop = threading.Event()
    stop.set()
    store = SqliteStore(db)
    try:
        period = Period(site, MONDAY, MONDAY + timedelta(days=7))
        with pytest.raises(StoppedError):
            make_report(Request(site, period, tmp_path / "out", "en"), store, stop=stop)
    finally:
        store.close()
    assert not (tmp_path / "out").exists()


def test_period_rejects_an_empty_range() -> None:
    site = load_site(bundled_site_path())
    with pytest.raises(ReportError, match="must be after"):
        Period(site, date(2026, 1, 2), date(2026, 1, 1))


def test_a_site_of_desks_only_says_what_it_cannot_show(tmp_path: Path) -> None:
    doc = tomllib.loads(SITE_TOML)
    doc["spaces"] = [s for s in doc["spaces"] if s["kind"] == "desk"]
    site = parse_site(doc, "desks.toml")
    db = tmp_path / "tila.db"
    store = SqliteStore(db)
    store.write_buckets([b for b in week_buckets() if b.space == "d1"])
    store.close()
    html = report(site, db, tmp_path / "out").read_text(encoding="utf-8")
    assert "The site has no spaces seating more than one." in html
    assert "The period has no event days (or the site has no event space)." in html
    # headline, the desks' F heatmap, weeks, months, coverage
    assert len(svgs(html)) == 5
    assert read_csv(tmp_path / "out" / "csv" / "rooms_summary.csv") == []


# ------------------------------------------------------------- what the report adds to the metrics


def test_weeks_and_months_are_local_and_survive_daylight_saving() -> None:
    site = load_site(bundled_site_path())
    # 2026-03-25 (Wed) to 2026-11-03 (Tue): spring forward on 29 March, back on 25 October.
    a = int(datetime(2026, 3, 25, tzinfo=HEL).timestamp())
    b = int(datetime(2026, 11, 3, tzinfo=HEL).timestamp())
    cal = Calendar.of(site, a, b)
    index, weeks = cal.intervals("1w")
    assert weeks[0].isoformat() == "2026-03-23T00:00:00+02:00"  # the Monday before the window
    assert weeks[1].isoformat() == "2026-03-30T00:00:00+03:00"  # summer time from here
    assert all(w.weekday() == 0 and (w.hour, w.minute) == (0, 0) for w in weeks)
    assert weeks[-1].isoformat() == "2026-11-02T00:00:00+02:00" and len(weeks) == 33
    # The week of the autumn change has 7 × 24 + 1 hours of slots.
    autumn = weeks.index(datetime(2026, 10, 19, tzinfo=HEL))
    assert int((index == autumn).sum()) == (7 * 24 + 1) * 4
    index, months = cal.intervals("1mo")
    assert [m.isoformat()[:7] for m in months] == [f"2026-{m:02d}" for m in range(3, 12)]
    assert months[3].isoformat() == "2026-06-01T00:00:00+03:00"
    assert int((index == 1).sum()) == 30 * 96  # April, all summer time


def test_utilisation_rows_per_week_and_month() -> None:
    site = load_site(bundled_site_path())
    start, end = datetime(2026, 1, 1, tzinfo=HEL), datetime(2026, 3, 1, tzinfo=HEL)
    bucket = Bucket("desk-01", at(date(2026, 1, 7), 10), 900.0, 900.0, 900.0, 1)
    weeks = utilisation(site, [bucket], start, end, ["desk-01"], "1w")
    assert weeks[0]["start"] == "2025-12-29T00:00:00+02:00"
    # 1 Jan (New Year) and 2 Jan open: 13 h; 6 Jan is Epiphany: the week of the 5th has 4 days.
    assert weeks[0]["open_seconds"] == 13 * 3600 and weeks[1]["open_seconds"] == 4 * 13 * 3600
    assert weeks[1]["occupied_seconds"] == 900.0
    months = utilisation(site, [bucket], start, end, ["desk-01"], "1mo")
    assert [m["start"][:10] for m in months] == ["2026-01-01", "2026-02-01"]
    assert months[0]["frequency"] == round(900 / months[0]["open_seconds"], 6)


def test_headcounts_weigh_each_quarter_by_its_occupied_time() -> None:
    site = parse_site(tomllib.loads(SITE_TOML), "<mini>")
    spaces = [s.id for s in site.spaces]
    e = at(MONDAY, 10)
    buckets = [
        Bucket("r1", e, 900.0, 900.0, 900.0 * 3, 3),  # 3 people for the quarter
        Bucket("r1", e + 900, 600.0, 900.0, 600.0 * 2.5, 3),  # 2.5 on average: rounds half up to 3
        Bucket("r1", e + 1800, 300.0, 900.0, 300.0 * 1.2, 2),  # 1.2 → 1
        Bucket("r1", e + 2700, 0.0, 900.0, 0.0, 0),  # empty: not counted
        Bucket("e1", e, 900.0, 900.0, 900.0 * 30, 30),  # past the top bin
    ]
    cols = Columns.of(buckets, spaces, e, e + 3600)
    dist = headcounts(cols, len(spaces), 21)
    r1, e1 = spaces.index("r1"), spaces.index("e1")
    assert dist.shape == (4, 22)
    assert dist[r1, 3] == 1500.0 and dist[r1, 1] == 300.0 and dist[r1].sum() == 1800.0
    assert dist[e1, 21] == 900.0 and dist[:, 0].sum() == 0


# ------------------------------------------------------------------------------------ bookings

#: Bookings of the hand week (local times): (uid, location, day, start, end).
WEEK_BOOKINGS = [
    ("b1", "r1", 0, "1000", "1200"),  # used by 3 of 6: half the seats, not fewer: not half-empty
    ("b2", "r1", 1, "1300", "1400"),  # nobody, the room seen empty: a no-show
    ("b3", "r1", 2, "1400", "1500"),  # used by 6
    ("b4", "Event hall", 3, "1000", "1100"),  # the hall by its name; empty: a no-show
    ("b5", "e1", 3, "1400", "1500"),  # used by 3 of 20: half-empty
]


def week_ics() -> str:
    events = []
    for uid, location, offset, a, b in WEEK_BOOKINGS:
        day = (MONDAY + timedelta(days=offset)).strftime("%Y%m%d")
        events.append(
            "BEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20260301T100000Z\r\n"
            f"DTSTART;TZID=Europe/Helsinki:{day}T{a}00\r\nDTEND;TZID=Europe/Helsinki:{day}T{b}00\r\n"
            f"LOCATION:{location}\r\nSUMMARY:Private title, never kept\r\nEND:VEVENT\r\n"
        )
    # One event in a place the site does not have: counted as skipped, not silently dropped.
    events.append(
        "BEGIN:VEVENT\r\nUID:x1\r\nDTSTAMP:20260301T100000Z\r\n"
        "DTSTART;TZID=Europe/Helsinki:20260311T100000\r\nDTEND;TZID=Europe/Helsinki:20260311T110000\r\n"
        "LOCATION:Somewhere else\r\nEND:VEVENT\r\n"
    )
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tila tests//EN\r\n"
        + "".join(events)
        + "END:VCALENDAR\r\n"
    )


def test_bookings_section_from_an_ics_file(mini: tuple[Site, Path, Path], tmp_path: Path) -> None:
    _, site_file, db = mini
    ics = tmp_path / "rooms.ics"
    ics.write_text(week_ics(), encoding="utf-8")
    out = tmp_path / "out"
    res = tila_report(
        "--site", str(site_file), "--store", f"sqlite:///{db}", "--from", WEEK[0], "--to", WEEK[1],
        "--out", str(out), "--lang", "en", "--bookings", str(ics),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    rooms = by(read_csv(out / "csv" / "bookings_rooms.csv"), "space")
    r1, e1 = rooms["r1"], rooms["e1"]
    assert (r1["bookings"], r1["used"], r1["no_shows"], r1["unknown"], r1["half_empty"]) == (
        "3",
        "2",
        "1",
        "0",
        "0",
    )
    assert float(r1["no_show_rate"]) == pytest.approx(1 / 3, abs=1e-6)
    assert float(r1["booked_hours"]) == 4.0 and float(r1["used_booked_hours"]) == 3.0
    assert float(r1["unbooked_occupied_hours"]) == 15.0 - 3.0
    assert (e1["bookings"], e1["used"], e1["no_shows"], e1["half_empty"]) == ("2", "1", "1", "1")
    assert float(e1["no_show_rate"]) == 0.5 and float(e1["unbooked_occupied_hours"]) == 1.0
    (half,) = read_csv(out / "csv" / "bookings_half_empty.csv")
    assert (half["space"], half["start"], half["mean_count"]) == ("e1", "2026-03-12T14:00:00+02:00", "3.0")
    unbooked = read_csv(out / "csv" / "bookings_unbooked.csv")
    assert ("e1", "2026-03-10T08:00:00+02:00", "2026-03-10T09:00:00+02:00") in {
        (u["space"], u["start"], u["end"]) for u in unbooked
    }
    html = (out / HTML_NAME).read_text(encoding="utf-8")
    section = html[html.index('<section id="bookings">') :]
    assert "5 bookings in the period, 1 events skipped (unknown_space 1)" in section
    assert 'href="csv/bookings_rooms.csv"' in section and "<svg" in section
    assert "Private title" not in html
    # The next report without bookings removes the bookings files it wrote.
    res = tila_report(
        "--site", str(site_file), "--store", f"sqlite:///{db}", "--from", WEEK[0], "--to", WEEK[1],
        "--out", str(out),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert not (out / "csv" / "bookings_rooms.csv").exists()


def test_bad_bookings_source_is_one_line_and_exit_2(mini: tuple[Site, Path, Path], tmp_path: Path) -> None:
    _, site_file, db = mini
    bad = tmp_path / "bad.ics"
    bad.write_text("this is no calendar", encoding="utf-8")
    for source, message in ((str(tmp_path / "missing.ics"), "--bookings:"), (str(bad), "--bookings:")):
        res = tila_report(
            "--site", str(site_file), "--store", f"sqlite:///{db}", "--from", WEEK[0], "--to", WEEK[1],
            "--out", str(tmp_path / "out"), "--bookings", source,
        )  # fmt: skip
        assert res.returncode == 2, res.stderr
        assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


# ---------------------------------------------------------------------------------------- PDF


def pdf_outline_titles(pdf: bytes) -> list[str]:
    """The titles of the PDF's outline (bookmarks), which Chromium makes from the headings."""
    titles = []
    for m in re.finditer(rb"/Title\s*(\((?:[^()\\]|\\.)*\)|<[0-9A-Fa-f]+>)", pdf):
        raw = m.group(1)
        if raw.startswith(b"<"):
            data = bytes.fromhex(raw[1:-1].decode())
            titles.append(
                data[2:].decode("utf-16-be") if data.startswith(b"\xfe\xff") else data.decode("latin-1")
            )
        else:
            titles.append(raw[1:-1].decode("latin-1"))
    return titles


@pytest.mark.parametrize("lang", ["en", "fi"])
def test_the_report_prints_to_a4_pdf(week: dict[str, Path], tmp_path: Path, lang: str) -> None:
    if chromium_path() is None:
        pytest.skip("Chromium is not installed (scripts/test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    path = week[lang]
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.as_uri())
            # Every chart is drawn at a real size on the page.
            sizes = page.eval_on_selector_all(
                "svg.chart",
                "els => els.map(e => [e.getBoundingClientRect().width, e.getBoundingClientRect().height])",
            )
            assert len(sizes) == 12 and all(w > 300 and h > 80 for w, h in sizes), sizes
            # Printed, the page is A4 less 2 × 18 mm margins wide (174 mm ≈ 658 CSS px): nothing
            # may be wider, and no chart taller than a page (247 mm ≈ 933 px), so none is split.
            page.emulate_media(media="print")
            page.set_viewport_size({"width": 658, "height": 933})
            wide = page.evaluate(
                "() => [...document.querySelectorAll('table, figure, svg.chart, p, ul, dl')]"
                ".filter(e => e.getBoundingClientRect().right > 659).map(e => e.tagName + ' ' + e.textContent.slice(0, 40))"
            )
            assert wide == [] and page.evaluate("() => document.documentElement.scrollWidth") <= 658
            tall = page.eval_on_selector_all(
                "figure", "els => els.map(e => e.getBoundingClientRect().height)"
            )
            assert max(tall) < 933, tall
            pdf = page.pdf(format="A4", outline=True, tagged=True, print_background=True)
        finally:
            browser.close()
    assert not errors
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf))
    # A page per section at least: every section starts on a new page.
    assert pages >= len(SECTIONS), pages
    titles = pdf_outline_titles(pdf)
    want = {
        "en": [
            "Use by kind and zone",
            "Weekday and hour",
            "Room right-sizing",
            "Event days and ordinary days",
            "Sensor coverage",
            "Bookings",
        ],
        "fi": [
            "Käyttö tilatyypeittäin ja alueittain",
            "Viikonpäivä ja kellonaika",
            "Huoneiden mitoitus",
            "Anturidatan kattavuus",
            "Varaukset",
        ],
    }[lang]
    for title in want:
        assert title in titles, (title, titles)
    (tmp_path / "report.pdf").write_bytes(pdf)


# ------------------------------------------------------------------------------ a year of history

#: A small part of the bundled Work 2.0 Lab: three desks, a 12-seat room, a booth and the event hall.
YEAR_SPACES = {"desk-01", "desk-02", "desk-03", "room-aalto", "booth-1", "event-hall"}
YEAR = 2025


def small_lab() -> Site:
    doc = tomllib.loads(bundled_site_path().read_text(encoding="utf-8"))
    doc["spaces"] = [s for s in doc["spaces"] if s["id"] in YEAR_SPACES]
    doc["sensors"] = [s for s in doc["sensors"] if s["space"] in YEAR_SPACES]
    return parse_site(doc, "work20lab-small.toml")


@pytest.fixture(scope="module")
def year_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, Path]]:
    from tila.sim.backfill import backfill

    site = small_lab()
    db = tmp_path_factory.mktemp("year") / "tila.db"
    store = SqliteStore(db)
    try:
        backfill(site, store, date(YEAR, 1, 1), date(YEAR + 1, 1, 1), seed=7)
    finally:
        store.close()
    yield site, db


def test_a_year_of_backfilled_history(year_store: tuple[Site, Path], tmp_path: Path) -> None:
    site, db = year_store
    out = tmp_path / "out"
    store = SqliteStore(db)
    tm = Timings()
    t0 = time.perf_counter()
    try:
        period = Period(site, date(YEAR, 1, 1), date(YEAR + 1, 1, 1))
        make_report(Request(site, period, out, "fi"), store, timings=tm)
    finally:
        store.close()
    elapsed = time.perf_counter() - t0
    assert tm.rows > 50_000 and elapsed > 0
    csvdir = out / "csv"

    months = read_csv(csvdir / "trend_month.csv")
    assert sorted({m["start"][:7] for m in months}) == [f"{YEAR}-{m:02d}" for m in range(1, 13)]
    weeks = {w["start"][:10] for w in read_csv(csvdir / "trend_week.csv")}
    assert min(weeks) == "2024-12-30" and max(weeks) == "2025-12-29" and len(weeks) == 53
    kinds = by(read_csv(csvdir / "headline_kind.csv"), "kind")
    for row in kinds.values():
        f, u, cov = float(row["frequency"]), float(row["utilisation"]), float(row["coverage"])
        assert 0 < u <= f < 1 and 0.5 < cov <= 1, row
    # 251 open days in 2025 (weekdays less the Finnish holidays on weekdays).
    assert float(kinds["desk"]["open_seconds"]) == 3 * 251 * 13 * 3600

    # The monthly Törmäämö breakfast (the first Tuesday, when open) fills the hall: an event day.
    event_days = {e["date"] for e in read_csv(csvdir / "event_days.csv")}
    tuesdays = [
        d
        for m in range(1, 13)
        for d in (date(YEAR, m, k) for k in range(1, 8))
        if d.weekday() == 1 and site.hours_on(d)
    ]
    found = [d for d in tuesdays if d.isoformat() in event_days]
    assert len(found) >= len(tuesdays) - 1, (tuesdays, sorted(event_days))
    hourly = {(r["kind"], r["days"], int(r["hour"])): r for r in read_csv(csvdir / "event_hourly.csv")}
    assert float(hourly["event", "event", 8]["frequency"]) > float(
        hourly["event", "ordinary", 8]["frequency"]
    )

    html = (out / HTML_NAME).read_text(encoding="utf-8")
    assert len(svgs(html)) == 12
    for svg in svgs(html):
        ET.fromstring(svg)
