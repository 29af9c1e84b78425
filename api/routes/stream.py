"""``/v1/stream``: Server-Sent Events, one ``space`` event per state change (public).

On connect a client first gets every space's current state (as ``space`` events), so it needs
nothing else; with ``Last-Event-ID`` it gets only what it missed, if the server still remembers it.
After :func:`ping_seconds` without an event the stream sends a ``: ping`` comment, which keeps
proxies from closing an idle stream.

The stream is written by :class:`EventStream`, a small ASGI response of tila's own rather than
FastAPI's generator-based SSE: it watches for the client leaving (so an idle stream's subscription
goes at once, not at the next ping), it always closes the subscription itself (FastAPI 0.165 left it
to the garbage collector when a backed-up client vanished, after logging a BrokenResourceError),
and it waits on the subscription without a task per event, which matters at 1000 clients.

``/v1/stream/ws`` is the same stream over a WebSocket, for clients that prefer one: each message is
one JSON text frame ``{"event": "space", "id": 123, "data": {…a space as in /v1/spaces…}}``, and
``?last_event_id=`` resumes as ``Last-Event-ID`` does. uvicorn pings every 20 s (its
``ws_ping_interval``), which keeps proxies from closing it and ends it when the peer is gone. Both
share the broadcaster, its bounded per-client queues and :data:`MAX_CLIENTS`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import fastapi.routing
from fastapi import APIRouter, Depends, Header, HTTPException, Query, WebSocket, status
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from ..broadcast import PING, Broadcaster, StreamEvent, Subscription
from ..context import ApiContext
from ..deps import CtxDep
from ..models import ErrorOut

router = APIRouter(prefix="/v1/stream", tags=["stream"])

#: Concurrent streams answered before 503: each holds a socket and a queue of up to 256 events
#: (api/broadcast.py); a lobby screen or host view needs one each.
MAX_CLIENTS = 1000
#: Milliseconds a browser waits before reconnecting (the first event carries it): soon enough that a
#: lobby screen recovers right after a server restart.
RETRY_MS = 2000
#: Events sent in one chunk at most when several are waiting (at about 200 bytes each, 12 KiB).
BATCH = 64
#: Seconds without an event before a keep-alive comment: well inside the 60 s that nginx
#: (proxy_read_timeout) and most load balancers allow an idle connection.
PING_SECONDS = 15.0


def ping_seconds() -> float:
    """The keep-alive interval: FastAPI's own for SSE (15 s, ``fastapi.routing._PING_INTERVAL``) where
    it has one, so one setting governs every stream of the app; else :data:`PING_SECONDS`."""
    return float(getattr(fastapi.routing, "_PING_INTERVAL", PING_SECONDS))


#: The last event framed, and its frame: every client sends the same event in turn, so one entry
#: spares the others formatting it again (at 1000 clients, 999 times an event).
_last: tuple[StreamEvent | None, bytes] = (None, b"")


def _frame(ev: StreamEvent, retry: int | None) -> bytes:
    global _last
    if retry is None and _last[0] is ev:
        return _last[1]
    # ev.data is one line of JSON (serialised once for every client): no newline to split on.
    frame = f"id: {ev.id}\nevent: {ev.event}\ndata: {ev.data}\n\n".encode()
    if retry is not None:
        return f"retry: {retry}\n".encode() + frame
    _last = (ev, frame)
    return frame


class EventStream(Response):
    """``text/event-stream`` from a :class:`Broadcaster` subscription, until the client leaves or the
    broadcaster closes; the subscription is closed in every case."""

    media_type = "text/event-stream"

    def __init__(self, hub: Broadcaster, last_event_id: str | None = None) -> None:
        # Not Response.__init__: that would declare the empty body's Content-Length.
        self.status_code = 200
        self.background = None
        self.init_headers(
            {
                "Cache-Control": "no-cache",
                # nginx buffers proxied answers unless told not to; a buffered stream is no stream.
                "X-Accel-Buffering": "no",
            }
        )
        self.hub = hub
        self.last_event_id = last_event_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sub = self.hub.subscribe(self.last_event_id)

        async def watch() -> None:
            # Nothing more is read from a GET; the next message is the client leaving.
            while (await receive())["type"] != "http.disconnect":
                pass
            sub.end()

        watcher = asyncio.ensure_future(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            idle = ping_seconds()
            retry: int | None = RETRY_MS
            item = await sub.next(idle)
            while item is not None:
                if item is PING:
                    chunk = b": ping\n\n"
                else:
                    # Whatever else is already waiting goes in the same chunk: one write instead of
                    # one per event when a burst arrives or a client catches up.
                    frames = []
                    while isinstance(item, StreamEvent):
                        frames.append(_frame(item, retry))
                        retry = None
                        if len(frames) >= BATCH or not sub.ready():
                            break
                        item = await sub.next()
                    chunk = b"".join(frames)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                item = await sub.next(idle) if item is not None else None
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away mid-send (uvicorn's ClientDisconnected is an OSError)
        finally:
            watcher.cancel()
            sub.close()


async def _capacity(ctx: CtxDep) -> None:
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
    response_class=EventStream,
    status_code=200,
    dependencies=[Depends(_capacity)],
    summary="Live space states as Server-Sent Events",
    responses={
        200: {
            "description": "`event: space`, `id: <increasing number>`, `data:` a space as in /v1/spaces. "
            "First every space's current state, then each change; a `: ping` comment after 15 s "
            "without one.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        503: {
            "model": ErrorOut,
            "description": "too many streams, or shutting down",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
    },
)
async def stream(
    ctx: CtxDep,
    last_event_id: Annotated[str | None, Header(description="resume after this event id")] = None,
) -> EventStream:
    return EventStream(ctx.hub, last_event_id)


# ------------------------------------------------------------------------------------ WebSocket

#: Close codes (RFC 6455 §7.4.1): the server is going away; try again later (too many streams).
GOING_AWAY = 1001
TRY_AGAIN_LATER = 1013


@router.websocket("/ws")
async def stream_ws(
    websocket: WebSocket,
    last_event_id: Annotated[str | None, Query(description="resume after this event id")] = None,
) -> None:
    ctx = websocket.app.state.tila
    assert isinstance(ctx, ApiContext)
    if ctx.hub.closed or ctx.hub.clients >= MAX_CLIENTS:
        await websocket.close(TRY_AGAIN_LATER)
        return
    await websocket.accept()
    sub = ctx.hub.subscribe(last_event_id)
    sender = asyncio.ensure_future(_send_events(websocket, sub))
    # Nothing is expected from the client; reading tells at once when it has gone.
    receiver = asyncio.ensure_future(_until_disconnect(websocket))
    try:
        done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if sender in done and receiver not in done and sender.exception() is None:
            await websocket.close(GOING_AWAY)  # the broadcaster closed: the server is stopping
    finally:
        for task in (sender, receiver):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        sub.close()


async def _send_events(websocket: WebSocket, sub: Subscription) -> None:
    async for ev in sub.events():
        # ev.data is already a JSON document: framed as text, not parsed and written again.
        await websocket.send_text(f'{{"event":"{ev.event}","id":{ev.id},"data":{ev.data}}}')


async def _until_disconnect(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
