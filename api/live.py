"""Live state from MQTT: the latest retained space, sensor and gateway messages of one site.

The aggregator publishes each space's state, each sensor's state and the gateways publish their status
and health, all retained, so a fresh subscription receives the whole picture at once.

:meth:`LiveState.handle` is a plain function of (topic, payload) and the state so far: it validates,
updates and tells whether a space's public view changed. Everything else is plumbing around it:
paho's network thread hands each message to the asyncio loop with ``call_soon_threadsafe`` (it never
blocks and never touches the state itself), and the loop runs ``handle`` and then the listeners (the
SSE broadcaster). Reads (the HTTP routes) run on the same loop, so no lock is needed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..mqtt import Connection, Message, MqttUrl
from ..sensors import topics
from ..sensors.site import Site

log = logging.getLogger(__name__)

STATES = ("free", "occupied", "unknown")
#: Larger payloads are refused: the aggregator's states are under 100 bytes and a gateway's health
#: document a few hundred; this only stops a broken publisher from filling memory.
MAX_PAYLOAD = 64 * 1024
#: After losing the broker this long, every space shows ``unknown`` rather than a state that may be
#: stale. paho retries after 1 s, then 2, 4, 8 (tila.mqtt: 1 s doubling), so a broker restart or a
#: network blip reconnects (and the retained states come back) well within it.
STALE_AFTER_DISCONNECT = 20.0
#: MalformedError messages logged in full (truncated) before only every 100th is.
_LOG_FIRST = 10
_LOG_TRUNCATE = 120


@dataclass(slots=True, frozen=True)
class SpaceLive:
    state: str = "unknown"
    count: int = 0
    since: datetime | None = None


@dataclass(slots=True, frozen=True)
class SensorLive:
    online: bool | None = None
    battery: float | None = None
    linkquality: int | None = None
    last_seen: datetime | None = None


@dataclass(slots=True, frozen=True)
class GatewayLive:
    status: str | None = None
    health: dict[str, Any] | None = None


class MalformedError(ValueError):
    """A payload that does not fit its topic; the message names what is wrong."""


UNKNOWN_SPACE = SpaceLive()
UNKNOWN_SENSOR = SensorLive()


class LiveState:
    """The latest state of every space, sensor and gateway of ``site``, from MQTT.

    Without an ``mqtt`` URL it only holds what :meth:`handle` (or :meth:`submit`) is given: tests and
    in-process callers feed it directly.
    """

    def __init__(
        self,
        site: Site,
        mqtt: MqttUrl | None = None,
        *,
        client_id: str | None = None,
        stale_after: float = STALE_AFTER_DISCONNECT,
    ) -> None:
        self.site = site
        self.mqtt = mqtt
        self.stale_after = stale_after
        self._spaces: dict[str, SpaceLive] = {}
        self._sensors: dict[str, SensorLive] = {}
        self._gateways: dict[str, GatewayLive] = {}
        #: Aggregator instances: their retained status and health (the API's /healthz reports them).
        self._aggregators: dict[str, GatewayLive] = {}
        #: Messages handled, malformed and for unknown ids, by kind (space, sensor, gateway_status,
        #: gateway_health, other).
        self.received: Counter[str] = Counter()
        self.malformed: Counter[str] = Counter()
        self.unknown: Counter[str] = Counter()
        self.stale_expiries = 0
        #: Incremented on every change of a space's state: lets readers cache what they made of them.
        self.space_changes = 0
        self._listeners: list[Callable[[str], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._conn: Connection | None = None
        if mqtt is not None:
            self._conn = Connection(
                mqtt,
                client_id or f"tila-api-{site.id}-{secrets.token_hex(4)}",
                persistent=False,
                subscriptions=[
                    (topics.space_state_all(site.id), 1),
                    (topics.sensor_state_all(site.id), 1),
                    (topics.gateways_all(site.id), 1),
                    (topics.aggregators_all(site.id), 1),
                ],
                on_message=self._on_message,
                on_connect=self._on_connect,
                on_disconnect=self._on_disconnect,
            )

    # ------------------------------------------------------------------------------------- reads

    def space(self, space_id: str) -> SpaceLive:
        return self._spaces.get(space_id, UNKNOWN_SPACE)

    def sensor(self, sensor_id: str) -> SensorLive:
        return self._sensors.get(sensor_id, UNKNOWN_SENSOR)

    def gateways(self) -> dict[str, GatewayLive]:
        return dict(sorted(self._gateways.items()))

    def aggregator_reports(self) -> dict[str, GatewayLive]:
        """Each aggregator instance's retained status and last health document."""
        return dict(sorted(self._aggregators.items()))

    def aggregators(self) -> dict[str, str]:
        """Each aggregator instance: ``ok``, ``degraded`` (its store is down) or ``offline``."""
        out = {}
        for ident, a in sorted(self._aggregators.items()):
            if a.status == "offline":
                out[ident] = "offline"
            else:
                out[ident] = str((a.health or {}).get("status", "ok"))
        return out

    @property
    def connected(self) -> bool:
        """Connected to the broker now (False when there is no broker at all)."""
        return self._conn is not None and self._conn.connected.is_set()

    # ---------------------------------------------------------------------------- the pure part

    def handle(self, topic: str, payload: bytes) -> str | None:
        """Apply one MQTT message; the id of the space whose public state changed, else None.

        MalformedError payloads and unknown ids are logged (truncated) and counted, never raised.
        """
        parsed = topics.parse(topic)
        if parsed is None or parsed[0] != self.site.id:
            self._count_unknown("other", topic, "not a topic of this site")
            return None
        _, kind, ident, leaf = parsed
        key = {
            ("spaces", "state"): "space",
            ("sensors", "state"): "sensor",
            ("gateways", "status"): "gateway_status",
            ("gateways", "health"): "gateway_health",
            ("aggregators", "status"): "aggregator_status",
            ("aggregators", "health"): "aggregator_health",
        }.get((kind, leaf))
        if key is None:
            self._count_unknown("other", topic, "not a topic the API reads")
            return None
        self.received[key] += 1
        try:
            if len(payload) > MAX_PAYLOAD:
                raise MalformedError(f"payload of {len(payload)} bytes (at most {MAX_PAYLOAD})")
            if key == "space":
                if self.site.space(ident) is None:
                    self._count_unknown(key, topic, f"unknown space {ident[:64]!r}")
                    return None
                new = parse_space_state(payload)
                if self._spaces.get(ident, UNKNOWN_SPACE) == new:
                    return None
                self._spaces[ident] = new
                self.space_changes += 1
                return ident
            if key == "sensor":
                if self.site.sensor(ident) is None:
                    self._count_unknown(key, topic, f"unknown sensor {ident[:64]!r}")
                    return None
                self._sensors[ident] = parse_sensor_state(payload)
                return None
            if key.startswith("aggregator"):
                prev = self._aggregators.get(ident, GatewayLive())
                if key == "aggregator_status":
                    self._aggregators[ident] = GatewayLive(parse_gateway_status(payload), prev.health)
                else:
                    self._aggregators[ident] = GatewayLive(prev.status, parse_gateway_health(payload))
                return None
            old = self._gateways.get(ident, GatewayLive())
            if key == "gateway_status":
                self._gateways[ident] = GatewayLive(parse_gateway_status(payload), old.health)
            else:
                self._gateways[ident] = GatewayLive(old.status, parse_gateway_health(payload))
            return None
        except MalformedError as exc:
            self.malformed[key] += 1
            n = self.malformed.total()
            if n <= _LOG_FIRST or n % 100 == 0:
                log.warning(
                    "malformed message #%d on %s: %s; payload %r",
                    n,
                    topic[:_LOG_TRUNCATE],
                    exc,
                    payload[:_LOG_TRUNCATE],
                )
            return None

    def _count_unknown(self, key: str, topic: str, why: str) -> None:
        self.unknown[key] += 1
        n = self.unknown.total()
        if n <= _LOG_FIRST or n % 100 == 0:
            log.warning("ignored message #%d on %s: %s", n, topic[:_LOG_TRUNCATE], why)

    # ------------------------------------------------------------------------------- listeners

    def add_listener(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call ``listener(space_id)`` on the loop after each change of a space's public state."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def deliver(self, topic: str, payload: bytes) -> None:
        """:meth:`handle`, then tell the listeners. Runs on the loop."""
        changed = self.handle(topic, payload)
        if changed is not None:
            self._notify(changed)

    def _notify(self, space_id: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(space_id)
            except Exception:  # one broken listener must not stop the others or the state
                log.exception("live-state listener failed for %s", space_id)

    def submit(self, topic: str, payload: bytes) -> None:
        """Thread-safe entry: hand a message to the loop (or handle it now if there is no loop)."""
        loop = self._loop
        if loop is None:
            self.deliver(topic, payload)
            return
        try:
            loop.call_soon_threadsafe(self.deliver, topic, payload)
        except RuntimeError:  # the loop closed under us during shutdown: nothing left to update
            pass

    # ------------------------------------------------------------------------------- lifecycle

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to the loop that owns the state and connect to the broker (in the background)."""
        self._loop = loop
        if self._conn is not None:
            log.info("live state: subscribing to %s on %s", topics.space_state_all(self.site.id), self.mqtt)
            self._conn.start()

    def stop(self) -> None:
        """Disconnect (blocks briefly while paho's thread ends); safe to call twice."""
        self._loop = None
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if self._conn is not None:
            self._conn.stop(publish_offline=False)

    # -- paho callbacks (network thread): only hand over to the loop

    def _on_message(self, msg: Message) -> None:
        self.submit(msg.topic, bytes(msg.payload))

    def _on_connect(self) -> None:
        self._call_soon(self._connection_back)

    def _on_disconnect(self) -> None:
        self._call_soon(self._connection_lost)

    def _call_soon(self, fn: Callable[[], None]) -> None:
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(fn)
            except RuntimeError:
                pass

    # -- on the loop

    def _connection_back(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def _connection_lost(self) -> None:
        if self._loop is not None and self._expiry is None:
            self._expiry = self._loop.call_later(self.stale_after, self.expire)

    def expire(self) -> None:
        """The broker has been gone too long: show every space as unknown (retained states return on
        reconnect)."""
        self._expiry = None
        now = datetime.now(UTC)
        changed = [sid for sid, s in self._spaces.items() if s.state != "unknown"]
        if changed:
            log.warning("MQTT lost for %.0f s: %d spaces now unknown", self.stale_after, len(changed))
            self.stale_expiries += 1
        for sid in changed:
            self._spaces[sid] = SpaceLive("unknown", 0, now)
            self.space_changes += 1
            self._notify(sid)


# ------------------------------------------------------------------------------------ payloads


def _no_constants(name: str) -> Any:
    # NaN and Infinity are not JSON, and would not survive being passed on in an HTTP answer.
    raise ValueError(f"{name} is not JSON")


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(payload, parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedError("not JSON") from exc
    if not isinstance(doc, dict):
        raise MalformedError("not a JSON object")
    return doc


def _time(value: Any, key: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedError(f"{key} must be an ISO 8601 time")
    try:
        t = datetime.fromisoformat(value)
    except ValueError as exc:
        raise MalformedError(f"{key} is not an ISO 8601 time") from exc
    if t.tzinfo is None or t.utcoffset() is None:
        raise MalformedError(f"{key} has no UTC offset")
    return t


def parse_space_state(payload: bytes) -> SpaceLive:
    """``{"state", "count", "since"}``; an empty payload (a cleared retained message) is unknown."""
    if not payload.strip():
        return UNKNOWN_SPACE
    doc = _json_object(payload)
    state = doc.get("state")
    if state not in STATES:
        raise MalformedError(f"state must be one of {', '.join(STATES)}")
    count = doc.get("count", 0)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise MalformedError("count must be a non-negative integer")
    return SpaceLive(state, count, _time(doc.get("since"), "since"))


def parse_sensor_state(payload: bytes) -> SensorLive:
    """``{"online", "battery", "linkquality", "last_seen"}``, each may be null or missing."""
    if not payload.strip():
        return UNKNOWN_SENSOR
    doc = _json_object(payload)
    online = doc.get("online")
    if online is not None and not isinstance(online, bool):
        raise MalformedError("online must be true, false or null")
    battery = doc.get("battery")
    if battery is not None:
        if isinstance(battery, bool) or not isinstance(battery, (int, float)) or not math.isfinite(battery):
            raise MalformedError("battery must be a number or null")
        if not 0 <= battery <= 100:
            raise MalformedError("battery must be 0–100")
        battery = float(battery)
    lqi = doc.get("linkquality")
    if lqi is not None and (isinstance(lqi, bool) or not isinstance(lqi, int) or not 0 <= lqi <= 255):
        raise MalformedError("linkquality must be an integer 0–255 or null")
    return SensorLive(online, battery, lqi, _time(doc.get("last_seen"), "last_seen"))


def parse_gateway_status(payload: bytes) -> str | None:
    """``online`` / ``offline`` (retained, last will); empty means the retained status was cleared."""
    try:
        text = payload.decode("utf-8").strip().lower()
    except UnicodeDecodeError as exc:
        raise MalformedError("not UTF-8 text") from exc
    if not text:
        return None
    if text not in ("online", "offline"):
        raise MalformedError("status must be online or offline")
    return text


def parse_gateway_health(payload: bytes) -> dict[str, Any] | None:
    if not payload.strip():
        return None
    return _json_object(payload)
