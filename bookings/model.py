"""Bookings of the site's rooms: the value every other bookings module passes around.

A booking says only that a space is reserved for a time: which space, when, from which calendar or
feed, and how many people are expected. No personal data is ever kept: not the event's title
(SUMMARY), description, organiser or attendees' names and e-mail addresses — attendees are counted,
nothing more. The iCalendar UID is kept because it is the calendar's own opaque key for the event.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

#: A timed booking longer than this is taken as a mistake in the calendar (a room is not reserved
#: around the clock for days); all-day bookings are split into one booking per day instead.
MAX_LENGTH = timedelta(hours=24)
#: Ids travel in URLs (``DELETE /v1/bookings/{uid}``) and webhook payloads: printable, bounded.
MAX_UID = 255
_UID = re.compile(r"^[\x21-\x7e]{1,255}$")
#: ``source`` names an import or feed: ``api``, ``file:rooms.ics``, ``feed:calendar.example.fi#…``.
MAX_SOURCE = 120


class BookingError(ValueError):
    """Bookings that cannot be read or used; ``str()`` is one line saying what is wrong."""


class CalendarError(BookingError):
    """An iCalendar file or feed that cannot be imported at all (nothing is written)."""


#: Why an event of an import did not become a booking; counted by reason, never dropped silently.
SKIP_REASONS: dict[str, str] = {
    "no_start": "no DTSTART, or one that is not a date or time",
    "cancelled": "STATUS:CANCELLED",
    "free_time": "TRANSP:TRANSPARENT (shown as free time, not a reservation)",
    "unknown_space": "LOCATION names no space of the site",
    "bad_end": "ends at or before it starts",
    "too_long": "a timed event longer than 24 hours",
    "closed_day": "an all-day event on a day the site is closed",
    "too_far": "starts too many years from now",
    "outside_window": "a single event outside the import's window",
    "bad_series": "a recurring series whose rules cannot be expanded, or repeating hourly or more often",
    "duplicate": "the same UID (and occurrence) as another booking",
    "overlap": "overlaps an earlier booking of the same space",
}


def check_uid(uid: str) -> str:
    """A booking id: 1–255 printable ASCII characters without spaces."""
    if not isinstance(uid, str) or not _UID.match(uid):
        raise BookingError("uid must be 1-255 printable ASCII characters without spaces")
    return uid


@dataclass(slots=True, frozen=True)
class Booking:
    """One reservation of one space: [start, end), aware datetimes.

    ``uid`` is stable across imports: the iCalendar UID for a single event, the UID plus the
    occurrence's RECURRENCE-ID (its original start, in UTC) for an occurrence of a series, the UID
    plus the date for each day of an all-day event spanning several days. ``expected`` is a head
    count only (the attendees of the event that are people, not rooms), None when the calendar does
    not say. No title, description, organiser, names or e-mail addresses are kept.
    """

    uid: str
    space: str
    start: datetime
    end: datetime
    source: str
    expected: int | None = None

    def __post_init__(self) -> None:
        check_uid(self.uid)
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise BookingError("start and end need a UTC offset")
        if self.end <= self.start:
            raise BookingError("end must be after start")
        if not self.source or len(self.source) > MAX_SOURCE:
            raise BookingError(f"source must be 1-{MAX_SOURCE} characters")
        if self.expected is not None and (isinstance(self.expected, bool) or self.expected < 0):
            raise BookingError("expected must be a count of at least 0")

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(slots=True, frozen=True)
class ImportResult:
    """What an import produced: the bookings, and the events skipped, counted by reason
    (:data:`SKIP_REASONS`)."""

    source: str
    bookings: tuple[Booking, ...]
    skipped: Counter[str] = field(default_factory=Counter)
    #: The window the calendar was expanded over (recurring series) and replaced in the database.
    start: datetime | None = None
    end: datetime | None = None
    #: The bookings that replaced others of the same source in the database (None: not written).
    replaced: int | None = None

    def summary(self) -> dict[str, object]:
        """For the command line and the API: imported and skipped counts, by reason."""
        return {
            "source": self.source,
            "imported": len(self.bookings),
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(sorted(self.skipped.items())),
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "replaced": self.replaced,
        }


def resolve_overlaps(bookings: list[Booking]) -> tuple[list[Booking], int]:
    """Per space, the bookings in start order with every one that overlaps an earlier kept booking
    left out (the later one loses: a room cannot be held twice). Returns (kept, rejected count)."""
    kept: list[Booking] = []
    last_end: dict[str, datetime] = {}
    rejected = 0
    for b in sorted(bookings, key=lambda b: (b.space, b.start, b.end, b.uid)):
        end = last_end.get(b.space)
        if end is not None and b.start < end:
            rejected += 1
            continue
        kept.append(b)
        last_end[b.space] = b.end
    kept.sort(key=lambda b: (b.start, b.space, b.uid))
    return kept, rejected
