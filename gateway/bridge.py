"""The gateway: device messages on the local broker → canonical events on the central broker.

Three threads besides paho's two network threads:

- **intake** takes device messages, decodes and stamps them, writes them to the outbox in one
  transaction per group, and only then acknowledges them on the local broker (QoS 1, persistent
  session: what arrives while the gateway is down waits in the local broker);
- **uplink** sends the outbox in order, in batches, QoS 1, a bounded number of batches in flight,
  and removes events once the central broker has acknowledged their batch; after a reconnect it
  starts again from the oldest unacknowledged event (the aggregator drops duplicates);
- **health** publishes the retained health report.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .. import __version__
from ..mqtt import Connection, Message, MqttUrl, topic_matches
from ..sensors import topics
from ..sensors.events import Stamped
from ..sensors.formats import FORMATS, DecodeContext, DecodeError
from ..sensors.site import Sensor, Site
from ..sensors.wire import event_to_dict
from .outbox import Outbox, digest

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class GatewaySettings:
    site: Site
    id: str
    local: MqttUrl
    central: MqttUrl
    data_dir: str
    #: Payloads larger than this are quarantined unread (Zigbee2MQTT messages are < 1 KiB).
    max_payload: int = 64 * 1024
    batch_size: int = 200
    inflight_batches: int = 10
    health_interval: float = 30.0
    max_events: int = 10_000_000
    #: Disk quota of the outbox; see the README for how many days of outage it holds.
    max_outbox_bytes: int = 1024 * 1024 * 1024
    full_policy: str = "drop-oldest"
    #: Device timestamps further ahead of the gateway's clock, or older, are quarantined.
    max_future: float = 600.0
    max_age: float = 30 * 86400.0
    #: A backlog whose oldest event is older than this is sent interleaved with live events.
    live_after: float = 30.0


#: How long intake gathers messages into one outbox transaction (the SD card is written once per
#: group, not once per message).
GROUP_SECONDS = 0.02
GROUP_MAX = 500
#: Acknowledged events are removed from the outbox in one transaction at most this often, or when
#: this many are waiting.
REMOVE_SECONDS = 1.0
REMOVE_MAX = 5000
#: The last quarantined messages kept for the health report (topic, reason, detail).
QUARANTINE_LOG = 50


class ReceiptClock:
    """Receipt times that never go backwards.

    The wall clock of a Pi can step: a Pi without a real-time clock boots with the time it saved at
    shutdown and jumps forward when NTP syncs; NTP can also step it back. A backward step would stamp
    later messages earlier than earlier ones, so a receipt time is never earlier than the previous
    one (it holds still until the clock catches up). Sequence numbers, not times, carry the order.
    """

    def __init__(self) -> None:
        self._last = datetime.fromtimestamp(0, UTC)
        self._lock = threading.Lock()
        self.steps_back = 0

    def now(self) -> datetime:
        t = datetime.now(UTC)
        with self._lock:
            if t < self._last:
                if (self._last - t).total_seconds() > 1:
                    self.steps_back += 1
                t = self._last
            self._last = t
        return t


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.s = settings
        self.site = settings.site
        self.outbox = Outbox(
            f"{settings.data_dir}/outbox.db",
            settings.max_events,
            settings.full_policy,
            max_bytes=settings.max_outbox_bytes,
        )
        self.quarantined: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.quarantine_log: deque[dict[str, str]] = deque(maxlen=QUARANTINE_LOG)
        self.forwarded = 0
        self._inbox: queue.SimpleQueue[tuple[Message, datetime]] = queue.SimpleQueue()
        self._acked: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._generation = 0
        self._inflight: dict[int, tuple[int, list[int]]] = {}
        self._inflight_lock = threading.Lock()
        self._to_remove: list[int] = []
        self._removed_at = time.monotonic()
        self._clock = ReceiptClock()
        self._ignored_filters = [
            f for fmt in {s.format for s in self.site.sensors} for f in FORMATS[fmt].ignored
        ]
        sensor_topics = [s.topic for s in self.site.sensors]
        self.local = Connection(
            settings.local,
            f"tila-gw-{settings.id}",
            persistent=True,
            manual_ack=True,
            subscriptions=[(f, 1) for f in topics.device_filters(sensor_topics)],
            on_message=lambda m: self._inbox.put((m, self._clock.now())),
        )
        self.central = Connection(
            settings.central,
            f"tila-gw-{settings.id}-up",
            persistent=True,
            status=(topics.gateway_status(self.site.id, settings.id), b"online", b"offline"),
            on_publish=self._on_puback,
            on_disconnect=self._on_uplink_down,
            on_connect=self._on_uplink_up,
            max_inflight=settings.inflight_batches,
        )

    # ------------------------------------------------------------------------------- lifecycle

    def run(self, stop: threading.Event) -> None:
        self.central.start()
        self.local.start()
        intake_stop = threading.Event()
        threads = [
            threading.Thread(target=self._intake, args=(intake_stop,), name="gw-intake", daemon=True),
            threading.Thread(target=self._uplink, args=(stop,), name="gw-uplink", daemon=True),
            threading.Thread(target=self._health, args=(stop,), name="gw-health", daemon=True),
        ]
        for t in threads:
            t.start()
        stop.wait()
        # Stop taking device messages, store what was taken, then give the uplink a moment to send.
        self.local.stop()
        intake_stop.set()
        threads[0].join(5)
        self._wake.set()
        threads[1].join(3)
        self._publish_health()
        self.central.stop()
        self.outbox.close()
        log.info("gateway %s stopped; %d events wait in the outbox", self.s.id, self.outbox.depth)

    # ----------------------------------------------------------------------------------- intake

    def _intake(self, stop: threading.Event) -> None:
        while True:
            group: list[tuple[Message, datetime]] = []
            try:
                group.append(self._inbox.get(timeout=0.2))
            except queue.Empty:
                if stop.is_set():
                    return
                continue
            deadline = time.monotonic() + GROUP_SECONDS
            while len(group) < GROUP_MAX:
                try:
                    group.append(self._inbox.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            self._store(group)

    def _store(self, group: list[tuple[Message, datetime]]) -> None:
        events: list[dict[str, Any]] = []
        local: list[tuple[int, bytes]] = []
        for msg, received in group:
            if msg.qos:
                dig = digest(msg.topic, msg.payload)
                # A redelivery (DUP) of a message already stored, before the gateway could
                # acknowledge it (killed in between, or the connection dropped): acknowledge only.
                if msg.dup and ((msg.mid, dig) in local or self.outbox.seen_local(msg.mid, dig)):
                    self.ignored["redelivered"] += 1
                    continue
                local.append((msg.mid, dig))
            events.extend(self.decode(msg.topic, msg.payload, received))
        if events or local:
            while True:
                try:
                    self.outbox.append(events, local)
                    break
                except Exception:  # the outbox is the one thing that must not be skipped
                    log.exception("outbox write failed; retrying in 1 s")
                    time.sleep(1)
            self._wake.set()
        for msg, _ in group:
            if msg.qos:
                self.local.ack(msg.mid, msg.qos)

    def route(self, topic: str) -> Sensor | None:
        sensor = self.site.sensor_by_topic(topic)
        if sensor is None and "/" in topic:
            base, _, leaf = topic.rpartition("/")
            sensor = self.site.sensor_by_topic(base)
            if sensor is not None and leaf not in FORMATS[sensor.format].subtopics:
                sensor = None
        return sensor

    def decode(self, topic: str, payload: bytes, received: datetime) -> list[dict[str, Any]]:
        """Device message → canonical events (without sequence numbers), or a counted quarantine."""
        if len(payload) > self.s.max_payload:
            self._quarantine("oversize", topic, f"{len(payload)} bytes > {self.s.max_payload}")
            return []
        sensor = self.route(topic)
        if sensor is None:
            if any(topic_matches(f, topic) for f in self._ignored_filters):
                self.ignored["housekeeping"] += 1
            else:
                self._quarantine("unknown_sensor", topic, "no sensor of the site file has this topic")
            return []
        ctx = DecodeContext(sensor.id, sensor.topic, received)
        try:
            events = FORMATS[sensor.format].decode(topic, payload, ctx)
        except DecodeError as exc:
            self._quarantine(exc.reason, topic, str(exc))
            return []
        except ValueError as exc:  # an event refused its values (EventError)
            self._quarantine("bad_value", topic, str(exc))
            return []
        if not events:
            self.ignored["no_reading"] += 1
        for ev in events:
            ahead = (ev.time - received).total_seconds()
            if ahead > self.s.max_future:
                self._quarantine(
                    "time_future", topic, f"event time {ev.time.isoformat()} is {ahead:.0f} s ahead"
                )
                return []
            if -ahead > self.s.max_age:
                self._quarantine(
                    "time_past", topic, f"event time {ev.time.isoformat()} is {-ahead:.0f} s old"
                )
                return []
        out = []
        for ev in events:
            d = event_to_dict(Stamped(self.s.id, 1, received, sensor.space, ev))
            del d["seq"]  # the outbox assigns it
            out.append(d)
        return out

    def _quarantine(self, reason: str, topic: str, detail: str) -> None:
        self.quarantined[reason] += 1
        self.quarantine_log.append({"reason": reason, "topic": topic[:200], "detail": detail[:200]})
        log.warning("quarantined (%s) %s: %s", reason, topic[:120], detail[:200])

    # ----------------------------------------------------------------------------------- uplink

    def _on_puback(self, mid: int) -> None:
        self._acked.put(mid)
        self._wake.set()

    def _on_uplink_down(self) -> None:
        with self._inflight_lock:
            self._generation += 1
            self._inflight.clear()
        # Exponential backoff (paho doubles the delay up to the maximum) with jitter, so that many
        # gateways cut off together do not all reconnect in the same second.
        self.central.client.reconnect_delay_set(
            min_delay=round(random.uniform(0.5, 1.5), 3), max_delay=round(random.uniform(20, 30), 3)
        )

    def _on_uplink_up(self) -> None:
        with self._inflight_lock:
            self._generation += 1
        self._wake.set()

    def _uplink(self, stop: threading.Event) -> None:
        """Send the outbox: in order, or, behind a backlog, live events and backlog in turn.

        After every (re)connect the uplink starts again from the oldest unacknowledged event. When
        that event is older than ``live_after`` seconds, everything up to the newest event at that
        moment is the backlog: batches of newer (live) events and of the backlog alternate, so live
        state never waits hours behind a drain, and the backlog still drains at half the link's rate
        or more. Order within each stream is sequence order; consumers order by ``seq``.
        """
        generation = -1
        backlog_cursor = live_cursor = boundary = 0
        turn_live = True
        topic = topics.events(self.site.id, self.s.id)
        while not stop.is_set():
            self._settle_acks()
            if not self.central.connected.is_set():
                self._idle()
                continue
            with self._inflight_lock:
                fresh = generation != self._generation
                generation = self._generation
                busy = len(self._inflight) >= self.s.inflight_batches
            if fresh:
                self._settle_acks(force=True)
                backlog_cursor = live_cursor = 0
                boundary = self._backlog_boundary()
            if busy:
                self._idle()
                continue
            rows: list[tuple[int, dict[str, Any]]] = []
            live_rows: list[tuple[int, dict[str, Any]]] = []
            if boundary:
                live_rows = self.outbox.peek(max(live_cursor, boundary), self.s.batch_size)
                backlog_rows = self.outbox.peek(backlog_cursor, self.s.batch_size, upto=boundary)
                if not backlog_rows:
                    boundary = 0  # drained: back to one stream in order
                    backlog_cursor = max(live_cursor, backlog_cursor)
                rows = live_rows if (turn_live and live_rows) or not backlog_rows else backlog_rows
                turn_live = not turn_live
            if not boundary and not rows:
                rows = self.outbox.peek(max(backlog_cursor, live_cursor), self.s.batch_size)
            if not rows:
                self._idle()
                continue
            if self._send(topic, generation, rows):
                last = rows[-1][0]
                if rows is live_rows and boundary:
                    live_cursor = last
                else:
                    backlog_cursor = last
        self._settle_acks(force=True)

    def _backlog_boundary(self) -> int:
        """The newest sequence number now, if the oldest unsent event is old enough to interleave."""
        oldest = self.outbox.oldest()
        if oldest is None:
            return 0
        age = (self._clock.now() - datetime.fromisoformat(oldest["received"])).total_seconds()
        return self.outbox.last_seq() if age > self.s.live_after else 0

    def _send(self, topic: str, generation: int, rows: list[tuple[int, dict[str, Any]]]) -> bool:
        events = []
        for seq, d in rows:
            d["seq"] = seq
            events.append(d)
        payload = json.dumps({"v": 1, "gateway": self.s.id, "events": events}, separators=(",", ":")).encode()
        with self._inflight_lock:
            if generation != self._generation:
                return False
            info = self.central.publish(topic, payload, qos=1)
            if info.rc != 0:
                return False
            self._inflight[info.mid] = (generation, [seq for seq, _ in rows])
        return True

    def _idle(self) -> None:
        self._wake.wait(0.5)
        self._wake.clear()

    def _settle_acks(self, force: bool = False) -> None:
        """Forget acknowledged events: gathered, and removed at most about once a second.

        Removing is the second write per event on the SD card; one transaction per second instead of
        one per batch saves most of it. An event acknowledged but not yet removed when the gateway
        dies is sent again after the restart, and the aggregator drops the duplicate.
        """
        while True:
            try:
                mid = self._acked.get_nowait()
            except queue.Empty:
                break
            with self._inflight_lock:
                entry = self._inflight.pop(mid, None)
            if entry is not None:
                self._to_remove.extend(entry[1])
                self.forwarded += len(entry[1])
        due = (
            force
            or len(self._to_remove) >= REMOVE_MAX
            or time.monotonic() - self._removed_at >= REMOVE_SECONDS
        )
        if self._to_remove and due:
            self.outbox.remove(self._to_remove)
            self._to_remove = []
            self._removed_at = time.monotonic()

    # ----------------------------------------------------------------------------------- health

    def health(self) -> dict[str, Any]:
        oldest = self.outbox.oldest()
        age = None
        if oldest is not None:
            age = max(0.0, time.time() - datetime.fromisoformat(oldest["received"]).timestamp())
        return {
            "gateway": self.s.id,
            "version": __version__,
            "time": datetime.now(UTC).isoformat(),
            "local_connected": self.local.subscribed.is_set(),
            "outbox_depth": self.outbox.depth,
            "oldest_unsent_age_s": age,
            "forwarded": self.forwarded,
            "quarantined": dict(self.quarantined),
            "ignored": dict(self.ignored),
            "dropped": {"outbox_full": self.outbox.dropped} if self.outbox.dropped else {},
            "outbox_capacity": self.outbox.capacity,
            "clock_steps_back": self._clock.steps_back,
            "recent_quarantine": list(self.quarantine_log)[-5:],
        }

    def _publish_health(self) -> None:
        if self.central.connected.is_set():
            body = json.dumps(self.health(), separators=(",", ":")).encode()
            self.central.publish(topics.gateway_health(self.site.id, self.s.id), body, qos=1, retain=True)

    def _health(self, stop: threading.Event) -> None:
        # The first report goes out as soon as both sides are up, then one every interval.
        while not stop.is_set() and not (self.central.connected.is_set() and self.local.subscribed.is_set()):
            stop.wait(0.05)
        self._publish_health()
        while not stop.wait(self.s.health_interval if self.central.connected.is_set() else 1.0):
            self._publish_health()
