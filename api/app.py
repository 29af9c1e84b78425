"""The app factory: :func:`create_app` wires site, live state, store and tokens into a FastAPI app.

Middleware, outermost first: request metrics (every answer is counted and timed, 429s too), security
headers and the body-size check (api/headers.py), CORS when origins are configured (so that a 429
still carries the CORS headers a browser needs to read it), the rate limit (api/ratelimit.py), then
FastAPI's routing.

Ownership: the caller creates the :class:`LiveState` and the store and passes them in. The app's
lifespan binds the live state to the server's event loop, starts its MQTT connection and connects
it to the SSE broadcaster; at shutdown it closes the streams and stops the MQTT connection. The store
stays the caller's to close.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi

from .. import __version__
from ..bookings.compare import DEFAULT_GRACE
from ..bookings.monitor import Bookings
from ..sensors.site import Site
from ..store import Store, StoreError
from .auth import Tokens
from .broadcast import Broadcaster
from .context import ApiContext
from .errors import store_error, validation_error
from .headers import SecurityHeaders
from .live import LiveState
from .models import ErrorOut, ValidationErrorOut
from .prometheus import RequestMetrics
from .ratelimit import Buckets, RateLimiter
from .routes import bookings as booking_routes
from .routes import gateways, health, pages, sensors, spaces, stream, utilisation
from .routes import site as site_routes
from .routes import webhooks as webhook_routes
from .settings import ApiSettings
from .views import SpaceDocs
from .webhooks import DeliveryPolicy, Webhooks

log = logging.getLogger(__name__)

DESCRIPTION = """\
Occupancy of the site's desks, rooms, booths and event hall: live (`/v1/spaces`, `/v1/stream`) and
over time (`/v1/utilisation`, after the UK Higher Education Space Management Group definitions).

Times are ISO 8601 with a UTC offset. Protected routes take `Authorization: Bearer TOKEN`, a token of
the `host`, `analyst` or `admin` scope (`admin` implies the others): 401 without a known token, 403
with one lacking the scope. A bad parameter is a 422 whose `message` says what is wrong.

Requests without a known token are limited per client address (a token bucket); over the limit the
answer is 429 with `Retry-After`. An event stream counts once, when it connects.
"""


def create_app(
    site: Site,
    live: LiveState,
    store: Store,
    tokens: Tokens | str = "",
    settings: ApiSettings | None = None,
    data_dir: Path | None = None,
    webhook_policy: DeliveryPolicy | None = None,
    noshow_grace: timedelta = DEFAULT_GRACE,
) -> FastAPI:
    """The HTTP API and pages for ``site``. ``tokens`` as parsed :class:`Tokens` or a ``scope:token``
    string (a bad string raises :class:`tila.api.auth.TokenError`); ``settings`` for CORS and the rate
    limit (the defaults when None); ``data_dir`` for the API's own state (bookings, webhooks);
    ``webhook_policy`` for webhook retries (a bad ``webhooks.db`` raises
    :class:`tila.api.webhooks.WebhookError`); ``noshow_grace``: how long after a booking's start
    the live monitor decides whether it was a no-show."""
    if isinstance(tokens, str):
        tokens = Tokens.parse(tokens)
    settings = settings or ApiSettings()

    docs = SpaceDocs(site, live)

    limiter = Buckets(settings.rate_limit, settings.rate_burst) if settings.rate_limit > 0 else None
    ctx = ApiContext(
        site=site,
        live=live,
        store=store,
        tokens=tokens,
        hub=Broadcaster(docs.all),
        docs=docs,
        settings=settings,
        limiter=limiter,
        data_dir=data_dir,
        webhooks=Webhooks(data_dir / "webhooks.db", webhook_policy) if data_dir is not None else None,
    )
    if data_dir is not None:

        def emit(event: str, data: dict[str, Any]) -> None:
            if ctx.webhooks is not None:
                ctx.webhooks.emit(event, data)

        ctx.bookings = Bookings.open(data_dir, site, live, noshow_grace, emit)

    def on_space_change(space_id: str) -> None:
        space = site.space(space_id)
        if space is not None:
            doc = docs.one(space)
            ctx.hub.publish(doc)
            if ctx.webhooks is not None:
                ctx.webhooks.space_changed(json.loads(doc))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        remove = live.add_listener(on_space_change)
        live.start(asyncio.get_running_loop())
        if ctx.webhooks is not None:
            await ctx.webhooks.start()
        if ctx.bookings is not None and ctx.bookings.monitor is not None:
            ctx.bookings.monitor.start()
        try:
            yield
        finally:
            ctx.hub.close()
            remove()
            if ctx.bookings is not None and ctx.bookings.monitor is not None:
                await ctx.bookings.monitor.stop()
            if ctx.webhooks is not None:
                await ctx.webhooks.stop()  # pending deliveries stay queued for the next start
                ctx.webhooks.close()
            # paho's loop_stop joins its thread: off the event loop.
            await asyncio.to_thread(live.stop)

    app = FastAPI(
        title=f"tila — {site.name.get('en') or site.id}",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.tila = ctx
    # add_middleware wraps what is there: the last added is the outermost.
    if limiter is not None:
        app.add_middleware(RateLimiter, buckets=limiter, tokens=tokens)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            # Bearer tokens travel in a header, not cookies: no credentials mode needed, and "*"
            # stays usable.
            allow_credentials=False,
            # POST/DELETE for booking tools in a browser (bookings, webhooks); JSON and iCalendar
            # bodies need Content-Type, which makes the browser ask first (a preflight).
            allow_methods=["GET", "HEAD", "POST", "DELETE"],
            allow_headers=["Authorization", "Last-Event-ID", "Content-Type"],
            expose_headers=["Retry-After"],
            max_age=600,
        )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestMetrics, counter=ctx.http)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StoreError, store_error)
    for module in (spaces, site_routes, stream, utilisation, sensors, gateways, health, pages):
        app.include_router(module.router)
    app.include_router(webhook_routes.router)
    app.include_router(booking_routes.router)
    app.mount("/static", pages.StaticAssets(directory=pages.STATIC), name="static")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            app.openapi_schema = complete_openapi(doc, rate_limited=limiter is not None)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend it
    if not tokens:
        log.warning("no API tokens configured: host and analyst routes answer 401 to everyone")
    return app


_REF_422 = "#/components/schemas/HTTPValidationError"


def complete_openapi(doc: dict[str, Any], *, rate_limited: bool) -> dict[str, Any]:
    """What FastAPI cannot know from the routes alone: the 422 answer's real shape (with ``message``)
    on every operation, and the 429 the rate limit gives, with ``Retry-After``, on every operation
    (the pages' included, whose router this module does not own)."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for ops in doc.get("paths", {}).values():
        for op in ops.values():
            responses = op.setdefault("responses", {})
            for body in responses.get("422", {}).get("content", {}).values():
                if body.get("schema", {}).get("$ref") == _REF_422:
                    body["schema"] = {"$ref": "#/components/schemas/ValidationErrorOut"}
                    responses["422"]["description"] = "a bad parameter: `message` says which and why"
            if "requestBody" in op and "413" not in responses:
                responses["413"] = {
                    "description": "a request body over the route's limit (refused before it is read)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
                }
            if rate_limited and "429" not in responses:
                responses["429"] = {
                    "description": "too many requests without a token from this address",
                    "headers": {
                        "Retry-After": {
                            "description": "seconds until the next request is let through",
                            "schema": {"type": "integer"},
                        }
                    },
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
                }
    if rate_limited or '"413"' in json.dumps(doc):
        schemas.setdefault("ErrorOut", ErrorOut.model_json_schema())
    schemas.setdefault("ValidationErrorOut", ValidationErrorOut.model_json_schema())
    for unused in ("HTTPValidationError", "ValidationError"):  # the second is used by the first only
        if f'"#/components/schemas/{unused}"' not in json.dumps(doc):
            schemas.pop(unused, None)
    return doc


def close_streams(app: FastAPI) -> None:
    """End every open event stream now, so a server shutdown does not wait for them."""
    ctx = getattr(app.state, "tila", None)
    if isinstance(ctx, ApiContext):
        ctx.hub.close()
