"""The embedded store: one SQLite file in WAL mode."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path

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
                self._rollback()
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
            try:
                rows = self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite read failed: {exc}") from exc
        return [Bucket(*r) for r in rows]

    def _rollback(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # a closed or broken connection has nothing to roll back

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
