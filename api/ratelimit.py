"""Request-rate limits: a token bucket per client address, in this process.

**Policy.** Every request that does not carry a known bearer token — every request to a public route,
and every attempt at a protected one without a valid token — takes one token from the bucket of its
client address. A bucket holds ``burst`` tokens and refills at ``rate`` tokens a second; an empty
bucket answers 429 with ``Retry-After`` (whole seconds until a token is back). Requests with a known
token are not limited: they come from hosts, analysts and booking back ends the operator trusts, and
a flood of guessed tokens is limited like any anonymous request. An event stream or WebSocket costs
one token when it connects, however long it then stays open.

**Addresses.** The client address is the one the server reports: uvicorn replaces it with
``X-Forwarded-For`` only for proxies listed in ``--forwarded-allow-ips``, so behind a proxy elsewhere
that option must name it, or every client shares the proxy's bucket. IPv6 clients are grouped by
their /64, the prefix one subscriber usually gets, so one host cannot escape its limit by rotating
addresses within it.

**Memory.** Buckets are kept in last-use order; a bucket that has had time to refill completely is
the same as none and is dropped when a new client arrives, and never more than ``max_clients`` are
kept (the least recently used goes first), so a scan from many addresses cannot grow memory.
"""

from __future__ import annotations

import ipaddress
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from .auth import Tokens

#: Default limit: 20 requests a second with bursts of 100 per address. A lobby screen's start-up is
#: five requests (page, CSS, JS, /v1/site, the stream) and it then holds one stream, so the limit only
#: matters to pollers: an office NAT with 500 browsers each polling /v1/spaces every 30 s is 17/s.
RATE = 20.0
BURST = 100
#: Buckets kept at most: about 100 bytes each, so a few MiB however many addresses call.
MAX_CLIENTS = 20_000


class Buckets:
    """Token buckets by key; :meth:`take` is 0.0 when a request may go, else seconds to wait."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not rate > 0 or not math.isfinite(rate):
            raise ValueError(f"rate must be a positive number, not {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        self.rate = float(rate)
        self.burst = int(burst)
        self.max_clients = max_clients
        self._clock = clock
        #: key → [tokens, time of last update], oldest use first (O(1) moves and pops at both ends).
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()
        #: Seconds an idle bucket takes to refill completely: after that it is no different from none.
        self._full_after = self.burst / self.rate
        self.limited = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        now = self._clock()
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            self._make_room(now)
            bucket = buckets[key] = [float(self.burst), now]
        else:
            bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
            buckets.move_to_end(key)  # the order stays by last use
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return 0.0
        self.limited += 1
        return (1.0 - bucket[0]) / self.rate

    def _make_room(self, now: float) -> None:
        buckets = self._buckets
        # Oldest use first: drop every bucket that has refilled completely since its last use.
        while buckets and now - next(iter(buckets.values()))[1] >= self._full_after:
            buckets.popitem(last=False)
        while len(buckets) >= self.max_clients:
            # Still full of active clients: forget the one seen longest ago (it starts afresh).
            buckets.popitem(last=False)
            self.evicted += 1


def client_key(scope: Scope) -> str:
    """The address a request is limited by: the client's IPv4 address, or its IPv6 /64."""
    client = scope.get("client")
    host = str(client[0]) if client else ""
    if ":" not in host:
        return host or "unknown"
    try:
        addr = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return host[:64]
    if addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(ipaddress.IPv6Network((addr, 64), strict=False))


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


class RateLimiter:
    """ASGI middleware applying :class:`Buckets` to HTTP requests and WebSocket connects."""

    def __init__(self, app: ASGIApp, buckets: Buckets, tokens: Tokens) -> None:
        self.app = app
        self.buckets = buckets
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        if token is not None and self.tokens.scopes(token):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(client_key(scope))
        if not wait:
            await self.app(scope, receive, send)
            return
        retry = max(1, math.ceil(wait))
        body = json.dumps(
            {
                "detail": f"too many requests from this address (at most {self.buckets.rate:g} a second, "
                f"bursts of {self.buckets.burst}); retry after {retry} s"
            }
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry).encode()),
        ]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 429, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif "websocket.http.response" in scope.get("extensions", {}):
            # ASGI's denial-response extension: the handshake gets a real 429 answer.
            await send({"type": "websocket.http.response.start", "status": 429, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            # 1013 "try again later"; before the handshake, the server turns this into a 403.
            await send({"type": "websocket.close", "code": 1013})
