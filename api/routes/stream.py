"""``/v1/stream``: Server-Sent Events, one ``space`` event per state change (public).

On connect a client first gets every space's current state (as ``space`` events), so it needs
nothing else; with ``Last-Event-ID`` it gets only what it missed, if the server still remembers it.
FastAPI's SSE support sends a ``: ping`` comment after 15 s without events (fastapi.sse._PING_INTERVAL),
which keeps proxies from closing an idle stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, status
from fastapi.sse import EventSourceResponse, ServerSentEvent

from ..deps import CtxDep

router = APIRouter(prefix="/v1/stream", tags=["stream"])

#: Concurrent streams answered before 503: each holds a socket and a queue of up to 256 events
#: (api/broadcast.py); a lobby screen or host view needs one each.
MAX_CLIENTS = 1000
#: Milliseconds a browser waits before reconnecting (the first event carries it): soon enough that a
#: lobby screen recovers right after a server restart.
RETRY_MS = 2000


def _capacity(ctx: CtxDep) -> None:
    if ctx.hub.closed:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "shutting down", headers={"Retry-After": "2"}
        )
    if ctx.hub.clients >= MAX_CLIENTS:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "too many streams", headers={"Retry-After": "10"}
        )


@router.get(
    "",
    response_class=EventSourceResponse,
    dependencies=[Depends(_capacity)],
    summary="Live space states as Server-Sent Events",
    responses={
        200: {
            "description": "`event: space`, `id: <increasing number>`, `data:` a space as in /v1/spaces. "
            "First every space's current state, then each change."
        },
        503: {"description": "too many streams, or shutting down"},
    },
)
async def stream(
    ctx: CtxDep,
    last_event_id: Annotated[str | None, Header(description="resume after this event id")] = None,
) -> AsyncIterator[ServerSentEvent]:
    sub = ctx.hub.subscribe(last_event_id)
    retry: int | None = RETRY_MS
    try:
        async for ev in sub.events():
            yield ServerSentEvent(event=ev.event, id=str(ev.id), raw_data=ev.data, retry=retry)
            retry = None
    finally:
        sub.close()
