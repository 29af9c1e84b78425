"""The report's Bookings section: bookings compared with measured occupancy.

The bookings and the comparison belong to :mod:`tila.bookings`: :func:`tila.bookings.compare.load`
reads an .ics file, an http(s) feed or the API's bookings database, :func:`~tila.bookings.compare.compare`
decides each booking (used, no-show, unknown: missing data is never a no-show), finds half-empty
bookings and unbooked use. This module runs them for the report's period and turns the result into
the section's tables, chart and text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from ..aggregator.buckets import Bucket
from ..sensors.site import Site
from .analysis import Analysis, Period, ReportError
from .tables import Table
from .text import num, pct, t

if TYPE_CHECKING:
    from ..bookings.compare import Comparison
    from ..bookings.model import ImportResult
    from .html import Page


@dataclass(slots=True, frozen=True)
class Bookings:
    """Bookings read for a report, to be compared once the buckets are read."""

    source: str
    imported: ImportResult

    def analyse(self, an: Analysis, buckets: Sequence[Bucket]) -> BookingsSection:
        from ..bookings.compare import compare

        period = an.period
        result = compare(an.site, self.imported.bookings, buckets, start=period.start, end=period.stop)
        return BookingsSection(an.site, self.imported, result)


def load_bookings(source: str, site: Site, period: Period) -> Bookings:
    """The bookings starting in the period from ``source`` (see :func:`tila.bookings.compare.load`)."""
    from ..bookings.compare import load
    from ..bookings.model import BookingError

    try:
        imported = load(source, site, period.start, period.stop)
    except BookingError as exc:
        raise ReportError(f"--bookings: {exc}") from None
    except OSError as exc:
        raise ReportError(f"--bookings: cannot read {source}: {exc.strerror or exc}") from None
    return Bookings(source, imported)


@dataclass(slots=True, frozen=True)
class BookingsSection:
    site: Site
    imported: ImportResult
    result: Comparison

    def rooms(self) -> list[dict[str, Any]]:
        out = []
        for s in self.result.spaces:
            space = self.site.space(s.space)
            out.append(
                {
                    "space": s.space,
                    "kind": space.kind if space else "",
                    "capacity": space.capacity if space else None,
                    "bookings": s.bookings,
                    "used": s.used,
                    "no_shows": s.no_shows,
                    "unknown": s.unknown,
                    "no_show_rate": None if s.no_show_rate is None else round(s.no_show_rate, 6),
                    "half_empty": s.half_empty,
                    "half_empty_share": round(s.half_empty / s.used, 6) if s.used else None,
                    "booked_hours": round(s.booked_hours, 6),
                    "used_booked_hours": round(s.used_booked_hours, 6),
                    "unbooked_occupied_hours": round(s.unbooked_occupied_hours, 6),
                }
            )
        return out

    def tables(self) -> list[Table]:
        rooms = self.rooms()
        cols = tuple(rooms[0]) if rooms else ("space",)
        unbooked = tuple(
            (
                u.space,
                u.start.astimezone(self.site.tz).isoformat(),
                u.end.astimezone(self.site.tz).isoformat(),
                round(u.occupied_s, 3),
            )
            for u in self.result.unbooked
        )
        half = []
        for o in self.result.outcomes:
            if not o.half_empty:
                continue
            space = self.site.space(o.booking.space)
            half.append(
                (
                    o.booking.space,
                    o.booking.start.astimezone(self.site.tz).isoformat(),
                    o.booking.end.astimezone(self.site.tz).isoformat(),
                    space.capacity if space else None,
                    o.booking.expected,
                    None if o.mean_count is None else round(o.mean_count, 6),
                    o.peak_count,
                )
            )
        return [
            Table("bookings_rooms", cols, tuple(tuple(r[c] for c in cols) for r in rooms)),
            Table("bookings_unbooked", ("space", "start", "end", "occupied_seconds"), unbooked),
            Table(
                "bookings_half_empty",
                ("space", "start", "end", "capacity", "expected", "mean_count", "peak_count"),
                tuple(half),
            ),
        ]

    def html(self, p: Page) -> str:
        lang = p.lang
        skipped = sum(self.imported.skipped.values())
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.imported.skipped.items()))
        intro = t(
            "bookings_intro",
            lang,
            source=self.imported.source,
            n=len(self.imported.bookings),
            skipped=skipped,
            reasons=f" ({reasons})" if reasons else "",
        )
        head = [
            p.t("space"),
            p.t("b_bookings"),
            p.t("b_used"),
            p.t("b_no_shows"),
            p.t("b_unknown"),
            p.t("b_no_show_rate"),
            p.t("b_half_empty"),
            p.t("b_booked_h"),
            p.t("b_unbooked_h"),
        ]
        body = []
        for r in self.rooms():
            cells = (
                escape(p.space_name(r["space"])),
                r["bookings"],
                r["used"],
                r["no_shows"],
                r["unknown"],
                pct(r["no_show_rate"], lang),
                pct(r["half_empty_share"], lang),
                num(r["booked_hours"], lang),
                num(r["unbooked_occupied_hours"], lang),
            )
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        table = (
            f'<table class="small"><caption>{p.t("s_bookings")} · {p.csv("bookings_rooms")}</caption><thead><tr>'
            + "".join(f'<th scope="col">{h}</th>' for h in head)
            + "</tr></thead><tbody>"
            + "".join(body)
            + "</tbody></table>"
        )
        chart = p.figure("bookings", "bookings_rooms") if "bookings" in p.charts else ""
        return (
            f"<p>{escape(intro)}</p>{chart}{table}"
            f'<p class="note">{p.t("bookings_note")} {p.csv("bookings_unbooked")} {p.csv("bookings_half_empty")}</p>'
        )
