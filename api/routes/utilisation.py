"""``/v1/utilisation`` and ``/v1/utilisation/heatmap``: utilisation from the store (analyst scope).

Both read 15-minute buckets for the slot-aligned window (the slot holding ``from`` up to the one
holding ``to``, as :func:`tila.aggregator.metrics.window` counts open time) and apply the metrics of
:mod:`tila.aggregator.metrics`, per space or rolled up by ``group`` (zone, kind, site). They are
plain ``def`` routes: the store is blocking I/O, so FastAPI runs them in its thread pool, off the
event loop.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BeforeValidator

from ...aggregator.metrics import QueryError, heatmap, utilisation, window
from ...sensors.site import KINDS, Site
from ..auth import AUTH_RESPONSES, AnalystDep
from ..deps import CtxDep
from ..errors import invalid
from ..models import HeatmapCell, UtilisationGroupRow, UtilisationRow, ValidationErrorOut

router = APIRouter(prefix="/v1/utilisation", tags=["utilisation"])

RESPONSES: dict[int | str, dict[str, object]] = {
    **AUTH_RESPONSES,
    422: {"model": ValidationErrorOut, "description": "a bad or unknown parameter"},
    503: {"description": "the store is not answering"},
}

#: A '+' in a query string decodes to a space (application/x-www-form-urlencoded), so an unescaped
#: ``08:00:00+02:00`` arrives as ``08:00:00 02:00``: that is read as the offset it was meant to be.
_SPACED_OFFSET = re.compile(
    r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?) (\d{2}(?::?\d{2})?)$"
)
_EXAMPLE = "2026-11-24T08:00:00+02:00"
#: Years a time may name: the store's slots count from the Unix epoch, and a year past 9000 is a typo;
#: beyond these, year 1 or 9999 with an offset would not even fit a datetime once moved to UTC.
EARLIEST_YEAR, LATEST_YEAR = 1970, 9000
#: The longest window /v1/utilisation answers: a century of opening hours takes the calendar about
#: half a second; millennia took a minute of a worker thread (found by the fuzz tests).
MAX_WINDOW_DAYS = 36_600


def parse_time(value: object) -> datetime:
    """ISO 8601 with a UTC offset (``Z`` or ``±HH:MM``); anything else is a readable ValueError."""
    if isinstance(value, datetime):
        text = value.isoformat()
    elif isinstance(value, str):
        text = value.strip()
    else:
        # ValueError, not TypeError: pydantic turns only ValueError into a 422 with this message.
        raise ValueError(f"must be an ISO 8601 time with offset, e.g. {_EXAMPLE}")
    m = _SPACED_OFFSET.match(text)
    if m:
        text = f"{m[1]}+{m[2]}"
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not an ISO 8601 time; use e.g. {_EXAMPLE}") from None
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{text[:40]!r} has no UTC offset; add one, e.g. {_EXAMPLE} or …Z for UTC")
    if not EARLIEST_YEAR <= t.year <= LATEST_YEAR:
        raise ValueError(f"{text[:40]!r} is outside the years {EARLIEST_YEAR}–{LATEST_YEAR}")
    return t


When = Annotated[datetime, BeforeValidator(parse_time)]
FromQ = Annotated[When, Query(alias="from", description=f"window start, ISO 8601 with offset ({_EXAMPLE})")]
ToQ = Annotated[When, Query(description="window end (exclusive), ISO 8601 with offset")]
Level = Literal["space", "zone", "kind", "site"]
Ids = Annotated[
    list[str] | None,
    Query(description="repeat the parameter or separate ids with commas; omitted means all"),
]


def select(site: Site, space: list[str] | None, zone: list[str] | None, kind: list[str] | None) -> list[str]:
    """Space ids matching every given filter, in site order; unknown ids and kinds are a 422."""

    def split(values: list[str] | None) -> set[str]:
        return {v.strip() for x in values or [] for v in x.split(",") if v.strip()}

    spaces, zones, kinds = split(space), split(zone), split(kind)
    for name, given, known in (
        ("space", spaces, {s.id for s in site.spaces}),
        ("zone", zones, {z.id for z in site.zones}),
        ("kind", kinds, set(KINDS)),
    ):
        bad = sorted(given - known)
        if bad:
            listing = ", ".join(sorted(known)[:12]) + (", …" if len(known) > 12 else "")
            raise invalid(
                name, f"unknown {name} {', '.join(repr(b[:64]) for b in bad[:5])} (known: {listing})", bad
            )
    return [
        s.id
        for s in site.spaces
        if (not spaces or s.id in spaces)
        and (not zones or s.zone in zones)
        and (not kinds or s.kind in kinds)
    ]


def _slot_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    try:
        a, b = window(start, end)
    except QueryError as exc:
        raise invalid("to", str(exc)) from exc
    if b - a > MAX_WINDOW_DAYS * 86400:
        raise invalid("to", f"the window covers at most {MAX_WINDOW_DAYS} days; choose a shorter one")
    return datetime.fromtimestamp(a, UTC), datetime.fromtimestamp(b, UTC)


@router.get(
    "",
    response_model=list[UtilisationRow | UtilisationGroupRow],
    responses=RESPONSES,
    summary="Utilisation rows per space (or zone, kind, site) and interval",
)
def get_utilisation(
    ctx: CtxDep,
    _: AnalystDep,
    start: FromQ,
    to: ToQ,
    space: Ids = None,
    zone: Ids = None,
    kind: Ids = None,
    interval: Annotated[
        Literal["15m", "1h", "1d", "total"], Query(description="row length, in local time")
    ] = "total",
    group: Annotated[
        Level,
        Query(
            description="one row per space (the default), or per zone, kind or the site, summed "
            "over the selected spaces"
        ),
    ] = "space",
) -> list[dict[str, object]]:
    ids = select(ctx.site, space, zone, kind)
    a, b = _slot_window(start, to)
    if not ids:
        return []
    buckets = ctx.store.buckets(a, b, ids)
    try:
        return utilisation(ctx.site, buckets, start, to, ids, interval, group)
    except QueryError as exc:
        raise invalid(None, str(exc)) from exc


@router.get(
    "/heatmap",
    response_model=list[HeatmapCell],
    responses=RESPONSES,
    summary="Frequency and utilisation by weekday × hour",
)
def get_heatmap(
    ctx: CtxDep,
    _: AnalystDep,
    start: FromQ,
    to: ToQ,
    space: Ids = None,
    zone: Ids = None,
    kind: Ids = None,
    group: Annotated[
        Level,
        Query(
            description="one heatmap for all selected spaces (site, the default), or one per space, zone or kind"
        ),
    ] = "site",
) -> list[dict[str, object]]:
    ids = select(ctx.site, space, zone, kind)
    a, b = _slot_window(start, to)
    if not ids:
        return []
    try:
        return heatmap(ctx.site, ctx.store.buckets(a, b, ids), start, to, ids, group)
    except QueryError as exc:
        raise invalid(None, str(exc)) from exc
