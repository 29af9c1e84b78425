"""Bookings: iCalendar import (files and feeds), the bookings database, the comparison with measured
occupancy, availability and the live no-show rule, and ``tila bookings import``."""

from __future__ import annotations

import asyncio
import http.server
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from slow_http import CALENDAR_HEAD, SlowHttp

from tila.aggregator.buckets import Bucket
from tila.api.live import LiveState
from tila.bookings import ical
from tila.bookings.availability import availability
from tila.bookings.compare import compare, load
from tila.bookings.db import BookingDb, ConflictError, Detected
from tila.bookings.model import Booking, BookingError, CalendarError, ImportResult
from tila.bookings.monitor import NoShowMonitor, decide
from tila.cli import main
from tila.sensors.site import DAYS, Site, parse_site
from tila.store.sqlite import SqliteStore

FIXTURES = Path(__file__).parent / "fixtures" / "ical"
HEL = ZoneInfo("Europe/Helsinki")

SITE_DOC: dict[str, Any] = {
    "site": {
        "id": "lab-b",
        "name": {"fi": "Testilabra", "en": "Test lab"},
        "timezone": "Europe/Helsinki",
        "holidays": "none",
        "opening_hours": {d: "08:00-18:00" for d in DAYS[:5]},
    },
    "zones": [
        {"id": "rooms", "name": {"fi": "Neuvottelutilat", "en": "Meeting rooms"}},
        {"id": "open", "name": "Open office"},
    ],
    "spaces": [
        {
            "id": "room-a",
            "kind": "room",
            "zone": "rooms",
            "capacity": 6,
            "name": {"fi": "Neuvotteluhuone Aalto", "sv": "Mötesrum Aalto", "en": "Aalto room"},
        },
        {
            "id": "room-b",
            "kind": "room",
            "zone": "rooms",
            "capacity": 4,
            "name": {"fi": "Neuvotteluhuone Sauna", "sv": "Mötesrum Bastu", "en": "Sauna room"},
        },
        {
            "id": "hall",
            "kind": "event",
            "zone": "rooms",
            "capacity": 40,
            "name": {"fi": "Tapahtumasali", "sv": "Evenemangssalen", "en": "Event hall"},
        },
        {"id": "booth-1", "kind": "booth", "zone": "open", "capacity": 1},
        {"id": "desk-01", "kind": "desk", "zone": "open", "capacity": 1},
    ],
    "sensors": [
        {"id": "room-a-pir", "space": "room-a", "format": "zigbee2mqtt", "topic": "zigbee2mqtt/room-a-pir"},
        {"id": "room-b-pir", "space": "room-b", "format": "zigbee2mqtt", "topic": "zigbee2mqtt/room-b-pir"},
    ],
}


@pytest.fixture(scope="module")
def site() -> Site:
    return parse_site(SITE_DOC, "<bookings test site>")


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=HEL)


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# ------------------------------------------------------------------- the hand-computed week

WEEK = (local(2026, 3, 2), local(2026, 3, 9))  # Mon 2 – Sun 8 March 2026, UTC+2 all week


def week_buckets() -> list[Bucket]:
    """Rooms A and B seen all week within opening hours; what happened is set slot by slot."""
    rows: dict[tuple[str, int], Bucket] = {}
    for day in range(2, 7):
        for q in range(40):  # 08:00–18:00 in quarters
            t = int(local(2026, 3, day, 8).timestamp()) + q * 900
            for space in ("room-a", "room-b"):
                rows[space, t] = Bucket(space, t, 0.0, 900.0, 0.0, 0)

    def occupied(space: str, day: int, h: int, m: int, seconds: float, people: int) -> None:
        t = int(local(2026, 3, day, h, m).timestamp())
        rows[space, t] = Bucket(space, t, seconds, 900.0, seconds * people, people)

    # Mon: room A from 09:05 with four people (booked 09–10).
    occupied("room-a", 2, 9, 0, 600, 4)
    for m in (15, 30, 45):
        occupied("room-a", 2, 9, m, 900, 4)
    # Wed: room A 13–14 with two people of six seats: used, half-empty.
    for m in (0, 15, 30, 45):
        occupied("room-a", 4, 13, m, 900, 2)
    # Thu: room A 15–16 with three people, unbooked.
    for m in (0, 15, 30, 45):
        occupied("room-a", 5, 15, m, 900, 3)
    # Mon and Wed: room B's morning check-in 08:00–08:30 with two people (half of four: not below).
    for day in (2, 4):
        for m in (0, 15):
            occupied("room-b", day, 8, m, 900, 2)
    # Thu: room B's sensor silent 09–10 (booked): no data, no verdict.
    for m in (0, 15, 30, 45):
        del rows["room-b", int(local(2026, 3, 5, 9, m).timestamp())]
    # Thu: room B booked 14–15, but the team came only at 14:30: a no-show by the 15-minute rule.
    for m in (30, 45):
        occupied("room-b", 5, 14, m, 900, 3)
    # Fri: room B 11:00–11:30, one person, unbooked.
    for m in (0, 15):
        occupied("room-b", 6, 11, m, 900, 1)
    return list(rows.values())


def test_a_hand_computed_week_of_no_shows(site: Site, tmp_path: Path) -> None:
    parsed = ical.parse(
        read("week.ics"), site, source="file:week.ics", start=WEEK[0], end=WEEK[1], now=local(2026, 3, 1)
    )
    assert not parsed.skipped
    db = BookingDb.in_dir(tmp_path)
    assert db.replace(parsed).replaced == 0
    store = SqliteStore(tmp_path / "tila.db")
    store.write_buckets(week_buckets())
    try:
        bookings = db.query(*WEEK)
        result = compare(site, bookings, store.buckets(*WEEK), start=WEEK[0], end=WEEK[1])
    finally:
        store.close()

    by_start = {
        (o.booking.space, o.booking.start.astimezone(HEL).strftime("%a %H:%M")): o for o in result.outcomes
    }
    assert {k: o.outcome for k, o in by_start.items()} == {
        ("room-a", "Mon 09:00"): "used",
        ("room-a", "Tue 10:00"): "no_show",
        ("room-a", "Wed 13:00"): "used",
        ("room-b", "Mon 08:00"): "used",
        ("room-b", "Tue 08:00"): "no_show",
        ("room-b", "Wed 08:00"): "used",
        ("room-b", "Thu 09:00"): "unknown",
        ("room-b", "Thu 14:00"): "no_show",
    }
    mon = by_start["room-a", "Mon 09:00"]
    assert (mon.occupied_s, mon.mean_count, mon.peak_count, mon.coverage) == (3300, 4.0, 4, 1.0)
    assert mon.booking.expected == 4  # three guests and the organiser; the room resource is no person
    assert [k for k, o in by_start.items() if o.half_empty] == [("room-a", "Wed 13:00")]
    assert by_start["room-b", "Thu 09:00"].coverage == 0.0
    assert by_start["room-b", "Thu 14:00"].occupied_s == 1800  # late arrivals still count as use

    summary = {s.space: s for s in result.spaces}
    assert set(summary) == {"room-a", "room-b", "hall"}  # rooms and the event hall are bookable
    a, b = summary["room-a"], summary["room-b"]
    assert (a.bookings, a.used, a.no_shows, a.unknown, a.half_empty) == (3, 2, 1, 0, 1)
    assert a.no_show_rate == pytest.approx(1 / 3)
    assert a.booked_hours == pytest.approx(3.0)
    assert a.used_booked_hours == pytest.approx(6900 / 3600)
    assert a.unbooked_occupied_hours == pytest.approx(1.0)
    assert (b.bookings, b.used, b.no_shows, b.unknown, b.half_empty) == (5, 2, 2, 1, 0)
    assert b.no_show_rate == pytest.approx(0.5)  # the unknown one is left out of the rate
    assert b.booked_hours == pytest.approx(3.5)
    assert b.used_booked_hours == pytest.approx(1.5)
    assert b.unbooked_occupied_hours == pytest.approx(0.5)
    assert summary["hall"].no_show_rate is None
    assert sum(s.no_shows for s in result.spaces) == 3

    assert [
        (u.space, u.start.astimezone(HEL), u.end.astimezone(HEL), u.occupied_s) for u in result.unbooked
    ] == [
        ("room-a", local(2026, 3, 5, 15), local(2026, 3, 5, 16), 3600),
        ("room-b", local(2026, 3, 6, 11), local(2026, 3, 6, 11, 30), 1800),
    ]


def test_bookings_off_the_quarter_hour_are_judged_on_whole_slots(site: Site) -> None:
    t = local(2026, 3, 2, 9)
    # Somebody was in during 09:00–09:15 (at 09:02, say); the booking begins at 09:10.
    buckets = [Bucket("room-a", int(t.timestamp()), 120, 900, 240, 2)]
    bk = Booking("x", "room-a", t + timedelta(minutes=10), t + timedelta(minutes=50), "api")
    out = compare(site, [bk], buckets, timedelta(minutes=5)).outcomes[0]
    assert out.outcome == "used"  # the slot holding the start is looked at whole (rounded outward)
    # Half the grace window's open time seen is too little to call it a no-show.
    half = [Bucket("room-a", int(t.timestamp()), 0, 450, 0, 0)]
    assert compare(site, [bk], half).outcomes[0].outcome == "unknown"
    # A booking outside opening hours cannot be judged at all.
    night = Booking("y", "room-a", local(2026, 3, 2, 20), local(2026, 3, 2, 21), "api")
    assert compare(site, [night], []).outcomes[0].outcome == "unknown"
    # A booking of a space the site no longer has is left out, and counted.
    gone = Booking("z", "room-zz", t, t + timedelta(hours=1), "api")
    assert compare(site, [gone], []).ignored == 1


# ----------------------------------------------------------------------------- iCalendar cases

NOV = (local(2026, 11, 1), local(2026, 12, 1))


def test_an_outlook_series_across_the_dst_change_with_exdate_a_moved_and_a_cancelled_occurrence(
    site: Site,
) -> None:
    r = ical.parse(
        read("outlook_room.ics"),
        site,
        source="room-a",
        space="room-a",
        start=local(2026, 10, 1),
        end=NOV[1],
        now=local(2026, 10, 1),
    )
    got = [(b.uid.rsplit("/", 1)[1], b.start, b.end, b.expected) for b in r.bookings]
    assert got == [
        # 09:00 summer time (UTC+3) before the change on 25 October ...
        ("20261013T060000Z", local(2026, 10, 13, 9), local(2026, 10, 13, 10), 2),
        # 20 October deleted (EXDATE); 27 October moved to the afternoon, winter time (UTC+2)
        ("20261027T070000Z", local(2026, 10, 27, 13), local(2026, 10, 27, 14), None),
        # 3 November cancelled; 10 November as planned, 09:00 winter time
        ("20261110T070000Z", local(2026, 11, 10, 9), local(2026, 11, 10, 10), 2),
    ]
    assert got[0][1].astimezone(HEL).utcoffset() == timedelta(hours=3)
    assert got[2][1].astimezone(HEL).utcoffset() == timedelta(hours=2)
    assert dict(r.skipped) == {"cancelled": 1}
    assert {b.space for b in r.bookings} == {"room-a"}
    # Stable ids: importing the same file again gives the same ones.
    again = ical.parse(
        read("outlook_room.ics"), site, source="x", space="room-a", start=local(2026, 10, 1), end=NOV[1]
    )
    assert [b.uid for b in again.bookings] == [b.uid for b in r.bookings]


def test_a_google_export_with_utc_all_day_events_and_the_usual_mistakes(site: Site) -> None:
    r = ical.parse(read("google.ics"), site, source="g", start=NOV[0], end=NOV[1], now=local(2026, 10, 1))
    got = {(b.uid, b.space): (b.start.astimezone(HEL), b.end.astimezone(HEL), b.expected) for b in r.bookings}
    assert got == {
        # UTC 08:00 is 10:00 in Helsinki in November; two people invited, neither declined
        ("5kq0m1v2c3d4e5f6g7h8i9j0k1@google.com", "room-a"): (
            local(2026, 11, 10, 10),
            local(2026, 11, 10, 11),
            2,
        ),
        # an all-day event books the day's opening hours
        ("allday-workshop-0001@google.com", "hall"): (local(2026, 11, 11, 8), local(2026, 11, 11, 18), None),
        # Friday to Sunday: Friday's hours; the weekend is closed (two counted skips)
        ("allday-fair-0002@google.com/20261113", "hall"): (
            local(2026, 11, 13, 8),
            local(2026, 11, 13, 18),
            None,
        ),
        # two rooms in one LOCATION, as Outlook joins them
        ("two-rooms-0011@google.com@room-a", "room-a"): (
            local(2026, 11, 12, 12),
            local(2026, 11, 12, 13),
            None,
        ),
        ("two-rooms-0011@google.com@room-b", "room-b"): (
            local(2026, 11, 12, 12),
            local(2026, 11, 12, 13),
            None,
        ),
    }
    assert dict(r.skipped) == {
        "bad_end": 1,
        "cancelled": 1,
        "closed_day": 2,
        "free_time": 1,
        "no_start": 1,
        "overlap": 1,
        "too_far": 1,
        "too_long": 1,
        "unknown_space": 1,
    }
    summary = r.summary()
    assert (summary["imported"], summary["skipped"]) == (5, 10)


def test_floating_times_are_the_sites_local_time(site: Site) -> None:
    r = ical.parse(read("floating.ics"), site, source="f", start=NOV[0], end=NOV[1])
    (b,) = r.bookings
    assert (b.space, b.start, b.end) == ("room-a", local(2026, 11, 10, 10), local(2026, 11, 10, 11, 30))


def test_nothing_personal_is_kept(site: Site, tmp_path: Path) -> None:
    db = BookingDb.in_dir(tmp_path)
    db.replace(ical.parse(read("week.ics"), site, source="w", start=WEEK[0], end=WEEK[1]))
    dump = "\n".join(sqlite3.connect(tmp_path / "bookings.db").iterdump())
    for personal in ("Virtanen", "maija", "example.fi", "Ilmiöpohjainen", "Agenda", "Budget review"):
        assert personal not in dump


def test_location_matching_ignores_case_and_spaces_and_knows_every_language(site: Site) -> None:
    m = ical.SpaceMatcher(site)
    assert m.match("  neuvotteluhuone   AALTO ") == ["room-a"]
    assert m.match("Mötesrum Bastu") == ["room-b"]
    assert m.match("HALL") == ["hall"]
    assert m.match("Event hall; Aalto room") == ["hall", "room-a"]
    assert m.match("Aalto room; Mars") == []
    assert m.match("") == []


def test_an_event_outside_the_window_is_a_counted_skip(site: Site) -> None:
    r = ical.parse(read("floating.ics"), site, source="f", start=local(2026, 12, 1), end=local(2027, 1, 1))
    assert (r.bookings, dict(r.skipped)) == ((), {"outside_window": 1})


BROKEN: list[tuple[str, bytes, str]] = [
    ("truncated", read("google.ics")[:1500], "truncated"),
    (
        "cut mid-event",
        read("google.ics").replace(
            b"END:VEVENT\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE", b"BEGIN:VEVENT\r\nDTSTART;VALUE=DATE"
        ),
        "not valid iCalendar",
    ),
    ("binary", bytes(range(256)) * 4, "binary"),
    ("latin-1", read("week.ics").decode("utf-8").encode("latin-1", "replace"), "not UTF-8"),
    (
        "no VCALENDAR",
        b"BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20261110T080000Z\r\nEND:VEVENT\r\n",
        "does not begin with BEGIN:VCALENDAR",
    ),
    ("HTML", b"<!doctype html><html><body>Sign in</body></html>", "does not begin with BEGIN:VCALENDAR"),
    ("empty", b"", "does not begin"),
    ("junk line", b"BEGIN:VCALENDAR\r\nthis is no content line\r\nEND:VCALENDAR\r\n", "not valid iCalendar"),
]


@pytest.mark.parametrize(("data", "message"), [(d, m) for _, d, m in BROKEN], ids=[n for n, _, _ in BROKEN])
def test_a_broken_file_is_one_clear_error_and_writes_nothing(
    site: Site, tmp_path: Path, data: bytes, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(CalendarError, match=message):
        ical.parse(data, site, source="x", start=NOV[0], end=NOV[1])
    # Through the command line: exit 2, one line, and the bookings already there stay untouched.
    db = BookingDb.in_dir(tmp_path)
    db.replace(ical.parse(read("floating.ics"), site, source="file:bad.ics", start=NOV[0], end=NOV[1]))
    bad = tmp_path / "bad.ics"
    bad.write_bytes(data)
    site_file = tmp_path / "site.toml"
    site_file.write_text(_toml(SITE_DOC))
    args = ["bookings", "import", str(bad), "--site", str(site_file), "--data-dir", str(tmp_path)]
    args += ["--from", "2026-11-01", "--to", "2026-12-01"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert [b.uid for b in db.query(*NOV)] == ["rb-20261110-1"]


def _toml(doc: dict[str, Any]) -> str:
    """The test site as a site file (a tiny TOML writer for this document's shapes)."""

    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, str):
            return f'"{v}"'
        return str(v)

    out = ["[site]", *(f"{k} = {value(v)}" for k, v in doc["site"].items())]
    for table in ("zones", "spaces", "sensors"):
        for item in doc[table]:
            out += ["", f"[[{table}]]", *(f"{k} = {value(v)}" for k, v in item.items())]
    return "\n".join(out) + "\n"


def test_a_bad_window_or_space_is_a_booking_error(site: Site) -> None:
    with pytest.raises(BookingError, match="unknown space"):
        ical.parse(read("floating.ics"), site, source="f", space="room-zz")
    with pytest.raises(BookingError, match="after its start"):
        ical.parse(read("floating.ics"), site, source="f", start=NOV[1], end=NOV[0])
    with pytest.raises(BookingError, match="at most"):
        ical.parse(read("floating.ics"), site, source="f", start=local(2000, 1, 1), end=local(2030, 1, 1))


# -------------------------------------------------------------------------------- the database


def test_an_import_replaces_its_own_source_in_the_window_only(site: Site, tmp_path: Path) -> None:
    db = BookingDb.in_dir(tmp_path)
    first = db.replace(ical.parse(read("google.ics"), site, source="g", start=NOV[0], end=NOV[1], now=NOV[0]))
    assert (len(first.bookings), first.replaced) == (5, 0)
    db.add(Booking("api-1", "room-b", local(2026, 11, 20, 9), local(2026, 11, 20, 10), "api"))
    # The same feed again, over the second half of the month only: the first half stays.
    again = db.replace(
        ical.parse(read("google.ics"), site, source="g", start=local(2026, 11, 12), end=NOV[1], now=NOV[0])
    )
    assert (len(again.bookings), again.replaced) == (3, 3)
    assert len(db.query(*NOV)) == 6  # 5 from the feed, 1 from the API
    # Another source booking the same room at the same time: the booking already there stays.
    clash = Booking("other-1", "room-a", local(2026, 11, 10, 10, 30), local(2026, 11, 10, 11), "other")
    from tila.bookings.model import ImportResult

    out = db.replace(ImportResult("other", (clash,), start=NOV[0], end=NOV[1]))
    assert (out.bookings, dict(out.skipped)) == ((), {"overlap": 1})
    with pytest.raises(ConflictError, match="booked already"):
        db.add(Booking("api-2", "room-a", local(2026, 11, 10, 10), local(2026, 11, 10, 10, 15), "api"))
    with pytest.raises(ConflictError, match="exists"):
        db.add(Booking("api-1", "room-a", local(2026, 11, 27, 9), local(2026, 11, 27, 10), "api"))
    assert db.delete("api-1") is not None and db.delete("api-1") is None
    assert [b.space for b in db.query(*NOV, spaces=["hall"])] == ["hall", "hall"]


def test_bookings_refuse_naive_times_empty_windows_and_bad_ids() -> None:
    t = datetime(2026, 11, 10, 9)
    with pytest.raises(BookingError):
        Booking("a", "room-a", t, t + timedelta(hours=1), "api")
    with pytest.raises(BookingError):
        Booking("a", "room-a", t.replace(tzinfo=UTC), t.replace(tzinfo=UTC), "api")
    with pytest.raises(BookingError):
        Booking("a b", "room-a", t.replace(tzinfo=UTC), (t + timedelta(hours=1)).replace(tzinfo=UTC), "api")


# --------------------------------------------------------------------------------- feeds by URL


class _Feed(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes, float]] = {}

    def do_GET(self) -> None:
        status, body, delay = self.routes.get(self.path, (404, b"not found", 0.0))
        if delay:
            time.sleep(delay)
        self.send_response(status)
        self.send_header("Content-Type", "text/calendar; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def feed() -> Iterator[str]:
    _Feed.routes = {
        "/private-abc/basic.ics": (200, read("google.ics"), 0.0),
        "/broken.ics": (200, read("google.ics")[:900], 0.0),
        "/gone.ics": (410, b"gone", 0.0),
        "/slow.ics": (200, read("google.ics"), 3.0),
    }
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_feed_url_is_fetched_and_named_without_its_secret_path(site: Site, feed: str) -> None:
    url = f"{feed}/private-abc/basic.ics"
    r = ical.import_source(url, site, start=NOV[0], end=NOV[1], now=NOV[0])
    assert len(r.bookings) == 5
    assert r.source.startswith("feed:127.0.0.1#") and "private" not in r.source
    assert load(url, site, *NOV).bookings == r.bookings


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/gone.ics", "HTTP 410"),
        ("/missing.ics", "HTTP 404"),
        ("/broken.ics", "truncated"),
        ("/slow.ics", "no answer within 0.5 s"),
    ],
)
def test_feed_failures_are_one_line_errors(site: Site, feed: str, path: str, message: str) -> None:
    with pytest.raises(CalendarError, match=message) as info:
        ical.import_source(feed + path, site, start=NOV[0], end=NOV[1], timeout=0.5)
    assert "\n" not in str(info.value) and path not in str(info.value)  # the path may be a secret


def test_unreachable_and_oversized_feeds(site: Site, feed: str) -> None:
    from conftest import free_port

    with pytest.raises(CalendarError, match="cannot connect"):
        ical.fetch(f"http://127.0.0.1:{free_port()}/x.ics", timeout=2)
    with pytest.raises(CalendarError, match="larger than"):
        ical.fetch(f"{feed}/private-abc/basic.ics", max_bytes=1024 * 1024 // 2 // 1024)
    with pytest.raises(CalendarError, match="http://, https:// or webcal://"):
        ical.fetch("ftp://example.org/x.ics")


# ------------------------------------------------------------------------- load (for the report)


def test_load_reads_ics_files_and_bookings_databases(site: Site, tmp_path: Path) -> None:
    from_file = load(str(FIXTURES / "google.ics"), site, *NOV)
    assert len(from_file.bookings) == 5 and from_file.skipped["unknown_space"] == 1
    db = BookingDb.in_dir(tmp_path)
    db.replace(from_file)
    from_db = load(str(tmp_path / "bookings.db"), site, local(2026, 11, 11), NOV[1])
    assert [b.uid for b in from_db.bookings] == [
        b.uid for b in from_file.bookings if b.start >= local(2026, 11, 11)
    ]
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)")
    with pytest.raises(BookingError, match="not a bookings database"):
        load(str(other), site, *NOV)
    with pytest.raises(BookingError, match="cannot read"):
        load(str(tmp_path / "missing.ics"), site, *NOV)


# ------------------------------------------------------------------------------ command line


def test_the_command_line_import_prints_the_summary(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site_file = tmp_path / "site.toml"
    site_file.write_text(_toml(SITE_DOC))
    args = ["bookings", "import", str(FIXTURES / "outlook_room.ics"), "--site", str(site_file)]
    args += ["--data-dir", str(tmp_path / "data"), "--space", "room-a", "--from", "2026-10-01"]
    args += ["--to", "2026-12-01T00:00:00+02:00"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "source file:outlook_room.ics" in out
    assert "imported 3 bookings (replacing 0)" in out
    assert "cancelled: 1" in out
    assert main(args) == 0
    assert "imported 3 bookings (replacing 3)" in capsys.readouterr().out
    assert main([*args[:-6], "--space", "room-zz"]) == 2
    assert "unknown space 'room-zz'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main([*args[:-2], "--to", "2026-12-01T00:00"])
    assert stop.value.code == 2
    assert "has no UTC offset" in capsys.readouterr().err


# ------------------------------------------------------------------- availability and live rule


def test_availability_now(site: Site) -> None:
    now = local(2026, 11, 10, 9, 30)  # a Tuesday, open 08–18
    bookings = [
        Booking("a1", "room-a", local(2026, 11, 10, 9), local(2026, 11, 10, 10), "api"),
        Booking("a2", "room-a", local(2026, 11, 10, 10), local(2026, 11, 10, 11), "api"),
        Booking("b1", "room-b", local(2026, 11, 10, 13), local(2026, 11, 10, 14), "api"),
    ]
    states = {"room-a": "occupied", "room-b": "free", "hall": "unknown"}
    got = {a.space: a for a in availability(site, ["room-a", "room-b", "hall"], states, bookings, now)}
    a, b, hall = got["room-a"], got["room-b"], got["hall"]
    assert (a.booked_now, a.free_now, a.booked_until, a.free_until) == (
        True,
        False,
        local(2026, 11, 10, 11),
        None,
    )
    assert (b.booked_now, b.free_now, b.free_until, b.next_booking) == (
        False,
        True,
        local(2026, 11, 10, 13),
        local(2026, 11, 10, 13),
    )
    assert (hall.free_now, hall.free_until) == (False, None)  # unknown is never shown as free
    late = availability(site, ["room-b"], {"room-b": "free"}, [], local(2026, 11, 10, 16))[0]
    assert late.free_until == local(2026, 11, 10, 18)  # closing time
    sunday = availability(site, ["room-b"], {"room-b": "free"}, [], local(2026, 11, 15, 12))[0]
    assert (sunday.open_now, sunday.free_now) == (False, False)


def test_the_live_rule() -> None:
    start = 1000.0
    assert decide([(0, "free"), (1200, "occupied")], start, 1900) == "used"
    assert decide([(0, "occupied")], start, 1900) == "used"  # somebody was in already at the start
    assert decide([(0, "free")], start, 1900) == "no_show"
    assert decide([(0, "free"), (2000, "occupied")], start, 1900) == "no_show"  # came after the grace
    assert decide([(0, "free")], start, 1900, offline=True) == "unknown"
    assert decide([(0, "free"), (1100, "unknown"), (1200, "free")], start, 1900) == "unknown"
    assert decide([(1100, "free")], start, 1900) == "unknown"  # nothing known at the start
    assert decide([], start, 1900) == "unknown"


def test_dates_for_all_day_events_follow_the_sites_own_calendar(tmp_path: Path) -> None:
    doc = {**SITE_DOC, "site": {**SITE_DOC["site"], "closed_dates": ["2026-11-11"]}}
    closed = parse_site(doc, "<closed>")
    r = ical.parse(read("google.ics"), closed, source="g", start=NOV[0], end=NOV[1], now=NOV[0])
    assert r.skipped["closed_day"] == 3
    assert all(b.start.date() != date(2026, 11, 11) for b in r.bookings)


def test_odd_rules_and_broken_properties_are_counted_skips(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    r = ical.parse(
        read("odd_rules.ics"), site, source="o", start=local(2026, 10, 1), end=NOV[0], now=local(2026, 10, 1)
    )
    # every minute (no room booking), a rule that does not parse, an EXDATE that does not
    assert r.skipped["bad_series"] == 3
    # a DTEND or DURATION that does not parse, a date start with a time end, a timed event without an end
    assert r.skipped["bad_end"] == 4
    got = {b.uid: (b.start, b.end) for b in r.bookings}
    assert got == {
        # a TZID no VTIMEZONE or zone database knows: taken as floating, the site's local time
        "unknown-zone": (local(2026, 10, 21, 15), local(2026, 10, 21, 16)),
        "duration": (local(2026, 10, 21, 20), local(2026, 10, 21, 20, 30)),
    }


# ------------------------------------------------------------------------------ the live monitor


async def _watch(
    site: Site, db: BookingDb, emit: Any, until: Any, grace: timedelta = timedelta(seconds=0.3)
) -> NoShowMonitor:
    """A monitor over a LiveState that has seen room-a free for an hour, until ``until(monitor)``."""
    live = LiveState(site)
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    live.deliver(
        f"tila/v1/{site.id}/spaces/room-a/state",
        json.dumps({"state": "free", "count": 0, "since": since}).encode(),
    )
    monitor = NoShowMonitor(site, live, db, grace, emit, refresh=0.2)
    monitor.start()
    try:
        deadline = time.monotonic() + 15
        while not until(monitor) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await monitor.stop()
    return monitor


def test_a_no_show_whose_announcement_failed_is_announced_at_the_next_look(
    site: Site, tmp_path: Path
) -> None:
    db = BookingDb.in_dir(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    db.add(Booking("bk-x", "room-a", now - timedelta(minutes=1), now + timedelta(hours=1), "api"))
    calls: list[str] = []

    def emit(event: str, data: dict[str, Any]) -> None:
        calls.append(data["uid"])
        if len(calls) == 1:  # the webhook queue failed for a moment
            raise sqlite3.OperationalError("database is locked")

    asyncio.run(_watch(site, db, emit, lambda m: len(calls) >= 2 and m.decisions.total() >= 1))
    assert calls == ["bk-x", "bk-x"]
    found = db.detected(now - timedelta(hours=1), now + timedelta(hours=1))
    assert found["bk-x"].outcome == "no_show"


def test_a_booking_moved_by_a_new_import_is_decided_again_at_its_new_time(site: Site, tmp_path: Path) -> None:
    db = BookingDb.in_dir(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    lo, hi = now - timedelta(days=1), now + timedelta(days=1)
    before = Booking("ev-1", "room-a", now - timedelta(hours=3), now - timedelta(hours=2), "file:a.ics")
    db.replace(ImportResult("file:a.ics", (before,), start=lo, end=hi))
    db.record(Detected("ev-1", "room-a", before.start, before.end, "used", before.start, 900.0))
    assert db.decided(["ev-1"]) == {"ev-1"}
    # the meeting was moved to now: same UID, new times
    moved = Booking("ev-1", "room-a", now - timedelta(minutes=1), now + timedelta(hours=1), "file:a.ics")
    db.replace(ImportResult("file:a.ics", (moved,), start=lo, end=hi))
    assert db.decided(["ev-1"]) == set(), "what was decided for the old time is not this booking's"
    # and an import that changes nothing keeps what was decided
    db.record(Detected("ev-1", "room-a", moved.start, moved.end, "used", moved.start, 900.0))
    db.replace(ImportResult("file:a.ics", (moved,), start=lo, end=hi))
    assert db.decided(["ev-1"]) == {"ev-1"}
    db.delete("ev-1")
    db.replace(ImportResult("file:a.ics", (moved,), start=lo, end=hi))
    # the monitor decides it at its new time
    sent: list[dict[str, Any]] = []
    monitor = asyncio.run(_watch(site, db, lambda e, d: sent.append(d), lambda m: sent))
    assert [d["start"] for d in sent] == [moved.start.isoformat()]
    assert db.detected(lo, hi)["ev-1"].start == moved.start
    assert monitor.decisions == {"no_show": 1}


def test_the_monitor_forgets_a_decision_when_the_booking_moves(site: Site, tmp_path: Path) -> None:
    db = BookingDb.in_dir(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    lo, hi = now - timedelta(days=1), now + timedelta(days=1)
    first = Booking("ev-2", "room-a", now - timedelta(minutes=2), now + timedelta(hours=1), "file:b.ics")
    db.replace(ImportResult("file:b.ics", (first,), start=lo, end=hi))
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        live = LiveState(site)
        since = (now - timedelta(hours=1)).isoformat()
        live.deliver(
            f"tila/v1/{site.id}/spaces/room-a/state",
            json.dumps({"state": "free", "count": 0, "since": since}).encode(),
        )
        monitor = NoShowMonitor(
            site, live, db, timedelta(seconds=0.3), lambda e, d: sent.append(d), refresh=0.2
        )
        monitor.start()
        try:
            await _until(lambda: len(sent) == 1)
            # moved a minute later, while the monitor runs: decided again for its new time
            later = Booking("ev-2", "room-a", now - timedelta(minutes=1), first.end, "file:b.ics")
            await asyncio.to_thread(db.replace, ImportResult("file:b.ics", (later,), start=lo, end=hi))
            monitor.poke()
            await _until(lambda: len(sent) == 2)
        finally:
            await monitor.stop()

    asyncio.run(run())
    assert [d["start"] for d in sent] == [
        first.start.isoformat(),
        (now - timedelta(minutes=1)).isoformat(),
    ]


async def _until(cond: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def dribbler() -> SlowHttp:
    """A feed that sends its calendar a line every 0.2 s for a minute."""
    return SlowHttp(CALENDAR_HEAD, "X-LINE-{n}:x\r\n", "/rooms/slow.ics")


def test_a_feed_dribbling_its_calendar_out_is_cut_off_at_the_timeout(site: Site) -> None:
    slow = dribbler()
    try:
        with pytest.raises(CalendarError, match="no answer within 1 s") as info:
            ical.fetch(slow.url, timeout=1.0)
        assert "slow.ics" not in str(info.value)
    finally:
        slow.close()


def test_a_booking_running_when_the_api_starts_waits_for_the_retained_states(
    site: Site, tmp_path: Path
) -> None:
    """After a restart the broker's retained states arrive a moment after the monitor's first look:
    a booking begun before is judged from them, not decided ``unknown`` before they are in."""
    db = BookingDb.in_dir(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    db.add(Booking("bk-r", "room-a", now - timedelta(minutes=30), now + timedelta(hours=1), "api"))
    sent: list[dict[str, Any]] = []

    async def run() -> NoShowMonitor:
        live = LiveState(site)
        monitor = NoShowMonitor(
            site, live, db, timedelta(minutes=15), lambda e, d: sent.append(d), refresh=0.2
        )
        monitor.start()
        try:
            await asyncio.sleep(0.5)  # the broker's retained states come in
            since = (now - timedelta(hours=1)).isoformat()
            live.deliver(
                f"tila/v1/{site.id}/spaces/room-a/state",
                json.dumps({"state": "free", "count": 0, "since": since}).encode(),
            )
            await _until(lambda: monitor.decisions.total() == 1)
        finally:
            await monitor.stop()
        return monitor

    monitor = asyncio.run(run())
    assert monitor.decisions == {"no_show": 1}
    assert [d["uid"] for d in sent] == ["bk-r"]


def test_the_days_of_a_multi_day_all_day_event_inside_the_window_are_imported(site: Site) -> None:
    """An import replaces its source's bookings starting in the window: the days of a Monday-to-
    Friday event that lie in a window beginning on Tuesday must be imported again, not lost."""
    cal = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tila tests//EN\r\nBEGIN:VEVENT\r\nUID:course-1\r\n"
        b"DTSTART;VALUE=DATE:20261109\r\nDTEND;VALUE=DATE:20261114\r\nLOCATION:room-a\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    r = ical.parse(cal, site, source="file:x", start=local(2026, 11, 10), end=local(2026, 12, 1), now=NOV[0])
    assert [b.uid for b in r.bookings] == [f"course-1/202611{d}" for d in (10, 11, 12, 13)]
    assert r.bookings[0].start == local(2026, 11, 10, 8) and not r.skipped
    r = ical.parse(cal, site, source="file:x", start=local(2026, 11, 1), end=local(2026, 11, 11), now=NOV[0])
    assert [b.uid for b in r.bookings] == ["course-1/20261109", "course-1/20261110"]
    r = ical.parse(cal, site, source="file:x", start=local(2026, 11, 16), end=local(2026, 12, 1), now=NOV[0])
    assert r.bookings == () and r.skipped == {"outside_window": 1}


def test_free_until_runs_past_midnight_when_the_site_stays_open(site: Site) -> None:
    doc = {**SITE_DOC, "site": {**SITE_DOC["site"], "opening_hours": {d: "00:00-24:00" for d in DAYS}}}
    always = parse_site(doc, "<always open>")
    now = local(2026, 11, 10, 23, 30)
    later = [Booking("n1", "room-b", local(2026, 11, 11, 7), local(2026, 11, 11, 8), "api")]
    (b,) = availability(always, ["room-b"], {"room-b": "free"}, later, now)
    assert (b.free_now, b.free_until) == (True, local(2026, 11, 11, 7))
    (b,) = availability(always, ["room-b"], {"room-b": "free"}, [], now)
    assert b.free_until == now + timedelta(days=1)  # open all the day ahead looked at
