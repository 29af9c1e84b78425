"""What the routes share: one typed container, kept in ``app.state.tila`` by :func:`create_app`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..bookings.monitor import Bookings
from ..sensors.site import Site
from ..store import Store
from .auth import Tokens
from .broadcast import Broadcaster
from .live import LiveState
from .prometheus import HttpCounter
from .ratelimit import Buckets
from .settings import ApiSettings
from .views import SpaceDocs
from .webhooks import Webhooks


@dataclass(slots=True)
class ApiContext:
    site: Site
    live: LiveState
    store: Store
    tokens: Tokens
    hub: Broadcaster
    docs: SpaceDocs
    http: HttpCounter = field(default_factory=HttpCounter)
    settings: ApiSettings = field(default_factory=ApiSettings)
    #: The rate limiter's buckets (None when the limit is off), for /metrics.
    limiter: Buckets | None = None
    #: Where the API keeps its own state (bookings, webhook subscriptions and deliveries); None:
    #: those features are off and their routes answer 503 saying so.
    data_dir: Path | None = None
    #: Webhook subscriptions and their delivery queue (``data_dir / "webhooks.db"``); None without a
    #: data directory. Others emit through it: ``ctx.webhooks.emit("booking.no_show", {...})``.
    webhooks: Webhooks | None = None
    #: Bookings (``data_dir / "bookings.db"``), the no-show grace and the live no-show monitor; None
    #: without a data directory (the bookings routes answer 503).
    bookings: Bookings | None = None
