"""``tila aggregator``: canonical events from MQTT → state and buckets in the store, live state back.

Messages are acknowledged to the broker only after the events in them are committed to the
aggregator's journal (its own SQLite file, with the checkpoint and the bucket rows still to be
written), so a crash loses nothing: the broker redelivers what was not acknowledged and the dedup
trackers in the checkpoint drop what was already applied. A flusher writes bucket rows from the
journal to the store; when the store is down they wait in the journal and the aggregator keeps
consuming, reporting itself degraded.

One process may serve several sites (``--site`` repeated, or a directory of site files): "100
sites into two aggregators". Each site then gets exactly what a single-site aggregator has, side by
side in one process: its own core, journal (``aggregator-<site>-<id>.db``), MQTT connection (client
id ``tila-aggregator-<site>-<id>``, its own persistent session and retained ``online``/``offline``
last will), subscription to its events topic, retained states and health under its own topics, and
flusher. The sites share the process and, unless the store URL holds ``{site}``, one store.

This is the simpler of the two designs on purpose. One connection and one loop for every site would
save threads and connections, but a connection has only one last will, so a site's status could no
longer say ``offline`` when the process dies, and the API of each site (which watches its own
``aggregators/+/status``) would need to learn a per-process topic. With one service per site the
API, the broker sessions, the journal files and the figures stay those of a single-site aggregator,
a site moves from one process to another by moving its file (and journal), and a single site runs
exactly as before, on the calling thread. The cost is three threads (paho's, the loop's, the
flusher's) and one broker connection per site, which the ``scale`` benchmark measures at 50 sites
per process, and one commit per site: sites sharing a process therefore pace their commits (see
COMMIT_CPU_SHARE). Health is published per site, as for one site, with ``sites_in_process`` and
``commit_interval_s`` added when a process serves more than one. One site failing stops them all.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..cli import UsageError, mqtt_arg, positive_float, site_arg, store_arg
from ..mqtt import Connection, Message, MqttUrl
from ..sensors import topics
from ..sensors.site import Site
from ..sensors.wire import WireError, decode_batch
from ..store import Store, StoreError, StoreUrl, open_store
from .core import Aggregator, partition
from .journal import Journal, JournalError
from .state import SensorState, SpaceState

log = logging.getLogger(__name__)

#: Commit at least this often while events flow (seconds), and at most this many messages at once.
COMMIT_INTERVAL = 0.1
COMMIT_MAX_MESSAGES = 1000
#: How often time advances (silent sensors expire, buckets accrue) when no events come.
TICK_INTERVAL = 1.0
#: How often an aggregator with no messages to acknowledge commits its checkpoint and buckets.
IDLE_COMMIT_INTERVAL = 30.0
#: Bucket rows written to the store per request, and how often the flusher looks when idle.
FLUSH_ROWS = 5000
FLUSH_INTERVAL = 0.5
HEALTH_INTERVAL = 10.0
#: A process serving several sites stretches each site's commit interval (up to MAX_COMMIT_INTERVAL)
#: so that its sites' commits (the checkpoint is rewritten whole: ~100 KB and 3 ms of CPU for one of
#: the ``scale`` benchmark's sites of 200 spaces, measured on the development machine) take at most
#: this share of one CPU together. 50 such sites committing every 0.1 s would need 1.5 CPUs for that
#: alone.
COMMIT_CPU_SHARE = 0.25
MAX_COMMIT_INTERVAL = 1.0
#: Unacknowledged messages the broker sends a connection (``max_inflight_messages`` in
#: deploy/mosquitto/mosquitto.conf), and the connection's own window for what it publishes.
MAX_INFLIGHT = 100


def partition_arg(value: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)/(\d+)", value)
    if not m or not 0 <= int(m.group(1)) < int(m.group(2)):
        raise argparse.ArgumentTypeError(f"must be I/N with 0 ≤ I < N, e.g. 0/2, not {value!r}")
    return int(m.group(1)), int(m.group(2))


@dataclass(slots=True, frozen=True)
class SiteFile:
    """A site and the file it was read from (for messages naming both)."""

    path: str
    site: Site


def sites_arg(value: str) -> list[SiteFile]:
    """``--site``: a site file, a directory of site files (``*.toml``, in name order), or ``bundled``."""
    path = Path(value)
    if path.is_dir():
        files = sorted(f for f in path.glob("*.toml") if f.is_file())
        if not files:
            raise argparse.ArgumentTypeError(f"no site files (*.toml) in directory {value}")
        return [SiteFile(str(f), site_arg(str(f))) for f in files]
    return [SiteFile(value, site_arg(value))]


class _Sites(argparse.Action):
    """``--site`` may be repeated; given on the command line, it replaces ``TILA_SITE``."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        # Before the first, the attribute holds the default: None, or TILA_SITE's text (argparse
        # converts that one only when the option is not given).
        before = getattr(namespace, self.dest, None)
        setattr(namespace, self.dest, [*(before if isinstance(before, list) else []), *values])


#: In a store URL, replaced by each site's id: a store per site (``sqlite:///data/{site}.db``,
#: ``influxdb://host/tila_{site}``), as the README recommends for InfluxDB (one site per database).
SITE_PLACEHOLDER = "{site}"


@dataclass(slots=True, frozen=True)
class SiteStores:
    """A store URL with ``{site}`` in it: each site's store is the URL with the site's id in place."""

    template: str

    def url(self, site_id: str) -> StoreUrl:
        """The site's store URL, checked as ``--store`` is (tila.cli.store_arg)."""
        try:
            return store_arg(self.template.replace(SITE_PLACEHOLDER, site_id))  # type: ignore[no-any-return]
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"--store for site {site_id!r}: {exc}") from exc


def aggregator_store_arg(value: str) -> StoreUrl | SiteStores:
    """``--store``: a store URL, shared by every site served, or one with ``{site}``: one per site."""
    if SITE_PLACEHOLDER not in value:
        return store_arg(value)  # type: ignore[no-any-return]
    sample = "SITEID"  # valid wherever a site id is, and found again in the message
    try:
        store_arg(value.replace(SITE_PLACEHOLDER, sample))
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace(sample, SITE_PLACEHOLDER)) from None
    return SiteStores(value)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--site",
        type=sites_arg,
        action=_Sites,
        required=True,
        help="site file (TOML), a directory of site files, or 'bundled'; repeat for several sites",
    )
    p.add_argument("--mqtt", type=mqtt_arg, required=True, help="central broker URL, mqtt://host:port")
    p.add_argument(
        "--store",
        type=aggregator_store_arg,
        required=True,
        help="store URL (sqlite:///PATH or InfluxDB); {site} in it gives each site its own store",
    )
    p.add_argument("--id", default="1", help="aggregator instance id (client id, journal file)")
    p.add_argument(
        "--data-dir",
        default=None,
        help="directory for the aggregator's journal (default: beside a SQLite store; needed otherwise)",
    )
    p.add_argument(
        "--partition",
        type=partition_arg,
        default=(0, 1),
        help="I/N: this instance keeps the spaces of partition I of N (several aggregators per site)",
    )
    p.add_argument(
        "--lateness",
        type=positive_float,
        default=10.0,
        help="seconds events may arrive out of order before they count as late",
    )
    p.add_argument(
        "--retention-days",
        type=positive_float,
        default=60.0,
        help="days raw events are kept in the journal (late events older than that are not re-accrued)",
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
        self,
        site: Site,
        mqtt: MqttUrl,
        store: Store,
        journal: Journal,
        instance: str = "1",
        lateness: float = 10.0,
        part: tuple[int, int] = (0, 1),
        retention_days: float = 60.0,
        process_sites: int = 1,
    ) -> None:
        self.site = site
        self.process_sites = process_sites
        self.store = store
        self.journal = journal
        self.instance = instance
        self.retention = retention_days * 86400
        owns = partition(*part) if part[1] > 1 else None
        self.core = Aggregator(site, lateness, owns=owns, log=journal)
        doc = journal.load_checkpoint()
        if doc is not None:
            try:
                self.core.restore(doc)
            except (ValueError, KeyError, TypeError) as exc:
                raise UsageError(
                    f"{journal.path} holds a checkpoint this aggregator cannot use: {exc}"
                ) from exc
            log.info(
                "resumed: %d gateways, %d events in the lateness window",
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
            status=(topics.aggregator_status(site.id, instance), b"online", b"offline"),
            # Mosquitto's default max_inflight_messages is 20; each message is a batch of events.
            max_inflight=MAX_INFLIGHT,
        )
        self.store_ok = True
        self.store_error = ""
        self._lag = 0.0
        #: Seconds between commits while events flow, and what a commit costs (CPU seconds, smoothed).
        self.commit_interval = COMMIT_INTERVAL
        self._commit_cpu = 0.0

    def _budget(self, cpu: float) -> None:
        """Stretch the commit interval of a site sharing its process (see COMMIT_CPU_SHARE)."""
        self._commit_cpu = cpu if not self._commit_cpu else 0.8 * self._commit_cpu + 0.2 * cpu
        wanted = self._commit_cpu * self.process_sites / COMMIT_CPU_SHARE
        self.commit_interval = min(MAX_COMMIT_INTERVAL, max(COMMIT_INTERVAL, wanted))

    # ------------------------------------------------------------------------------------ run

    def run(self, stop: threading.Event) -> None:
        self.conn.start()
        flusher = threading.Thread(target=self._flusher, args=(stop,), name="aggregator-flush", daemon=True)
        flusher.start()
        last_tick = last_health = last_prune = last_commit = 0.0
        last_accounted = -1
        unacked: list[Message] = []
        # Alone in its process, a site commits every COMMIT_INTERVAL; sharing it, at the budgeted
        # interval, or as soon as the broker can send no more before an acknowledgement.
        shared = self.process_sites > 1
        most = MAX_INFLIGHT if shared else COMMIT_MAX_MESSAGES
        try:
            while not stop.is_set():
                deadline = time.monotonic() + self.commit_interval
                while len(unacked) < most:
                    try:
                        msg = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        break
                    self._handle(msg)
                    unacked.append(msg)
                now = time.time()
                if unacked or now - last_tick >= TICK_INTERVAL:
                    cpu0 = time.thread_time()
                    self.core.tick(now)
                    last_tick = now
                    # Messages are acknowledged only after a commit. Without messages, time alone
                    # changes nothing a restart could not recompute (accrual resumes from the
                    # checkpoint's state and time), so an idle aggregator commits only now and then.
                    accounted = self.core.accounted
                    if unacked or accounted != last_accounted or now - last_commit >= IDLE_COMMIT_INTERVAL:
                        if self._commit():
                            last_commit, last_accounted = now, accounted
                            self._ack(unacked)
                        else:
                            stop.wait(1.0)
                    self._publish_changes()
                    if shared and last_commit == now:
                        self._budget(time.thread_time() - cpu0)
                if now - last_prune > 3600:
                    pruned = self.journal.prune(now - self.retention)
                    if pruned:
                        log.info("deleted %d raw events older than %g days", pruned, self.retention / 86400)
                    last_prune = now
                if now - last_health >= HEALTH_INTERVAL:
                    self._publish_health()
                    last_health = now
        finally:
            # Messages not yet taken from the inbox stay unacknowledged: the broker redelivers them.
            if self._commit():
                self._ack(unacked)
                self._publish_changes()
            flusher.join(5)
            self._publish_health()
            self.conn.stop()

    def _ack(self, messages: list[Message]) -> None:
        for msg in messages:
            if msg.qos:
                self.conn.ack(msg.mid, msg.qos)
        messages.clear()

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
            elif outcome == "applied":
                self._lag = max(0.0, now - s.received.timestamp())

    def _commit(self) -> bool:
        try:
            self.journal.commit(self.core.buckets(), self.core.checkpoint())
        except JournalError as exc:
            log.error("journal commit failed (nothing acknowledged; will retry): %s", exc)
            return False
        self.core.forget_closed()
        return True

    # -------------------------------------------------------------------------------- flushing

    def _flusher(self, stop: threading.Event) -> None:
        """Write pending bucket rows to the store; on failure keep them and try again."""
        delay = FLUSH_INTERVAL
        while True:
            rows = self.journal.pending(FLUSH_ROWS)
            if rows:
                try:
                    self.store.write_buckets([b for b, _ in rows])
                except StoreError as exc:
                    if self.store_ok:
                        log.error("store write failed; rows wait in the journal: %s", exc)
                    self.store_ok, self.store_error = False, str(exc)[:200]
                    delay = min(delay * 2, 10.0)
                else:
                    self.journal.written(rows)
                    if not self.store_ok:
                        log.info("store is back; writing what waited")
                    self.store_ok, self.store_error, delay = True, "", FLUSH_INTERVAL
                    if len(rows) == FLUSH_ROWS:
                        continue  # more waiting: no pause
            if stop.wait(delay if rows else FLUSH_INTERVAL):
                # One last try to hand over what is pending; what fails stays in the journal.
                if rows and self.store_ok:
                    try:
                        rest = self.journal.pending(FLUSH_ROWS)
                        if rest:
                            self.store.write_buckets([b for b, _ in rest])
                            self.journal.written(rest)
                    except StoreError:
                        pass
                return

    # ------------------------------------------------------------------------------ publishing

    def _publish_changes(self) -> None:
        spaces, sensors = self.core.take_changes()
        for sp in spaces:
            self.conn.publish(topics.space_state(self.site.id, sp.id), space_payload(sp), qos=1, retain=True)
        for st in sensors:
            self.conn.publish(
                topics.sensor_state(self.site.id, st.id), sensor_payload(st), qos=1, retain=True
            )

    def health(self) -> dict[str, Any]:
        pending_rows = self.journal.pending_count()
        return {
            "aggregator": self.instance,
            "version": __version__,
            "time": datetime.now(UTC).isoformat(),
            "status": "ok" if self.store_ok else "degraded",
            "store": {"ok": self.store_ok, "error": self.store_error, "pending_rows": pending_rows},
            "spaces": len(self.core.live),
            "lag_s": round(self._lag, 3),
            "lateness_window_events": self.core.pending,
            "counters": dict(self.core.counters),
            **(
                {"sites_in_process": self.process_sites, "commit_interval_s": round(self.commit_interval, 3)}
                if self.process_sites > 1
                else {}
            ),
        }

    def _publish_health(self) -> None:
        if self.conn.connected.is_set():
            body = json.dumps(self.health(), separators=(",", ":")).encode()
            self.conn.publish(topics.aggregator_health(self.site.id, self.instance), body, qos=1, retain=True)


def default_data_dir(store: StoreUrl) -> Path | None:
    return Path(store.path).resolve().parent if store.kind == "sqlite" else None


def check_sites(sites: list[SiteFile], shared_store: bool) -> None:
    """Site ids must differ; sites sharing one store must not share a space id (rows are keyed by
    space, so two sites' desk-01 would be one series)."""
    by_id: dict[str, SiteFile] = {}
    spaces: dict[str, str] = {}
    for sf in sites:
        other = by_id.setdefault(sf.site.id, sf)
        if other is not sf:
            raise UsageError(f"site id {sf.site.id!r} is in two site files: {other.path} and {sf.path}")
        if not shared_store or len(sites) == 1:
            continue
        for sp in sf.site.spaces:
            owner = spaces.setdefault(sp.id, sf.site.id)
            if owner != sf.site.id:
                raise UsageError(
                    f"space id {sp.id!r} is in sites {owner!r} and {sf.site.id!r}, which would share one"
                    f" store: put {SITE_PLACEHOLDER} in --store for a store per site"
                )


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    sites: list[SiteFile] = args.site if isinstance(args.site, list) else [SiteFile("<site>", args.site)]
    check_sites(sites, not isinstance(args.store, SiteStores))
    stores: dict[str, Store] = {}
    journals: list[Journal] = []
    services: list[AggregatorService] = []
    try:
        for sf in sites:
            site = sf.site
            store_url = args.store.url(site.id) if isinstance(args.store, SiteStores) else args.store
            data_dir = Path(args.data_dir) if args.data_dir else default_data_dir(store_url)
            if data_dir is None:
                raise UsageError(
                    "--data-dir is needed with this store (the aggregator keeps its journal there)"
                )
            store = stores.get(str(store_url))
            if store is None:
                try:
                    store = stores[str(store_url)] = open_store(store_url)
                except StoreError as exc:
                    raise UsageError(str(exc)) from exc
            try:
                journal = Journal(data_dir / f"aggregator-{site.id}-{args.id}.db")
            except JournalError as exc:
                raise UsageError(str(exc)) from exc
            journals.append(journal)
            services.append(
                AggregatorService(
                    site,
                    args.mqtt,
                    store,
                    journal,
                    args.id,
                    args.lateness,
                    args.partition,
                    args.retention_days,
                    process_sites=len(sites),
                )
            )
            part = f" partition {args.partition[0]}/{args.partition[1]}" if args.partition[1] > 1 else ""
            log.info("aggregator %s%s for site %s: %s → %s", args.id, part, site.id, args.mqtt, store_url)
        if len(services) == 1:
            services[0].run(stop)
            return 0
        return run_sites(services, stop)
    finally:
        for journal in journals:
            journal.close()
        for store in stores.values():
            store.close()


def run_sites(services: list[AggregatorService], stop: threading.Event) -> int:
    """Run each site's service on its own thread until ``stop``; one failing stops them all (exit 1),
    so that a supervisor restarts the process instead of it serving some of its sites silently."""
    failed: list[str] = []

    def serve(service: AggregatorService) -> None:
        try:
            service.run(stop)
        except Exception:
            log.exception(
                "aggregator for site %s failed; stopping every site of this process", service.site.id
            )
            failed.append(service.site.id)
            stop.set()

    threads = [
        threading.Thread(target=serve, args=(s,), name=f"aggregator-{s.site.id}", daemon=True)
        for s in services
    ]
    for t in threads:
        t.start()
    log.info("serving %d sites: %s", len(services), ", ".join(s.site.id for s in services))
    for t in threads:
        # A bounded join keeps the main thread responsive to SIGTERM and SIGINT.
        while t.is_alive():
            t.join(0.5)
    return 1 if failed else 0
