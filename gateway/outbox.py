"""The gateway's durable outbox: SQLite in WAL mode, one transaction per group of events.

An event is in the outbox before its device message is acknowledged on the local broker, and it
leaves only when the central broker has acknowledged the batch that carried it. The outbox's
AUTOINCREMENT key is the gateway's sequence number, so numbers survive restarts and are never reused.

The same transaction records each device message's local packet id and a digest of it. A broker
that redelivers an unacknowledged message (after the gateway was killed between storing and
acknowledging it) sends it with the DUP flag and the same packet id: :meth:`Outbox.seen_local`
recognises it, so it is acknowledged again but not stored twice.

Capacity is a disk quota (bytes) and an event count, whichever is reached first; what happens when
it is reached is the policy (``drop-oldest`` or ``refuse-newest``), and every event dropped is
counted, persistently.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS local_seen (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    mid INTEGER NOT NULL,
    digest BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS local_seen_mid ON local_seen (mid);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

POLICIES = ("drop-oldest", "refuse-newest")
#: Device messages remembered for redelivery checks. A broker redelivers at most its in-flight
#: window (Mosquitto's max_inflight_messages, 20 by default) and packet ids cycle through 65535,
#: so the last 2000 cover every redelivery without a packet id being reused among them.
LOCAL_WINDOW = 2000
#: Bytes per stored event assumed until the outbox holds enough events to measure it.
DEFAULT_EVENT_BYTES = 400


class OutboxError(RuntimeError):
    """The outbox cannot be opened or written."""


def digest(topic: str, payload: bytes) -> bytes:
    return hashlib.blake2b(topic.encode() + b"\0" + payload, digest_size=16).digest()


class Outbox:
    def __init__(
        self,
        path: str | Path,
        max_events: int = 2_000_000,
        policy: str = "drop-oldest",
        max_bytes: int | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}")
        self.path = str(path)
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.policy = policy
        self._lock = threading.Lock()
        self._appends = 0
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit survives power loss (the event has been acknowledged to the device side).
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            self._depth = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            row = self._db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
            self.dropped = int(row[0]) if row else 0
            self._page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"cannot open outbox {self.path}: {exc}") from exc
        self._event_bytes = float(DEFAULT_EVENT_BYTES)
        self._measure()

    # ---------------------------------------------------------------------------------- capacity

    def _used_bytes(self) -> int:
        pages, free = (
            self._db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count")
        )
        return int((pages - free) * self._page_size)

    def _measure(self) -> None:
        if self._depth >= 1000:
            self._event_bytes = max(50.0, self._used_bytes() / self._depth)

    @property
    def capacity(self) -> int:
        """How many events fit: the event limit, or the disk quota at the measured bytes per event."""
        if self.max_bytes is None:
            return self.max_events
        return max(1, min(self.max_events, int(self.max_bytes / self._event_bytes)))

    # ------------------------------------------------------------------------------------ writes

    def append(self, events: list[dict[str, Any]], local: Iterable[tuple[int, bytes]] = ()) -> list[int]:
        """Store events (and the local messages they came from) in one transaction.

        Returns the events' sequence numbers (0 for one refused because the outbox is full).
        """
        local = list(local)
        if not events and not local:
            return []
        seqs: list[int] = []
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                cap = self.capacity
                if self.policy == "drop-oldest":
                    # The newest events are kept: older ones in the outbox make room, and a group
                    # larger than the whole outbox keeps its newest part.
                    skip = max(0, len(events) - cap)
                    excess = max(0, self._depth + len(events) - skip - cap)
                    if excess:
                        self._db.execute(
                            "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)",
                            (excess,),
                        )
                        self._depth -= excess
                    stored = range(skip, len(events))
                    dropped = skip + excess
                else:
                    room = max(0, cap - self._depth)
                    stored = range(min(room, len(events)))
                    dropped = len(events) - len(stored)
                for i, ev in enumerate(events):
                    if i not in stored:
                        seqs.append(0)
                        continue
                    cur = self._db.execute(
                        "INSERT INTO outbox (event) VALUES (?)", (json.dumps(ev, separators=(",", ":")),)
                    )
                    seqs.append(int(cur.lastrowid or 0))
                    self._depth += 1
                if local:
                    self._db.executemany("INSERT INTO local_seen (mid, digest) VALUES (?, ?)", local)
                    self._db.execute(
                        "DELETE FROM local_seen WHERE n <= (SELECT MAX(n) FROM local_seen) - ?",
                        (LOCAL_WINDOW,),
                    )
                if dropped:
                    self.dropped += dropped
                    self._db.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('dropped', ?)", (self.dropped,)
                    )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                self._depth = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
                raise OutboxError(f"outbox write failed: {exc}") from exc
            self._appends += 1
            if self._appends % 100 == 0:
                self._measure()
        return seqs

    def seen_local(self, mid: int, dig: bytes) -> bool:
        """Whether a device message with this packet id and digest was stored recently."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM local_seen WHERE mid = ? AND digest = ? LIMIT 1", (mid, dig)
            ).fetchone()
        return row is not None

    def peek(self, after: int, limit: int, upto: int | None = None) -> list[tuple[int, dict[str, Any]]]:
        """Unsent events with sequence numbers above ``after`` (and at most ``upto``), oldest first."""
        sql = "SELECT seq, event FROM outbox WHERE seq > ?"
        params: list[int] = [after]
        if upto is not None:
            sql += " AND seq <= ?"
            params.append(upto)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY seq LIMIT ?", (*params, limit)).fetchall()
        return [(seq, json.loads(ev)) for seq, ev in rows]

    def remove(self, seqs: list[int]) -> None:
        """Forget events the central broker has acknowledged.

        Without waiting for the disk (synchronous=NORMAL): a removal lost to a power cut only
        means the events are sent again, and consumers drop duplicates.
        """
        if not seqs:
            return
        with self._lock:
            try:
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("BEGIN IMMEDIATE")
                before = self._db.total_changes
                self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
                removed = self._db.total_changes - before
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise OutboxError(f"outbox delete failed: {exc}") from exc
            finally:
                # Appends stay FULL: an appended event has been acknowledged to the device side.
                self._db.execute("PRAGMA synchronous=FULL")
            self._depth -= removed

    # ------------------------------------------------------------------------------------- reads

    @property
    def depth(self) -> int:
        return self._depth

    def last_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT MAX(seq) FROM outbox").fetchone()
        return int(row[0] or 0)

    def oldest(self) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT event FROM outbox ORDER BY seq LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
