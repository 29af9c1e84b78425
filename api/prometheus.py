"""Prometheus text exposition (format 0.0.4), written by hand: a handful of counters needs no library.

HTTP requests are counted by route *template* (``/v1/spaces/{space_id}``), never the raw path, so a
scan of made-up URLs cannot grow the label set: unmatched requests share one ``route="unmatched"``.
Their latency goes into one histogram per method and route: the time from the request's arrival to
the last byte of the answer handed to the server, or, for an event stream (which never ends), to its
first byte.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from .webhooks import Webhooks

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Upper bounds of the latency buckets, seconds: from a cached JSON answer (well under a millisecond)
#: to a year-long utilisation query (seconds); the client libraries' defaults, with 1 ms and 2.5 ms
#: added because most of tila's answers fall below 5 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    """Cumulative-bucket histogram, the Prometheus way: counts per upper bound, a sum and a count."""

    __slots__ = ("bounds", "counts", "count", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, int]]:
        out, running = [], 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += n
            out.append(("+Inf" if bound == math.inf else _number(bound), running))
        return out


class HttpCounter:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.latency: dict[tuple[str, str], Histogram] = {}

    def observe(self, method: str, route: str, status: int) -> None:
        self.requests[(method, route, str(status))] += 1

    def observe_latency(self, method: str, route: str, seconds: float) -> None:
        h = self.latency.get((method, route))
        if h is None:
            h = self.latency[(method, route)] = Histogram()
        h.observe(seconds)


class RequestMetrics:
    """ASGI middleware counting each response by method, route template and status, at its start
    (a stream counts when it opens), and timing it. Plain ASGI, not BaseHTTPMiddleware, so streams
    pass untouched."""

    def __init__(self, app: ASGIApp, counter: HttpCounter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        timed = False
        t0 = time.perf_counter()

        def timing() -> None:
            nonlocal timed
            if not timed:
                timed = True
                self.counter.observe_latency(scope["method"], _route(scope), time.perf_counter() - t0)

        async def counting_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                self.counter.observe(scope["method"], _route(scope), message["status"])
                if _is_event_stream(message.get("headers", ())):
                    timing()
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                timing()

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            if not started:
                self.counter.observe(scope["method"], _route(scope), 500)
            timing()
            raise


def _is_event_stream(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and v.startswith(b"text/event-stream") for k, v in headers)


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def family(name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], Any]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        lines.append(f"{name}{_labels(labels)} {_number(value)}")
    return lines


def histograms(name: str, help_text: str, series: Iterable[tuple[dict[str, str], Histogram]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    for labels, h in series:
        for le, n in h.cumulative():
            lines.append(f"{name}_bucket{_labels({**labels, 'le': le})} {n}")
        lines.append(f"{name}_sum{_labels(labels)} {_number(round(h.sum, 6))}")
        lines.append(f"{name}_count{_labels(labels)} {h.count}")
    return lines


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        if value.is_integer():
            return str(int(value))
    return str(value)


def webhook_lines(hooks: Webhooks | None) -> list[str]:
    """The webhook deliveries' figures for /metrics (none when webhooks are off)."""
    if hooks is None:
        return []
    lines = family(
        "tila_api_webhook_deliveries_total",
        "counter",
        "Webhook deliveries finished since start, by outcome (delivered: a 2xx; failed: gave up).",
        [({"outcome": "delivered"}, hooks.delivered), ({"outcome": "failed"}, hooks.failed)],
    )
    lines += family(
        "tila_api_webhook_retries_total",
        "counter",
        "Webhook attempts that failed and were scheduled again.",
        [({}, hooks.retried)],
    )
    lines += family(
        "tila_api_webhook_lost_total",
        "counter",
        "space.state changes not queued because the webhook database failed.",
        [({}, hooks.lost)],
    )
    lines += family(
        "tila_api_webhook_pending",
        "gauge",
        "Webhook deliveries queued or awaiting a retry.",
        [({}, hooks.pending())],
    )
    return lines
