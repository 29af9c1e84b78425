"""Fuzzing the HTTP API: schemathesis against /openapi.json (no server errors, answers as described),
then hand-written hostile requests, in-process and over a real socket.

schemathesis drives the ASGI app in this process, with a real SQLite store holding buckets and an
admin token, so the protected routes are exercised past their auth (its ``ignored_auth`` check also
sends them without one). ``/v1/stream`` never ends and is left out of the fuzz; it is fuzzed below
with hostile ``Last-Event-ID`` headers over real HTTP.
"""

from __future__ import annotations

import json
import socket
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from api_support import (
    ADMIN,
    ANALYST,
    TOKENS,
    Api,
    make_api,
    make_site,
    running,
    space_payload,
    space_topic,
    sse_events,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tila.aggregator.buckets import Bucket
from tila.api.app import create_app
from tila.api.live import LiveState
from tila.api.settings import ApiSettings
from tila.store.sqlite import SqliteStore

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

#: Examples per operation and mode: 11 operations × 2 modes × this takes about 15 s.
MAX_EXAMPLES = 100
#: Every check schemathesis has runs (no server error, status codes, content types, headers and
#: bodies as described, auth enforced, bad input refused) but one: "schema-valid data is accepted".
#: Some valid-looking requests mean nothing here, and OpenAPI cannot say so: `to` before `from`,
#: a space or zone id the site does not have. Those are 422s with a readable message, on purpose.
EXCLUDED_CHECKS = [positive_data_acceptance]


def fill(api: Api) -> None:
    """A week of buckets and some live state, so answers have rows and the metrics have series."""
    t0 = int(datetime(2026, 1, 12, tzinfo=UTC).timestamp())
    api.store.write_buckets(
        [
            Bucket(
                space.id, t0 + k * 900, occupied_s=450, covered_s=900, count_s=450 * space.capacity, peak=1
            )
            for space in api.site.spaces
            for k in range(0, 7 * 96, 7)
        ]
    )
    api.live.handle(space_topic("desk-01"), space_payload("occupied", 1))
    api.live.handle("tila/v1/lab/gateways/gw-1/status", b"online")
    api.live.handle(
        "tila/v1/lab/gateways/gw-1/health", b'{"outbox_depth": 3, "quarantined": {"not_json": 1}}'
    )
    api.live.handle("tila/v1/lab/sensors/desk-01-pir/state", b'{"online": true, "battery": 80}')


def fuzz(app: Any, mode: GenerationMode, headers: dict[str, str]) -> list[str]:
    """Every operation but the stream, ``MAX_EXAMPLES`` cases each in ``mode``; the failures found.

    Driven directly rather than through schemathesis' pytest plugin, whose fixture-based loader does
    not work with pytest 9 (schemathesis 4.32), and so that one test holds one app and its store."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # A body over its route's limit is refused with 413 before anything else looks at it (api/headers.py).
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]
    failures: list[str] = []
    fuzzed: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/v1/stream":  # never ends; fuzzed by hand below
            continue

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, excluded_checks=EXCLUDED_CHECKS)

        try:
            check()
            fuzzed.append(operation.path)
        except Unsatisfiable:
            # Negative mode for an operation whose every input is valid (no parameters, or one
            # free string): nothing to generate.
            assert mode == GenerationMode.NEGATIVE, operation.path
        except Exception as exc:  # schemathesis' FailureGroup, or any other
            failures.append(f"{mode} {operation.method.upper()} {operation.path}: {str(exc)[:2000]}")
    # the routes with parameters are always fuzzed, whatever the mode
    assert {"/v1/utilisation", "/v1/utilisation/heatmap", "/healthz"} <= set(fuzzed), fuzzed
    return failures


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors_and_answers_as_described(
    tmp_path: Path, mode: GenerationMode, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No rate limit (tested in test_api_ops.py): schemathesis' own requests without a token would
    # use up the anonymous budget and then meet 429s where its auth check expects 401s.
    site = make_site()
    live = LiveState(site)
    store = SqliteStore(tmp_path / "tila.db")
    api = Api(
        site, live, store, create_app(site, live, store, TOKENS, ApiSettings(rate_limit=0), data_dir=tmp_path)
    )
    fill(api)
    # A healthy API: otherwise /healthz?strict=true answers 503 (degraded: no broker here), by design.
    monkeypatch.setattr(type(api.live), "connected", property(lambda self: True))
    try:
        failures = fuzz(api.app, mode, ADMIN)
    finally:
        from schemathesis.python import asgi

        asgi.shutdown_lifespans()  # the lifespan schemathesis started for this app
        api.store.close()
    assert not failures, "\n\n".join(failures)


# ---------------------------------------------------------------------------------- by hand


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    api = make_api(tmp_path)
    fill(api)
    yield api
    api.store.close()


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    with TestClient(api.app, raise_server_exceptions=False) as c:
        yield c


WINDOW = {"from": "2026-01-12T00:00:00+02:00", "to": "2026-01-19T00:00:00+02:00"}
SQLISH = [
    "desk-01' OR '1'='1",
    "'; DROP TABLE buckets; --",
    'desk-01") UNION SELECT * FROM sqlite_master --',
    "desk-01\\' OR 1=1 /*",
    "%' OR space LIKE '%",
    "desk-01\x00",
    "desk-01\n; DROP",
    "' OR ''='",
    "SELECT * FROM buckets",
    "ö" * 500,
]


@pytest.mark.parametrize("value", SQLISH)
@pytest.mark.parametrize("param", ["space", "zone", "kind"])
def test_sql_in_filters_is_a_422_and_changes_nothing(
    api: Api, client: TestClient, param: str, value: str
) -> None:
    before = client.get("/v1/utilisation", params=WINDOW, headers=ANALYST).json()
    for path in ("/v1/utilisation", "/v1/utilisation/heatmap"):
        r = client.get(path, params={**WINDOW, param: value}, headers=ANALYST)
        assert r.status_code == 422, (path, r.status_code, r.text[:200])
        body = r.json()
        assert body["message"].startswith(f"{param}: unknown {param}")
        assert len(body["message"]) < 1000  # the value is quoted, truncated, never echoed whole
    assert client.get("/v1/utilisation", params=WINDOW, headers=ANALYST).json() == before
    assert client.get("/v1/spaces/" + quote(value, safe="")).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/v1/spaces/..%2f..%2fetc%2fpasswd",
        "/v1/spaces/..%2F..%2F..%2Fpyproject.toml",
        "/v1/spaces/%2e%2e/%2e%2e/etc/passwd",
        "/v1/spaces/desk-01%00",
        "/v1/spaces/%ff%fe",
        "/v1/spaces/" + "a" * 10_000,
        "/static/..%2f..%2fapp.py",
        "/static/..%2F..%2F..%2Fpyproject.toml",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/../../../../../etc/passwd",
        "/static/lobby.css%00.html",
        "/v1/utilisation/..%2f..%2fhealthz",
        "/v1//spaces",
        "/v1/spaces/desk-01/../../sensors",
    ],
)
def test_path_traversal_and_odd_paths_are_4xx(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert 400 <= r.status_code < 500 or (r.status_code == 200 and "root:" not in r.text), (
        path,
        r.status_code,
    )
    assert "root:x" not in r.text and "[project]" not in r.text and "import " not in r.text


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-01-12T00:00:00+02:00\x00", "to": WINDOW["to"]},
        {"from": "0001-01-01T00:00:00+14:00", "to": "0001-01-01T00:00:00-14:00"},
        {"from": "9999-12-31T23:59:59-12:00", "to": "9999-12-31T23:59:59-14:00"},
        {"from": "1970-01-01T00:00:00Z", "to": "9000-01-01T00:00:00Z"},
        {"from": "2026-01-12T00:00:00+25:00", "to": WINDOW["to"]},
        {"from": "2026-02-30T00:00:00Z", "to": WINDOW["to"]},
        {"from": "2026-01-12T00:00:00.999999999999Z", "to": WINDOW["to"]},
        {"from": "1" * 5000, "to": WINDOW["to"]},
        {"from": "NaN", "to": "Infinity"},
        {**WINDOW, "interval": "15m' OR 1=1"},
        {**WINDOW, "group": "../../etc"},
        # as long as a client library lets a query be (httpx: 64 KiB); longer ones over a raw socket below
        {**WINDOW, "space": ",".join(["desk-01"] * 5_000)},
        {**WINDOW, "zone": "x" * 60_000},
    ],
)
def test_hostile_query_values_are_4xx_or_answers(client: TestClient, params: dict[str, str]) -> None:
    for path in ("/v1/utilisation", "/v1/utilisation/heatmap"):
        r = client.get(path, params=params, headers=ANALYST)
        assert r.status_code in (200, 422), (path, params, r.status_code, r.text[:300])
        if r.status_code == 422:
            assert len(r.json()["message"]) < 2000


def test_many_repeated_parameters(client: TestClient) -> None:
    params = [("from", WINDOW["from"]), ("to", WINDOW["to"])] + [("space", "desk-01")] * 4000
    r = client.get("/v1/utilisation", params=params, headers=ANALYST)
    assert r.status_code == 200 and len(r.json()) == 1


def test_oversize_bodies_are_refused_before_they_are_read(client: TestClient) -> None:
    for method in ("POST", "PUT", "GET"):
        r = client.request(method, "/v1/spaces", content=b"{" * 200_000)
        assert r.status_code == 413, (method, r.status_code)
    # a small body on a GET is simply not read; on a POST the route is not there
    assert client.request("GET", "/v1/spaces", content=b"{}").status_code == 200
    assert client.post("/v1/spaces", content=b"{}").status_code == 405


@pytest.mark.parametrize(
    "value",
    [
        "Bearer " + "a" * 8000,
        "Bearer \u00e4\u00e4",
        "Bearer admin-token-1 extra",
        "bearer  ",
        "Bearer\tadmin",
    ],
)
def test_odd_authorization_headers_are_401(client: TestClient, value: str) -> None:
    r = client.get("/v1/sensors", headers={"Authorization": value.encode("utf-8")})
    assert r.status_code == 401, (value[:30], r.status_code)


# ------------------------------------------------------------------------- over a real socket


def raw(base: str, request: bytes) -> bytes:
    """Send ``request`` as it is and read the answer; the server may answer (and close) before it
    has read everything, which cuts the sending short, not the test."""
    host, port = base.removeprefix("http://").split(":")
    chunks = []
    with socket.create_connection((host, int(port)), timeout=5) as s:
        try:
            s.sendall(request)
        except OSError:  # reset or broken pipe: the server has said what it had to say
            pass
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_hostile_requests_over_a_real_socket(api: Api) -> None:
    with running(api.app) as srv:
        cases = {
            # the dots reach the server as they are, not resolved by a client library
            "traversal": b"GET /static/../../pyproject.toml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "encoded traversal": b"GET /static/..%2f..%2fpyproject.toml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "huge query": b"GET /v1/spaces?"
            + b"a=1&" * 250_000
            + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "huge header": b"GET /v1/spaces HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-A: "
            + b"a" * 200_000
            + b"\r\n\r\n",
            "huge token": b"GET /v1/sensors HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
            + b"t" * 100_000
            + b"\r\n\r\n",
            "declared huge body": b"POST /v1/spaces HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 100000000\r\n\r\n",
            "bad content length": b"GET /v1/spaces HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: -5\r\n\r\n",
            "not http": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 100 + b"\r\n\r\n",
            "bad method": b"DELETE /v1/spaces HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "absolute uri": b"GET http://evil.example/v1/spaces HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        }
        for name, request in cases.items():
            answer = raw(srv.base, request)
            assert answer.startswith(b"HTTP/1.1 "), (name, answer[:100])
            code = status_of(answer)
            assert code < 500, (name, answer[:200])
            assert b"[project]" not in answer and b"Traceback" not in answer, name
            if name != "absolute uri":
                assert 400 <= code < 500, (name, code)
        # and it still answers
        assert httpx.get(srv.base + "/v1/spaces", timeout=5).status_code == 200
    assert srv.errors == []


@pytest.mark.parametrize(
    "last_event_id",
    ["", "0", "-1", "18446744073709551616", "9" * 19, "1e9", "１２３", "abc", "5\x7f", "x" * 4000],
)
def test_the_stream_takes_any_last_event_id(api: Api, last_event_id: str) -> None:
    with running(api.app) as srv, httpx.Client(base_url=srv.base, timeout=5) as http:
        header = last_event_id.encode("utf-8")
        with http.stream("GET", "/v1/stream", headers={"Last-Event-ID": header}) as r:
            assert r.status_code == 200
            events = sse_events(r.iter_lines(), len(api.site.spaces))
        # an id that is not one of this run's gets the full snapshot
        assert [json.loads(e["data"])["id"] for e in events] == [s.id for s in api.site.spaces]
