"""Bookings against measured occupancy: used, no-show or unknown; half-empty rooms; unbooked use.

Pure: bookings and the store's 15-minute buckets in (:class:`tila.aggregator.buckets.Bucket`:
occupied, covered and head-count seconds within opening hours, and the peak head count, per space
and slot), a :class:`Comparison` out.

The rules, per booking of [start, end):

- ``used``: some occupied second in the buckets overlapping [start, start + grace): somebody came
  within the grace period.
- ``no_show``: no occupied second there, and the sensors covered at least ``min_coverage`` of the
  open seconds of those buckets: the room was seen, and seen empty.
- ``unknown``: neither: too little sensor coverage to say (a sensor offline, a booking outside
  opening hours, no buckets yet). Missing data is never counted as a no-show.
- occupied seconds, mean head count while occupied and peak head count are those of the buckets
  overlapping [start, end); a used booking is *half-empty* when that mean head count is below
  ``half_empty`` (a half by default) of the space's capacity.

Bucket granularity: a booking is judged on whole 15-minute slots, the ones its window overlaps
(rounded outward to bucket edges). With a grace of 15 minutes and bookings on quarter hours the rule
is exact; otherwise an arrival up to 15 minutes before the booking or after the grace can count, and
occupied time just outside the booking adds to it.

Unbooked use: for every bookable space (kinds in :data:`BOOKABLE_KINDS`, and any space that has a
booking), occupied slots that no booking of the space overlaps, merged into intervals. The per-space
summary gives bookings, no-shows, the no-show rate (no-shows ÷ bookings decided as used or no-show),
booked hours, used booked hours (occupied time during bookings) and unbooked occupied hours.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..aggregator.buckets import BUCKET_SECONDS, Bucket, OpenHours, slot
from ..sensors.site import Site
from .model import Booking, BookingError, ImportResult

OUTCOMES = ("used", "no_show", "unknown")
#: The time given to arrive: the usual automatic release time of booking systems (Outlook's and
#: Google's room check-in both default to 15 minutes), and one bucket.
DEFAULT_GRACE = timedelta(minutes=15)
#: A room used by fewer than half of the seats it was booked for is "half-empty".
HALF_EMPTY = 0.5
#: Share of the grace window's open seconds the sensors must cover to call a no-show.
MIN_COVERAGE = 0.9
#: Kinds booked through calendars at the Lab: meeting rooms and the event space. Desks and booths
#: are drop-in; one becomes bookable here as soon as it has a booking.
BOOKABLE_KINDS = ("room", "event")


@dataclass(slots=True, frozen=True)
class BookingOutcome:
    booking: Booking
    outcome: str
    #: Occupied seconds within opening hours in the slots the booking overlaps.
    occupied_s: float
    #: Share of open seconds with sensor data in those slots (None: no open time in them).
    coverage: float | None
    mean_count: float | None
    peak_count: int
    half_empty: bool


@dataclass(slots=True, frozen=True)
class UnbookedUse:
    space: str
    start: datetime
    end: datetime
    occupied_s: float


@dataclass(slots=True, frozen=True)
class SpaceSummary:
    space: str
    bookings: int
    used: int
    no_shows: int
    unknown: int
    half_empty: int
    #: no-shows ÷ (used + no-shows); None when no booking could be decided.
    no_show_rate: float | None
    booked_hours: float
    used_booked_hours: float
    unbooked_occupied_hours: float


@dataclass(slots=True, frozen=True)
class Comparison:
    grace: timedelta
    outcomes: tuple[BookingOutcome, ...]
    unbooked: tuple[UnbookedUse, ...]
    spaces: tuple[SpaceSummary, ...]
    #: Bookings of spaces the site does not have (left out).
    ignored: int = 0


def _slots(a: float, b: float) -> Iterable[int]:
    """Slot starts of the buckets overlapping [a, b)."""
    s = slot(a)
    while s < b:
        yield s
        s += BUCKET_SECONDS


def compare(
    site: Site,
    bookings: Iterable[Booking],
    buckets: Iterable[Bucket],
    grace: timedelta = DEFAULT_GRACE,
    *,
    half_empty: float = HALF_EMPTY,
    min_coverage: float = MIN_COVERAGE,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Comparison:
    """Outcomes of ``bookings`` from ``buckets``; unbooked use within [start, end) when given (else
    over all the buckets)."""
    if grace <= timedelta(0):
        raise ValueError("grace must be positive")
    if not 0 < min_coverage <= 1:
        raise ValueError("min_coverage must be in (0, 1]")
    index: dict[tuple[str, int], Bucket] = {(b.space, b.start): b for b in buckets}
    hours = OpenHours(site)
    given = list(bookings)
    known = [bk for bk in given if site.space(bk.space) is not None]
    ignored = len(given) - len(known)
    known.sort(key=lambda bk: (bk.start, bk.space, bk.uid))

    outcomes: list[BookingOutcome] = []
    for bk in known:
        a, b = bk.start.timestamp(), bk.end.timestamp()
        g = min(a + grace.total_seconds(), b)
        early = [index.get((bk.space, s)) for s in _slots(a, g)]
        arrived = sum(x.occupied_s for x in early if x is not None)
        open_s = sum(hours.open_seconds(s) for s in _slots(a, g))
        covered = sum(x.covered_s for x in early if x is not None)
        if arrived > 0:
            outcome = "used"
        elif open_s > 0 and covered / open_s >= min_coverage:
            outcome = "no_show"
        else:
            outcome = "unknown"
        during = [index.get((bk.space, s)) for s in _slots(a, b)]
        occ = sum(x.occupied_s for x in during if x is not None)
        count_s = sum(x.count_s for x in during if x is not None)
        peak = max((x.peak for x in during if x is not None), default=0)
        open_all = sum(hours.open_seconds(s) for s in _slots(a, b))
        cov_all = sum(x.covered_s for x in during if x is not None)
        mean = count_s / occ if occ > 0 else None
        space = site.space(bk.space)
        capacity = space.capacity if space is not None else 1
        outcomes.append(
            BookingOutcome(
                bk,
                outcome,
                occ,
                cov_all / open_all if open_all > 0 else None,
                mean,
                int(peak),
                outcome == "used" and mean is not None and mean < half_empty * capacity,
            )
        )

    bookable = bookable_spaces(site, known)
    lo = start.timestamp() if start is not None else None
    hi = end.timestamp() if end is not None else None
    booked: dict[str, set[int]] = {}
    for bk in known:
        booked.setdefault(bk.space, set()).update(_slots(bk.start.timestamp(), bk.end.timestamp()))
    used: dict[str, list[Bucket]] = {}
    for (space, _), x in index.items():
        if x.occupied_s > 0:
            used.setdefault(space, []).append(x)
    unbooked: list[UnbookedUse] = []
    for sid in bookable:
        taken = booked.get(sid, set())
        rows = sorted(used.get(sid, []), key=lambda x: x.start)
        current: list[float] | None = None
        for x in rows:
            if (
                x.start in taken
                or (lo is not None and x.start < slot(lo))
                or (hi is not None and x.start >= hi)
            ):
                continue
            if current is not None and current[1] == x.start:
                current[1] = x.start + BUCKET_SECONDS
                current[2] += x.occupied_s
                continue
            if current is not None:
                unbooked.append(_unbooked(sid, current))
            current = [x.start, x.start + BUCKET_SECONDS, x.occupied_s]
        if current is not None:
            unbooked.append(_unbooked(sid, current))

    summaries: list[SpaceSummary] = []
    for sid in bookable:
        mine = [o for o in outcomes if o.booking.space == sid]
        used = sum(1 for o in mine if o.outcome == "used")
        no_shows = sum(1 for o in mine if o.outcome == "no_show")
        summaries.append(
            SpaceSummary(
                space=sid,
                bookings=len(mine),
                used=used,
                no_shows=no_shows,
                unknown=sum(1 for o in mine if o.outcome == "unknown"),
                half_empty=sum(1 for o in mine if o.half_empty),
                no_show_rate=no_shows / (used + no_shows) if used + no_shows else None,
                booked_hours=sum(o.booking.seconds for o in mine) / 3600,
                used_booked_hours=sum(o.occupied_s for o in mine) / 3600,
                unbooked_occupied_hours=sum(u.occupied_s for u in unbooked if u.space == sid) / 3600,
            )
        )
    return Comparison(grace, tuple(outcomes), tuple(unbooked), tuple(summaries), ignored)


def bookable_spaces(site: Site, bookings: Iterable[Booking]) -> list[str]:
    """Spaces of the bookable kinds and any space with one of ``bookings``, in site order."""
    have = {b.space for b in bookings}
    return [s.id for s in site.spaces if s.kind in BOOKABLE_KINDS or s.id in have]


def _unbooked(space: str, span: list[float]) -> UnbookedUse:
    return UnbookedUse(
        space, datetime.fromtimestamp(span[0], UTC), datetime.fromtimestamp(span[1], UTC), span[2]
    )


# ----------------------------------------------------------------------------------------- load


def load(source: str, site: Site, start: datetime, end: datetime) -> ImportResult:
    """The bookings starting in [start, end) from ``source``: an .ics file, an http(s) feed URL or a
    bookings database (``bookings.db`` of an API's data directory). Raises
    :class:`tila.bookings.model.BookingError` (one line) when the source cannot be read."""
    from . import ical
    from .db import BookingDb, BookingDbError

    if ical.is_url(source):
        return ical.import_source(source, site, start=start, end=end)
    path = Path(source)
    if _is_sqlite(path):
        try:
            db = BookingDb(path, create=False)
            rows = db.query(start, end)
        except BookingDbError as exc:
            raise BookingError(str(exc)) from None
        inside = [b for b in rows if start <= b.start < end]
        known = tuple(b for b in inside if site.space(b.space) is not None)
        skipped = Counter({"unknown_space": len(inside) - len(known)} if len(known) < len(inside) else {})
        return ImportResult(f"db:{path.name}", known, skipped, start=start, end=end)
    return ical.import_source(source, site, start=start, end=end)


def _is_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return path.suffix == ".db"
