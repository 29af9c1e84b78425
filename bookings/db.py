"""Where the API keeps bookings and the no-shows it detected: one SQLite file, ``DATA_DIR/bookings.db``.

Each operation opens its own short connection (WAL mode, a busy timeout), so the file may be used
from the API's worker threads, its event loop (through ``asyncio.to_thread``) and a command line at
the same time. An import replaces one source's bookings in one transaction: all or nothing.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from .model import Booking, BookingError, ImportResult

FILENAME = "bookings.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS bookings (
    uid TEXT PRIMARY KEY,
    space TEXT NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    source TEXT NOT NULL,
    expected INTEGER
);
CREATE INDEX IF NOT EXISTS bookings_by_space ON bookings (space, start);
CREATE INDEX IF NOT EXISTS bookings_by_source ON bookings (source, start);
CREATE INDEX IF NOT EXISTS bookings_by_start ON bookings (start);
CREATE TABLE IF NOT EXISTS outcomes (
    uid TEXT PRIMARY KEY,
    space TEXT NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    outcome TEXT NOT NULL,
    decided_at REAL NOT NULL,
    grace_s REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_by_start ON outcomes (start);
"""
#: Seconds a writer waits for another (the API and a command line importing at once).
BUSY_TIMEOUT = 10.0


class BookingDbError(RuntimeError):
    """The bookings database could not be read or written."""


class ConflictError(BookingError):
    """A booking that cannot be added: its uid exists, or it overlaps another booking of the space."""


@dataclass(slots=True, frozen=True)
class Detected:
    """What the live monitor decided for a booking at start + grace."""

    uid: str
    space: str
    start: datetime
    end: datetime
    outcome: str
    detected_at: datetime
    grace_s: float


def _ts(t: datetime) -> float:
    return t.timestamp()


def _dt(x: float) -> datetime:
    return datetime.fromtimestamp(x, UTC)


def _row(r: tuple[object, ...]) -> Booking:
    uid, space, start, end, source, expected = r
    return Booking(
        str(uid),
        str(space),
        _dt(float(start)),  # type: ignore[arg-type]
        _dt(float(end)),  # type: ignore[arg-type]
        str(source),
        None if expected is None else int(expected),  # type: ignore[call-overload]
    )


_COLUMNS = 'uid, space, start, "end", source, expected'


class BookingDb:
    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        """Open (and with ``create``, make) the database; :class:`BookingDbError` if it cannot be
        used. Without ``create`` the file must exist and be a bookings database already."""
        self.path = Path(path)
        # SQLite serialises writers itself; the lock only keeps one process' writers from queueing
        # on the busy timeout.
        self._lock = threading.Lock()
        if not create:
            if not self.path.is_file():
                raise BookingDbError(f"{self.path}: no such file")
            with self._connect() as db:
                try:
                    found = db.execute(
                        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'bookings'"
                    ).fetchone()
                except sqlite3.DatabaseError:
                    found = None
            if not found:
                raise BookingDbError(f"{self.path}: not a bookings database")
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise BookingDbError(f"cannot open bookings database {self.path}: {exc}") from exc

    @classmethod
    def in_dir(cls, data_dir: str | Path) -> BookingDb:
        return cls(Path(data_dir) / FILENAME)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        except sqlite3.Error as exc:
            raise BookingDbError(f"cannot open bookings database {self.path}: {exc}") from exc
        try:
            yield db
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise BookingDbError(f"bookings database {self.path}: {exc}") from exc
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    # ------------------------------------------------------------------------------------ writes

    def replace(self, result: ImportResult) -> ImportResult:
        """Replace the bookings of ``result.source`` starting in its window with its bookings, in one
        transaction. A booking whose uid another source holds is a ``duplicate`` skip, one overlapping
        another source's booking of the same space an ``overlap`` skip (the one already there stays).
        Returns the result as written (its skips updated, ``replaced`` set)."""
        if result.start is None or result.end is None:
            raise BookingError("an import needs its window")
        a, b = _ts(result.start), _ts(result.end)
        skipped = Counter(result.skipped)
        kept: list[Booking] = []
        with self._lock, self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            before = [
                r[0]
                for r in db.execute(
                    "SELECT uid FROM bookings WHERE source = ? AND start >= ? AND start < ?",
                    (result.source, a, b),
                )
            ]
            replaced = db.execute(
                "DELETE FROM bookings WHERE source = ? AND start >= ? AND start < ?",
                (result.source, a, b),
            ).rowcount
            for bk in result.bookings:
                if db.execute("SELECT 1 FROM bookings WHERE uid = ?", (bk.uid,)).fetchone():
                    skipped["duplicate"] += 1
                    continue
                if self._overlapping(db, bk):
                    skipped["overlap"] += 1
                    continue
                db.execute(
                    f"INSERT INTO bookings ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                    (bk.uid, bk.space, _ts(bk.start), _ts(bk.end), bk.source, bk.expected),
                )
                kept.append(bk)
            # What the monitor decided stays only for a booking that is still there at the same
            # space and times: a moved meeting (same UID, new times) is decided again, a removed
            # one is forgotten (as delete() does).
            db.executemany(
                "DELETE FROM outcomes WHERE uid = ? AND NOT EXISTS (SELECT 1 FROM bookings b WHERE "
                "b.uid = outcomes.uid AND b.space = outcomes.space AND b.start = outcomes.start "
                'AND b."end" = outcomes."end")',
                [(uid,) for uid in {*before, *(bk.uid for bk in kept)}],
            )
            db.execute("COMMIT")
        return replace(result, bookings=tuple(kept), skipped=skipped, replaced=replaced)

    @staticmethod
    def _overlapping(db: sqlite3.Connection, bk: Booking) -> bool:
        return (
            db.execute(
                'SELECT 1 FROM bookings WHERE space = ? AND start < ? AND "end" > ? AND uid != ? LIMIT 1',
                (bk.space, _ts(bk.end), _ts(bk.start), bk.uid),
            ).fetchone()
            is not None
        )

    def add(self, bk: Booking) -> Booking:
        """Add one booking; :class:`ConflictError` if its uid exists or it overlaps one of its space."""
        with self._lock, self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            if db.execute("SELECT 1 FROM bookings WHERE uid = ?", (bk.uid,)).fetchone():
                raise ConflictError(f"a booking {bk.uid[:64]!r} exists already")
            if self._overlapping(db, bk):
                raise ConflictError(f"{bk.space} is booked already for part of that time")
            db.execute(
                f"INSERT INTO bookings ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (bk.uid, bk.space, _ts(bk.start), _ts(bk.end), bk.source, bk.expected),
            )
            db.execute("COMMIT")
        return bk

    def delete(self, uid: str) -> Booking | None:
        """Remove a booking (and what the monitor decided for it); the removed booking, or None."""
        with self._lock, self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(f"SELECT {_COLUMNS} FROM bookings WHERE uid = ?", (uid,)).fetchone()
            if row is not None:
                db.execute("DELETE FROM bookings WHERE uid = ?", (uid,))
                db.execute("DELETE FROM outcomes WHERE uid = ?", (uid,))
            db.execute("COMMIT")
        return _row(row) if row is not None else None

    def record(self, d: Detected) -> bool:
        """Keep what the monitor decided; False if the booking had been decided already."""
        with self._lock, self._connect() as db:
            cur = db.execute(
                'INSERT OR IGNORE INTO outcomes (uid, space, start, "end", outcome, decided_at, grace_s)'
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (d.uid, d.space, _ts(d.start), _ts(d.end), d.outcome, _ts(d.detected_at), d.grace_s),
            )
            return cur.rowcount == 1

    # ------------------------------------------------------------------------------------- reads

    def get(self, uid: str) -> Booking | None:
        with self._connect() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM bookings WHERE uid = ?", (uid,)).fetchone()
        return _row(row) if row is not None else None

    def query(self, start: datetime, end: datetime, spaces: Iterable[str] | None = None) -> list[Booking]:
        """Bookings overlapping [start, end), of these spaces (all when None), in start order."""
        sql = f'SELECT {_COLUMNS} FROM bookings WHERE start < ? AND "end" > ?'
        params: list[object] = [_ts(end), _ts(start)]
        if spaces is not None:
            ids = list(spaces)
            if not ids:
                return []
            sql += f" AND space IN ({','.join('?' * len(ids))})"
            params.extend(ids)
        with self._connect() as db:
            rows = db.execute(sql + " ORDER BY start, space, uid", params).fetchall()
        return [_row(r) for r in rows]

    def detected(self, start: datetime, end: datetime) -> dict[str, Detected]:
        """What the monitor decided for bookings starting in [start, end), by uid."""
        with self._connect() as db:
            rows = db.execute(
                'SELECT uid, space, start, "end", outcome, decided_at, grace_s FROM outcomes'
                " WHERE start >= ? AND start < ?",
                (_ts(start), _ts(end)),
            ).fetchall()
        return {r[0]: Detected(r[0], r[1], _dt(r[2]), _dt(r[3]), r[4], _dt(r[5]), float(r[6])) for r in rows}

    def decided(self, uids: Iterable[str]) -> set[str]:
        ids = list(uids)
        if not ids:
            return set()
        with self._connect() as db:
            rows = db.execute(
                f"SELECT uid FROM outcomes WHERE uid IN ({','.join('?' * len(ids))})", ids
            ).fetchall()
        return {r[0] for r in rows}

    def ping(self) -> bool:
        try:
            with self._connect() as db:
                db.execute("SELECT 1").fetchone()
            return True
        except BookingDbError:
            return False
