"""Stores for buckets: the embedded SQLite store (``sqlite:///PATH``) and InfluxDB
(``influxdb://[USER:PASSWORD@]HOST[:PORT]/DATABASE[?token=TOKEN]``, ``influxdbs://`` for TLS),
spoken to through the v1 HTTP API that InfluxDB 1.x, 2.x and 3.x all serve.

Every store keeps the same contract (:class:`Store`: idempotent writes of bucket rows, reads of a
window) and passes the same test suite, tests/test_store_contract.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from ..aggregator.buckets import Bucket


class StoreUrlError(ValueError):
    """A store URL that cannot be used."""


class StoreError(RuntimeError):
    """The store failed to read or write."""


@dataclass(slots=True, frozen=True)
class StoreUrl:
    kind: str
    #: sqlite: the file's path; influxdb: the database (on 2.x the bucket, through its DBRP mapping).
    path: str
    # InfluxDB only.
    host: str = ""
    port: int = 0
    tls: bool = False
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)

    def __str__(self) -> str:
        if self.kind == "sqlite":
            return f"{self.kind}:///{self.path.lstrip('/')}"
        if self.kind == "influxdb":
            # Logged by the services: never the password or the token.
            user = f"{self.username}:***@" if self.username else ""
            host = f"[{self.host}]" if ":" in self.host else self.host
            query = "?token=***" if self.token else ""
            return f"influxdb{'s' if self.tls else ''}://{user}{host}:{self.port}/{self.path}{query}"
        return self.path


#: InfluxDB's HTTP port.
INFLUX_DEFAULT_PORT = 8086
#: Database names tila accepts: safe in a URL path, a query parameter and a quoted InfluxQL identifier
#: without escaping, and valid as a 1.x database, a 2.x bucket (mapped by its virtual DBRP) and a 3.x
#: database.
_INFLUX_DATABASE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_INFLUX_FORMS = "influxdb://[USER:PASSWORD@]HOST[:PORT]/DATABASE[?token=TOKEN] (influxdbs:// for TLS)"


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
    if parts.scheme in ("influxdb", "influxdbs"):
        return _parse_influx_url(url)
    raise StoreUrlError(f"store URL must be sqlite:///PATH or {_INFLUX_FORMS}, not {_redact(url)!r}")


def _redact(url: str) -> str:
    """The URL without its password or token, for error messages."""
    # Greedy up to the last '@': a password with an unencoded '@' is hidden whole.
    url = re.sub(r"(://[^/@:]*:).*@", r"\1***@", url)
    return re.sub(r"([?&]token=)[^&]*", r"\1***", url)


def _parse_influx_url(url: str) -> StoreUrl:
    shown = _redact(url)
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise StoreUrlError(f"InfluxDB URL has a bad port: {shown!r}")
    if not host:
        raise StoreUrlError(f"InfluxDB URL has no host: {shown!r}; use {_INFLUX_FORMS}")
    database = parts.path.removeprefix("/")
    if not database:
        raise StoreUrlError(f"InfluxDB URL has no database: {shown!r}; use {_INFLUX_FORMS}")
    if not _INFLUX_DATABASE.fullmatch(database):
        raise StoreUrlError(
            f"InfluxDB database must be 1-64 letters, digits, '_', '.' or '-' (not starting with '.' or"
            f" '-'): {shown!r}"
        )
    if parts.fragment:
        raise StoreUrlError(f"InfluxDB URL takes no #fragment: {shown!r}")
    query = [item.partition("=") for item in parts.query.split("&") if item]
    if any(key != "token" for key, _, _ in query):
        names = ", ".join(repr(key) for key, _, _ in query if key != "token")
        raise StoreUrlError(f"InfluxDB URL takes only ?token=TOKEN as query, not {names}: {shown!r}")
    if len(query) > 1:
        raise StoreUrlError(f"InfluxDB URL takes one token, not {len(query)}: {shown!r}")
    # unquote, not unquote_plus: a '+' in a token is a '+'.
    token = unquote(query[0][2]) if query else ""
    if query and not token:
        raise StoreUrlError(f"InfluxDB URL has an empty token: {shown!r}")
    username = unquote(parts.username) if parts.username else ""
    password = unquote(parts.password) if parts.password else ""
    if parts.password is not None and not username:
        raise StoreUrlError(f"InfluxDB URL has a password but no user name: {shown!r}")
    if token and username:
        raise StoreUrlError(
            f"InfluxDB URL takes a user and password (1.x) or a token (2.x, 3.x), not both: {shown!r}"
        )
    return StoreUrl(
        "influxdb",
        database,
        host=host,
        port=port or INFLUX_DEFAULT_PORT,
        tls=parts.scheme == "influxdbs",
        username=username,
        password=password,
        token=token,
    )


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
    if url.kind == "influxdb":
        from .influx import InfluxStore

        return InfluxStore(url)
    raise StoreUrlError(f"unknown store kind {url.kind!r}")
