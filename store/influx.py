"""The InfluxDB store: bucket rows as points, through the v1 HTTP API.

One API for every server version: line protocol on ``POST /write`` and InfluxQL on ``GET /query``.
InfluxDB 1.x serves them natively; 2.x serves them as its v1 compatibility API, where the database
is a bucket's DBRP mapping (every bucket has a virtual one named after it) and a token authorises;
3.x serves them too and dropped Flux, so InfluxQL is the one query language all of them run.
Tested against Debian's 1.6.7 only: no 2.x or 3.x is installable here.

Schema: measurement ``tila_bucket``, one tag ``space``, the slot start as timestamp (seconds),
float fields ``occupied_s``, ``covered_s``, ``count_s`` and the integer field ``peak``. A point
replaces any point with the same measurement, tag set and timestamp, and every write carries all
four fields, so a row replaces the row of the same (space, start): writes are idempotent. A
field's type is fixed by its first write and a point of another type is dropped ("field type
conflict"), so floats are always written as floats (``900.0``) and ``peak`` always with ``i``.

One store holds one site (space ids are unique within a site): use a database per site.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import math
import ssl
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote_plus, urlencode

from ..aggregator.buckets import BUCKET_SECONDS, Bucket
from . import StoreError, StoreUrl

log = logging.getLogger(__name__)

MEASUREMENT = "tila_bucket"
FLOAT_FIELDS = ("occupied_s", "covered_s", "count_s")
#: Lines per write request: InfluxData's guide "Optimize writes" recommends batches of 5,000 lines.
WRITE_BATCH = 5000
#: Time span of one query, so no single JSON answer grows without bound (a week of 100 spaces is
#: 67,200 rows, a few MB). An answer the server truncated (1.x ``max-row-limit``) is asked again
#: in halves.
QUERY_WINDOW_S = 7 * 86400
#: A read over more windows than this first asks for its first and last row, so a window of
#: decades is not thousands of empty queries.
NARROW_AFTER_WINDOWS = 4
#: URL-encoded length of one query's space filter; more spaces are asked in several queries.
#: Request lines over 8 KiB are refused by common proxies and servers.
MAX_FILTER_CHARS = 4000
#: How much of a server's answer goes into an error message.
ERROR_CHARS = 300
#: Seconds to wait for the server on one request.
TIMEOUT_S = 30.0
#: InfluxDB's time range: int64 nanoseconds since the epoch, 1677-09-21 to 2262-04-11.
MIN_TIME_S = -9_223_372_036
MAX_TIME_S = 9_223_372_036


class InfluxStore:
    """Buckets in an InfluxDB database. Opening does no I/O: a server that is down makes writes
    raise StoreError and ``ping()`` answer False until it is back."""

    def __init__(self, url: StoreUrl, timeout: float = TIMEOUT_S) -> None:
        if url.kind != "influxdb":
            raise ValueError(f"not an InfluxDB URL: {url}")
        self.url = url
        self.database = url.path
        self.timeout = timeout
        self._headers: dict[str, str] = {}
        if url.token:
            # 2.x and 3.x; 3.x also takes "Bearer", 2.x only "Token".
            self._headers["Authorization"] = f"Token {url.token}"
        elif url.username:
            # 1.x users (and 2.x v1 authorizations); Basic keeps them out of the query string and logs.
            cred = f"{url.username}:{url.password}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(cred).decode("ascii")
        self._closed = False

    # -------------------------------------------------------------------------------- the contract

    def write_buckets(self, buckets: list[Bucket]) -> None:
        """Write the rows in batches of WRITE_BATCH lines.

        Raises StoreError when any batch was refused or not answered; earlier batches may then be
        stored, which is harmless: writing the same rows again replaces them.
        """
        self._check_open()
        if not buckets:
            return
        lines = [line_of(b) for b in buckets]
        with self._connect() as conn:
            for i in range(0, len(lines), WRITE_BATCH):
                self._write(conn, "\n".join(lines[i : i + WRITE_BATCH]).encode())

    def buckets(self, start: datetime, end: datetime, spaces: list[str] | None = None) -> list[Bucket]:
        """Rows of slots starting in [start, end) of these spaces (all when None), by start, space."""
        self._check_open()
        a = max(math.ceil(start.timestamp()), MIN_TIME_S)
        b = min(math.ceil(end.timestamp()), MAX_TIME_S)
        if a >= b:
            return []
        if spaces is None:
            filters = [""]
        else:
            filters = space_filters(list(dict.fromkeys(spaces)))
            if not filters:
                return []
        rows: list[Bucket] = []
        with self._connect() as conn:
            for flt in filters:
                lo, hi = a, b
                if hi - lo > NARROW_AFTER_WINDOWS * QUERY_WINDOW_S:
                    extent = self._extent(conn, lo, hi, flt)
                    if extent is None:
                        continue
                    lo, hi = extent[0], extent[1] + 1
                while lo < hi:
                    u = min(hi, lo + QUERY_WINDOW_S)
                    rows.extend(self._select(conn, lo, u, flt))
                    lo = u
        rows.sort(key=lambda r: (r.start, r.space))
        return rows

    def ping(self) -> bool:
        if self._closed:
            return False
        try:
            with self._connect() as conn:
                status, _ = conn.request("GET", "/ping")
        except StoreError:
            return False
        # 1.x and 2.x answer 204, 3.x 200 with its version.
        return 200 <= status < 300

    def close(self) -> None:
        self._closed = True

    # ------------------------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the InfluxDB store is closed")

    def _connect(self) -> _Connection:
        return _Connection(self.url, self._headers, self.timeout)

    def _write(self, conn: _Connection, body: bytes) -> None:
        params = {"db": self.database, "precision": "s"}
        status, data = conn.request("POST", "/write", params, body)
        if status == 404 and b"database not found" in data:
            # 1.x's answer for a database nobody created yet (2.x says "bucket not found", and 3.x
            # creates databases on the first write).
            self._create_database(conn)
            status, data = conn.request("POST", "/write", params, body)
        if not 200 <= status < 300:
            raise StoreError(f"InfluxDB {self.url} refused the write: HTTP {status}: {message_of(data)}")

    def _create_database(self, conn: _Connection) -> None:
        # Idempotent; needs an admin user when 1.x has authentication on.
        status, data = conn.request("POST", "/query", {"q": f'CREATE DATABASE "{self.database}"'})
        error = message_of(data) if not 200 <= status < 300 else _statement_error(data)
        if error:
            raise StoreError(
                f"InfluxDB {self.url}: database {self.database!r} does not exist and could not be"
                f" created: {error}"
            )
        log.info("created InfluxDB database %s", self.database)

    def _query(self, conn: _Connection, q: str) -> bytes:
        status, data = conn.request("GET", "/query", {"db": self.database, "q": q, "epoch": "s"})
        if status == 404 and b"database not found" in data:
            # 1.x answers 200 with the error inside; a server that answers 404 means the same.
            return b'{"results":[{"statement_id":0}]}'
        if not 200 <= status < 300:
            raise StoreError(f"InfluxDB {self.url} refused the query: HTTP {status}: {message_of(data)}")
        return data

    def _select(self, conn: _Connection, a: int, b: int, flt: str) -> list[Bucket]:
        fields = ", ".join(f'"{f}"' for f in (*FLOAT_FIELDS, "peak"))
        q = f'SELECT {fields} FROM "{MEASUREMENT}" WHERE {_time_range(a, b)}{flt} GROUP BY "space"'
        rows, partial = parse_answer(self._query(conn, q))
        if partial:
            if b - a <= BUCKET_SECONDS:
                raise StoreError(
                    f"InfluxDB {self.url} truncated the rows of one slot: raise its max-row-limit"
                )
            mid = a + (b - a) // 2
            return self._select(conn, a, mid, flt) + self._select(conn, mid, b, flt)
        return rows

    def _extent(self, conn: _Connection, a: int, b: int, flt: str) -> tuple[int, int] | None:
        """The first and the last row's start in [a, b), or None when there is no row."""
        found = []
        for selector in ("first", "last"):
            # A lone selector answers with the selected point's own time.
            q = f'SELECT {selector}("peak") FROM "{MEASUREMENT}" WHERE {_time_range(a, b)}{flt}'
            series, _ = _series(self._query(conn, q))
            try:
                found.append(int(series[0]["values"][0][0]))
            except (IndexError, KeyError, TypeError, ValueError):
                return None
        return found[0], found[1]


class _Connection:
    """One HTTP connection for the requests of one call (a write's batches, a read's windows),
    closed at its end: nothing is shared between threads, and no idle connection goes stale."""

    def __init__(self, url: StoreUrl, headers: dict[str, str], timeout: float) -> None:
        self._where = str(url)
        self._headers = headers
        self._conn: http.client.HTTPConnection
        if url.tls:
            self._conn = http.client.HTTPSConnection(
                url.host, url.port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            self._conn = http.client.HTTPConnection(url.host, url.port, timeout=timeout)

    def __enter__(self) -> _Connection:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._conn.close()

    def request(
        self, method: str, path: str, params: dict[str, str] | None = None, body: bytes | None = None
    ) -> tuple[int, bytes]:
        target = f"{path}?{urlencode(params)}" if params else path
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        try:
            self._conn.request(method, target, body=body, headers=headers)
            resp = self._conn.getresponse()
            return resp.status, resp.read()
        except OSError as exc:
            self._conn.close()
            raise StoreError(f"InfluxDB {self._where} not reachable: {exc}") from exc
        except http.client.HTTPException as exc:
            self._conn.close()
            raise StoreError(f"InfluxDB {self._where} gave no HTTP answer: {exc!r}") from exc


# ---------------------------------------------------------------------------------- line protocol


def line_of(b: Bucket) -> str:
    """The line-protocol line of a bucket row (raises StoreError for a row InfluxDB cannot hold)."""
    start, peak = int(b.start), int(b.peak)
    if start != b.start or peak != b.peak:
        raise StoreError(f"bucket {b.space!r}@{b.start}: start and peak must be integers")
    values = []
    for name in FLOAT_FIELDS:
        v = float(getattr(b, name))
        if not math.isfinite(v):
            raise StoreError(f"bucket {b.space!r}@{b.start}: {name} is {v}, which InfluxDB cannot store")
        # repr() always reads back as a float (900.0, 1e+20), never as an integer: no type conflict.
        values.append(f"{name}={v!r}")
    return f"{MEASUREMENT},space={escape_tag(b.space)} {','.join(values)},peak={peak}i {start}"


def escape_tag(value: str) -> str:
    """A tag value in line protocol: commas, equals signs and spaces escaped with a backslash.

    Backslashes are refused: 1.x keeps ``\\\\`` as two characters and breaks on a trailing one, so
    such a value would not read back as written. Control characters end lines: refused too.
    """
    if not value:
        raise StoreError("bucket with an empty space id")
    if "\\" in value or any(ord(c) < 32 or c == "\x7f" for c in value):
        raise StoreError(f"space id {value!r} holds a backslash or control character InfluxDB cannot store")
    return value.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


# ----------------------------------------------------------------------------------------- InfluxQL


def quote_string(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def space_filters(spaces: list[str]) -> list[str]:
    """``AND ("space" = 'a' OR ...)`` clauses, each short enough for one query URL."""
    groups: list[list[str]] = []
    size = MAX_FILTER_CHARS
    for s in spaces:
        term = f'"space" = {quote_string(s)}'
        n = len(quote_plus(term)) + len("+OR+")
        if size + n > MAX_FILTER_CHARS:
            groups.append([])
            size = 0
        groups[-1].append(term)
        size += n
    return [f" AND ({' OR '.join(g)})" for g in groups]


def _rfc3339(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time_range(a: int, b: int) -> str:
    return f"time >= '{_rfc3339(a)}' AND time < '{_rfc3339(b)}'"


def _series(data: bytes) -> tuple[list[dict[str, Any]], bool]:
    """The series of a ``/query`` JSON answer, and whether the server truncated it.

    A database that does not exist yet reads as empty; any other error raises StoreError.
    """
    try:
        found: list[dict[str, Any]] = []
        partial = False
        for res in json.loads(data)["results"]:
            error = res.get("error")
            if error:
                if "database not found" in str(error):
                    continue
                raise StoreError(f"InfluxDB query failed: {str(error)[:ERROR_CHARS]}")
            partial = partial or bool(res.get("partial"))
            for series in res.get("series") or ():
                partial = partial or bool(series.get("partial"))
                found.append(series)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreError(f"unexpected answer from InfluxDB ({exc}): {_text(data)}") from exc
    return found, partial


def parse_answer(data: bytes) -> tuple[list[Bucket], bool]:
    """Bucket rows from a ``/query`` answer grouped by space, and whether it was truncated."""
    series_list, partial = _series(data)
    rows: list[Bucket] = []
    try:
        for series in series_list:
            space = (series.get("tags") or {}).get("space")
            if not space:
                continue
            columns = series["columns"]
            for values in series.get("values") or ():
                r = dict(zip(columns, values, strict=True))
                # JSON carries 900.0 as 900: the float fields are read as floats whatever the text.
                rows.append(
                    Bucket(
                        space,
                        int(r["time"]),
                        float(r.get("occupied_s") or 0.0),
                        float(r.get("covered_s") or 0.0),
                        float(r.get("count_s") or 0.0),
                        int(r.get("peak") or 0),
                    )
                )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreError(f"unexpected answer from InfluxDB ({exc}): {_text(data)}") from exc
    return rows, partial


def _statement_error(data: bytes) -> str:
    """The first statement error in a 200 ``/query`` answer, or ''."""
    try:
        return next((str(r["error"]) for r in json.loads(data)["results"] if r.get("error")), "")[
            :ERROR_CHARS
        ]
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"unexpected answer: {_text(data)}"


def message_of(data: bytes) -> str:
    """The error message in an InfluxDB error answer (1.x ``error``, 2.x/3.x ``message``), truncated."""
    try:
        doc = json.loads(data)
        if isinstance(doc, dict):
            msg = doc.get("error") or doc.get("message")
            if isinstance(msg, str) and msg:
                return msg[:ERROR_CHARS]
    except ValueError:
        pass
    return _text(data) or "(no message)"


def _text(data: bytes) -> str:
    return data[:ERROR_CHARS].decode("utf-8", "replace").strip()
