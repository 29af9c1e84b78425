"""The report's data as CSV tables: one per chart or table of the HTML, language-neutral.

UTF-8, a header row, ids (not translated names), ISO 8601 dates and times, dot decimals, empty cells
for undefined figures (an F with no open time, an O with no occupied time).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..sensors.site import DAYS
from .analysis import FIGURES, Analysis, crowd

#: Every CSV file the report may write (``csv/<name>.csv``): the ones of a run are replaced, stale
#: ones of an earlier run (say, with bookings) removed, anything else in the directory left alone.
NAMES = (
    "headline_site",
    "headline_kind",
    "headline_zone",
    "headline_space",
    "heatmap_kind",
    "trend_week",
    "trend_month",
    "rooms_headcount",
    "rooms_summary",
    "event_days",
    "event_compare",
    "event_hourly",
    "coverage_week",
    "coverage_site_week",
    "bookings_rooms",
    "bookings_unbooked",
    "bookings_half_empty",
)
CSV_DIR = "csv"


@dataclass(slots=True, frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    @property
    def href(self) -> str:
        return f"{CSV_DIR}/{self.name}.csv"

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.columns)
        for row in self.rows:
            w.writerow(["" if v is None else _cell(v) for v in row])
        return buf.getvalue()


def _cell(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        # Fixed point, never an exponent (1e-06): figures are rounded to 6 decimals at most.
        text = f"{v:.6f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    return v


def table(
    name: str, labels: Sequence[str], rows: Iterable[dict[str, Any]], figures: Sequence[str] = FIGURES
) -> Table:
    columns = (*labels, *figures)
    return Table(name, columns, tuple(tuple(r.get(c) for c in columns) for r in rows))


def tables(an: Analysis) -> dict[str, Table]:
    site = an.site
    info = {s.id: s for s in site.spaces}
    spaces = [{**r, "kind": info[r["space"]].kind, "zone": info[r["space"]].zone} for r in an.spaces]
    out = [
        table("headline_site", ("site", "from", "to"), [an.total]),
        table("headline_kind", ("kind", "from", "to"), an.kinds),
        table("headline_zone", ("zone", "from", "to"), an.zones),
        table("headline_space", ("space", "kind", "zone", "from", "to"), spaces),
        table("heatmap_kind", ("kind", "weekday", "day", "hour"), an.heatmap),
        table("trend_week", ("kind", "start"), an.weeks),
        table("trend_month", ("kind", "start"), an.months),
        table("coverage_week", ("space", "start"), an.space_weeks),
        table("coverage_site_week", ("site", "start"), an.site_weeks),
        table("event_compare", ("kind", "days", "day_count"), an.day_classes),
        table("event_hourly", ("kind", "days", "hour"), an.day_class_hours),
    ]
    out.append(
        Table(
            "event_days",
            ("date", "weekday", "space", "peak_count", "capacity", "crowd"),
            tuple(
                (
                    e.day.isoformat(),
                    DAYS[e.day.weekday()],
                    e.space,
                    e.peak,
                    e.capacity,
                    crowd(e.capacity),
                )
                for e in an.event_days
            ),
        )
    )
    headcount: list[tuple[Any, ...]] = []
    summary: list[tuple[Any, ...]] = []
    by_space = {r["space"]: r for r in an.spaces}
    for room in an.rooms:
        total = room.occupied_s
        for i, sec in enumerate(room.seconds):
            people = i + 1
            share = round(sec / total, 6) if total > 0 else None
            headcount.append(
                (room.space, room.kind, room.capacity, people, people > room.capacity, round(sec, 3), share)
            )
        r = by_space[room.space]
        over = room.seconds[-1] / total if total > 0 else None
        half = room.share_at_most(room.capacity / 2)
        summary.append(
            (
                room.space,
                room.kind,
                room.capacity,
                round(total, 3),
                r["frequency"],
                r["occupancy"],
                r["utilisation"],
                r["coverage"],
                room.quantile(0.5),
                room.quantile(0.9),
                None if half is None else round(half, 6),
                None if over is None else round(over, 6),
            )
        )
    out.append(
        Table(
            "rooms_headcount",
            ("space", "kind", "capacity", "people", "over_capacity", "occupied_seconds", "share"),
            tuple(headcount),
        )
    )
    out.append(
        Table(
            "rooms_summary",
            (
                "space",
                "kind",
                "capacity",
                "occupied_seconds",
                "frequency",
                "occupancy",
                "utilisation",
                "coverage",
                "median_people",
                "p90_people",
                "share_at_most_half",
                "share_over_capacity",
            ),
            tuple(summary),
        )
    )
    if an.bookings is not None:
        out.extend(an.bookings.tables())
    return {t.name: t for t in out}
