"""Helpers for the API tests (no tests here): a small site, tokens, a server thread, Mosquitto, SSE.

Kept as plain functions and context managers (the fixtures live in each test file) because
tests/conftest.py belongs to another part of the project.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tila.api.app import create_app
from tila.api.live import LiveState
from tila.api.service import serve
from tila.sensors.site import DAYS, Site, parse_site
from tila.store.sqlite import SqliteStore

SITE = "lab"
TOKENS = "host:host-token-1,analyst:analyst-token-1,booking:booking-token-1,admin:admin-token-1"
HOST = {"Authorization": "Bearer host-token-1"}
ANALYST = {"Authorization": "Bearer analyst-token-1"}
BOOKING = {"Authorization": "Bearer booking-token-1"}
ADMIN = {"Authorization": "Bearer admin-token-1"}

SITE_DOC: dict[str, Any] = {
    "site": {
        "id": SITE,
        "name": {"fi": "Testilabra", "sv": "Testlabbet", "en": "Test lab"},
        "timezone": "Europe/Helsinki",
        # The whole day, every day: open seconds are simply the window's length.
        "opening_hours": {d: "00:00-24:00" for d in DAYS},
    },
    "zones": [
        {"id": "open", "name": {"fi": "Avotila", "sv": "Öppet kontor", "en": "Open office"}},
        {"id": "rooms", "name": {"fi": "Huoneet", "sv": "Rum", "en": "Rooms"}},
    ],
    "spaces": [
        {
            "id": "desk-01",
            "kind": "desk",
            "zone": "open",
            "capacity": 1,
            "position": {"x": 0, "y": 0, "w": 1, "h": 1},
        },
        {"id": "desk-02", "kind": "desk", "zone": "open", "capacity": 1},
        {"id": "desk-03", "kind": "desk", "zone": "open", "capacity": 1},
        {
            "id": "room-a",
            "kind": "room",
            "zone": "rooms",
            "capacity": 4,
            "name": {"fi": "Neuvotteluhuone A", "sv": "Mötesrum A", "en": "Meeting room A"},
        },
        {"id": "booth-1", "kind": "booth", "zone": "rooms", "capacity": 1},
    ],
    "sensors": [
        {
            "id": "desk-01-pir",
            "space": "desk-01",
            "format": "zigbee2mqtt",
            "topic": "zigbee2mqtt/desk-01-pir",
        },
        {
            "id": "desk-02-pir",
            "space": "desk-02",
            "format": "zigbee2mqtt",
            "topic": "zigbee2mqtt/desk-02-pir",
        },
        {"id": "room-a-pir", "space": "room-a", "format": "zigbee2mqtt", "topic": "zigbee2mqtt/room-a-pir"},
    ],
}


def make_site(site_id: str = SITE) -> Site:
    doc = {**SITE_DOC, "site": {**SITE_DOC["site"], "id": site_id}}
    return parse_site(doc, "<test site>")


def space_topic(space: str, site: str = SITE) -> str:
    return f"tila/v1/{site}/spaces/{space}/state"


def space_payload(state: str, count: int, since: str = "2026-01-12T08:00:00+02:00") -> bytes:
    import json

    return json.dumps({"state": state, "count": count, "since": since}).encode()


@dataclass
class Api:
    site: Site
    live: LiveState
    store: SqliteStore
    app: Any


def make_api(tmp_path: Path, live: LiveState | None = None, tokens: str = TOKENS) -> Api:
    site = live.site if live is not None else make_site()
    live = live or LiveState(site)
    store = SqliteStore(tmp_path / "tila.db")
    return Api(site, live, store, create_app(site, live, store, tokens, data_dir=tmp_path))


# --------------------------------------------------------------------------------- server thread


@dataclass
class Running:
    base: str
    stop: threading.Event
    thread: threading.Thread
    errors: list[BaseException] = field(default_factory=list)


@contextlib.contextmanager
def running(app: Any) -> Iterator[Running]:
    """``serve`` on 127.0.0.1:0 in a thread; stopped (and joined) on exit."""
    stop = threading.Event()
    ready = threading.Event()
    ports: list[int] = []
    errors: list[BaseException] = []

    def on_listening(port: int) -> None:
        ports.append(port)
        ready.set()

    def target() -> None:
        try:
            serve(app, "127.0.0.1", 0, stop, on_listening)
        except BaseException as exc:
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=target, name="api-test-server", daemon=True)
    thread.start()
    assert ready.wait(10), "server did not start"
    assert not errors, errors
    run = Running(f"http://127.0.0.1:{ports[0]}", stop, thread, errors)
    try:
        yield run
    finally:
        stop.set()
        thread.join(10)


# --------------------------------------------------------------------------------------- SSE


def sse_events(lines: Iterator[str], n: int) -> list[dict[str, str]]:
    """Read ``n`` events (dicts of field → value; comments skipped) from an SSE line iterator."""
    out: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in lines:
        if line == "":
            if current:
                out.append(current)
                current = {}
                if len(out) == n:
                    return out
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        current[name] = value.removeprefix(" ")
    raise AssertionError(f"stream ended after {len(out)} of {n} events")
