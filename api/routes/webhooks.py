"""``/v1/webhooks``: subscriptions, pings and the delivery log (booking scope; admin implies it).

The secret of a subscription is shown once, in the answer that creates it, and never listed. Without
a data directory the API keeps no webhooks and every route here answers 503. The routes are plain
``def``: the queue is SQLite, so FastAPI runs them in its thread pool, off the event loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ..auth import AUTH_RESPONSES, require
from ..deps import CtxDep
from ..errors import invalid
from ..models import ErrorOut, IsoTime, ValidationErrorOut
from ..webhooks import (
    MAX_SECRET,
    MAX_URL,
    MAX_WEBHOOKS,
    MIN_SECRET,
    STATUSES,
    Delivery,
    Subscription,
    WebhookError,
    Webhooks,
    check_secret,
    check_url,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

BookingDep = Annotated[frozenset[str], Depends(require("booking"))]

RESPONSES: dict[int | str, dict[str, object]] = {
    **AUTH_RESPONSES,
    503: {
        "model": ErrorOut,
        "description": "webhooks are off (the API runs without --data-dir), or webhooks.db failed",
    },
}


async def get_webhooks(ctx: CtxDep) -> Webhooks:
    if ctx.webhooks is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "webhooks need --data-dir")
    return ctx.webhooks


WebhooksDep = Annotated[Webhooks, Depends(get_webhooks)]


@contextmanager
def _queue() -> Iterator[None]:
    """webhooks.db failing (locked by another process past the busy timeout, a full disk): 503."""
    try:
        yield
    except sqlite3.Error as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"the webhooks database failed: {str(exc)[:120]}"
        ) from None


_DELIVERY_PARAMS = frozenset({"webhook", "status", "limit"})
EventName = Literal["space.state", "booking.no_show", "*"]
WebhookId = Annotated[str, Path(max_length=64, description="the id given at creation")]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, AfterValidator(check_url)] = Field(
        description="where to POST: http:// or https://, no user:password@",
        examples=["https://booking.example.fi/hooks/tila"],
        json_schema_extra={"maxLength": MAX_URL},
    )
    events: list[EventName] = Field(
        min_length=1,
        max_length=8,
        description="`space.state`, `booking.no_show`, or `*` for every event",
        examples=[["booking.no_show"]],
    )
    spaces: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None,
        max_length=1000,
        description="only events about these spaces; left out: every space",
    )
    secret: Annotated[str, AfterValidator(check_secret)] | None = Field(
        default=None,
        description=f"the signing secret, {MIN_SECRET} to {MAX_SECRET} characters; left out: tila makes "
        "one and answers it once",
        json_schema_extra={"minLength": MIN_SECRET, "maxLength": MAX_SECRET},
    )


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    spaces: list[str] | None = Field(description="null: every space")
    created: IsoTime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="the signing secret: shown this once, never again")


class PingOut(BaseModel):
    delivery: str = Field(description="the queued ping's delivery id (X-Tila-Delivery)")


class AttemptOut(BaseModel):
    time: IsoTime
    status_code: int | None = Field(description="the receiver's HTTP status; null when none came")
    error: str | None = Field(description="why the attempt failed without a status (truncated)")
    latency_ms: float


class DeliveryOut(BaseModel):
    id: str
    webhook: str
    event: str
    status: Literal["pending", "delivered", "failed"]
    created: IsoTime
    next_attempt: IsoTime | None = Field(description="when a pending delivery is tried next")
    finished: IsoTime | None
    attempts: list[AttemptOut]


def _body_error(error: Any) -> dict[str, Any]:
    """A pydantic error about the body, as FastAPI would report it (``loc`` from ``body``); a body
    that is not JSON is not echoed back (it may not even be text)."""
    out = {**error, "loc": ("body", *error["loc"])}
    if not isinstance(out.get("input"), (str, int, float, bool, list, dict, type(None))):
        out.pop("input", None)
    if error.get("type") == "json_invalid":
        out.pop("input", None)
    return out


def _out(sub: Subscription) -> WebhookOut:
    return WebhookOut(
        id=sub.id,
        url=sub.url,
        events=list(sub.events),
        spaces=list(sub.spaces) if sub.spaces is not None else None,
        created=sub.created,
    )


def _delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        webhook=d.webhook,
        event=d.event,
        status=d.status,  # type: ignore[arg-type]  # one of STATUSES, written by tila.api.webhooks
        created=d.created,
        next_attempt=d.next_attempt,
        finished=d.finished,
        attempts=[
            AttemptOut(
                time=a.time, status_code=a.status_code, error=a.error, latency_ms=round(a.latency * 1000, 3)
            )
            for a in d.attempts
        ],
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses={
        **RESPONSES,
        409: {"model": ErrorOut, "description": f"{MAX_WEBHOOKS} webhooks exist already"},
        422: {"model": ValidationErrorOut, "description": "a bad URL, event, space or secret"},
    },
    summary="Subscribe a URL to events",
    # The body is read by the route, after the token check (a declared body parameter would be
    # parsed first, answering a stranger's broken body 422 instead of 401); described here instead.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": WebhookIn.model_json_schema()}},
        }
    },
)
async def create_webhook(request: Request, _: BookingDep, hooks: WebhooksDep, ctx: CtxDep) -> WebhookCreated:
    try:
        body = WebhookIn.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError([_body_error(e) for e in exc.errors(include_url=False)]) from None
    if body.spaces is not None:
        unknown = [s for s in body.spaces if ctx.site.space(s) is None]
        if unknown:
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("body", "spaces"),
                        "msg": f"unknown space {unknown[0][:64]!r} in site {ctx.site.id}",
                        "input": unknown[0],
                    }
                ]
            )
    try:
        # SQLite: off the event loop.
        with _queue():
            sub = await run_in_threadpool(hooks.create, body.url, body.events, body.spaces, body.secret)
    except WebhookError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return WebhookCreated(**_out(sub).model_dump(), secret=sub.secret)


@router.get("", response_model=list[WebhookOut], responses=RESPONSES, summary="Every webhook (no secrets)")
def list_webhooks(_: BookingDep, hooks: WebhooksDep) -> list[WebhookOut]:
    with _queue():
        return [_out(s) for s in hooks.subscriptions()]


@router.get(
    "/deliveries",
    response_model=list[DeliveryOut],
    responses={**RESPONSES, 422: {"model": ValidationErrorOut, "description": "a bad parameter"}},
    summary="The delivery log, newest first, with every attempt",
)
def list_deliveries(
    request: Request,
    _: BookingDep,
    hooks: WebhooksDep,
    webhook: Annotated[str | None, Query(max_length=64, description="one webhook's deliveries")] = None,
    status_: Annotated[
        Literal["pending", "delivered", "failed"] | None,
        Query(alias="status", description=" | ".join(STATUSES)),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many deliveries")] = 100,
) -> list[DeliveryOut]:
    # A misspelt filter (``?stauts=failed``) would otherwise list everything as if none were given.
    unknown = sorted(set(request.query_params) - _DELIVERY_PARAMS)
    if unknown:
        known = ", ".join(sorted(_DELIVERY_PARAMS))
        raise invalid(unknown[0][:40], f"unknown parameter (known: {known})", unknown[0][:40])
    # Nor would a repeated one (``?webhook=a&webhook=b`` lists b's alone).
    repeated = sorted(k for k in _DELIVERY_PARAMS if len(request.query_params.getlist(k)) > 1)
    if repeated:
        raise invalid(repeated[0], "give this parameter once")
    with _queue():
        return [_delivery_out(d) for d in hooks.deliveries(webhook, status_, limit)]


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={**RESPONSES, 404: {"model": ErrorOut, "description": "no such webhook"}},
    summary="Delete a webhook; its pending deliveries end as failed",
)
def delete_webhook(webhook_id: WebhookId, _: BookingDep, hooks: WebhooksDep) -> Response:
    with _queue():
        gone = hooks.delete(webhook_id)
    if not gone:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no webhook {webhook_id[:64]!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{webhook_id}/ping",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PingOut,
    responses={**RESPONSES, 404: {"model": ErrorOut, "description": "no such webhook"}},
    summary="Queue a ping event to one webhook",
)
def ping_webhook(webhook_id: WebhookId, _: BookingDep, hooks: WebhooksDep) -> PingOut:
    with _queue():
        delivery = hooks.ping(webhook_id)
    if delivery is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no webhook {webhook_id[:64]!r}")
    return PingOut(delivery=delivery)
