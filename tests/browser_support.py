"""Helpers for the browser tests and scripts/screenshots.py (no tests here).

- :class:`LabServer`: the real app (``create_app``) for the bundled Work 2.0 Lab site, served by
  ``serve`` on a loopback port in a thread, with a :class:`LiveState` that has no MQTT connection and
  is fed through ``submit`` (what paho's thread does for each retained message);
- :func:`demo_state`: a fixed, plausible picture of the lab (desks free, in use and unknown, a room
  over capacity, a sensor offline, one on low battery, a gateway falling behind, one offline);
- :func:`launch_chromium`: Debian's Chromium through Playwright (no browser download).

Kept as plain functions and classes because tests/conftest.py belongs to another part of the project.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tila.api.app import create_app
from tila.api.live import LiveState
from tila.api.service import bind, serve_on
from tila.sensors import topics
from tila.sensors.site import Site, bundled_site_path, load_site
from tila.store.sqlite import SqliteStore

HOST_TOKEN = "host-token-browser"
TOKENS = f"host:{HOST_TOKEN}"

#: The flags that make Chromium work here: headless as root needs --no-sandbox, and on a closed
#: network its own background connections (updates, sync, field trials) must be switched off or they
#: are refused and slow it down. Playwright adds --headless and a fresh --user-data-dir itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """Debian's Chromium (``TILA_CHROMIUM`` overrides), or None when it is not installed."""
    for candidate in (os.environ.get("TILA_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def launch_chromium(playwright: Any) -> Any:
    """A headless Chromium browser (Playwright's ``Browser``); raises when Chromium is missing."""
    path = chromium_path()
    if path is None:
        raise RuntimeError("Chromium is not installed: run scripts/test, which installs Debian's chromium")
    return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)


def axe_script() -> str:
    """axe-core's ``axe.min.js``, as shipped inside the axe-playwright-python package (PyPI)."""
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")


def bundled_site() -> Site:
    return load_site(bundled_site_path())


# ---------------------------------------------------------------------------------------- server


@dataclass
class LabServer:
    """The app on 127.0.0.1 (``port`` 0: any free port), fed by hand. ``start``/``stop`` may repeat:
    each start is a new app and a new live state on the same port, as after a server restart."""

    data_dir: Path
    site: Site = field(default_factory=bundled_site)
    port: int = 0
    tokens: str = TOKENS
    live: LiveState | None = None
    _stop: threading.Event | None = None
    _thread: threading.Thread | None = None
    _store: SqliteStore | None = None
    errors: list[BaseException] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LabServer:
        assert self._thread is None, "already running"
        self.live = LiveState(self.site)
        self._store = SqliteStore(self.data_dir / "tila.db")
        app = create_app(self.site, self.live, self._store, self.tokens)
        sock = bind("127.0.0.1", self.port)  # SO_REUSEADDR: the same port again after a restart
        self.port = sock.getsockname()[1]
        stop, ready = threading.Event(), threading.Event()

        def target() -> None:
            try:
                serve_on(sock, app, stop, lambda _port: ready.set())
            except BaseException as exc:  # reported by start() and by the tests
                self.errors.append(exc)
                ready.set()

        self._stop = stop
        self._thread = threading.Thread(target=target, name="browser-test-api", daemon=True)
        self._thread.start()
        if not ready.wait(10) or self.errors:
            raise RuntimeError(f"the API did not start: {self.errors}")
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        assert self._stop is not None and self._store is not None
        self._stop.set()
        self._thread.join(10)
        alive = self._thread.is_alive()
        self._thread = None
        self._store.close()
        if alive:
            raise RuntimeError("the API did not stop within 10 s")

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------ feeding

    def space(self, space: str, state: str, count: int | None = None, since: datetime | None = None) -> None:
        """A space's retained state, as the aggregator publishes it."""
        if count is None:
            count = 1 if state == "occupied" else 0
        since = since or datetime.now(UTC)
        doc = {"state": state, "count": count, "since": since.isoformat()}
        self._submit(topics.space_state(self.site.id, space), json.dumps(doc))

    def sensor(
        self,
        sensor: str,
        *,
        online: bool | None = True,
        battery: float | None = None,
        linkquality: int | None = None,
        last_seen: datetime | None = None,
    ) -> None:
        doc = {
            "online": online,
            "battery": battery,
            "linkquality": linkquality,
            "last_seen": last_seen.isoformat() if last_seen else None,
        }
        self._submit(topics.sensor_state(self.site.id, sensor), json.dumps(doc))

    def gateway(self, gateway: str, status: str, health: dict[str, Any] | None = None) -> None:
        self._submit(topics.gateway_status(self.site.id, gateway), status)
        if health is not None:
            self._submit(topics.gateway_health(self.site.id, gateway), json.dumps(health))

    def _submit(self, topic: str, payload: str) -> None:
        assert self.live is not None, "not started"
        self.live.submit(topic, payload.encode())


# ------------------------------------------------------------------------------------ demo state

#: Desks in use and desks without data in the demo picture (the rest are free).
DEMO_OCCUPIED_DESKS = {2, 3, 5, 8, 9, 12, 15, 16, 17, 21, 24, 27, 28, 30, 34, 35, 36, 39}
DEMO_UNKNOWN_DESKS = {13, 38}
#: Rooms, booths and the hall: (state, head count, minutes ago). room-sointu holds 9 in 8 seats.
DEMO_ROOMS: dict[str, tuple[str, int, int]] = {
    "room-kipina": ("occupied", 3, 25),
    "room-kide": ("free", 0, 12),
    "room-sointu": ("occupied", 9, 40),
    "room-aalto": ("unknown", 0, 75),
    "room-verstas": ("free", 0, 5),
    "booth-1": ("occupied", 1, 8),
    "booth-2": ("free", 0, 31),
    "booth-3": ("free", 0, 2),
    "booth-4": ("occupied", 1, 14),
    "event-hall": ("occupied", 24, 55),
}
#: Sensors with something to report: one offline, one on low battery, one silent for three hours.
DEMO_OFFLINE_SENSOR = "booth-3-pir"
DEMO_LOW_BATTERY_SENSOR = "desk-07-pir"
DEMO_SILENT_SENSOR = "desk-13-pir"


def gateway_health(depth: int = 0, oldest_age: float | None = None, forwarded: int = 0) -> dict[str, Any]:
    """A gateway health document shaped as tila.gateway.bridge publishes it."""
    return {
        "gateway": "gw",
        "version": "0.1.0",
        "time": datetime.now(UTC).isoformat(),
        "local_connected": True,
        "outbox_depth": depth,
        "oldest_unsent_age_s": oldest_age,
        "forwarded": forwarded,
        "quarantined": {},
        "ignored": {},
        "dropped": {},
        "outbox_capacity": 10_000_000,
        "clock_steps_back": 0,
        "recent_quarantine": [],
    }


def desk_ids(numbers: Iterable[int]) -> set[str]:
    return {f"desk-{n:02d}" for n in numbers}


def demo_state(server: LabServer) -> None:
    """Feed the fixed demo picture: spaces, sensors and two gateways."""
    now = datetime.now(UTC)
    for i, space in enumerate(server.site.spaces):
        minutes = (i * 7) % 50 + 1
        if space.id in DEMO_ROOMS:
            state, count, minutes = DEMO_ROOMS[space.id]
            server.space(space.id, state, count, now - timedelta(minutes=minutes))
        elif space.id in desk_ids(DEMO_UNKNOWN_DESKS):
            server.space(space.id, "unknown", 0, now - timedelta(hours=3))
        elif space.id in desk_ids(DEMO_OCCUPIED_DESKS):
            server.space(space.id, "occupied", 1, now - timedelta(minutes=minutes))
        else:
            server.space(space.id, "free", 0, now - timedelta(minutes=minutes))
    for i, sensor in enumerate(server.site.sensors):
        battery = None if sensor.format == "chirpstack-milesight" else float(100 - (i * 13) % 45)
        seen = now - timedelta(minutes=(i * 3) % 20)
        online: bool | None = True
        if sensor.id == DEMO_OFFLINE_SENSOR:
            online, seen = False, now - timedelta(minutes=47)
        if sensor.id == DEMO_LOW_BATTERY_SENSOR:
            battery = 12.0
        if sensor.id == DEMO_SILENT_SENSOR:
            seen = now - timedelta(hours=3)
        server.sensor(
            sensor.id, online=online, battery=battery, linkquality=60 + (i * 17) % 150, last_seen=seen
        )
    server.gateway("gw-1", "online", gateway_health(depth=0, forwarded=18_342))
    server.gateway("gw-2", "online", gateway_health(depth=1_832, oldest_age=420.0, forwarded=9_117))


def demo_free_desks(site: Site) -> dict[str, int]:
    """Free desks per zone in the demo picture (unknown desks are not free)."""
    busy = desk_ids(DEMO_OCCUPIED_DESKS) | desk_ids(DEMO_UNKNOWN_DESKS)
    out: dict[str, int] = {}
    for s in site.spaces:
        if s.kind == "desk":
            out[s.zone] = out.get(s.zone, 0) + (s.id not in busy)
    return out


# ------------------------------------------------------------------------------- page checks (JS)

#: Text that does not fit: every visible text node's boxes must lie inside the element that frames it
#: (a plan tile, a zone card, a chip, a table cell, ...) and inside the viewport's width; no
#: single-line element may be wider inside than outside (cut or ellipsised); no box that hides its
#: overflow may have any; zone names on the plan cover no space. Returns the offenders.
OVERFLOW_JS = """
() => {
  const frames = ".sp, .zone, .chip, .room, .tile, .zone-tag, .banner, .top, .alert, td, th, .summary div, label";
  const hidden = (e) => {
    for (let n = e; n && n !== document.documentElement; n = n.parentElement) {
      const cs = getComputedStyle(n);
      if (cs.display === "none" || cs.visibility === "hidden" || n.classList.contains("sr-only")) return true;
    }
    return false;
  };
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t; (t = walker.nextNode());) {
    const text = t.textContent.trim();
    if (!text || hidden(t.parentElement)) continue;
    const frame = t.parentElement.closest(frames);
    // Cells of a table inside a scrolling region may run past the viewport: that region scrolls.
    const scroller = t.parentElement.closest(".scroll");
    const fb = frame ? frame.getBoundingClientRect() : null;
    const range = document.createRange();
    range.selectNodeContents(t);
    for (const r of range.getClientRects()) {
      if (fb && (r.left < fb.left - 1 || r.right > fb.right + 1 || r.top < fb.top - 1 || r.bottom > fb.bottom + 1)) {
        out.push(`${text.slice(0, 40)}: outside its ${frame.className || frame.tagName}`);
      }
      if (!scroller && (r.left < -1 || r.right > innerWidth + 1)) out.push(`${text.slice(0, 40)}: outside the viewport`);
    }
  }
  for (const e of document.querySelectorAll("h1, h2, .zone-name, .room-name, .sp .name, .sp .word, .zone-tag, .chip")) {
    if (!hidden(e) && e.scrollWidth > e.clientWidth + 1) out.push(`${e.textContent.slice(0, 40)}: cut (${e.scrollWidth} > ${e.clientWidth})`);
  }
  // Nothing is cut off by a box that hides its overflow (a tile, the room list, the site's name).
  for (const e of document.body.querySelectorAll("*")) {
    const cs = getComputedStyle(e);
    if (![cs.overflowX, cs.overflowY].some((o) => o === "hidden" || o === "clip") || hidden(e)) continue;
    if (e.scrollHeight > e.clientHeight + 1 || e.scrollWidth > e.clientWidth + 1) {
      out.push(`${(e.id || e.className || e.tagName).toString().slice(0, 40)}: clipped (${e.scrollWidth}×${e.scrollHeight} in ${e.clientWidth}×${e.clientHeight})`);
    }
  }
  // The zone names drawn on the plan must not cover any space.
  const tiles = [...document.querySelectorAll(".sp")].map((e) => e.getBoundingClientRect());
  for (const tag of document.querySelectorAll(".zone-tag")) {
    const a = tag.getBoundingClientRect();
    if (tiles.some((b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom)) {
      out.push(`${tag.textContent}: covers a space`);
    }
  }
  return [...new Set(out)];
}
"""

#: The lobby has drawn every space it was sent: {id: state} of the plan and the room list.
DRAWN_JS = """
() => Object.fromEntries([...document.querySelectorAll("#plan [data-space], #rooms [data-space]")]
  .map((e) => [e.dataset.space, e.dataset.state]))
"""


def site_without_positions() -> Site:
    """The bundled site with no ``position`` anywhere: the lobby's list layout."""
    import tomllib

    from tila.sensors.site import parse_site

    doc = tomllib.loads(bundled_site_path().read_text(encoding="utf-8"))
    for space in doc["spaces"]:
        space.pop("position", None)
    return parse_site(doc, "<bundled site without positions>")
