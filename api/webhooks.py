"""Webhooks: booking systems are told of state changes and no-shows by signed HTTP POSTs.

A subscription names a URL, the events it wants (``space.state``, ``booking.no_show`` or ``*``) and
optionally the spaces. :meth:`Webhooks.emit` writes one delivery per matching subscription into a
SQLite queue (``webhooks.db`` in the API's data directory) and returns: the caller waits for one
insert, never for a receiver, and a queued delivery survives an API restart. The delivery worker, an
asyncio task in the API's lifespan, POSTs each one with a short timeout and at most
:attr:`DeliveryPolicy.concurrency` at once (half of them for one subscription, so a stuck receiver
cannot hold up the others), follows no redirects, and retries anything but a 2xx
with exponential backoff and jitter until the attempt limit or the retry window is reached; then the
delivery is ``failed``. Every attempt is logged (time, status code or error, latency); finished
deliveries are deleted after :attr:`DeliveryPolicy.keep_days`.

Delivery is at least once: an answer lost on the way back, or an API stopped while a POST is under
way, means the same delivery (same ``X-Tila-Delivery`` id, same body) is sent again. Order is not
guaranteed, not even per subscription: a retried delivery arrives after newer ones.

The body is signed: ``X-Tila-Signature: sha256=<hex HMAC-SHA256 of "<X-Tila-Timestamp>.<body>">``
with the subscription's secret (:func:`signature`); the timestamp inside the signed string lets a
receiver refuse replays of old deliveries.

One API process delivers from a data directory: the subscriptions are cached in memory and only
that process's changes refresh the cache. A delivery being sent is leased (its next attempt moved
past the timeout), so even a second process would not send it twice at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import os
import random
import secrets
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from .. import __version__

log = logging.getLogger(__name__)

#: Events a subscription may ask for; ``*`` is every one of them. ``ping`` is sent only on request,
#: to the one subscription pinged.
EVENTS = ("space.state", "booking.no_show")
ALL = "*"
PING = "ping"
STATUSES = ("pending", "delivered", "failed")
#: The secret's length bounds: 16 characters is 96 bits even from base64; the generated ones are
#: ``secrets.token_urlsafe(32)`` (43 characters, 256 bits, as long as the HMAC-SHA256 key needs).
MIN_SECRET, MAX_SECRET = 16, 256
#: Browsers and most servers accept URLs up to about 2,000 characters; a webhook URL needs far less.
MAX_URL = 2048
#: Subscriptions per data directory: each emit fans out to every one, on the API's event loop.
MAX_WEBHOOKS = 100
#: Errors are kept this long in the delivery log (a receiver's message may be long or hostile).
MAX_ERROR = 200
#: The retry and keeping defaults (DeliveryPolicy's, and ``tila api``'s options'): see DeliveryPolicy.
RETRY_HOURS = 24.0
MAX_ATTEMPTS = 30
KEEP_DAYS = 30
#: How often finished deliveries older than ``keep_days`` are deleted.
PURGE_EVERY = 3600.0
#: The longest the worker sleeps without looking at the queue, in case a clock step moved it.
MAX_SLEEP = 60.0


class WebhookError(ValueError):
    """A webhook setting, URL or secret that cannot be used; the message says why."""


@dataclass(slots=True, frozen=True)
class DeliveryPolicy:
    """How deliveries are sent and retried. The defaults: a retry after 30 s, doubling up to 1 h
    (each ±20 % at random, so a receiver coming back is not hit by every queued delivery at once),
    for at most 30 attempts within 24 h: about as long as a booking system's weekend outage."""

    first_retry: float = 30.0
    max_retry: float = 3600.0
    retry_hours: float = RETRY_HOURS
    max_attempts: int = MAX_ATTEMPTS
    #: Seconds per attempt (connect, send, answer); a receiver should answer at once and work later.
    timeout: float = 10.0
    #: POSTs under way at once, over all subscriptions; one subscription gets at most half of
    #: them, so a receiver that times out cannot hold up the others.
    concurrency: int = 8
    #: Days a finished delivery (and its attempts) stays in the delivery log.
    keep_days: float = KEEP_DAYS

    def __post_init__(self) -> None:
        for name in ("first_retry", "max_retry", "retry_hours", "timeout", "keep_days"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise WebhookError(f"webhooks: {name} must be a number > 0, not {value!r}")
        if self.max_retry < self.first_retry:
            raise WebhookError("webhooks: max_retry must be at least first_retry")
        for name in ("max_attempts", "concurrency"):
            if getattr(self, name) < 1:
                raise WebhookError(f"webhooks: {name} must be at least 1, not {getattr(self, name)!r}")

    @property
    def per_webhook(self) -> int:
        return max(1, self.concurrency // 2)

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Seconds before the next attempt, after ``attempts`` failed ones."""
        base = min(self.max_retry, self.first_retry * 2.0 ** min(attempts - 1, 60))
        return base * rng.uniform(0.8, 1.2)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``X-Tila-Signature``: ``sha256=`` and the hex HMAC-SHA256 of ``"<timestamp>.<body>"``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def check_url(url: str) -> str:
    """A webhook URL: http or https, a host, no credentials, at most :data:`MAX_URL` characters."""
    if len(url) > MAX_URL:
        raise WebhookError(f"must be at most {MAX_URL} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise WebhookError("must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise WebhookError("must be an http:// or https:// URL")
    if "@" in parts.netloc:
        # A password in a URL ends up in logs and listings; receivers check the signature instead.
        raise WebhookError("must not carry credentials (user:password@); receivers check the signature")
    if not parts.hostname:
        raise WebhookError("has no host")
    try:
        parts.port  # noqa: B018  # raises on a bad port
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        raise WebhookError(f"is not a valid URL: {str(exc)[:80]}") from None
    return url


def check_secret(secret: str) -> str:
    if not MIN_SECRET <= len(secret) <= MAX_SECRET:
        raise WebhookError(f"must be {MIN_SECRET} to {MAX_SECRET} characters (or left out: tila makes one)")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in secret):
        raise WebhookError("must not contain control characters")
    return secret


@dataclass(slots=True, frozen=True)
class Subscription:
    id: str
    url: str
    events: tuple[str, ...]
    #: Only events about these spaces; None: every space (and events about none).
    spaces: tuple[str, ...] | None
    created: datetime
    secret: str = field(repr=False)

    def matches(self, event: str, space: str | None) -> bool:
        if event not in self.events and ALL not in self.events:
            return False
        return self.spaces is None or space in self.spaces


@dataclass(slots=True, frozen=True)
class Attempt:
    time: datetime
    status_code: int | None
    error: str | None
    latency: float


@dataclass(slots=True, frozen=True)
class Delivery:
    id: str
    webhook: str
    event: str
    status: str
    created: datetime
    next_attempt: datetime | None
    finished: datetime | None
    attempts: tuple[Attempt, ...]


@dataclass(slots=True, frozen=True)
class _Due:
    id: str
    webhook: str
    event: str
    body: bytes
    attempts: int
    created: float
    url: str
    secret: str = field(repr=False)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,          -- JSON list
    spaces TEXT,                   -- JSON list, NULL: every space
    secret TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    webhook TEXT NOT NULL,
    event TEXT NOT NULL,
    body BLOB NOT NULL,            -- sent as is on every attempt
    status TEXT NOT NULL,          -- pending | delivered | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    next_at REAL NOT NULL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_at);
CREATE INDEX IF NOT EXISTS deliveries_webhook ON deliveries (webhook, created);
CREATE INDEX IF NOT EXISTS deliveries_finished ON deliveries (finished);
CREATE TABLE IF NOT EXISTS attempts (
    delivery TEXT NOT NULL,
    n INTEGER NOT NULL,
    time REAL NOT NULL,
    status_code INTEGER,
    error TEXT,
    latency REAL NOT NULL,
    PRIMARY KEY (delivery, n)
);
-- The state and count last emitted per space, so an API restart (which receives every retained
-- state again) does not announce unchanged spaces.
CREATE TABLE IF NOT EXISTS space_state (
    space TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    count INTEGER NOT NULL
);
"""


def _iso(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


class Webhooks:
    """Subscriptions and the durable delivery queue in ``path`` (made 0600), and the worker.

    Thread-safe: one SQLite connection behind a lock; :meth:`emit` may be called from any thread.
    """

    def __init__(self, path: Path, policy: DeliveryPolicy | None = None) -> None:
        self.path = Path(path)
        self.policy = policy or DeliveryPolicy()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._subs: list[Subscription] | None = None
        self._last: dict[str, tuple[str, int]] = {}
        self._rng = random.Random()
        #: Since start: deliveries answered 2xx, attempts to be retried, deliveries given up.
        self.delivered = 0
        self.retried = 0
        self.failed = 0
        #: space.state changes that could not be queued (the database failed).
        self.lost = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        with self._lock:
            self._db()

    # ------------------------------------------------------------------------------------ storage

    def _db(self) -> sqlite3.Connection:
        """The connection (opened on first use, again after :meth:`close`); the lock is held."""
        if self._conn is not None:
            return self._conn
        try:
            # Made 0600 before SQLite sees it: the file holds the subscriptions' secrets. SQLite
            # gives its -wal and -shm files the database file's permissions.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            os.chmod(self.path, 0o600)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            try:
                conn.execute("PRAGMA busy_timeout = 5000")
                # WAL with synchronous=NORMAL: a commit survives the process (an API restart or
                # crash); only a power cut can lose the last commits. A full sync per state change
                # would cost a disk flush on the event loop.
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.executescript(_SCHEMA)
                rows = conn.execute("SELECT space, state, count FROM space_state").fetchall()
            except BaseException:
                conn.close()
                raise
        except (OSError, sqlite3.Error) as exc:
            raise WebhookError(f"webhooks: cannot use {self.path}: {exc}") from exc
        self._last = {space: (state, count) for space, state, count in rows}
        self._conn = conn
        self._subs = None
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, the lock held throughout."""
        with self._lock:
            conn = self._db()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # ------------------------------------------------------------------------------ subscriptions

    def _subscriptions(self) -> list[Subscription]:
        subs = self._subs
        if subs is not None:
            return subs
        with self._lock:
            # Loaded and kept under the lock: a create or delete meanwhile (which clears the cache
            # under the same lock) can never be overwritten by an older list.
            conn = self._db()
            if self._subs is None:
                rows = conn.execute(
                    "SELECT id, url, events, spaces, secret, created FROM webhooks ORDER BY created, id"
                ).fetchall()
                self._subs = [
                    Subscription(
                        id=r[0],
                        url=r[1],
                        events=tuple(json.loads(r[2])),
                        spaces=tuple(json.loads(r[3])) if r[3] is not None else None,
                        secret=r[4],
                        created=datetime.fromtimestamp(r[5], UTC),
                    )
                    for r in rows
                ]
            return self._subs

    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions())

    def create(
        self,
        url: str,
        events: tuple[str, ...] | list[str],
        spaces: tuple[str, ...] | list[str] | None = None,
        secret: str | None = None,
    ) -> Subscription:
        """A new subscription (with its secret: generated unless given). WebhookError when the URL,
        an event or the secret cannot be used, or :data:`MAX_WEBHOOKS` exist already."""
        check_url(url)
        wanted = tuple(dict.fromkeys(events))
        if not wanted:
            raise WebhookError("name at least one event")
        for e in wanted:
            if e not in EVENTS and e != ALL:
                raise WebhookError(f"unknown event {e[:40]!r} (use {', '.join((*EVENTS, ALL))})")
        secret = check_secret(secret) if secret is not None else secrets.token_urlsafe(32)
        now = time.time()
        sub = Subscription(
            id="wh_" + secrets.token_hex(8),
            url=url,
            events=wanted,
            spaces=tuple(dict.fromkeys(spaces)) if spaces is not None else None,
            created=datetime.fromtimestamp(now, UTC),
            secret=secret,
        )
        with self._tx() as conn:
            (n,) = conn.execute("SELECT count(*) FROM webhooks").fetchone()
            if n >= MAX_WEBHOOKS:
                raise WebhookError(f"at most {MAX_WEBHOOKS} webhooks; delete one first")
            conn.execute(
                "INSERT INTO webhooks (id, url, events, spaces, secret, created) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    sub.id,
                    sub.url,
                    json.dumps(list(sub.events)),
                    json.dumps(list(sub.spaces)) if sub.spaces is not None else None,
                    sub.secret,
                    now,
                ),
            )
            self._subs = None
        log.info("webhook %s created for %s (%s)", sub.id, _host(sub.url), ", ".join(sub.events))
        return sub

    def delete(self, webhook_id: str) -> bool:
        """Remove a subscription; its pending deliveries end as failed. False if there is none."""
        now = time.time()
        with self._tx() as conn:
            gone = conn.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,)).rowcount
            if gone:
                conn.execute(
                    "UPDATE deliveries SET status = 'failed', finished = ? "
                    "WHERE webhook = ? AND status = 'pending'",
                    (now, webhook_id),
                )
            self._subs = None
        if gone:
            log.info("webhook %s deleted", webhook_id)
        return bool(gone)

    # ------------------------------------------------------------------------------------- events

    def emit(self, event: str, data: Mapping[str, Any]) -> None:
        """Queue ``event`` for every subscription that wants it; returns once the deliveries are
        committed to the queue. ``data`` must be JSON (datetimes become ISO 8601 text); its
        ``space`` (for ``space.state``, its ``id``) is what a subscription's space filter compares."""
        if event not in EVENTS:
            raise ValueError(f"unknown webhook event {event!r} (known: {', '.join(EVENTS)})")
        targets = [s for s in self._subscriptions() if s.matches(event, _space_of(event, data))]
        if targets:
            with self._tx() as conn:
                self._enqueue(conn, event, data, targets)
            self._poke()

    def space_changed(self, doc: Mapping[str, Any]) -> None:
        """A space's public document after a change: ``space.state`` is emitted when its state or
        count differs from the last one emitted (a change of ``since`` alone is not news)."""
        space, key = doc.get("id"), (doc.get("state"), doc.get("count"))
        if not isinstance(space, str) or not isinstance(key[0], str) or not isinstance(key[1], int):
            return
        if self._last.get(space) == key:
            return
        targets = [s for s in self._subscriptions() if s.matches("space.state", space)]
        try:
            with self._tx() as conn:
                if self._last.get(space) == key:  # another thread got here first
                    return
                conn.execute(
                    "INSERT INTO space_state (space, state, count) VALUES (?, ?, ?) "
                    "ON CONFLICT (space) DO UPDATE SET state = excluded.state, count = excluded.count",
                    (space, key[0], key[1]),
                )
                if targets:
                    self._enqueue(conn, "space.state", doc, targets)
                self._last[space] = (key[0], key[1])
        except sqlite3.Error as exc:
            # The live state and the stream go on; the next change of this space is announced.
            self.lost += 1
            log.warning("webhooks: space.state of %s not queued: %s", space, exc)
            return
        if targets:
            self._poke()

    def ping(self, webhook_id: str) -> str | None:
        """Queue a ``ping`` for one subscription; its delivery id, or None if there is none."""
        sub = next((s for s in self._subscriptions() if s.id == webhook_id), None)
        if sub is None:
            return None
        with self._tx() as conn:
            (did,) = self._enqueue(conn, PING, {"webhook": sub.id}, [sub])
        self._poke()
        return did

    def _enqueue(
        self, conn: sqlite3.Connection, event: str, data: Mapping[str, Any], targets: list[Subscription]
    ) -> list[str]:
        now = time.time()
        stamp = datetime.fromtimestamp(now, UTC).isoformat()
        ids, rows = [], []
        for sub in targets:
            did = str(uuid.uuid4())
            body = json.dumps(
                {"id": did, "event": event, "time": stamp, "data": data},
                ensure_ascii=False,
                separators=(",", ":"),
                default=_json_default,
            ).encode()
            ids.append(did)
            rows.append((did, sub.id, event, body, now, now))
        conn.executemany(
            "INSERT INTO deliveries (id, webhook, event, body, status, created, next_at) "
            "VALUES (?, ?, ?, ?, 'pending', ?, ?)",
            rows,
        )
        return ids

    def _poke(self) -> None:
        """Wake the worker (from any thread)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with suppress(RuntimeError):  # the loop closed during shutdown: the queue keeps them
                loop.call_soon_threadsafe(wake.set)

    # ---------------------------------------------------------------------------------- the log

    def deliveries(
        self, webhook: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        """The delivery log, newest first, each with its attempts."""
        where, args = [], []
        if webhook is not None:
            where.append("webhook = ?")
            args.append(webhook)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        sql = "SELECT id, webhook, event, status, created, next_at, finished FROM deliveries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created DESC, rowid DESC LIMIT ?"
        with self._lock:
            conn = self._db()
            rows = conn.execute(sql, (*args, limit)).fetchall()
            tries: dict[str, list[Attempt]] = {r[0]: [] for r in rows}
            if rows:
                marks = ",".join("?" * len(rows))
                for d, t, code, error, latency in conn.execute(
                    f"SELECT delivery, time, status_code, error, latency FROM attempts "
                    f"WHERE delivery IN ({marks}) ORDER BY delivery, n",
                    [r[0] for r in rows],
                ):
                    tries[d].append(Attempt(datetime.fromtimestamp(t, UTC), code, error, latency))
        return [
            Delivery(
                id=r[0],
                webhook=r[1],
                event=r[2],
                status=r[3],
                created=datetime.fromtimestamp(r[4], UTC),
                next_attempt=_iso(r[5]) if r[3] == "pending" else None,
                finished=_iso(r[6]),
                attempts=tuple(tries[r[0]]),
            )
            for r in rows
        ]

    def pending(self) -> int:
        """Deliveries waiting to be sent or retried (the queue depth)."""
        with self._lock:
            (n,) = self._db().execute("SELECT count(*) FROM deliveries WHERE status = 'pending'").fetchone()
        return int(n)

    def purge(self, now: float | None = None) -> int:
        """Delete finished deliveries older than ``keep_days``, with their attempts; how many."""
        cutoff = (now if now is not None else time.time()) - self.policy.keep_days * 86400
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM attempts WHERE delivery IN "
                "(SELECT id FROM deliveries WHERE status != 'pending' AND finished < ?)",
                (cutoff,),
            )
            n = conn.execute(
                "DELETE FROM deliveries WHERE status != 'pending' AND finished < ?", (cutoff,)
            ).rowcount
        if n:
            log.info("webhooks: %d finished deliveries older than %g days deleted", n, self.policy.keep_days)
        return n

    # ------------------------------------------------------------------------------------ worker

    async def start(self) -> None:
        """Start the delivery worker on the running loop."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="tila-webhooks")

    async def stop(self) -> None:
        """Stop the worker: POSTs under way are abandoned and stay queued (sent again later)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        self._loop = None
        self._wake = None

    async def _run(self) -> None:
        policy = self.policy
        wake = self._wake
        assert wake is not None
        #: delivery id → (webhook, its POST)
        inflight: dict[str, tuple[str, asyncio.Task[None]]] = {}
        next_purge = 0.0
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(policy.timeout),
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=policy.concurrency, max_keepalive_connections=policy.concurrency
            ),
            headers={"User-Agent": f"tila/{__version__}"},
        ) as client:
            try:
                while True:
                    wake.clear()
                    now = time.time()
                    if now >= next_purge:
                        next_purge = now + PURGE_EVERY
                        try:
                            # Off the loop: a month of finished deliveries can take SQLite a while.
                            await asyncio.to_thread(self.purge, now)
                        except sqlite3.Error as exc:
                            log.warning("webhooks: purge failed: %s", exc)
                    sleep: float | None = None
                    try:
                        busy = Counter(webhook for webhook, _ in inflight.values())
                        free = policy.concurrency - len(inflight)
                        if free > 0:
                            # Off the loop too: a backlog of a receiver's long outage is a big query.
                            for due in await asyncio.to_thread(self._claim, now, free, busy):
                                task = asyncio.create_task(self._send(client, due))
                                inflight[due.id] = (due.webhook, task)
                                task.add_done_callback(
                                    lambda _, i=due.id: (inflight.pop(i, None), wake.set())
                                )
                        if len(inflight) < policy.concurrency:
                            # Webhooks at their share wait for a POST to end (which wakes the loop).
                            full = [w for w, k in busy.items() if k >= policy.per_webhook]
                            sleep = min(MAX_SLEEP, max(0.0, self._next_due(full) - time.time()))
                    except sqlite3.Error as exc:
                        log.warning("webhooks: queue not readable, trying again shortly: %s", exc)
                        sleep = 5.0
                    with suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), sleep)
            finally:
                tasks = [task for _, task in inflight.values()]
                abandoned = [i for i, (_, task) in inflight.items() if not task.done()]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                if abandoned:
                    self._release(abandoned)

    def _claim(self, now: float, n: int, busy: Counter[str]) -> list[_Due]:
        """Up to ``n`` due deliveries, oldest first, at most :attr:`DeliveryPolicy.per_webhook` per
        webhook counting ``busy`` (updated); leased: their next attempt moved past this one's end."""
        cap = self.policy.per_webhook
        lease = now + self.policy.timeout + 30.0
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT id, webhook, event, body, attempts, created, url, secret FROM ("
                "  SELECT d.id, d.webhook, d.event, d.body, d.attempts, d.created, d.next_at, w.url,"
                "    w.secret, row_number() OVER (PARTITION BY d.webhook ORDER BY d.next_at) AS k"
                "  FROM deliveries d JOIN webhooks w ON w.id = d.webhook"
                "  WHERE d.status = 'pending' AND d.next_at <= ?"
                ") WHERE k <= ? ORDER BY next_at",
                (now, cap),
            ).fetchall()
            chosen = []
            for r in rows:
                if len(chosen) >= n:
                    break
                if busy[r[1]] < cap:
                    busy[r[1]] += 1
                    chosen.append(r)
            conn.executemany(
                "UPDATE deliveries SET next_at = ? WHERE id = ?", [(lease, r[0]) for r in chosen]
            )
        return [_Due(*r) for r in chosen]

    def _release(self, ids: list[str]) -> None:
        """Deliveries abandoned at shutdown: due again at once for the next start."""
        try:
            with self._tx() as conn:
                conn.executemany(
                    "UPDATE deliveries SET next_at = ? WHERE id = ? AND status = 'pending'",
                    [(time.time(), i) for i in ids],
                )
        except sqlite3.Error as exc:  # their leases run out anyway
            log.warning("webhooks: could not release %d deliveries: %s", len(ids), exc)

    def _next_due(self, skip: list[str]) -> float:
        """When the next pending delivery of a webhook not in ``skip`` is due (inf: none)."""
        sql = "SELECT min(next_at) FROM deliveries WHERE status = 'pending'"
        if skip:
            sql += f" AND webhook NOT IN ({','.join('?' * len(skip))})"
        with self._lock:
            (t,) = self._db().execute(sql, skip).fetchone()
        return float(t) if t is not None else math.inf

    async def _send(self, client: httpx.AsyncClient, due: _Due) -> None:
        started = time.time()
        stamp = str(int(started))
        headers = {
            "Content-Type": "application/json",
            "X-Tila-Event": due.event,
            "X-Tila-Delivery": due.id,
            "X-Tila-Timestamp": stamp,
            "X-Tila-Signature": signature(due.secret, stamp, due.body),
        }
        code: int | None = None
        error: str | None = None
        t0 = time.perf_counter()
        try:
            # httpx's timeout bounds each read, not the answer: one dribbled out a line at a time
            # would hold the POST (and outlive its lease). The whole attempt gets ``timeout``.
            async with asyncio.timeout(self.policy.timeout):
                # Streamed and never read: only the status matters, and a receiver's body could be huge.
                async with client.stream("POST", due.url, content=due.body, headers=headers) as answer:
                    code = answer.status_code
                    if answer.is_redirect:
                        error = f"redirect to {answer.headers.get('location', '?')} not followed"
        except httpx.TimeoutException as exc:
            error = f"timed out after {self.policy.timeout:g} s ({type(exc).__name__})"
        except TimeoutError:
            error = f"timed out after {self.policy.timeout:g} s (the whole answer)"
        except Exception as exc:  # connection refused, TLS, DNS, a URL httpx refuses: all retried
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        latency = time.perf_counter() - t0
        try:
            self._record(due, started, code, error[:MAX_ERROR] if error else None, latency)
        except sqlite3.Error as exc:  # the lease runs out and the delivery is sent again
            log.warning("webhooks: could not record delivery %s: %s", due.id, exc)

    def _record(self, due: _Due, started: float, code: int | None, error: str | None, latency: float) -> None:
        n = due.attempts + 1
        now = time.time()
        ok = code is not None and 200 <= code < 300
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO attempts (delivery, n, time, status_code, error, latency) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (due.id, n, started, code, error, round(latency, 6)),
            )
            if ok:
                status, next_at = "delivered", now
            else:
                next_at = now + self.policy.delay(n, self._rng)
                give_up = n >= self.policy.max_attempts or (
                    next_at > due.created + self.policy.retry_hours * 3600
                )
                status = "failed" if give_up else "pending"
            # A delivery its webhook's deletion ended stays failed unless this attempt delivered it.
            updated = conn.execute(
                "UPDATE deliveries SET status = ?, attempts = ?, next_at = ?, finished = ? "
                "WHERE id = ? AND (status = 'pending' OR ? = 'delivered')",
                (status, n, next_at, now if status != "pending" else None, due.id, status),
            ).rowcount
            if not updated:
                return
            # Counted while the lock is held: whoever sees the new status sees the counters too.
            if status == "delivered":
                self.delivered += 1
            elif status == "failed":
                self.failed += 1
            else:
                self.retried += 1
        what = error or f"HTTP {code}"
        if status == "failed":
            log.warning(
                "webhook %s: delivery %s (%s) failed after %d attempts: %s",
                due.webhook,
                due.id,
                due.event,
                n,
                what,
            )
        elif status == "pending":
            log.info(
                "webhook %s: delivery %s attempt %d: %s; next in %.0f s",
                due.webhook,
                due.id,
                n,
                what,
                next_at - now,
            )


def _space_of(event: str, data: Mapping[str, Any]) -> str | None:
    space = data.get("space")
    if space is None and event == "space.state":
        space = data.get("id")  # the space's public document names itself by id
    return space if isinstance(space, str) else None


def _host(url: str) -> str:
    """The host of a URL, for logs: a path or query may hold a receiver's own token."""
    return urlsplit(url).hostname or "?"
