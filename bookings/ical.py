"""Bookings from iCalendar (RFC 5545): a room's exported calendar, or a feed URL, expanded over a window.

Reading: the ``icalendar`` package parses the file (time zones from VTIMEZONE, Windows zone names such
as Outlook's ``FLE Standard Time`` included) and ``recurring_ical_events`` expands every series
(RRULE, RDATE, EXDATE, and occurrences moved or cancelled through RECURRENCE-ID) over the window.

Mapping events to spaces: with ``space`` given, every event is that space's (Outlook and Google
export one calendar per room resource). Otherwise LOCATION is matched against the site's space ids
and names in every language, ignoring case and surrounding or repeated spaces; a LOCATION naming
several rooms separated by ``;`` (as Outlook joins them) books each of them, if all are known.

Times: TZID with its VTIMEZONE, UTC (``Z``), and floating times, which are the site's local time (or
the calendar's ``X-WR-TIMEZONE``, as Google writes it). An all-day event (DATE values) books the
space for that day's opening hours (first opening to last closing, holidays and extra closures
included); one spanning several days books each open day separately, and a day the site is closed is
a counted skip (``closed_day``).

Bad input: a file that is not UTF-8 iCalendar text, is truncated or has no VCALENDAR raises
:class:`CalendarError` (one line; nothing is written). Problems of single events are counted skips by
reason (:data:`tila.bookings.model.SKIP_REASONS`), never silent. Overlapping bookings of one space:
the later one (by start) is rejected as an ``overlap`` skip.
"""

from __future__ import annotations

import hashlib
import logging
import re
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import monotonic
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from ..sensors.site import Site
from .model import MAX_LENGTH, Booking, BookingError, CalendarError, ImportResult, resolve_overlaps

log = logging.getLogger(__name__)

#: Largest calendar read (file or feed): a busy room's calendar over several years is well under
#: 1 MB (an Outlook VEVENT is about 1–2 KB); 20 MB only stops a runaway download.
MAX_BYTES = 20 * 1024 * 1024
#: Seconds to wait on a feed: for the connection and the answer's headers, and for the whole body.
FEED_TIMEOUT = 20.0
#: Bytes read at a time from a feed.
_CHUNK = 64 * 1024
#: Events starting more than this many years after now are taken as typing mistakes (2062 for 2026).
MAX_YEARS_AHEAD = 2
#: The default window: a year back (no-show history for reports) and a year ahead.
DEFAULT_BACK = timedelta(days=366)
DEFAULT_AHEAD = timedelta(days=366)
#: The longest window a calendar is expanded over: the Lab's whole trial (2019–2023) fits.
MAX_WINDOW = timedelta(days=3660)
#: At most this many bookings from one import (a daily series over ten years is 3,660).
MAX_BOOKINGS = 200_000
#: All-day events longer than this are not bookings of a room but marks such as holidays.
MAX_ALL_DAY = 31
_ATTENDEE_PEOPLE = ("INDIVIDUAL", "GROUP", "UNKNOWN")
_UID_OK = re.compile(r"^[\x21-\x7e]{1,200}$")


# ------------------------------------------------------------------------------------- sources


def is_url(source: str) -> bool:
    return urlsplit(source).scheme.lower() in ("http", "https", "webcal")


def shown_url(url: str) -> str:
    """A feed URL for messages and names: scheme and host only (private feed paths are secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if _port(parts) else ""
    return f"{parts.scheme}://{host}{port}/…"


def _port(parts: Any) -> int | None:
    try:
        return parts.port  # type: ignore[no-any-return]
    except ValueError:
        return None


def source_name(source: str) -> str:
    """The default ``source`` of bookings read from ``source``: ``file:NAME`` or ``feed:HOST#HASH``
    (the hash tells feeds of one host apart without keeping their secret paths)."""
    if is_url(source):
        digest = hashlib.sha256(source.encode("utf-8", "surrogateescape")).hexdigest()[:10]
        return f"feed:{urlsplit(source).hostname or '?'}#{digest}"[:120]
    return f"file:{Path(source).name}"[:120]


def fetch(url: str, timeout: float = FEED_TIMEOUT, max_bytes: int = MAX_BYTES) -> bytes:
    """GET a feed (``webcal://`` is fetched as ``https://``); :class:`CalendarError` on any failure."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "webcal":
        url = "https" + url[len(parts.scheme) :]
    elif scheme not in ("http", "https"):
        raise CalendarError(f"feed URL must be http://, https:// or webcal://, not {scheme or 'none'}")
    if not parts.hostname:
        raise CalendarError("feed URL has no host")
    shown = shown_url(url)
    request = urllib.request.Request(
        url, headers={"Accept": "text/calendar, */*;q=0.5", "User-Agent": "tila-bookings"}
    )
    # The socket timeout bounds each read only: a feed dribbling its calendar out would hold the
    # import (and an API worker) for as long as it likes. The body gets ``timeout`` as a whole.
    deadline = monotonic() + timeout
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            chunks: list[bytes] = []
            size = 0
            while size <= max_bytes:
                chunk = answer.read1(min(_CHUNK, max_bytes + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if monotonic() > deadline:
                    raise TimeoutError
            data = b"".join(chunks)
    except urllib.error.HTTPError as exc:
        raise CalendarError(f"feed {shown}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            raise CalendarError(f"feed {shown}: no answer within {timeout:g} s") from None
        raise CalendarError(f"feed {shown}: cannot connect ({reason})") from None
    except TimeoutError:
        raise CalendarError(f"feed {shown}: no answer within {timeout:g} s") from None
    except (OSError, ValueError) as exc:  # a reset connection, an unreadable answer, a bad port
        raise CalendarError(f"feed {shown}: {type(exc).__name__}: {str(exc)[:80]}") from None
    if len(data) > max_bytes:
        raise CalendarError(f"feed {shown}: larger than {max_bytes // (1024 * 1024)} MB")
    return data


def read_file(path: str | Path, max_bytes: int = MAX_BYTES) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise CalendarError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise CalendarError(f"{path}: larger than {max_bytes // (1024 * 1024)} MB")
    return data


def default_window(site: Site, now: datetime | None = None) -> tuple[datetime, datetime]:
    """A year back and a year ahead of today, from local midnight."""
    now = now or datetime.now(UTC)
    today = now.astimezone(site.tz).date()
    midnight = datetime.combine(today, time(), tzinfo=site.tz)
    return midnight - DEFAULT_BACK, midnight + DEFAULT_AHEAD


def check_window(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise BookingError("the window needs times with a UTC offset")
    if end <= start:
        raise BookingError("the window's end must be after its start")
    if end - start > MAX_WINDOW:
        raise BookingError(f"the window covers at most {MAX_WINDOW.days} days")


def import_source(
    source: str,
    site: Site,
    *,
    space: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    name: str | None = None,
    now: datetime | None = None,
    timeout: float = FEED_TIMEOUT,
) -> ImportResult:
    """Read an .ics file or a feed URL and parse it (nothing is written)."""
    data = fetch(source, timeout) if is_url(source) else read_file(source)
    where = shown_url(source) if is_url(source) else source
    try:
        return parse(
            data, site, source=name or source_name(source), space=space, start=start, end=end, now=now
        )
    except CalendarError as exc:
        raise CalendarError(f"{where}: {exc}") from None


# -------------------------------------------------------------------------------------- spaces


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


class SpaceMatcher:
    """LOCATION → space ids, through ids and names in every language (ambiguous names match none)."""

    def __init__(self, site: Site) -> None:
        index: dict[str, set[str]] = {}
        for s in site.spaces:
            for key in (s.id, *s.name.values()):
                index.setdefault(_norm(key), set()).add(s.id)
        self._index = {k: next(iter(v)) for k, v in index.items() if len(v) == 1}

    def match(self, location: str) -> list[str]:
        """The spaces a LOCATION names: one, several (``A; B``), or none if any part is unknown."""
        whole = self._index.get(_norm(location))
        if whole is not None:
            return [whole]
        parts = [_norm(p) for p in location.split(";") if p.strip()]
        found = [self._index.get(p) for p in parts]
        if len(parts) < 2 or any(f is None for f in found):
            return []
        return list(dict.fromkeys(f for f in found if f is not None))


# --------------------------------------------------------------------------------------- parse


def decode(data: bytes) -> Any:
    """Bytes → an icalendar Calendar, or :class:`CalendarError` saying in one line why not."""
    if b"\x00" in data:
        raise CalendarError("not iCalendar text (binary data)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CalendarError("not UTF-8 text (iCalendar files are UTF-8)") from None
    stripped = text.strip()
    if not stripped.upper().startswith("BEGIN:VCALENDAR"):
        raise CalendarError("not an iCalendar file (it does not begin with BEGIN:VCALENDAR)")
    if not stripped.upper().endswith("END:VCALENDAR"):
        raise CalendarError("truncated iCalendar file (it does not end with END:VCALENDAR)")
    try:
        cal = icalendar.Calendar.from_ical(text)
    except Exception as exc:  # icalendar raises ValueError, and others on odd input
        # Only the message's first clause: the rest quotes the file, which may hold personal data.
        reason = str(exc).split(":", 1)[0].strip()[:80] or type(exc).__name__
        raise CalendarError(f"not valid iCalendar ({reason})") from None
    if getattr(cal, "name", None) != "VCALENDAR":
        raise CalendarError("not an iCalendar file (no VCALENDAR)")
    return cal


def parse(
    data: bytes,
    site: Site,
    *,
    source: str,
    space: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
    max_years: int = MAX_YEARS_AHEAD,
) -> ImportResult:
    """iCalendar bytes → the bookings whose start lies in [start, end) (default: :func:`default_window`).

    Raises :class:`CalendarError` for a file that cannot be read at all and :class:`BookingError` for
    an unknown ``space`` or a bad window; everything else is a counted skip.
    """
    now = now or datetime.now(UTC)
    if start is None or end is None:
        d_start, d_end = default_window(site, now)
        start, end = start or d_start, end or d_end
    check_window(start, end)
    if space is not None and site.space(space) is None:
        raise BookingError(f"unknown space {space[:64]!r}")
    cal = decode(data)
    parser = _Parser(site, source, space, start, end, now, max_years, cal)
    for key, comps in _series(cal).items():
        parser.series(key, comps)
    kept, rejected = resolve_overlaps(parser.bookings)
    if rejected:
        parser.skipped["overlap"] += rejected
    return ImportResult(source, tuple(kept), parser.skipped, start, end)


def _series(cal: Any) -> dict[str, list[Any]]:
    """VEVENTs grouped by UID: a series' master with its moved occurrences."""
    out: dict[str, list[Any]] = {}
    for ev in cal.walk("VEVENT"):
        uid = str(ev.get("UID", "")).strip()
        if not uid:
            # RFC 5545 requires a UID; without one, a stable key from the event's own times and place.
            raw = "|".join(str(ev.get(k, "")) for k in ("DTSTART", "DTEND", "DURATION", "LOCATION"))
            uid = "nouid-" + hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()[:24]
        out.setdefault(uid, []).append(ev)
    return out


def _clean_uid(uid: str) -> str:
    if _UID_OK.match(uid):
        return uid
    # Spaces, non-ASCII or an over-long UID: a digest keeps it stable and fit for a URL.
    return "h-" + hashlib.sha256(uid.encode("utf-8", "surrogateescape")).hexdigest()[:40]


def attendees(ev: Any) -> int | None:
    """People invited and not declining (rooms and resources left out); None when none are listed."""
    raw = ev.get("ATTENDEE")
    if raw is None:
        return None
    items = raw if isinstance(raw, list) else [raw]
    n = 0
    for a in items:
        params = getattr(a, "params", {})
        cutype = str(params.get("CUTYPE", "INDIVIDUAL")).upper()
        partstat = str(params.get("PARTSTAT", "")).upper()
        if cutype in _ATTENDEE_PEOPLE and partstat != "DECLINED":
            n += 1
    return n or None


class _Parser:
    def __init__(
        self,
        site: Site,
        source: str,
        space: str | None,
        start: datetime,
        end: datetime,
        now: datetime,
        max_years: int,
        cal: Any,
    ) -> None:
        self.site, self.source, self.space = site, source, space
        self.start, self.end, self.now = start, end, now
        self.limit = now + timedelta(days=366 * max_years)
        self.tz = site.tz
        self.matcher = SpaceMatcher(site)
        self.timezones = list(cal.walk("VTIMEZONE"))
        self.x_wr = cal.get("X-WR-TIMEZONE")
        # Floating times are the calendar's X-WR-TIMEZONE if it names a zone, else the site's.
        if self.x_wr is not None:
            try:
                self.tz = ZoneInfo(str(self.x_wr).strip())
            except (ValueError, KeyError, OSError):
                pass
        self.bookings: list[Booking] = []
        self.uids: set[str] = set()
        self.skipped: Counter[str] = Counter()

    def series(self, uid: str, comps: list[Any]) -> None:
        good = []
        for ev in comps:
            try:
                ev_start = ev.decoded("DTSTART")
            except Exception:  # missing (KeyError) or broken (BrokenCalendarProperty)
                self.skipped["no_start"] += 1
                continue
            if not isinstance(ev_start, date):
                self.skipped["no_start"] += 1
                continue
            try:
                # icalendar's own checks: DTEND or DURATION readable, DTEND of DTSTART's kind.
                ev.start, ev.end  # noqa: B018
            except Exception:
                self.skipped["bad_end"] += 1
                continue
            if "DTEND" in ev and not self._ends_after(ev, ev_start):
                # Checked here: the expansion would quietly swap a DTEND that precedes DTSTART.
                self.skipped["bad_end"] += 1
                continue
            good.append(ev)
        if not good:
            return
        recurring = any(k in ev for ev in good for k in ("RRULE", "RDATE", "RECURRENCE-ID"))
        if any(_too_frequent(ev) for ev in good):
            # Hourly or more often is no room booking, and over a long window would expand into
            # hundreds of thousands of occurrences before any limit could be applied. A rule that
            # does not parse cannot be expanded either.
            self.skipped["bad_series"] += 1
            return
        if not recurring and len(good) > 1:
            self.skipped["duplicate"] += len(good) - 1
            good = good[:1]
        cal = icalendar.Calendar()
        if self.x_wr is not None:
            cal.add("X-WR-TIMEZONE", self.x_wr)
        for tz in self.timezones:
            cal.add_component(tz)
        for ev in good:
            cal.add_component(ev)
        # A day's margin each side: floating and all-day times are placed in local time below.
        lo, hi = self.start - timedelta(days=1), self.end + timedelta(days=1)
        try:
            occurrences = list(recurring_ical_events.of(cal).between(lo, hi))
        except Exception as exc:  # a broken RRULE, EXDATE or DTEND: the whole series is unusable
            log.warning("calendar series %s cannot be expanded (%s): skipped", uid[:64], type(exc).__name__)
            self.skipped["bad_series"] += 1
            return
        found = 0
        for occ in occurrences:
            found += self.occurrence(uid, occ, recurring)
        if not recurring and not found and not occurrences:
            ev_start = self._aware(good[0].start)
            self.skipped["too_far" if ev_start > self.limit else "outside_window"] += 1

    def _ends_after(self, ev: Any, start: date) -> bool:
        try:
            end = ev.decoded("DTEND")
        except Exception:  # a broken DTEND
            return False
        if not isinstance(end, date) or isinstance(end, datetime) != isinstance(start, datetime):
            return False
        if isinstance(end, datetime):
            return self._aware(end) > self._aware(start)
        return end > start

    def _aware(self, value: date) -> datetime:
        if isinstance(value, datetime):
            return value if value.tzinfo is not None else value.replace(tzinfo=self.tz)
        return datetime.combine(value, time(), tzinfo=self.site.tz)

    def occurrence(self, uid: str, ev: Any, recurring: bool) -> int:
        """Add the bookings of one occurrence; the number it counted (added or skipped)."""
        status = str(ev.get("STATUS", "")).strip().upper()
        if status == "CANCELLED":
            return self._skip("cancelled", ev, recurring)
        if str(ev.get("TRANSP", "")).strip().upper() == "TRANSPARENT":
            return self._skip("free_time", ev, recurring)
        if self.space is not None:
            spaces = [self.space]
        else:
            spaces = self.matcher.match(str(ev.get("LOCATION", "")))
            if not spaces:
                return self._skip("unknown_space", ev, recurring)
        base = _clean_uid(uid)
        if recurring:
            rid = ev.get("RECURRENCE-ID")
            rid_dt = rid.dt if rid is not None else ev.start
            base = f"{base}/{_stamp(rid_dt)}"
        try:
            ev_start, ev_end = ev.start, ev.end
        except Exception:
            return self._skip("bad_end", ev, recurring)
        spans: list[tuple[str, datetime, datetime]] = []
        if not isinstance(ev_start, datetime):
            end_day = ev_end if isinstance(ev_end, date) and not isinstance(ev_end, datetime) else ev_start
            days = max(1, (end_day - ev_start).days)
            if days > MAX_ALL_DAY:
                return self._skip("too_long", ev, recurring)
            if datetime.combine(ev_start, time(), tzinfo=self.site.tz) > self.limit:
                return self._skip("too_far", ev, recurring)
            # Each day is a booking of its own, and this import's if it starts in the window (the
            # bookings starting there are what an import replaces), whichever day the event began.
            closed = 0
            for i in range(days):
                day = ev_start + timedelta(days=i)
                if not self._in_window(datetime.combine(day, time(), tzinfo=self.site.tz)):
                    continue
                hours = self.site.hours_on(day)
                if not hours:
                    closed += 1
                    continue
                a = _local(day, hours[0][0], self.site.tz)
                b = _local(day, hours[-1][1], self.site.tz)
                spans.append((f"{base}/{day:%Y%m%d}" if days > 1 else base, a, b))
            if not spans and not closed:
                return self._outside(ev, recurring)
            if closed:
                self.skipped["closed_day"] += closed
        else:
            a = self._aware(ev_start)
            b = self._aware(ev_end) if isinstance(ev_end, datetime) else a
            if b <= a:
                return self._skip("bad_end", ev, recurring)
            if b - a > MAX_LENGTH:
                return self._skip("too_long", ev, recurring)
            if a > self.limit:
                return self._skip("too_far", ev, recurring)
            if not self._in_window(a):
                return self._outside(ev, recurring)
            spans.append((base, a, b))
        expected = attendees(ev)
        for key, a, b in spans:
            for sid in spaces:
                full = f"{key}@{sid}" if len(spaces) > 1 else key
                if full in self.uids:
                    self.skipped["duplicate"] += 1
                    continue
                if len(self.bookings) >= MAX_BOOKINGS:
                    raise CalendarError(
                        f"more than {MAX_BOOKINGS} bookings in the window; choose a shorter one"
                    )
                self.uids.add(full)
                self.bookings.append(
                    Booking(full, sid, a.astimezone(UTC), b.astimezone(UTC), self.source, expected)
                )
        return 1

    def _in_window(self, t: datetime) -> bool:
        return self.start <= t < self.end

    def _skip(self, reason: str, ev: Any, recurring: bool) -> int:
        # An occurrence of a series outside the window is not this import's business: the margin of
        # the expansion returns a few of those, and they are not counted at all.
        if recurring and not self._near_window(ev):
            return 0
        self.skipped[reason] += 1
        return 1

    def _outside(self, ev: Any, recurring: bool) -> int:
        if recurring:
            return 0
        self.skipped["outside_window"] += 1
        return 1

    def _near_window(self, ev: Any) -> bool:
        try:
            return self._in_window(self._aware(ev.start))
        except Exception:
            return True


def _too_frequent(ev: Any) -> bool:
    """An RRULE repeating hourly or more often, or one that does not parse."""
    rules = ev.get("RRULE")
    try:
        for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
            if any(str(f).upper() in ("SECONDLY", "MINUTELY", "HOURLY") for f in rule.get("FREQ", [])):
                return True
    except Exception:  # icalendar's BrokenCalendarProperty for a rule it could not read
        return True
    return False


def _stamp(value: date) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
            return value.strftime("%Y%m%dT%H%M%SZ")
        return value.strftime("%Y%m%dT%H%M%S")
    return value.strftime("%Y%m%d")


def _local(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    extra, minutes = divmod(minutes, 24 * 60)
    return datetime.combine(day + timedelta(days=extra), time(minutes // 60, minutes % 60), tzinfo=tz)
