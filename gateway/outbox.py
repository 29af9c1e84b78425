"""The gateway's durable outbox: SQLite in WAL mode, one transaction per group of events.

An event is in the outbox before its device message is acknowledged on the local broker, and it
leaves only when the central broker has acknowledged the batch that carried it. The outbox's
AUTOINCREMENT key is the gateway's sequence number, so numbers survive restarts and are never reused.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL
);
"""

POLICIES = ("drop-oldest", "refuse-newest")


class OutboxError(RuntimeError):
    """The outbox cannot be opened or written."""


class Outbox:
    def __init__(self, path: str | Path, max_events: int = 2_000_000, policy: str = "drop-oldest") -> None:
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}")
        self.path = str(path)
        self.max_events = max_events
        self.policy = policy
        self.dropped = 0
        self._lock = threading.Lock()
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit survives power loss (the event has been acknowledged to the device side).
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            self._depth = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"cannot open outbox {self.path}: {exc}") from exc

    def append(self, events: list[dict[str, Any]]) -> list[int]:
        """Store events in one transaction; returns their sequence numbers (0 for a refused one)."""
        if not events:
            return []
        seqs: list[int] = []
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                room = self.max_events - self._depth
                if len(events) > room:
                    if self.policy == "drop-oldest":
                        excess = len(events) - room
                        self._db.execute(
                            "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)",
                            (excess,),
                        )
                        self.dropped += excess
                        self._depth -= excess
                    else:
                        self.dropped += len(events) - max(room, 0)
                for i, ev in enumerate(events):
                    if self.policy == "refuse-newest" and i >= room:
                        seqs.append(0)
                        continue
                    cur = self._db.execute(
                        "INSERT INTO outbox (event) VALUES (?)", (json.dumps(ev, separators=(",", ":")),)
                    )
                    seqs.append(int(cur.lastrowid or 0))
                    self._depth += 1
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                self._depth = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
                raise OutboxError(f"outbox write failed: {exc}") from exc
        return seqs

    def peek(self, after: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Unsent events with sequence numbers above ``after``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
        return [(seq, json.loads(ev)) for seq, ev in rows]

    def remove(self, seqs: list[int]) -> None:
        """Forget events the central broker has acknowledged."""
        if not seqs:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                before = self._db.total_changes
                self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
                removed = self._db.total_changes - before
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise OutboxError(f"outbox delete failed: {exc}") from exc
            self._depth -= removed

    @property
    def depth(self) -> int:
        return self._depth

    def oldest(self) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT event FROM outbox ORDER BY seq LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
