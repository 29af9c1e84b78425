"""Stores for buckets and the aggregator's checkpoint: the embedded SQLite store (``sqlite:///PATH``).

Every store keeps the same contract (:class:`Store`): the aggregator commits bucket rows together
with its checkpoint, atomically, so that a restart resumes exactly where the last commit left off;
readers ask for buckets in a window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from ..aggregator.buckets import Bucket


class StoreUrlError(ValueError):
    """A store URL that cannot be used."""


class StoreError(RuntimeError):
    """The store failed to read or write."""


@dataclass(slots=True, frozen=True)
class StoreUrl:
    kind: str
    path: str

    def __str__(self) -> str:
        return f"{self.kind}:///{self.path.lstrip('/')}" if self.kind == "sqlite" else self.path


def parse_store_url(url: str) -> StoreUrl:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # sqlite:///relative/path or sqlite:////absolute/path, as SQLAlchemy spells them.
        if parts.netloc:
            raise StoreUrlError(f"sqlite URL takes three slashes: sqlite:///PATH, not {url!r}")
        path = parts.path.removeprefix("/")
        if not path:
            raise StoreUrlError(f"sqlite URL has no file path: {url!r}")
        if Path(path).is_dir():
            raise StoreUrlError(f"sqlite path is a directory: {path!r}")
        return StoreUrl("sqlite", path)
    raise StoreUrlError(f"store URL must be sqlite:///PATH, not {url!r}")


class Store(Protocol):
    """Where buckets live for readers (the API, reports). Every store passes the same test suite."""

    def write_buckets(self, buckets: list[Bucket]) -> None:
        """Write these rows, each replacing any row of the same (space, start): idempotent.

        Raises StoreError when the write did not happen (never swallowed).
        """
        ...

    def buckets(self, start: datetime, end: datetime, spaces: list[str] | None = None) -> list[Bucket]:
        """Rows of slots starting in [start, end) of these spaces (all when None)."""
        ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...


def open_store(url: StoreUrl) -> Store:
    if url.kind == "sqlite":
        from .sqlite import SqliteStore

        return SqliteStore(url.path)
    raise StoreUrlError(f"unknown store kind {url.kind!r}")
