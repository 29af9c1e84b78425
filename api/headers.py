"""Headers on every answer, and the one check every request passes before anything else runs.

- ``X-Content-Type-Options: nosniff`` (a JSON answer is never run as script or styled as CSS) and
  ``Referrer-Policy: no-referrer`` (a link followed from the pages tells nothing of where it was) on
  every answer. The pages add their own Content-Security-Policy (api/routes/pages.py); a header an
  answer already has is never replaced or doubled.
- ``Cache-Control: no-store`` on answers to requests carrying a token, unless the route set its own:
  a shared cache must not keep a protected answer and hand it to someone else.
- A request body over its route's limit (:data:`MAX_BODY`, or :data:`BODY_LIMITS` for the routes
  that take more) is refused with 413: before it is read when ``Content-Length`` says so, and as soon
  as the limit is passed for a chunked body (which has no length). The route then sees the client as
  gone and its answer is dropped: only the 413 is sent.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
#: Bytes of request body accepted: a booking or a webhook subscription is well under 4 KiB; 64 KiB as
#: the gateway's --max-payload.
MAX_BODY = 64 * 1024
#: Routes taking more: an iCalendar upload (api/routes/bookings.py MAX_IMPORT_BODY; larger calendars
#: are imported from their URL).
BODY_LIMITS: dict[str, int] = {"/v1/bookings/import": 2 * 1024 * 1024}


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP answer, and the body-size check."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorized = False
        limit = BODY_LIMITS.get(scope.get("path", ""), MAX_BODY)
        for name, value in scope.get("headers", ()):
            name = name.lower()
            if name == b"authorization":
                authorized = True
            elif name == b"content-length" and _too_long(value, limit):
                await _refuse_body(send, limit)
                return
        received = 0
        refused = False

        async def receive_limited() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Answer now and tell the route the client is gone: whatever it answers is dropped.
                    refused = True
                    await _refuse_body(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def send_with_headers(message: Message) -> None:
            if refused:
                return
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                if authorized and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive_limited, send_with_headers)


def _too_long(value: bytes, limit: int) -> bool:
    try:
        return int(value) > limit
    except ValueError:
        return False  # the server itself answers 400 to a malformed Content-Length


async def _refuse_body(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body over {limit} bytes"}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *SECURITY_HEADERS,
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
