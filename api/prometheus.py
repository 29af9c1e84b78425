"""Prometheus text exposition (format 0.0.4), written by hand: a handful of counters needs no library.

HTTP requests are counted by route *template* (``/v1/spaces/{space_id}``), never the raw path, so a
scan of made-up URLs cannot grow the label set: unmatched requests share one ``route="unmatched"``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class HttpCounter:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, str]] = Counter()

    def observe(self, method: str, route: str, status: int) -> None:
        self.requests[(method, route, str(status))] += 1


class RequestMetrics:
    """ASGI middleware counting each response by method, route template and status, at its start
    (a stream counts when it opens). Plain ASGI, not BaseHTTPMiddleware, so streams pass untouched."""

    def __init__(self, app: ASGIApp, counter: HttpCounter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def counting_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                self.counter.observe(scope["method"], _route(scope), message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            if not started:
                self.counter.observe(scope["method"], _route(scope), 500)
            raise


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def family(name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], Any]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        lines.append(f"{name}{_labels(labels)} {_number(value)}")
    return lines


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
