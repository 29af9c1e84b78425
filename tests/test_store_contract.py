"""Two stores, one contract: the embedded SQLite store and the InfluxDB store pass the same tests.

The InfluxDB store runs against a real ``influxd`` (Debian's 1.6.7) on a free loopback port, one
fresh database per test. Below the shared suite: what only InfluxDB needs (field types, escaping,
authentication, truncated answers, outages) and the URL forms.
"""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from influx_support import InfluxServer, influxd_version, running_influxd, self_signed_cert

from tila.aggregator.buckets import BUCKET_SECONDS, Bucket
from tila.store import Store, StoreError, StoreUrl, StoreUrlError, open_store, parse_store_url
from tila.store.influx import (
    MAX_FILTER_CHARS,
    InfluxStore,
    escape_tag,
    line_of,
    message_of,
    parse_answer,
    space_filters,
)

#: 2026-11-23 00:00 UTC, a Monday: slot-aligned.
T0 = 1_795_392_000
assert T0 % BUCKET_SECONDS == 0


def at(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def ordered(rows: list[Bucket]) -> list[Bucket]:
    return sorted(rows, key=lambda r: (r.start, r.space))


@pytest.fixture(scope="session")
def influx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """One influxd for the session; every test gets its own database on it."""
    with running_influxd(tmp_path_factory.mktemp("influxd")) as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("influx", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'tila.db'}"
    server: InfluxServer = request.getfixturevalue("influx_server")
    return server.url(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(parse_store_url(store_url))
    yield s
    s.close()


# -------------------------------------------------------------------------------- the shared suite


def test_write_then_read_back_exactly(store: Store) -> None:
    rows = [
        Bucket("desk-01", T0, 900.0, 900.0, 900.0, 1),
        Bucket("desk-01", T0 + 900, 0.1, 123.456789012345, 0.30000000000000004, 0),
        Bucket("room-a", T0, 451.5, 899.999, 2257.5, 12),
        Bucket("room-a", T0 + 900, 0.0, 0.0, 0.0, 0),
        Bucket("hall", T0, 1e-9, 1e20, 3.0e15, 2**40),
    ]
    store.write_buckets(rows)
    got = ordered(store.buckets(at(T0), at(T0 + 1800)))
    assert got == ordered(rows)
    for r in got:
        assert all(type(v) is float for v in (r.occupied_s, r.covered_s, r.count_s)), r
        assert type(r.peak) is int and type(r.start) is int and type(r.space) is str, r


def test_rewrite_replaces_the_row(store: Store) -> None:
    store.write_buckets(
        [Bucket("desk-01", T0, 100.0, 200.0, 100.0, 1), Bucket("desk-02", T0, 1.0, 1.0, 1.0, 1)]
    )
    store.write_buckets([Bucket("desk-01", T0, 300.0, 900.0, 600.0, 2)])
    # The same key twice in one call: the later row wins.
    store.write_buckets([Bucket("desk-03", T0, 1.0, 1.0, 1.0, 1), Bucket("desk-03", T0, 5.0, 6.0, 7.0, 3)])
    # Writing the same rows again changes nothing.
    store.write_buckets([Bucket("desk-01", T0, 300.0, 900.0, 600.0, 2)])
    assert ordered(store.buckets(at(T0), at(T0 + 900))) == [
        Bucket("desk-01", T0, 300.0, 900.0, 600.0, 2),
        Bucket("desk-02", T0, 1.0, 1.0, 1.0, 1),
        Bucket("desk-03", T0, 5.0, 6.0, 7.0, 3),
    ]


def test_window_is_start_inclusive_end_exclusive(store: Store) -> None:
    store.write_buckets([Bucket("desk-01", T0 + k * 900, float(k), 900.0, float(k), 1) for k in range(-1, 4)])

    def starts(a: int, b: int) -> list[int]:
        return [r.start for r in ordered(store.buckets(at(a), at(b)))]

    assert starts(T0, T0 + 1800) == [T0, T0 + 900]
    assert starts(T0 + 1, T0 + 1800) == [T0 + 900]  # a slot starting before the window is not in it
    assert starts(T0 - 900, T0 + 901) == [T0 - 900, T0, T0 + 900]
    assert starts(T0 + 899, T0 + 900) == []
    # The same instants in another time zone: the same rows.
    hki = ZoneInfo("Europe/Helsinki")
    assert [
        r.start for r in ordered(store.buckets(at(T0).astimezone(hki), at(T0 + 1800).astimezone(hki)))
    ] == [
        T0,
        T0 + 900,
    ]


def test_empty_windows(store: Store) -> None:
    store.write_buckets([Bucket("desk-01", T0, 1.0, 1.0, 1.0, 1)])
    assert store.buckets(at(T0), at(T0)) == []
    assert store.buckets(at(T0 + 900), at(T0)) == []
    assert store.buckets(at(T0 + 900), at(T0 + 86400)) == []
    assert store.buckets(at(T0 - 86400), at(T0)) == []


def test_space_filter(store: Store) -> None:
    # Site ids are [a-z0-9][a-z0-9_.-]*; tags hold more (commas, spaces, '=', quotes, non-ASCII).
    spaces = ["desk-1", "desk-10", "desk-01.a", "room_b", "room 2,b=c", "o'neill", 'say "hi"', "sää", "x|y.*"]
    store.write_buckets([Bucket(s, T0, float(i), 900.0, float(i), i) for i, s in enumerate(spaces)])
    window = (at(T0), at(T0 + 900))
    assert sorted(r.space for r in store.buckets(*window)) == sorted(spaces)
    assert sorted(r.space for r in store.buckets(*window, None)) == sorted(spaces)
    for i, s in enumerate(spaces):
        assert store.buckets(*window, [s]) == [Bucket(s, T0, float(i), 900.0, float(i), i)], s
    assert sorted(r.space for r in store.buckets(*window, ["desk-1", "sää", "room 2,b=c"])) == sorted(
        ["desk-1", "sää", "room 2,b=c"]
    )
    assert [r.space for r in store.buckets(*window, ["desk-1", "desk-1"])] == ["desk-1"]
    assert store.buckets(*window, ["nobody"]) == []
    assert store.buckets(*window, ["desk"]) == []  # no prefix match
    assert store.buckets(*window, ["x"]) == []  # no pattern match
    assert store.buckets(*window, []) == []


def test_many_spaces_in_a_filter(store: Store) -> None:
    spaces = [f"desk-{i:04d}-with-a-rather-long-name" for i in range(600)]
    store.write_buckets([Bucket(s, T0, 1.0, 900.0, 1.0, 1) for s in spaces])
    asked = spaces[::2] + ["missing"]
    got = store.buckets(at(T0), at(T0 + 900), asked)
    assert sorted(r.space for r in got) == sorted(spaces[::2])


def test_many_rows_round_trip(store: Store) -> None:
    """30 days × 20 spaces of slots: 57,600 rows."""
    days, spaces = 30, [f"desk-{i:02d}" for i in range(20)]
    rows = [
        Bucket(s, T0 + k * 900, (k % 900) + 0.5, 900.0, ((k * 7) % 900) + 0.25, k % 5)
        for k in range(days * 96)
        for s in spaces
    ]
    store.write_buckets(rows)
    assert ordered(store.buckets(at(T0), at(T0 + days * 86400))) == ordered(rows)
    week = ordered(store.buckets(at(T0 + 86400), at(T0 + 8 * 86400), spaces[3:6]))
    assert week == ordered(
        [r for r in rows if r.space in spaces[3:6] and T0 + 86400 <= r.start < T0 + 8 * 86400]
    )


def test_empty_write_is_a_no_op(store: Store) -> None:
    store.write_buckets([])
    assert store.buckets(at(T0), at(T0 + 86400)) == []


def test_fresh_store_reads_empty(store: Store) -> None:
    assert store.buckets(at(T0), at(T0 + 86400)) == []
    assert store.buckets(at(T0), at(T0 + 86400), ["desk-01"]) == []
    assert store.ping() is True


def test_ping(store: Store) -> None:
    assert store.ping() is True
    store.write_buckets([Bucket("desk-01", T0, 1.0, 1.0, 1.0, 1)])
    assert store.ping() is True


def test_a_closed_store_raises_store_error(
    store_url: str, backend: str, request: pytest.FixtureRequest
) -> None:
    s = open_store(parse_store_url(store_url))
    s.write_buckets([Bucket("desk-01", T0, 1.0, 1.0, 1.0, 1)])
    s.close()
    assert s.ping() is False
    with pytest.raises(StoreError):
        s.write_buckets([Bucket("desk-01", T0, 2.0, 2.0, 2.0, 2)])
    with pytest.raises(StoreError):
        s.buckets(at(T0), at(T0 + 900))


# ----------------------------------------------------------------------------------- InfluxDB only


@pytest.fixture
def influx(influx_server: InfluxServer) -> Iterator[InfluxStore]:
    s = InfluxStore(parse_store_url(influx_server.url(f"t_{uuid.uuid4().hex[:12]}")))
    yield s
    s.close()


@pytest.mark.integration
def test_influx_server_version(influx_server: InfluxServer) -> None:
    """The suite runs against a 1.x server (Debian's package); 2.x and 3.x cannot be installed here."""
    assert influxd_version().startswith("InfluxDB v1."), influxd_version()


@pytest.mark.integration
def test_influx_integral_floats_stay_floats(influx: InfluxStore, influx_server: InfluxServer) -> None:
    # The first write fixes each field's type for good: all-integral values must still go as floats.
    influx.write_buckets([Bucket("desk-01", T0, 900.0, 900.0, 0.0, 0)])
    doc = influx_server.query('SHOW FIELD KEYS FROM "tila_bucket"', db=influx.database)
    fields = {name: kind for name, kind in doc["results"][0]["series"][0]["values"]}  # type: ignore[index]
    assert fields == {"occupied_s": "float", "covered_s": "float", "count_s": "float", "peak": "integer"}
    # Later rows, integral or not, are accepted (a type conflict would be HTTP 400 → StoreError).
    influx.write_buckets(
        [Bucket("desk-01", T0 + 900, 12.5, 900.0, 25.0, 2), Bucket("desk-02", T0, 3.0, 4.0, 5.0, 7)]
    )
    got = ordered(influx.buckets(at(T0), at(T0 + 1800)))
    assert got == [
        Bucket("desk-01", T0, 900.0, 900.0, 0.0, 0),
        Bucket("desk-02", T0, 3.0, 4.0, 5.0, 7),
        Bucket("desk-01", T0 + 900, 12.5, 900.0, 25.0, 2),
    ]
    assert type(got[0].occupied_s) is float and type(got[0].peak) is int


@pytest.mark.integration
def test_influx_type_conflict_is_an_error_not_silence(
    influx: InfluxStore, influx_server: InfluxServer
) -> None:
    # Someone else wrote 'peak' as a float into this database first: tila's integer points are
    # dropped by the server, and that must surface.
    influx_server.query(f'CREATE DATABASE "{influx.database}"')
    req = urllib.request.Request(
        f"{influx_server.http_url}/write?db={influx.database}&precision=s",
        data=f"tila_bucket,space=x occupied_s=1.0,covered_s=1.0,count_s=1.0,peak=1.0 {T0}".encode(),
    )
    urllib.request.urlopen(req, timeout=5).close()
    with pytest.raises(StoreError, match="conflict"):
        influx.write_buckets([Bucket("desk-01", T0, 1.0, 1.0, 1.0, 1)])


@pytest.mark.integration
def test_influx_outage_surfaces_and_recovers(influx: InfluxStore, influx_server: InfluxServer) -> None:
    influx.write_buckets([Bucket("desk-01", T0, 1.0, 900.0, 1.0, 1)])
    influx_server.stop()
    try:
        assert influx.ping() is False
        with pytest.raises(StoreError, match="not reachable"):
            influx.write_buckets([Bucket("desk-01", T0 + 900, 2.0, 900.0, 2.0, 1)])
        with pytest.raises(StoreError, match="not reachable"):
            influx.buckets(at(T0), at(T0 + 1800))
    finally:
        influx_server.start()
    assert influx.ping() is True
    influx.write_buckets([Bucket("desk-01", T0 + 900, 2.0, 900.0, 2.0, 1)])
    assert ordered(influx.buckets(at(T0), at(T0 + 1800))) == [
        Bucket("desk-01", T0, 1.0, 900.0, 1.0, 1),
        Bucket("desk-01", T0 + 900, 2.0, 900.0, 2.0, 1),
    ]


@pytest.mark.integration
def test_influx_truncated_answers_are_asked_again(tmp_path: Path) -> None:
    # Some 1.x deployments set max-row-limit; a truncated answer is marked "partial" and must never
    # be returned as if it were whole.
    with running_influxd(tmp_path / "limited", max_row_limit=50) as server:
        s = InfluxStore(parse_store_url(server.url("limited")))
        rows = [Bucket(f"d{i}", T0 + k * 900, float(k), 900.0, 0.0, 0) for i in range(8) for k in range(40)]
        s.write_buckets(rows)
        assert ordered(s.buckets(at(T0), at(T0 + 40 * 900))) == ordered(rows)
        # 60 spaces in one slot cannot be split by time any further: an error, not 50 rows.
        s.write_buckets([Bucket(f"e{i}", T0 - 900, 1.0, 1.0, 1.0, 1) for i in range(60)])
        with pytest.raises(StoreError, match="max-row-limit"):
            s.buckets(at(T0 - 900), at(T0))


@pytest.mark.integration
def test_influx_authentication(tmp_path: Path) -> None:
    with running_influxd(tmp_path / "auth", auth=True) as server:
        server.query("CREATE USER admin WITH PASSWORD 'pa ss:w@rd' WITH ALL PRIVILEGES")
        good = InfluxStore(parse_store_url(server.url("sec").replace("://", "://admin:pa%20ss%3Aw%40rd@")))
        good.write_buckets([Bucket("desk-01", T0, 1.0, 1.0, 1.0, 1)])  # also creates the database
        assert good.buckets(at(T0), at(T0 + 900)) == [Bucket("desk-01", T0, 1.0, 1.0, 1.0, 1)]
        bad = InfluxStore(parse_store_url(server.url("sec").replace("://", "://admin:wrong@")))
        with pytest.raises(StoreError, match="HTTP 401") as exc:
            bad.write_buckets([Bucket("desk-01", T0, 2.0, 2.0, 2.0, 2)])
        assert "wrong" not in str(exc.value)
        with pytest.raises(StoreError, match="HTTP 401"):
            bad.buckets(at(T0), at(T0 + 900))
        anonymous = InfluxStore(parse_store_url(server.url("sec")))
        with pytest.raises(StoreError, match="HTTP 401"):
            anonymous.write_buckets([Bucket("desk-01", T0, 2.0, 2.0, 2.0, 2)])
        # A user who may write but not create databases: the missing database is reported.
        server.query("CREATE USER writer WITH PASSWORD 'w'", user="admin", password="pa ss:w@rd")
        writer = InfluxStore(parse_store_url(server.url("other").replace("://", "://writer:w@")))
        with pytest.raises(StoreError, match="could not be created"):
            writer.write_buckets([Bucket("desk-01", T0, 2.0, 2.0, 2.0, 2)])


@pytest.mark.integration
def test_influx_over_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed_cert(tmp_path)
    with running_influxd(tmp_path / "tls", tls=(cert, key)) as server:
        url = parse_store_url(server.url("tls"))
        assert url.tls and str(url).startswith("influxdbs://")
        # The certificate is verified: unknown to the system's CAs, it is refused...
        with pytest.raises(StoreError, match="CERTIFICATE_VERIFY_FAILED"):
            InfluxStore(url).write_buckets([Bucket("desk-01", T0, 1.0, 1.0, 1.0, 1)])
        # ...and trusted through OpenSSL's SSL_CERT_FILE, as an operator would point at a private CA.
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        s = InfluxStore(url)
        assert s.ping() is True
        s.write_buckets([Bucket("desk-01", T0, 1.0, 1.0, 1.0, 1)])
        assert s.buckets(at(T0), at(T0 + 900)) == [Bucket("desk-01", T0, 1.0, 1.0, 1.0, 1)]


def test_influx_unreachable_server_is_a_store_error() -> None:
    s = InfluxStore(parse_store_url("influxdb://127.0.0.1:1/tila"))
    assert s.ping() is False
    with pytest.raises(StoreError, match="not reachable"):
        s.write_buckets([Bucket("desk-01", T0, 1.0, 1.0, 1.0, 1)])
    with pytest.raises(StoreError, match="not reachable"):
        s.buckets(at(T0), at(T0 + 900))


# ------------------------------------------------------------------- line protocol, InfluxQL, JSON


def test_line_protocol() -> None:
    assert line_of(Bucket("desk-01", T0, 900.0, 900, 0.5, 3)) == (
        f"tila_bucket,space=desk-01 occupied_s=900.0,covered_s=900.0,count_s=0.5,peak=3i {T0}"
    )
    assert line_of(Bucket("hall", T0, 1e20, 1e-9, 0.0, 0)).endswith(
        f"occupied_s=1e+20,covered_s=1e-09,count_s=0.0,peak=0i {T0}"
    )
    assert escape_tag("room 2,b=c") == "room\\ 2\\,b\\=c"
    assert escape_tag("o'neill") == "o'neill"


@pytest.mark.parametrize(
    "bucket",
    [
        Bucket("desk-01", T0, float("nan"), 1.0, 1.0, 1),
        Bucket("desk-01", T0, 1.0, float("inf"), 1.0, 1),
        Bucket("", T0, 1.0, 1.0, 1.0, 1),
        Bucket("a\\b", T0, 1.0, 1.0, 1.0, 1),
        Bucket("a\nb", T0, 1.0, 1.0, 1.0, 1),
        Bucket("desk-01", T0, 1.0, 1.0, 1.0, 1.5),  # type: ignore[arg-type]
    ],
)
def test_rows_influxdb_cannot_hold_are_refused_before_sending(bucket: Bucket) -> None:
    with pytest.raises(StoreError):
        line_of(bucket)
    # Nothing is sent: this server does not exist.
    with pytest.raises(StoreError):
        InfluxStore(parse_store_url("influxdb://127.0.0.1:1/tila")).write_buckets([bucket])


def test_space_filters_split_long_lists() -> None:
    assert space_filters([]) == []
    assert space_filters(["a", "o'b"]) == [" AND (\"space\" = 'a' OR \"space\" = 'o\\'b')"]
    many = space_filters([f"desk-{i:04d}" for i in range(2000)])
    assert len(many) > 1
    assert sum(f.count('"space" =') for f in many) == 2000
    assert all(len(f) <= MAX_FILTER_CHARS for f in many)


def test_parse_answer() -> None:
    assert parse_answer(b'{"results":[{"statement_id":0}]}') == ([], False)
    assert parse_answer(b'{"results":[{"statement_id":0,"error":"database not found: x"}]}') == ([], False)
    rows, partial = parse_answer(
        b'{"results":[{"statement_id":0,"series":[{"name":"tila_bucket","tags":{"space":"d"},'
        b'"columns":["time","occupied_s","covered_s","count_s","peak"],'
        b'"values":[[1795392000,900,900,0,1]],"partial":true}]}]}'
    )
    assert rows == [Bucket("d", T0, 900.0, 900.0, 0.0, 1)] and partial
    assert type(rows[0].occupied_s) is float
    with pytest.raises(StoreError, match="query failed"):
        parse_answer(b'{"results":[{"statement_id":0,"error":"error parsing query"}]}')
    with pytest.raises(StoreError, match="unexpected answer"):
        parse_answer(b"<html>proxy error</html>")
    assert message_of(b'{"error":"database not found: \\"x\\""}') == 'database not found: "x"'
    assert message_of(b'{"code":"not found","message":"bucket \\"x\\" not found"}') == 'bucket "x" not found'
    assert message_of(b"x" * 1000) == "x" * 300


def test_token_and_basic_auth_headers() -> None:
    token = InfluxStore(parse_store_url("influxdbs://influx.example:8443/tila?token=abc%2Bdef=="))
    assert token._headers == {"Authorization": "Token abc+def=="}
    basic = InfluxStore(parse_store_url("influxdb://tila:s%40cret@influx.example/tila"))
    assert basic._headers == {"Authorization": "Basic dGlsYTpzQGNyZXQ="}
    assert InfluxStore(parse_store_url("influxdb://influx.example/tila"))._headers == {}


# ---------------------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "expected", "shown"),
    [
        (
            "influxdb://localhost/tila",
            StoreUrl("influxdb", "tila", host="localhost", port=8086),
            "influxdb://localhost:8086/tila",
        ),
        (
            "influxdbs://u:p%40ss@influx.example:8443/work20lab",
            StoreUrl("influxdb", "work20lab", "influx.example", 8443, True, "u", "p@ss"),
            "influxdbs://u:***@influx.example:8443/work20lab",
        ),
        (
            "influxdb://10.0.0.5:8181/tila?token=apiv3_abc+/=",
            StoreUrl("influxdb", "tila", "10.0.0.5", 8181, token="apiv3_abc+/="),
            "influxdb://10.0.0.5:8181/tila?token=***",
        ),
        (
            "influxdb://[::1]:8086/tila.v2-x",
            StoreUrl("influxdb", "tila.v2-x", "::1", 8086),
            "influxdb://[::1]:8086/tila.v2-x",
        ),
    ],
)
def test_influx_urls(url: str, expected: StoreUrl, shown: str) -> None:
    parsed = parse_store_url(url)
    assert parsed == expected
    assert str(parsed) == shown
    assert "p@ss" not in repr(parsed) and "apiv3" not in repr(parsed)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("influxdb://", "no host"),
        ("influxdb:///tila", "no host"),
        ("influxdb://host", "no database"),
        ("influxdb://host/", "no database"),
        ("influxdb://host/a/b", "database must be"),
        ("influxdb://host/-x", "database must be"),
        ("influxdb://host/ti%20la", "database must be"),
        ("influxdb://host:http/tila", "bad port"),
        ("influxdb://host:99999/tila", "bad port"),
        ("influxdb://host:0/tila", "bad port"),
        ("influxdb://host/tila?rp=autogen", "takes only"),
        ("influxdb://host/tila?token=t0ken&u=x", "takes only"),
        ("influxdb://host/tila?token=", "empty token"),
        ("influxdb://host/tila?token=t0ken&token=t0ken", "one token"),
        ("influxdb://u:secret@host/tila?rp=x", "takes only"),
        ("influxdb://u:sec@ret@host/tila?rp=x", "takes only"),
        ("influxdb://u:secret@host/tila?token=t0ken", "not both"),
        ("influxdb://:secret@host/tila", "no user name"),
        ("influxdb://host/tila#x", "fragment"),
        ("influx://host/tila", "store URL must be"),
        ("http://u:secret@host:8086/tila", "store URL must be"),
    ],
)
def test_bad_influx_urls(url: str, message: str) -> None:
    with pytest.raises(StoreUrlError, match=message) as exc:
        parse_store_url(url)
    text = str(exc.value)
    assert "\n" not in text
    assert "secret" not in text and "t0ken" not in text


def test_sqlite_urls_unchanged(tmp_path: Path) -> None:
    assert parse_store_url("sqlite:///data/tila.db") == StoreUrl("sqlite", "data/tila.db")
    assert str(parse_store_url("sqlite:////var/lib/tila/tila.db")) == "sqlite:///var/lib/tila/tila.db"
    with pytest.raises(StoreUrlError, match="three slashes"):
        parse_store_url("sqlite://host/tila.db")


def test_windows_longer_than_a_query_window_and_far_bounds(store: Store) -> None:
    rows = [Bucket("desk-01", T0 + d * 86400, 1.0, 1.0, 1.0, 1) for d in range(0, 40, 3)]
    store.write_buckets(rows)
    assert ordered(store.buckets(at(T0), at(T0 + 40 * 86400))) == rows
    far = store.buckets(datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))
    assert ordered(far) == rows
    assert ordered(store.buckets(datetime(1, 1, 1, tzinfo=UTC), datetime.max.replace(tzinfo=UTC))) == rows
    far_filtered = store.buckets(
        datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC), ["desk-01", "x"]
    )
    assert ordered(far_filtered) == rows
    assert store.buckets(datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC), ["nobody"]) == []
    assert store.buckets(at(T0) - timedelta(days=1), at(T0) + timedelta(seconds=1), ["desk-01"]) == rows[:1]
