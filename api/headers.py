"""Headers on every answer, and the one check every request passes before anything else runs.

- ``X-Content-Type-Options: nosniff`` (a JSON answer is never run as script or styled as CSS) and
  ``Referrer-Policy: no-referrer`` (a link followed from the pages tells nothing of where it was) on
  every answer. The pages add their own Content-Security-Policy (api/routes/pages.py); a header an
  answer already has is never replaced or doubled.
- ``Cache-Control: no-store`` on answers to requests carrying a token, unless the route set its own:
  a shared cache must not keep a protected answer and hand it to someone else.
- A request body over :data:`MAX_BODY` is refused with 413 before it is read. No route reads a body
  at all (every route is a GET); the limit only stops a client from making the server hold one.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
#: Bytes of request body accepted: nothing needs one; 64 KiB as the gateway's --max-payload.
MAX_BODY = 64 * 1024


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP answer, and the body-size check."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorized = False
        for name, value in scope.get("headers", ()):
            name = name.lower()
            if name == b"authorization":
                authorized = True
            elif name == b"content-length" and _too_long(value):
                await _refuse_body(send)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                if authorized and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _too_long(value: bytes) -> bool:
    try:
        return int(value) > MAX_BODY
    except ValueError:
        return False  # the server itself answers 400 to a malformed Content-Length


async def _refuse_body(send: Send) -> None:
    body = json.dumps({"detail": f"request body over {MAX_BODY} bytes; no route takes one"}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *SECURITY_HEADERS,
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
