"""The app factory: :func:`create_app` wires site, live state, store and tokens into a FastAPI app.

Ownership: the caller creates the :class:`LiveState` and the store and passes them in. The app's
lifespan binds the live state to the server's event loop, starts its MQTT connection and connects
it to the SSE broadcaster; at shutdown it closes the streams and stops the MQTT connection. The store
stays the caller's to close.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from .. import __version__
from ..sensors.site import Site
from ..store import Store, StoreError
from .auth import Tokens
from .broadcast import Broadcaster
from .context import ApiContext
from .errors import store_error, validation_error
from .live import LiveState
from .prometheus import RequestMetrics
from .routes import gateways, health, pages, sensors, spaces, stream, utilisation
from .routes import site as site_routes
from .views import space_json

log = logging.getLogger(__name__)

DESCRIPTION = """\
Occupancy of the site's desks, rooms, booths and event hall: live (`/v1/spaces`, `/v1/stream`) and
over time (`/v1/utilisation`, after the UK Higher Education Space Management Group definitions).

Times are ISO 8601 with a UTC offset. Protected routes take `Authorization: Bearer TOKEN`, a token of
the `host`, `analyst` or `admin` scope (`admin` implies the others): 401 without a known token, 403
with one lacking the scope. A bad parameter is a 422 whose `message` says what is wrong.
"""


def create_app(site: Site, live: LiveState, store: Store, tokens: Tokens | str = "") -> FastAPI:
    """The HTTP API and pages for ``site``. ``tokens`` as parsed :class:`Tokens` or a ``scope:token``
    string (a bad string raises :class:`tila.api.auth.TokenError`)."""
    if isinstance(tokens, str):
        tokens = Tokens.parse(tokens)

    def snapshot() -> list[str]:
        return [space_json(s, live) for s in site.spaces]

    ctx = ApiContext(site=site, live=live, store=store, tokens=tokens, hub=Broadcaster(snapshot))

    def on_space_change(space_id: str) -> None:
        space = site.space(space_id)
        if space is not None:
            ctx.hub.publish(space_json(space, live))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        remove = live.add_listener(on_space_change)
        live.start(asyncio.get_running_loop())
        try:
            yield
        finally:
            ctx.hub.close()
            remove()
            # paho's loop_stop joins its thread: off the event loop.
            await asyncio.to_thread(live.stop)

    app = FastAPI(
        title=f"tila — {site.name.get('en') or site.id}",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.tila = ctx
    app.add_middleware(RequestMetrics, counter=ctx.http)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StoreError, store_error)
    for module in (spaces, site_routes, stream, utilisation, sensors, gateways, health, pages):
        app.include_router(module.router)
    app.mount("/static", pages.StaticAssets(directory=pages.STATIC), name="static")
    if not tokens:
        log.warning("no API tokens configured: host and analyst routes answer 401 to everyone")
    return app


def close_streams(app: FastAPI) -> None:
    """End every open event stream now, so a server shutdown does not wait for them."""
    ctx = getattr(app.state, "tila", None)
    if isinstance(ctx, ApiContext):
        ctx.hub.close()
