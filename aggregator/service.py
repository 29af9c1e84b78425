"""``tila aggregator``: canonical events from MQTT → state and buckets in the store, live state back.

Messages are acknowledged to the broker only after the events in them are committed to the store
(with the checkpoint), so a crash loses nothing: the broker redelivers what was not acknowledged and
the dedup trackers in the checkpoint drop what was already applied.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import threading
import time
from datetime import UTC, datetime

from ..cli import UsageError, mqtt_arg, positive_float, site_arg, store_arg
from ..mqtt import Connection, Message, MqttUrl
from ..sensors import topics
from ..sensors.site import Site
from ..sensors.wire import WireError, decode_batch
from ..store import Store, StoreError, StoreUrl, open_store
from .core import Aggregator
from .state import SensorState, SpaceState

log = logging.getLogger(__name__)

HELP = "canonical events → per-space state and utilisation in the store; live state back onto MQTT"

#: Commit at least this often while events flow (seconds), and at most this many messages at once.
COMMIT_INTERVAL = 0.1
COMMIT_MAX_MESSAGES = 1000
#: How often time advances (silent sensors expire, buckets accrue) when no events come.
TICK_INTERVAL = 1.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", type=site_arg, required=True, help="site file (TOML), or 'bundled'")
    p.add_argument("--mqtt", type=mqtt_arg, required=True, help="central broker URL, mqtt://host:port")
    p.add_argument("--store", type=store_arg, required=True, help="store URL, sqlite:///PATH")
    p.add_argument("--id", default="1", help="aggregator instance id (client id suffix)")
    p.add_argument(
        "--lateness",
        type=positive_float,
        default=10.0,
        help="seconds events may arrive out of order before they count as late",
    )


def iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


def space_payload(sp: SpaceState) -> bytes:
    return json.dumps({"state": sp.state, "count": sp.count, "since": iso(sp.since)}).encode()


def sensor_payload(st: SensorState) -> bytes:
    return json.dumps(
        {"online": st.online, "battery": st.battery, "linkquality": st.lqi, "last_seen": iso(st.last_seen)}
    ).encode()


class AggregatorService:
    def __init__(
        self, site: Site, mqtt: MqttUrl, store: Store, instance: str = "1", lateness: float = 10.0
    ) -> None:
        self.site = site
        self.store = store
        self.core = Aggregator(site, lateness)
        doc = store.load_checkpoint()
        if doc is not None:
            try:
                self.core.restore(doc)
            except (ValueError, KeyError, TypeError) as exc:
                raise UsageError(f"the store holds a checkpoint this aggregator cannot use: {exc}") from exc
            log.info(
                "resumed from checkpoint: %d gateways, %d pending events",
                len(self.core.trackers),
                self.core.pending,
            )
        self._inbox: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self.conn = Connection(
            mqtt,
            f"tila-aggregator-{site.id}-{instance}",
            persistent=True,
            manual_ack=True,
            subscriptions=[(topics.events_all(site.id), 1)],
            on_message=self._inbox.put,
            # Mosquitto's default max_inflight_messages is 20; each message is a batch of events.
            max_inflight=100,
        )
        self.store_ok = True

    def run(self, stop: threading.Event) -> None:
        self.conn.start()
        last_tick = 0.0
        unacked: list[Message] = []
        try:
            while not stop.is_set():
                deadline = time.monotonic() + COMMIT_INTERVAL
                while len(unacked) < COMMIT_MAX_MESSAGES:
                    try:
                        msg = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        break
                    self._handle(msg)
                    unacked.append(msg)
                now = time.time()
                if unacked or now - last_tick >= TICK_INTERVAL:
                    self.core.tick(now)
                    last_tick = now
                    if self._commit():
                        for msg in unacked:
                            if msg.qos:
                                self.conn.ack(msg.mid, msg.qos)
                        unacked.clear()
                        self._publish_changes()
                    else:
                        stop.wait(1.0)
        finally:
            # Messages not yet taken from the inbox stay unacknowledged: the broker redelivers them.
            if self._commit():
                for msg in unacked:
                    if msg.qos:
                        self.conn.ack(msg.mid, msg.qos)
                self._publish_changes()
            self.conn.stop()

    def _handle(self, msg: Message) -> None:
        try:
            events, bad = decode_batch(msg.payload)
        except WireError as exc:
            self.core.counters["quarantined_bad_batch"] += 1
            log.warning("bad batch on %s: %s", msg.topic[:120], str(exc)[:200])
            return
        for reason in bad:
            self.core.counters["quarantined_bad_event"] += 1
            log.warning("bad event on %s: %s", msg.topic[:120], reason[:200])
        now = time.time()
        for s in events:
            outcome = self.core.ingest(s, now)
            if outcome.startswith("quarantined"):
                log.warning("event %s/%d %s (sensor %r)", s.gateway, s.seq, outcome, s.event.sensor[:64])

    def _commit(self) -> bool:
        try:
            self.store.commit(self.core.buckets(), self.core.checkpoint())
        except StoreError as exc:
            if self.store_ok:
                log.error("store commit failed (will retry, nothing acknowledged): %s", exc)
            self.store_ok = False
            return False
        self.core.forget_closed()
        if not self.store_ok:
            log.info("store is back")
        self.store_ok = True
        return True

    def _publish_changes(self) -> None:
        spaces, sensors = self.core.take_changes()
        for sp in spaces:
            self.conn.publish(topics.space_state(self.site.id, sp.id), space_payload(sp), qos=1, retain=True)
        for st in sensors:
            self.conn.publish(
                topics.sensor_state(self.site.id, st.id), sensor_payload(st), qos=1, retain=True
            )


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    store_url: StoreUrl = args.store
    try:
        store = open_store(store_url)
    except StoreError as exc:
        raise UsageError(str(exc)) from exc
    service = AggregatorService(args.site, args.mqtt, store, args.id, args.lateness)
    log.info("aggregator for site %s: %s → %s", args.site.id, args.mqtt, store_url)
    try:
        service.run(stop)
    finally:
        store.close()
    return 0
