"""Bookings: availability now (public), bookings in and out, iCalendar imports and no-shows.

- ``GET /v1/availability`` (public, aggregates only): per bookable space its state, whether it is
  booked or free now and until when; no booking ids, no times of anyone's booking beyond the next.
- ``GET /v1/bookings`` (``booking`` or ``host``), ``POST /v1/bookings`` and ``DELETE
  /v1/bookings/{uid}`` (``booking``), ``POST /v1/bookings/import`` (``booking``): an iCalendar body
  (``text/calendar``) or ``{"url": …}`` for a feed, replacing that source's bookings in the window.
- ``GET /v1/bookings/noshows`` (``analyst`` or ``booking``): each booking's outcome from the store's
  buckets (:mod:`tila.bookings.compare`) beside what the live monitor decided.

Without a data directory every route here answers 503 ``bookings need --data-dir``. The POST
routes read their bodies themselves, after the token check: a body parameter would be parsed (and
a broken one refused with 422) before it. The database and feeds are blocking I/O: plain ``def``
routes run in FastAPI's thread pool, the others hand it to a thread (an import to a daemon thread
of its own, so that a slow feed never holds the API's stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, Security, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...bookings import ical
from ...bookings.availability import availability
from ...bookings.compare import BOOKABLE_KINDS, bookable_spaces, compare
from ...bookings.db import BookingDbError, ConflictError
from ...bookings.model import MAX_LENGTH, Booking, BookingError, ImportResult, check_uid
from ...bookings.monitor import Bookings
from ..auth import AUTH_RESPONSES, bearer, check
from ..deps import CtxDep
from ..errors import invalid
from ..models import ErrorOut, IsoTime, ValidationErrorOut
from .utilisation import FromQ, Ids, ToQ, When, select

router = APIRouter(tags=["bookings"])
T = TypeVar("T")

#: Bytes of iCalendar accepted in a request body: a room's calendar for a year or two. The API's
#: general body limit (api/headers.py, 64 KiB) refuses a larger declared Content-Length first; larger
#: calendars are imported from their feed URL or with ``tila bookings import``.
MAX_IMPORT_BODY = 2 * 1024 * 1024
#: Bytes of a single booking's JSON: a few hundred are plenty.
MAX_BOOKING_BODY = 4096
#: Seconds the API waits on a feed: a request should not hold a worker thread much longer.
FEED_TIMEOUT = 15.0
#: The longest window ``GET /v1/bookings`` and the no-show comparison answer for.
MAX_WINDOW_DAYS = 3660

UNAVAILABLE = "bookings need --data-dir"
R503: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "no data directory (bookings are off), or its database failed"}
}
R422: dict[int | str, dict[str, Any]] = {
    422: {"model": ValidationErrorOut, "description": "a bad parameter or body: `message` says which and why"}
}


# ------------------------------------------------------------------------------------- access


def require_any(*scopes: str) -> Any:
    """401 without a known token, 403 unless it grants one of ``scopes``."""

    async def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None
    ) -> frozenset[str]:
        tokens = request.app.state.tila.tokens
        granted = tokens.scopes(credentials.credentials) if credentials is not None else frozenset()
        if not granted:
            check(tokens, credentials, scopes[0])  # raises the 401 (no token, or an unknown one)
        if granted.isdisjoint(scopes):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the {' or '.join(scopes)} scope")
        return granted

    dependency.__annotations__["credentials"] = Annotated[
        HTTPAuthorizationCredentials | None, Security(bearer, scopes=list(scopes))
    ]
    dependency.__name__ = "require_" + "_or_".join(scopes)
    return dependency


BookingScope = Annotated[frozenset[str], Depends(require_any("booking"))]
ReadScope = Annotated[frozenset[str], Depends(require_any("booking", "host"))]
NoShowScope = Annotated[frozenset[str], Depends(require_any("analyst", "booking"))]


async def get_bookings(ctx: CtxDep) -> Bookings:
    if ctx.bookings is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, UNAVAILABLE)
    return ctx.bookings  # type: ignore[no-any-return]


BookingsDep = Annotated[Bookings, Depends(get_bookings)]


def _db_failed(exc: BookingDbError) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"the bookings database failed: {exc}")


def _window(start: datetime, end: datetime, name: str = "to") -> None:
    if end <= start:
        raise invalid(name, "to must be after from")
    if end - start > timedelta(days=MAX_WINDOW_DAYS):
        raise invalid(name, f"the window covers at most {MAX_WINDOW_DAYS} days; choose a shorter one")


# ------------------------------------------------------------------------------------- models


class BookingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uid: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="the booking system's own id (printable ASCII, no spaces); made up when absent",
    )
    space: str = Field(max_length=64, description="a space id of the site")
    start: When
    end: When
    expected: int | None = Field(None, ge=0, le=100_000, description="people expected: a count only")


class BookingOut(BaseModel):
    uid: str
    space: str
    start: IsoTime
    end: IsoTime
    source: str = Field(description="`api`, or the import or feed the booking came from")
    expected: int | None


class ImportUrlIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    url: str = Field(min_length=8, max_length=2000, description="an http(s) iCalendar feed")
    space: str | None = Field(None, max_length=64, description="every event is this space's")
    source: str | None = Field(None, min_length=1, max_length=120, description="default: from the URL")
    start: When | None = Field(None, alias="from")
    to: When | None = None


class ImportOut(BaseModel):
    source: str
    imported: int
    skipped: int
    skipped_by_reason: dict[str, int] = Field(description="skipped events by reason (see the README)")
    start: str | None = Field(alias="from")
    to: str | None
    replaced: int | None = Field(description="bookings of this source in the window before the import")


class AvailabilityOut(BaseModel):
    id: str
    kind: str
    zone: str
    capacity: int
    state: Literal["free", "occupied", "unknown"]
    open_now: bool
    booked_now: bool
    free_now: bool = Field(description="open, not booked and seen free now")
    booked_until: IsoTime | None
    free_until: IsoTime | None = Field(description="the next booking's start or closing time")
    next_booking: IsoTime | None = Field(description="start of the next booking within a day")


class OutcomeOut(BaseModel):
    uid: str
    space: str
    start: IsoTime
    end: IsoTime
    source: str
    expected: int | None
    outcome: Literal["used", "no_show", "unknown"] = Field(description="from the store's buckets")
    detected: Literal["used", "no_show", "unknown"] | None = Field(
        description="what the live monitor decided at start + grace (null: not decided live)"
    )
    occupied_seconds: float
    coverage: float | None
    mean_count: float | None
    peak_count: int
    half_empty: bool


class SpaceNoShowsOut(BaseModel):
    space: str
    bookings: int
    used: int
    no_shows: int
    unknown: int
    half_empty: int
    no_show_rate: float | None
    booked_hours: float
    used_booked_hours: float
    unbooked_occupied_hours: float


class UnbookedOut(BaseModel):
    space: str
    start: IsoTime
    end: IsoTime
    occupied_seconds: float


class NoShowsOut(BaseModel):
    start: IsoTime = Field(alias="from")
    to: IsoTime
    grace_minutes: float
    bookings: list[OutcomeOut]
    spaces: list[SpaceNoShowsOut]
    unbooked: list[UnbookedOut]


def _out(bk: Booking, tz: Any) -> dict[str, Any]:
    return {
        "uid": bk.uid,
        "space": bk.space,
        "start": bk.start.astimezone(tz),
        "end": bk.end.astimezone(tz),
        "source": bk.source,
        "expected": bk.expected,
    }


# ------------------------------------------------------------------------------------- routes


@router.get(
    "/v1/availability",
    response_model=list[AvailabilityOut],
    responses={**R422, **R503},
    summary="Bookable spaces: free or booked now, and until when",
)
async def get_availability(
    ctx: CtxDep,
    bookings: BookingsDep,
    kind: Ids = None,
    zone: Ids = None,
) -> list[dict[str, Any]]:
    for name, given in (("zone", zone), ("kind", kind)):
        if given is not None and not any(v.strip() for x in given for v in x.split(",")):
            raise invalid(name, f"name at least one {name}, or leave {name} out")
    ids = select(ctx.site, None, zone, kind)
    now = datetime.now(UTC)
    # Live state is read here, on the loop that owns it; the database in a thread.
    states = {sid: ctx.live.space(sid).state for sid in ids}
    try:
        today = await asyncio.to_thread(bookings.db.query, now, now + timedelta(days=1), ids)
    except BookingDbError as exc:
        raise _db_failed(exc) from None
    booked = {b.space for b in today}
    if not kind:  # by default the bookable kinds, and any space with a booking today
        bookable = {s.id for s in ctx.site.spaces if s.kind in BOOKABLE_KINDS}
        ids = [sid for sid in ids if sid in booked or sid in bookable]
    tz = ctx.site.tz
    rows = []
    for a in availability(ctx.site, ids, states, today, now):
        space = ctx.site.space(a.space)
        assert space is not None
        rows.append(
            {
                "id": space.id,
                "kind": space.kind,
                "zone": space.zone,
                "capacity": space.capacity,
                "state": a.state,
                "open_now": a.open_now,
                "booked_now": a.booked_now,
                "free_now": a.free_now,
                "booked_until": a.booked_until.astimezone(tz) if a.booked_until else None,
                "free_until": a.free_until.astimezone(tz) if a.free_until else None,
                "next_booking": a.next_booking.astimezone(tz) if a.next_booking else None,
            }
        )
    return rows


@router.get(
    "/v1/bookings/noshows",
    response_model=NoShowsOut,
    responses={**AUTH_RESPONSES, **R422, **R503},
    summary="Each booking's outcome (used, no-show, unknown) and per-space no-show rates",
)
def get_noshows(
    ctx: CtxDep,
    _: NoShowScope,
    bookings: BookingsDep,
    start: FromQ,
    to: ToQ,
    space: Ids = None,
) -> dict[str, Any]:
    ids = select(ctx.site, space, None, None)
    _window(start, to)
    try:
        found = [b for b in bookings.db.query(start, to, ids) if start <= b.start < to]
        detected = bookings.db.detected(start, to)
    except BookingDbError as exc:
        raise _db_failed(exc) from None
    # Buckets of the spaces compared (not the desks), from the slot holding the earliest start to
    # the one holding the latest end.
    wanted = [sid for sid in bookable_spaces(ctx.site, found) if sid in ids]
    lo = min([start, *(b.start for b in found)])
    hi = max([to, *(b.end for b in found)])
    buckets = ctx.store.buckets(_slot(lo), _slot(hi) + timedelta(minutes=15), wanted) if wanted else []
    result = compare(ctx.site, found, buckets, bookings.grace, start=start, end=to)
    tz = ctx.site.tz
    return {
        "from": start,
        "to": to,
        "grace_minutes": bookings.grace.total_seconds() / 60,
        "bookings": [
            {
                **_out(o.booking, tz),
                "outcome": o.outcome,
                "detected": d.outcome if (d := detected.get(o.booking.uid)) is not None else None,
                "occupied_seconds": o.occupied_s,
                "coverage": o.coverage,
                "mean_count": o.mean_count,
                "peak_count": o.peak_count,
                "half_empty": o.half_empty,
            }
            for o in result.outcomes
        ],
        "spaces": [
            {
                "space": s.space,
                "bookings": s.bookings,
                "used": s.used,
                "no_shows": s.no_shows,
                "unknown": s.unknown,
                "half_empty": s.half_empty,
                "no_show_rate": s.no_show_rate,
                "booked_hours": s.booked_hours,
                "used_booked_hours": s.used_booked_hours,
                "unbooked_occupied_hours": s.unbooked_occupied_hours,
            }
            for s in result.spaces
            if s.space in ids
        ],
        "unbooked": [
            {
                "space": u.space,
                "start": u.start.astimezone(tz),
                "end": u.end.astimezone(tz),
                "occupied_seconds": u.occupied_s,
            }
            for u in result.unbooked
        ],
    }


def _slot(t: datetime) -> datetime:
    ts = int(t.timestamp() // 900) * 900
    return datetime.fromtimestamp(ts, UTC)


@router.get(
    "/v1/bookings",
    response_model=list[BookingOut],
    responses={**AUTH_RESPONSES, **R422, **R503},
    summary="Bookings overlapping a window",
)
def list_bookings(
    ctx: CtxDep,
    _: ReadScope,
    bookings: BookingsDep,
    start: FromQ,
    to: ToQ,
    space: Ids = None,
) -> list[dict[str, Any]]:
    ids = select(ctx.site, space, None, None)
    _window(start, to)
    try:
        rows = bookings.db.query(start, to, ids)
    except BookingDbError as exc:
        raise _db_failed(exc) from None
    return [_out(b, ctx.site.tz) for b in rows]


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The request body's description, for routes that read their body themselves: after the token
    check (a body parameter would be parsed, and refused, before it)."""
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _parse(model: type[BaseModel], body: bytes) -> Any:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        # Without the input: it may be raw bytes (not JSON-encodable) or whatever a client sent.
        errors = [{**e, "loc": ("body", *e["loc"]), "input": None} for e in exc.errors()]
        raise RequestValidationError(errors) from None


@router.post(
    "/v1/bookings",
    response_model=BookingOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        **AUTH_RESPONSES,
        409: {"model": ErrorOut, "description": "the uid exists, or the space is booked then"},
        413: {"model": ErrorOut, "description": f"a body over {MAX_BOOKING_BODY} bytes"},
        **R422,
        **R503,
    },
    openapi_extra=_json_body(BookingIn),
    summary="Add one booking",
)
async def add_booking(
    request: Request, ctx: CtxDep, _: BookingScope, bookings: BookingsDep
) -> dict[str, Any]:
    body: BookingIn = _parse(BookingIn, await _read_body(request, MAX_BOOKING_BODY))
    if ctx.site.space(body.space) is None:
        raise invalid("space", f"unknown space {body.space[:64]!r}", body.space)
    if body.end <= body.start:
        raise invalid("end", "end must be after start")
    if body.end - body.start > MAX_LENGTH:
        raise invalid("end", "a booking lasts at most 24 hours")
    uid = body.uid or f"api-{secrets.token_hex(12)}"
    try:
        bk = Booking(check_uid(uid), body.space, body.start, body.end, "api", body.expected)
        await asyncio.to_thread(bookings.db.add, bk)
    except ConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except BookingDbError as exc:
        raise _db_failed(exc) from None
    except BookingError as exc:
        raise invalid(None, str(exc)) from None
    bookings.changed()
    return _out(bk, ctx.site.tz)


@router.delete(
    "/v1/bookings/{uid:path}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTH_RESPONSES, 404: {"model": ErrorOut, "description": "no such booking"}, **R503},
    summary="Remove one booking",
)
def delete_booking(uid: str, _: BookingScope, bookings: BookingsDep) -> Response:
    try:
        removed = bookings.db.delete(uid)
    except BookingDbError as exc:
        raise _db_failed(exc) from None
    if removed is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no booking {uid[:64]!r}")
    bookings.changed()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/calendar": {"schema": {"type": "string", "maxLength": MAX_IMPORT_BODY}},
            "application/json": {"schema": ImportUrlIn.model_json_schema()},
        },
    }
}


@router.post(
    "/v1/bookings/import",
    response_model=ImportOut,
    responses={
        **AUTH_RESPONSES,
        413: {"model": ErrorOut, "description": f"a body over {MAX_IMPORT_BODY} bytes"},
        415: {"model": ErrorOut, "description": "neither text/calendar nor application/json"},
        **R422,
        **R503,
    },
    openapi_extra=_IMPORT_BODY,
    summary="Import an iCalendar file or feed, replacing that source's bookings in the window",
)
async def import_bookings(
    request: Request,
    ctx: CtxDep,
    _: BookingScope,
    bookings: BookingsDep,
    space: Annotated[str | None, Query(max_length=64, description="every event is this space's")] = None,
    source: Annotated[
        str | None,
        Query(min_length=1, max_length=120, description="name of these bookings (default: upload)"),
    ] = None,
    start: Annotated[
        When | None, Query(alias="from", description="window start (default a year back)")
    ] = None,
    to: Annotated[When | None, Query(description="window end (default a year ahead)")] = None,
) -> dict[str, Any]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/json", "text/calendar", "text/plain", "application/octet-stream"):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send text/calendar, or application/json with a url"
        )
    body = await _read_body(request)
    url: str | None = None
    if kind == "application/json":
        doc: ImportUrlIn = _parse(ImportUrlIn, body)
        url, space, source = doc.url, doc.space or space, doc.source or source
        start, to = doc.start or start, doc.to or to
        if not ical.is_url(url):
            raise _bad_body("url", "must be an http://, https:// or webcal:// URL")
    if space is not None and ctx.site.space(space) is None:
        raise invalid("space", f"unknown space {space[:64]!r}", space)
    if start is None or to is None:
        d_start, d_end = ical.default_window(ctx.site)
        start, to = start or d_start, to or d_end
    _window(start, to)
    name = source or (ical.source_name(url) if url else f"upload:{space}" if space else "upload")
    site = ctx.site

    def run() -> ImportResult:
        data = ical.fetch(url, FEED_TIMEOUT) if url else body
        parsed = ical.parse(data, site, source=name, space=space, start=start, end=to)
        return bookings.db.replace(parsed)

    try:
        result = await _in_daemon_thread(run)
    except BookingDbError as exc:
        raise _db_failed(exc) from None
    except BookingError as exc:  # CalendarError included: a broken file or an unreachable feed
        raise _bad_body("url" if url else "calendar", str(exc)) from None
    bookings.changed()
    return result.summary()


async def _in_daemon_thread(work: Callable[[], T]) -> T:
    """``work()`` in a thread of its own that the API's stop does not wait for: asyncio.to_thread's
    threads are joined when the event loop closes, so a feed still answering (up to FEED_TIMEOUT)
    would hold a SIGTERM'd API. Stopped midway, nothing is written (replace is one transaction)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, exc: BaseException | None) -> None:
        if done.done():  # the request was cancelled meanwhile
            return
        if exc is not None:
            done.set_exception(exc)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result, exc = work(), None
        except BaseException as e:  # handed to the awaiting route, which answers it
            result, exc = None, e
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            loop.call_soon_threadsafe(settle, result, exc)

    threading.Thread(target=run, name="tila-bookings-import", daemon=True).start()
    return await done


def _bad_body(field: str | None, message: str) -> RequestValidationError:
    loc: tuple[str, ...] = ("body", field) if field else ("body",)
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": message, "input": None}])


async def _read_body(request: Request, limit: int = MAX_IMPORT_BODY) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(
                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                f"request body over {limit} bytes"
                + ("; import a larger calendar from its URL" if limit == MAX_IMPORT_BODY else ""),
            )
        chunks.append(chunk)
    return b"".join(chunks)
