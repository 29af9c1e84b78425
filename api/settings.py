"""What :func:`tila.api.app.create_app` is told besides the site, state, store and tokens.

One frozen object, validated when made: a bad origin or rate stops ``tila api`` at start-up with one
line (service.py turns the ValueError into an argparse error), never at the first request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlsplit

from .ratelimit import BURST, RATE


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it."""


@dataclass(slots=True, frozen=True)
class ApiSettings:
    #: Origins whose pages may read the API from a browser (CORS), e.g. a booking front end's
    #: ``https://booking.example.fi``; ``*`` allows any. Empty (the default): no CORS headers at all,
    #: so only same-origin pages (the lobby, the hosts' view) and non-browser clients read the API.
    cors_origins: tuple[str, ...] = ()
    #: Requests a second per client address without a known token (api/ratelimit.py); 0 turns the
    #: limit off.
    rate_limit: float = RATE
    rate_burst: int = BURST

    def __post_init__(self) -> None:
        for origin in self.cors_origins:
            check_origin(origin)
        if not math.isfinite(self.rate_limit) or self.rate_limit < 0:
            raise SettingsError(f"rate limit must be a number ≥ 0, not {self.rate_limit!r}")
        if self.rate_burst < 1:
            raise SettingsError(f"rate burst must be at least 1, not {self.rate_burst!r}")


def check_origin(origin: str) -> str:
    """``scheme://host[:port]`` exactly as a browser sends it in ``Origin``, or ``*``."""
    if origin == "*":
        return origin
    shown = origin[:80]
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise SettingsError(f"CORS origin {shown!r} is not scheme://host[:port]") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"CORS origin {shown!r} is not http(s)://host[:port]")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        # A browser's Origin header never has a path, so an origin with one would never match.
        raise SettingsError(f"CORS origin {shown!r} must have no path, query or user (as in Origin headers)")
    canonical = f"{parts.scheme}://{parts.netloc.lower()}"
    if origin != canonical:
        # Origins are compared as strings; browsers send scheme and host in lower case.
        raise SettingsError(f"CORS origin {shown!r}: write it as browsers send it, {canonical[:80]!r}")
    return origin


def parse_origins(text: str) -> tuple[str, ...]:
    """``--cors-origins``: origins separated by commas; empty means none."""
    origins = tuple(o.strip().rstrip("/") for o in text.split(",") if o.strip())
    for o in origins:
        check_origin(o)
    return origins
