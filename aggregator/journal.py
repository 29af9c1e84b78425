"""The aggregator's own durable state: one SQLite file in its data directory.

- the **checkpoint** (dedup trackers, live and accounting state, open buckets);
- the **event log**: every applied event with the time it was accrued at, kept for
  ``retention_days`` (60 by default) so late events can be accrued again in event-time order, then
  deleted by the aggregator itself;
- **pending bucket rows**: written to the store behind the commit, removed once the store took them.

A commit writes all three in one transaction, and the aggregator acknowledges messages only after
it. A store that is down therefore stops nothing: rows wait here, durably, and the flusher writes
them when the store is back (writes are idempotent upserts).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..sensors.events import Stamped
from ..sensors.wire import event_from_dict, event_to_dict
from .buckets import Bucket

SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    gateway TEXT NOT NULL,
    seq INTEGER NOT NULL,
    space TEXT NOT NULL,
    t REAL NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (gateway, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_space_t ON events (space, t);
CREATE TABLE IF NOT EXISTS pending (
    space TEXT NOT NULL,
    start INTEGER NOT NULL,
    occupied_s REAL NOT NULL,
    covered_s REAL NOT NULL,
    count_s REAL NOT NULL,
    peak INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (space, start)
) WITHOUT ROWID;
"""


class JournalError(RuntimeError):
    """The aggregator's own state file cannot be read or written."""


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._uncommitted: list[tuple[str, float, Stamped]] = []
        self._uncommitted_by_space: dict[str, list[tuple[float, Stamped]]] = {}
        self._version = 0
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            row = self._db.execute("SELECT MAX(version) FROM pending").fetchone()
            self._version = int(row[0] or 0)
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"cannot open the aggregator's state {self.path}: {exc}") from exc

    # ------------------------------------------------------------------------------- event log

    def log(self, space: str, t: float, s: Stamped) -> None:
        """Note an applied event; it is written with the next commit."""
        self._uncommitted.append((space, t, s))
        self._uncommitted_by_space.setdefault(space, []).append((t, s))

    def events(self, space: str, start: float, end: float) -> list[tuple[float, Stamped]]:
        """Events of ``space`` accrued at times in [start, end], committed or not, in time order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT t, gateway, body FROM events WHERE space = ? AND t >= ? AND t <= ? ORDER BY t, gateway, seq",
                (space, start, end),
            ).fetchall()
        out = [(t, event_from_dict(gw, json.loads(body))) for t, gw, body in rows]
        out += [(t, s) for t, s in self._uncommitted_by_space.get(space, ()) if start <= t <= end]
        out.sort(key=lambda x: (x[0], x[1].gateway, x[1].seq))
        return out

    # ---------------------------------------------------------------------------------- commit

    def commit(self, buckets: Iterable[Bucket], checkpoint: dict[str, Any]) -> None:
        doc = json.dumps(checkpoint, separators=(",", ":"))
        events = self._uncommitted
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT OR IGNORE INTO events (gateway, seq, space, t, body) VALUES (?, ?, ?, ?, ?)",
                    [
                        (s.gateway, s.seq, sp, t, json.dumps(event_to_dict(s), separators=(",", ":")))
                        for sp, t, s in events
                    ],
                )
                rows = []
                for b in buckets:
                    self._version += 1
                    rows.append((*b.as_tuple(), self._version))
                self._db.executemany(
                    "INSERT OR REPLACE INTO pending (space, start, occupied_s, covered_s, count_s, peak, version)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.execute("INSERT OR REPLACE INTO checkpoint (id, doc) VALUES (1, ?)", (doc,))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise JournalError(f"aggregator state commit failed: {exc}") from exc
        self._uncommitted = []
        self._uncommitted_by_space = {}

    def load_checkpoint(self) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT doc FROM checkpoint WHERE id = 1").fetchone()
        return json.loads(row[0]) if row else None

    # --------------------------------------------------------------------------------- flushing

    def pending(self, limit: int) -> list[tuple[Bucket, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT space, start, occupied_s, covered_s, count_s, peak, version FROM pending ORDER BY start LIMIT ?",
                (limit,),
            ).fetchall()
        return [(Bucket(*r[:6]), r[6]) for r in rows]

    def written(self, rows: list[tuple[Bucket, int]]) -> None:
        """Forget rows the store has taken, unless a newer version was committed since."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "DELETE FROM pending WHERE space = ? AND start = ? AND version = ?",
                [(b.space, b.start, v) for b, v in rows],
            )
            self._db.execute("COMMIT")

    def pending_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM pending").fetchone()[0])

    # -------------------------------------------------------------------------------- retention

    def prune(self, before: float) -> int:
        """Delete logged events accrued before ``before``; returns how many."""
        with self._lock:
            cur = self._db.execute("DELETE FROM events WHERE t < ?", (before,))
        return cur.rowcount

    def oldest_event(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(t) FROM events").fetchone()
        return None if row[0] is None else float(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
