"""The embedded store: one SQLite file in WAL mode."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from ..aggregator.buckets import Bucket
from . import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    space TEXT NOT NULL,
    start INTEGER NOT NULL,
    occupied_s REAL NOT NULL,
    covered_s REAL NOT NULL,
    count_s REAL NOT NULL,
    peak INTEGER NOT NULL,
    PRIMARY KEY (start, space)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    doc TEXT NOT NULL
);
"""


class SqliteStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # One connection shared by the aggregator's writer and the API's readers, serialised by a
            # lock: SQLite connections are not to be used from two threads at once.
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    def load_checkpoint(self) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT doc FROM checkpoint WHERE id = 1").fetchone()
        return json.loads(row[0]) if row else None

    def commit(self, buckets: list[Bucket], checkpoint: dict[str, Any]) -> None:
        doc = json.dumps(checkpoint, separators=(",", ":"))
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT OR REPLACE INTO buckets (space, start, occupied_s, covered_s, count_s, peak)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [b.as_tuple() for b in buckets],
                )
                self._db.execute("INSERT OR REPLACE INTO checkpoint (id, doc) VALUES (1, ?)", (doc,))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise StoreError(f"SQLite commit failed: {exc}") from exc

    def write_buckets(self, buckets: list[Bucket]) -> None:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT OR REPLACE INTO buckets (space, start, occupied_s, covered_s, count_s, peak)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [b.as_tuple() for b in buckets],
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise StoreError(f"SQLite write failed: {exc}") from exc

    def buckets(self, start: datetime, end: datetime, spaces: list[str] | None = None) -> list[Bucket]:
        """Buckets of slots starting in [start, end), of the given spaces (all when None)."""
        a, b = int(start.timestamp()), int(end.timestamp())
        sql = "SELECT space, start, occupied_s, covered_s, count_s, peak FROM buckets WHERE start >= ? AND start < ?"
        params: list[object] = [a, b]
        if spaces is not None:
            sql += f" AND space IN ({','.join('?' * len(spaces))})"
            params.extend(spaces)
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [Bucket(*r) for r in rows]

    def ping(self) -> bool:
        try:
            with self._lock:
                self._db.execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        with self._lock:
            self._db.close()
