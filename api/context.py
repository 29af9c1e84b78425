"""What the routes share: one typed container, kept in ``app.state.tila`` by :func:`create_app`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sensors.site import Site
from ..store import Store
from .auth import Tokens
from .broadcast import Broadcaster
from .live import LiveState
from .prometheus import HttpCounter


@dataclass(slots=True)
class ApiContext:
    site: Site
    live: LiveState
    store: Store
    tokens: Tokens
    hub: Broadcaster
    http: HttpCounter = field(default_factory=HttpCounter)
