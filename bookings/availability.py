"""Whether each bookable space can be used now, and until when: bookings plus the live state (pure).

A space is ``free_now`` when the site is open, no booking holds it now and its sensors see it free
(an ``unknown`` state is never shown as free). ``free_until`` is when that ends: the next booking's
start, or the end of the current opening hours, whichever comes first. ``booked_until`` is the end of
the current booking and any that follow it back to back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..sensors.site import Site
from .model import Booking


@dataclass(slots=True, frozen=True)
class Availability:
    space: str
    state: str
    open_now: bool
    booked_now: bool
    free_now: bool
    booked_until: datetime | None
    free_until: datetime | None
    #: Start of the next booking after now within the bookings given (the API gives a day's).
    next_booking: datetime | None


def availability(
    site: Site,
    spaces: Iterable[str],
    states: Mapping[str, str],
    bookings: Iterable[Booking],
    now: datetime,
) -> list[Availability]:
    """One :class:`Availability` per space id in ``spaces`` (``states``: live state by space id)."""
    periods = site.open_intervals(now, now + timedelta(days=1))
    current = next(((a, b) for a, b in periods if a <= now < b), None)
    closes = current[1] if current is not None else None
    # Opening hours come a day at a time: a site open round the clock (or past midnight into the
    # next day's hours) does not close at midnight.
    for a, b in periods:
        if closes is not None and a <= closes < b:
            closes = b
    by_space: dict[str, list[Booking]] = {}
    for bk in sorted(bookings, key=lambda b: b.start):
        by_space.setdefault(bk.space, []).append(bk)
    out = []
    for sid in spaces:
        mine = [b for b in by_space.get(sid, []) if b.end > now]
        holding = next((b for b in mine if b.start <= now), None)
        booked_until = None
        if holding is not None:
            booked_until = holding.end
            for b in mine:  # back-to-back bookings extend the hold
                if b.start <= booked_until < b.end:
                    booked_until = b.end
        upcoming = [b.start for b in mine if b.start > now]
        next_booking = upcoming[0] if upcoming else None
        state = states.get(sid, "unknown")
        free_now = current is not None and holding is None and state == "free"
        free_until = None
        if free_now and closes is not None:
            free_until = min(closes, next_booking) if next_booking is not None else closes
        out.append(
            Availability(
                space=sid,
                state=state,
                open_now=current is not None,
                booked_now=holding is not None,
                free_now=free_now,
                booked_until=booked_until,
                free_until=free_until,
                next_booking=next_booking,
            )
        )
    return out
