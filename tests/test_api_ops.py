"""The API's contract as a whole and its operations: scopes on every route (from the OpenAPI
description), nothing per sensor in public answers, tokens never logged, /metrics, CORS, security
headers, rate limits, the live stream's harder cases (a dead client, reconnects, WebSocket) and the
``api`` benchmark group."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import (
    ADMIN,
    ANALYST,
    BOOKING,
    HOST,
    TOKENS,
    Api,
    make_site,
    space_payload,
    space_topic,
    sse_events,
)
from conftest import TILA
from fastapi.routing import APIRoute

from tila.api import service
from tila.api.app import create_app
from tila.api.live import LiveState
from tila.api.ratelimit import Buckets, client_key
from tila.api.routes import stream as stream_route
from tila.api.settings import ApiSettings, SettingsError, parse_origins
from tila.cli import Parser
from tila.store.sqlite import SqliteStore

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

#: The contract's routes (CONTRACT.md, HTTP; the README's table for the extensions) and their scopes.
PUBLIC = {
    ("get", "/v1/spaces"),
    ("get", "/v1/spaces/{space_id}"),
    ("get", "/v1/site"),
    ("get", "/v1/stream"),
    ("get", "/v1/availability"),
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/lobby"),
}
#: (method, path) → the scopes that route accepts (admin implies every one).
PROTECTED = {
    ("get", "/v1/utilisation"): ("analyst",),
    ("get", "/v1/utilisation/heatmap"): ("analyst",),
    ("get", "/v1/sensors"): ("host",),
    ("get", "/v1/gateways"): ("host",),
    ("get", "/host"): ("host",),
    ("get", "/v1/bookings"): ("booking", "host"),
    ("post", "/v1/bookings"): ("booking",),
    ("delete", "/v1/bookings/{uid}"): ("booking",),
    ("post", "/v1/bookings/import"): ("booking",),
    ("get", "/v1/bookings/noshows"): ("analyst", "booking"),
    ("get", "/v1/webhooks"): ("booking",),
    ("post", "/v1/webhooks"): ("booking",),
    ("get", "/v1/webhooks/deliveries"): ("booking",),
    ("delete", "/v1/webhooks/{webhook_id}"): ("booking",),
    ("post", "/v1/webhooks/{webhook_id}/ping"): ("booking",),
}
#: Routes outside the OpenAPI description on purpose: the description itself, its pages, the
#: pages' redirect and assets, and the WebSocket form of the stream (OpenAPI describes no WebSockets).
UNDESCRIBED = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/", "/static", "/v1/stream/ws"}
#: A token of each scope.
TOKEN_OF = {"host": HOST, "analyst": ANALYST, "booking": BOOKING, "admin": ADMIN}
#: Values for required parameters, so that an authorised request is answered 200.
EXAMPLES = {
    "from": "2026-01-12T00:00:00+02:00",
    "to": "2026-01-12T02:00:00+02:00",
    "space_id": "desk-01",
    "uid": "no-such-booking",
    "webhook_id": "no-such-webhook",
}
SENSOR_FIELDS = ("battery", "linkquality", "last_seen", "online")


def make(tmp_path: Path, settings: ApiSettings | None = None, tokens: str = TOKENS, **live_kw: Any) -> Api:
    site = make_site()
    live = LiveState(site, **live_kw)
    store = SqliteStore(tmp_path / "tila.db")
    return Api(site, live, store, create_app(site, live, store, tokens, settings, data_dir=tmp_path))


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    api = make(tmp_path)
    yield api
    api.store.close()


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    with TestClient(api.app) as c:
        yield c


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def app_paths(app: Any) -> set[str]:
    """Every route's path, through included routers (FastAPI ≥ 0.16x keeps them unflattened)."""
    paths: set[str] = set()
    for route in app.routes:
        router = getattr(route, "original_router", None)
        if router is not None:
            paths |= app_paths(router)
        else:
            paths.add(route.path_format if isinstance(route, APIRoute) else route.path)
    return paths


def url_for(path: str, op: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The path with its parameters filled in, and the required query parameters."""
    query: dict[str, str] = {}
    for p in op.get("parameters", []):
        if p["in"] == "path":
            path = path.replace("{" + p["name"] + "}", EXAMPLES[p["name"]])
        elif p["in"] == "query" and p.get("required"):
            query[p["name"]] = EXAMPLES[p["name"]]
    return path, query


@contextlib.contextmanager
def serving(app: Any, *, sndbuf: int | None = None, **kwargs: Any) -> Iterator[str]:
    """``serve_on`` in a thread on a socket of our own (so its buffers can be made small)."""
    sock = service.bind("127.0.0.1", 0)
    if sndbuf is not None:
        # Accepted connections inherit the listening socket's buffer sizes (Linux).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    port = sock.getsockname()[1]
    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            service.serve_on(sock, app, stop, lambda _: ready.set(), **kwargs)
        except BaseException as exc:
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=target, name="api-ops-server", daemon=True)
    thread.start()
    assert ready.wait(10) and not errors, errors
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        thread.join(10)
    assert not errors, errors


def eventually(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return result


# ------------------------------------------------------------------------------------ scopes


def test_every_route_is_described_and_every_protected_one_enforces_its_scope(
    api: Api, client: TestClient
) -> None:
    doc = client.get("/openapi.json").json()
    described = {(method, path) for path, method, _ in operations(doc)}
    # Nothing escapes the audit: every route of the app is described, or known to be left out.
    for path in app_paths(api.app):
        assert path in {p for _, p in described} or path in UNDESCRIBED, (
            f"{path}: neither described nor known"
        )
    assert "/v1/stream/ws" in app_paths(api.app)
    assert described == PUBLIC | set(PROTECTED), described ^ (PUBLIC | set(PROTECTED))

    checked = 0
    for path, method, op in operations(doc):
        url, query = url_for(path, op)

        def call(
            headers: dict[str, str] | None = None,
            params: dict[str, str] | None = query,
            method: str = method,
            url: str = url,
        ) -> Any:
            return client.request(method.upper(), url, params=params, headers=headers or {})

        if (method, path) in PUBLIC:
            assert "security" not in op, path
            r = call() if path != "/v1/stream" else None
            assert r is None or r.status_code == 200, (path, r.status_code)
            continue
        scopes = PROTECTED[(method, path)]
        # The description names the scopes where the route declares them (the /host page asks itself).
        declared = [s for req in op["security"] for s in req.get("token", [])]
        assert sorted(declared) in (sorted(scopes), []), (method, path, declared)
        assert {"401", "403"} <= set(op["responses"]), path
        for headers in (
            {},
            {"Authorization": "Bearer not-a-token"},
            {"Authorization": "Bearer"},
            {"Authorization": "Basic aG9zdDpob3N0LXRva2VuLTE="},
            {"Authorization": "host-token-1"},
        ):
            r = call(headers)
            assert r.status_code == 401, (method, path, headers, r.status_code)
            assert r.headers["www-authenticate"].startswith("Bearer"), path
        # auth comes before the parameters: no token and no parameters is still a 401
        assert call(params=None).status_code == 401, path
        for other in set(TOKEN_OF) - set(scopes) - {"admin"}:
            r = call(TOKEN_OF[other])
            assert r.status_code == 403, (method, path, other, r.status_code)
        # An authorised GET is answered; the other methods' successes (bodies, resources) are tested
        # with their routes (tests/test_api_bookings.py, tests/test_webhooks.py): here, no 401/403.
        for headers in (
            *(TOKEN_OF[s] for s in scopes),
            ADMIN,
            {"Authorization": "bearer " + ADMIN["Authorization"][7:]},
        ):
            r = call(headers)
            if method == "get":
                assert r.status_code == 200, (path, headers, r.status_code, r.text[:200])
            else:
                assert r.status_code not in (401, 403, 500), (method, path, r.status_code, r.text[:200])
        checked += 1
    assert checked == len(PROTECTED)


def test_the_openapi_description_is_complete(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert doc["components"]["securitySchemes"]["token"] == {
        "type": "http",
        "description": doc["components"]["securitySchemes"]["token"]["description"],
        "scheme": "bearer",
    }
    for path, _, op in operations(doc):
        assert op.get("summary"), path
        responses = op["responses"]
        success = [c for c in responses if c.startswith("2")]
        assert len(success) == 1, (path, success)
        ok = responses[success[0]].get("content", {})
        if success[0] == "204":
            assert not ok, path
        elif "application/json" in ok:
            schema = ok["application/json"]["schema"]
            # a response_model: a named schema, or a list of them
            ref = schema.get("$ref") or json.dumps(schema.get("items", {}))
            assert "#/components/schemas/" in ref, (path, schema)
        else:
            assert set(ok) & {"text/html", "text/plain", "text/event-stream"}, (path, ok)
        if op.get("parameters"):
            assert responses["422"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ValidationErrorOut"
            }, path
        assert responses["429"]["headers"]["Retry-After"], path
        for code, answer in responses.items():
            if code not in success and "application/json" in answer.get("content", {}):
                assert "$ref" in answer["content"]["application/json"].get("schema", {}), (path, code)
        for p in op.get("parameters", []):
            assert p["in"] == "path" or p.get("description"), (path, p["name"])
    assert "HTTPValidationError" not in schemas  # replaced by the real shape, with `message`
    assert "message" in schemas["ValidationErrorOut"]["required"]


def test_bad_parameters_everywhere_are_readable_422s(client: TestClient) -> None:
    for url, words in (
        ("/healthz?strict=maybe", "strict:"),
        ("/v1/utilisation?from=2026-01-12T00:00:00Z&to=soon", "to:"),
        ("/v1/utilisation/heatmap?from=1900-01-01T00:00:00Z&to=2026-01-12T00:00:00Z", "outside the years"),
        ("/v1/utilisation?from=1970-01-01T00:00:00Z&to=2900-01-12T00:00:00Z", "at most 36600 days"),
        ("/v1/utilisation?from=2026-01-12T00:00:00Z&to=2026-01-13T00:00:00Z&group=desk", "group:"),
    ):
        r = client.get(url, headers=ADMIN)
        assert r.status_code == 422, (url, r.text)
        body = r.json()
        assert words in body["message"], (url, body["message"])
        assert isinstance(body["detail"], list)


# ----------------------------------------------------------------------- nothing per sensor


def feed_everything(live: LiveState) -> None:
    """Spaces, sensors, gateways and aggregators, with sensor ids wherever a report may carry them."""
    live.handle(space_topic("desk-01"), space_payload("occupied", 1))
    live.handle(space_topic("room-a"), space_payload("occupied", 3))
    for sensor in live.site.sensors:
        live.handle(
            f"tila/v1/lab/sensors/{sensor.id}/state",
            b'{"online": true, "battery": 77, "linkquality": 99, "last_seen": "2026-01-12T08:00:00+02:00"}',
        )
    live.handle("tila/v1/lab/gateways/gw-1/status", b"online")
    live.handle(
        "tila/v1/lab/gateways/gw-1/health",
        json.dumps(
            {
                "time": "2026-01-12T08:00:00+00:00",
                "local_connected": True,
                "outbox_depth": 12,
                "outbox_capacity": 10_000_000,
                "oldest_unsent_age_s": 1.5,
                "forwarded": 1234,
                "quarantined": {"not_json": 2, "unknown_sensor": 1, "desk-01-pir x": 9},
                "ignored": {"bridge": 3},
                "dropped": {},
                "clock_steps_back": 0,
                "recent_quarantine": [
                    {"topic": "zigbee2mqtt/desk-01-pir", "reason": "not_json", "detail": "desk-02-pir"}
                ],
            }
        ).encode(),
    )
    live.handle("tila/v1/lab/aggregators/a1/status", b"online")
    live.handle(
        "tila/v1/lab/aggregators/a1/health",
        json.dumps(
            {
                "status": "ok",
                "time": "2026-01-12T08:00:00+00:00",
                "store": {"ok": True, "error": None, "pending_rows": 7},
                "spaces": 5,
                "lag_s": 0.25,
                "lateness_window_events": 3,
                "counters": {"events": 100, "late": 2, "quarantined_unknown_sensor": 1},
            }
        ).encode(),
    )


def test_public_answers_name_no_sensor_and_nothing_personal(tmp_path: Path) -> None:
    api = make(tmp_path)
    feed_everything(api.live)
    sensors = [s.id for s in api.site.sensors] + [s.topic for s in api.site.sensors]
    with serving(api.app) as base, httpx.Client(base_url=base, timeout=5) as http:
        doc = http.get("/openapi.json").json()
        answers: dict[str, str] = {}
        for path, _, op in operations(doc):
            if "security" in op or path == "/lobby":  # the page is static, not data
                continue
            if path == "/v1/stream":
                with http.stream("GET", path) as r:
                    answers[path] = json.dumps(sse_events(r.iter_lines(), len(api.site.spaces)))
                continue
            if path == "/v1/spaces/{space_id}":
                for space in api.site.spaces:
                    answers[f"/v1/spaces/{space.id}"] = http.get(f"/v1/spaces/{space.id}").text
                continue
            r = http.get(path)
            assert r.status_code == 200, path
            answers[path] = r.text
        # the protected views do have them: the check above is not vacuous
        assert "desk-01-pir" in http.get("/v1/sensors", headers=HOST).text
        assert "desk-01-pir" in http.get("/v1/gateways", headers=HOST).text
    assert set(answers) >= {"/v1/spaces", "/v1/site", "/v1/stream", "/healthz", "/metrics"}
    for path, text in answers.items():
        for sensor in sensors:
            assert sensor not in text, (path, sensor)
        for word in SENSOR_FIELDS:
            assert f'"{word}"' not in text, (path, word)
    # Only what a space is and its state: no field a person could be found by.
    allowed = {"id", "kind", "zone", "capacity", "state", "count", "since", "name", "position"}
    for space in json.loads(answers["/v1/spaces"]):
        assert set(space) <= allowed, set(space) - allowed
    for ev in json.loads(answers["/v1/stream"]):
        assert set(json.loads(ev["data"])) <= allowed
    assert set(json.loads(answers["/healthz"])) == {"status", "mqtt", "store", "aggregators"}
    api.store.close()


# ----------------------------------------------------------------------------- no tokens in logs


def test_tokens_never_appear_in_logs_or_answers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secrets = ["host-token-1", "analyst-token-1", "admin-token-1", "guessed-Token-42", "x" * 300]
    caplog.set_level(logging.DEBUG)  # everything, every logger: uvicorn's access log, httpx, tila
    api = make(tmp_path)
    feed_everything(api.live)
    bodies: list[str] = []
    with serving(api.app, access_log=True) as base, httpx.Client(base_url=base, timeout=5) as http:
        doc = http.get("/openapi.json").json()
        for path, _, op in operations(doc):
            if path == "/v1/stream":
                continue
            url, query = url_for(path, op)
            for token in secrets:
                for params in (query, {**query, "from": "junk"}):
                    r = http.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
                    bodies.append(r.text + json.dumps(dict(r.headers)))
        with http.stream("GET", "/v1/stream", headers={"Authorization": "Bearer admin-token-1"}) as r:
            sse_events(r.iter_lines(), 1)
    assert any("GET /v1/sensors" in r.getMessage() for r in caplog.records), "no access log captured"
    logged = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    for token in secrets:
        assert token not in logged
        assert all(token not in b for b in bodies)
    api.store.close()


def test_the_command_line_never_shows_tokens(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(
        '[site]\nid = "mini"\nname = "Mini"\ntimezone = "Europe/Helsinki"\n'
        'opening_hours = { mon = "07:00-20:00" }\n'
        '[[zones]]\nid = "z"\nname = { fi = "V", sv = "Z", en = "Z" }\n'
        '[[spaces]]\nid = "desk-01"\nkind = "desk"\nzone = "z"\ncapacity = 1\n'
    )
    env = {**os.environ, "TILA_TOKENS": "host:cli-secret-1,admin:cli-secret-2"}
    bad = subprocess.run(
        [*TILA, "--log-level", "DEBUG", "api", "--site", str(site), "--mqtt", "mqtt://127.0.0.1:1",
         "--store", f"sqlite:///{tmp_path}/t.db", "--port", "0", "--rate-limit", "-1"],
        capture_output=True, text=True, timeout=30, env=env, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "--rate-limit" in bad.stderr
    helped = subprocess.run(
        [*TILA, "api", "--help"], capture_output=True, text=True, timeout=30, env=env, check=False
    )
    assert "--cors-origins" in helped.stdout and "--rate-limit" in helped.stdout
    for res in (bad, helped):
        assert "cli-secret" not in res.stdout + res.stderr


# ----------------------------------------------------------------------------------- /metrics

_SAMPLE = re.compile(r'^[a-z_:][a-z0-9_:]*(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? -?[0-9.e+Inf]+$|^NaN$')


def test_metrics_latency_histograms_and_the_pipeline_from_health_reports(
    api: Api, client: TestClient
) -> None:
    feed_everything(api.live)
    for _ in range(3):
        client.get("/v1/spaces")
    client.get("/v1/utilisation", headers=ANALYST, params={"from": EXAMPLES["from"], "to": EXAMPLES["to"]})
    text = client.get("/metrics").text
    lines = text.splitlines()
    for line in lines:
        assert line.startswith("# ") or _SAMPLE.match(line), line
    for line in (
        "# TYPE tila_api_http_request_duration_seconds histogram",
        'tila_api_http_request_duration_seconds_count{method="GET",route="/v1/spaces"} 3',
        'tila_api_http_request_duration_seconds_bucket{method="GET",route="/v1/spaces",le="+Inf"} 3',
        'tila_api_http_request_duration_seconds_count{method="GET",route="/v1/utilisation"} 1',
        'tila_api_gateway_online{gateway="gw-1"} 1',
        'tila_gateway_outbox_depth{gateway="gw-1"} 12',
        'tila_gateway_outbox_capacity{gateway="gw-1"} 10000000',
        'tila_gateway_oldest_unsent_age_seconds{gateway="gw-1"} 1.5',
        'tila_gateway_local_connected{gateway="gw-1"} 1',
        'tila_gateway_forwarded_total{gateway="gw-1"} 1234',
        'tila_gateway_quarantined_total{gateway="gw-1",reason="not_json"} 2',
        'tila_gateway_quarantined_total{gateway="gw-1",reason="unknown_sensor"} 1',
        'tila_gateway_ignored_total{gateway="gw-1",reason="bridge"} 3',
        'tila_aggregator_ok{aggregator="a1"} 1',
        'tila_aggregator_lag_seconds{aggregator="a1"} 0.25',
        'tila_aggregator_store_ok{aggregator="a1"} 1',
        'tila_aggregator_store_pending_rows{aggregator="a1"} 7',
        'tila_aggregator_lateness_window_events{aggregator="a1"} 3',
        'tila_aggregator_events_total{aggregator="a1",counter="events"} 100',
        'tila_aggregator_events_total{aggregator="a1",counter="late"} 2',
        "tila_api_rate_limited_total 0",
    ):
        assert line in lines, line
    # Buckets are cumulative and end in the count.
    buckets = [
        int(ln.rsplit(" ", 1)[1])
        for ln in lines
        if ln.startswith('tila_api_http_request_duration_seconds_bucket{method="GET",route="/v1/spaces"')
    ]
    assert buckets == sorted(buckets) and buckets[-1] == 3 and len(buckets) == 14
    age = next(ln for ln in lines if ln.startswith('tila_gateway_health_age_seconds{gateway="gw-1"}'))
    assert float(age.rsplit(" ", 1)[1]) > 0
    # A reason that is no identifier (it could carry anything a publisher likes) is left out.
    assert "desk-01-pir" not in text


def test_metrics_withstand_hostile_health_reports(api: Api, client: TestClient) -> None:
    api.live.handle(
        "tila/v1/lab/gateways/gw-1/health",
        json.dumps(
            {
                "outbox_depth": "12\nfake_metric 1",
                "forwarded": 1e308,
                "quarantined": {f"r{i}": i for i in range(1000)} | {'a"b': 1, "x\ny": 2},
                "time": "not a time",
                "local_connected": "yes",
            }
        ).encode(),
    )
    api.live.handle("tila/v1/lab/aggregators/a-1/health", b'{"lag_s": [1], "store": "down", "counters": 5}')
    text = client.get("/metrics").text
    lines = text.splitlines()
    assert not any(ln.startswith("fake_metric") for ln in lines)
    assert sum(ln.startswith("tila_gateway_quarantined_total") for ln in lines) == 32
    assert not any('a"b' in ln or "x\ny" in ln for ln in lines)
    assert not any(ln.startswith("tila_gateway_outbox_depth{") for ln in lines)
    assert not any(ln.startswith("tila_aggregator_lag_seconds{") for ln in lines)
    for line in lines:
        assert line.startswith("# ") or _SAMPLE.match(line), line


# --------------------------------------------------------------------------------------- CORS


def test_no_cors_by_default(client: TestClient) -> None:
    r = client.get("/v1/spaces", headers={"Origin": "https://booking.example.fi"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers
    pre = client.options(
        "/v1/spaces",
        headers={"Origin": "https://booking.example.fi", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in pre.headers


def test_cors_for_configured_origins(tmp_path: Path) -> None:
    settings = ApiSettings(cors_origins=("https://booking.example.fi",), rate_limit=1, rate_burst=2)
    api = make(tmp_path, settings)
    booking = {"Origin": "https://booking.example.fi"}
    with TestClient(api.app) as client:
        r = client.get("/v1/sensors", headers={**booking, **HOST})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://booking.example.fi"
        assert "retry-after" in r.headers["access-control-expose-headers"].lower()
        pre = client.options(
            "/v1/utilisation",
            headers={
                **booking,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization, last-event-id",
            },
        )
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == "https://booking.example.fi"
        allowed = pre.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "last-event-id" in allowed
        # booking tools write bookings and webhooks from the browser; nothing else is allowed
        methods = {m.strip() for m in pre.headers["access-control-allow-methods"].split(",")}
        assert methods == {"GET", "HEAD", "POST", "DELETE"}, methods
        # another origin gets nothing to read with
        other = client.get("/v1/spaces", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        bad = client.options(
            "/v1/spaces", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
        )
        assert bad.status_code == 400
        # a 429 still carries CORS headers, so the booking page can read it and wait
        statuses = [client.get("/v1/spaces", headers=booking) for _ in range(3)]
        assert statuses[-1].status_code == 429
        assert statuses[-1].headers["access-control-allow-origin"] == "https://booking.example.fi"
    api.store.close()


def test_cors_origins_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_origins("") == ()
    assert parse_origins(" https://a.example , http://b.example:8080/ ") == (
        "https://a.example",
        "http://b.example:8080",
    )
    assert parse_origins("*") == ("*",)
    for bad, words in (
        ("booking.example.fi", "http(s)://host"),
        ("ftp://a.example", "http(s)://host"),
        ("https://a.example/path", "no path"),
        ("https://A.example", "'https://a.example'"),
        ("https://a.example:http", "scheme://host[:port]"),
    ):
        with pytest.raises(SettingsError, match=re.escape(words)):
            parse_origins(bad)
    p = Parser(prog="tila api")
    service.add_arguments(p)
    base = ["--site", "bundled", "--mqtt", "mqtt://127.0.0.1:1", "--store", f"sqlite:///{tmp_path}/x.db"]
    args = p.parse_args([*base, "--cors-origins", "https://a.example,https://b.example"])
    assert service.settings_from(args).cors_origins == ("https://a.example", "https://b.example")
    assert service.settings_from(p.parse_args(base)) == ApiSettings()
    monkeypatch.setenv("TILA_CORS_ORIGINS", "https://env.example")
    monkeypatch.setenv("TILA_RATE_LIMIT", "5")
    monkeypatch.setenv("TILA_RATE_BURST", "7")
    p = Parser(prog="tila api")
    service.add_arguments(p)
    settings = service.settings_from(p.parse_args(base))
    assert settings == ApiSettings(cors_origins=("https://env.example",), rate_limit=5.0, rate_burst=7)


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--cors-origins", "https://a.example/x", "no path"),
        ("--rate-limit", "fast", "not a number"),
        ("--rate-limit", "-1", "≥ 0"),
        ("--rate-limit", "nan", "≥ 0"),
        ("--rate-burst", "0", "at least 1"),
    ],
)
def test_bad_operations_options_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, words: str
) -> None:
    p = Parser(prog="tila api")
    service.add_arguments(p)
    base = ["--site", "bundled", "--mqtt", "mqtt://127.0.0.1:1", "--store", f"sqlite:///{tmp_path}/x.db"]
    with pytest.raises(SystemExit) as exc:
        p.parse_args([*base, option, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and option in err and words in err


# ----------------------------------------------------------------------------- security headers


def test_security_headers_on_every_answer(tmp_path: Path) -> None:
    api = make(tmp_path, ApiSettings(rate_limit=0.001, rate_burst=12))
    with TestClient(api.app) as client:
        answers = {
            "spaces": client.get("/v1/spaces"),
            "404": client.get("/v1/spaces/nope"),
            "unmatched": client.get("/no/such/thing"),
            "401": client.get("/v1/sensors"),
            "403": client.get("/v1/sensors", headers=ANALYST),
            "200 host": client.get("/v1/sensors", headers=HOST),
            "422": client.get("/v1/utilisation", headers=ANALYST),
            "405": client.post("/v1/spaces"),
            "413": client.post("/v1/spaces", content=b"x" * 70_000),
            "metrics": client.get("/metrics"),
            "openapi": client.get("/openapi.json"),
            "lobby": client.get("/lobby"),
            "asset": client.get("/static/lobby.css"),
            "host page": client.get("/host", headers=HOST),
        }
        while (r := client.get("/healthz")).status_code != 429:
            pass
        answers["429"] = r
    for name, r in answers.items():
        for header in ("x-content-type-options", "referrer-policy"):
            # exactly one, never doubled where the pages set their own
            assert len(r.headers.get_list(header)) == 1, (name, header, r.headers)
        assert r.headers["x-content-type-options"] == "nosniff", name
    assert answers["413"].status_code == 413 and answers["429"].status_code == 429
    assert "default-src 'self'" in answers["lobby"].headers["content-security-policy"]
    assert answers["lobby"].headers["cache-control"] == "no-cache"  # the page's own, not replaced
    # an answer to a request with a token is never kept by a shared cache
    assert answers["200 host"].headers["cache-control"] == "no-store"
    assert "cache-control" not in answers["spaces"].headers
    api.store.close()


# --------------------------------------------------------------------------------- rate limits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_bursts_refills_and_says_how_long_to_wait() -> None:
    clock = Clock()
    b = Buckets(2.0, 3, clock=clock)
    assert [b.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take("a") == pytest.approx(0.5)  # one token back in half a second at 2/s
    assert b.take("b") == 0.0  # other clients have their own bucket
    clock.now += 0.5
    assert b.take("a") == 0.0
    assert b.take("a") == pytest.approx(0.5)
    clock.now += 100
    assert [b.take("a") for _ in range(4)][-1] > 0  # refilled to the burst, not beyond
    assert b.limited == 3


def test_token_bucket_memory_is_bounded() -> None:
    clock = Clock()
    b = Buckets(10.0, 10, max_clients=100, clock=clock)
    for i in range(1000):
        b.take(f"10.0.{i // 256}.{i % 256}")
    assert len(b) == 100 and b.evicted == 900
    # idle buckets (refilled completely: the same as none) go as soon as a new client arrives
    clock.now += 1.0
    b.take("192.0.2.1")
    assert len(b) == 1 and b.evicted == 900


def test_client_keys_group_ipv6_by_64() -> None:
    def key(host: str) -> str:
        return client_key({"client": (host, 1234)})

    assert key("192.0.2.7") == "192.0.2.7"
    assert key("2001:db8:1:2:aaaa::1") == key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert key("2001:db8:1:3::1") != key("2001:db8:1:2::1")
    assert key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key({"client": None}) == "unknown"


def test_public_routes_are_limited_per_address_with_retry_after(tmp_path: Path) -> None:
    api = make(tmp_path, ApiSettings(rate_limit=0.5, rate_burst=3))
    with TestClient(api.app) as client:
        codes = [client.get("/v1/spaces").status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = client.get("/v1/site")
        assert r.status_code == 429
        assert r.headers["retry-after"] == "2"  # a token every 2 s at 0.5/s
        assert "retry after 2 s" in r.json()["detail"]
        # guessing tokens is limited like any anonymous request
        assert client.get("/v1/sensors", headers={"Authorization": "Bearer guess"}).status_code == 429
        # a known token is never limited
        for _ in range(10):
            assert client.get("/v1/spaces", headers=HOST).status_code == 200
            assert client.get("/v1/sensors", headers=HOST).status_code == 200
        metrics = client.get("/metrics", headers=ADMIN).text.splitlines()
        assert "tila_api_rate_limited_total 2" in metrics
        assert "tila_api_rate_limit_addresses 1" in metrics
        assert 'tila_api_http_requests_total{method="GET",route="unmatched",status="429"} 2' in metrics
    api.store.close()


def test_rate_limit_off(tmp_path: Path) -> None:
    api = make(tmp_path, ApiSettings(rate_limit=0))
    with TestClient(api.app) as client:
        assert all(client.get("/healthz").status_code == 200 for _ in range(300))
        doc = client.get("/openapi.json").json()
        assert "429" not in doc["paths"]["/v1/spaces"]["get"]["responses"]
    api.store.close()


def test_a_stream_counts_once_and_forwarded_addresses_from_a_trusted_proxy(tmp_path: Path) -> None:
    api = make(tmp_path, ApiSettings(rate_limit=0.001, rate_burst=2))
    with serving(api.app) as base, httpx.Client(base_url=base, timeout=5) as http:
        with http.stream("GET", "/v1/stream") as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            sse_events(lines, 5)
            api.live.submit(space_topic("desk-01"), space_payload("occupied", 1))
            sse_events(lines, 1)
            # the open stream took one token, however long it runs: one request is left
            assert http.get("/v1/spaces").status_code == 200
            assert http.get("/v1/spaces").status_code == 429
        # 127.0.0.1 is a trusted proxy by default: each forwarded client has its own bucket
        for client_ip in ("198.51.100.1", "198.51.100.2"):
            fwd = {"X-Forwarded-For": client_ip}
            assert [http.get("/v1/spaces", headers=fwd).status_code for _ in range(3)] == [200, 200, 429]
    api.store.close()
    api = make(tmp_path, ApiSettings(rate_limit=0.001, rate_burst=2))
    with serving(api.app, forwarded_allow_ips="192.0.2.99") as base, httpx.Client(base_url=base) as http:
        # not a trusted proxy: its X-Forwarded-For is ignored, the caller's own address counts
        codes = [http.get("/v1/spaces", headers={"X-Forwarded-For": f"198.51.100.{i}"}) for i in range(3)]
        assert [r.status_code for r in codes] == [200, 200, 429]
    api.store.close()


# -------------------------------------------------------------------------------------- stream


def test_a_dead_client_blocks_nobody_and_its_memory_stays_bounded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that connects and then never reads: the server's socket buffer fills, its generator
    stops at the send, its queue fills and is replaced by a resync; the live client gets every event."""
    api = make(tmp_path, ApiSettings(rate_limit=0))
    hub = api.app.state.tila.hub
    n = 3000
    with serving(api.app, sndbuf=4096) as base, httpx.Client(base_url=base, timeout=10) as http:
        dead = socket.socket()
        dead.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        dead.connect(("127.0.0.1", int(base.rsplit(":", 1)[1])))
        dead.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        assert eventually(lambda: hub.clients == 1)
        with http.stream("GET", "/v1/stream") as r:
            lines = r.iter_lines()
            first = int(sse_events(lines, 5)[0]["id"])
            got: list[int] = []
            for start in range(0, n, 100):
                for i in range(start, start + 100):
                    api.live.submit(space_topic("room-a"), space_payload("occupied", i + 1))
                got += [int(e["id"]) for e in sse_events(lines, 100)]
                queues = [sub._queue.qsize() for sub in list(hub._clients)]
                assert max(queues) <= hub.queue_size
            assert got == list(range(first + 1, first + n + 1))  # every event, in order, none twice
            assert hub.clients == 2 and hub.resyncs >= 1  # the dead one is still there, skipping
            t0 = time.monotonic()
            api.live.submit(space_topic("room-a"), space_payload("free", 0))
            sse_events(lines, 1)
            assert time.monotonic() - t0 < 1.0
            # once the dead client's connection is gone, so is its subscription
            dead.close()
            assert eventually(lambda: hub.clients == 1, 5), hub.clients
            api.live.submit(space_topic("room-a"), space_payload("occupied", 1))
            assert int(sse_events(lines, 1)[0]["id"]) == first + n + 2
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    api.store.close()


def test_reconnects_with_last_event_id_lose_and_repeat_nothing(tmp_path: Path) -> None:
    api = make(tmp_path, ApiSettings(rate_limit=0))
    n = 600
    done = threading.Event()

    def publish() -> None:
        for i in range(n):
            api.live.submit(space_topic("room-a"), space_payload("occupied", i + 1))
            time.sleep(0.002)
        done.set()

    with serving(api.app) as base, httpx.Client(base_url=base, timeout=10) as http:
        with http.stream("GET", "/v1/stream") as r:
            snapshot = sse_events(r.iter_lines(), 5)
        head = int(snapshot[0]["id"])
        last, seen, reconnects = head, [], 0
        publisher = threading.Thread(target=publish)
        publisher.start()
        while last < head + n:
            with http.stream("GET", "/v1/stream", headers={"Last-Event-ID": str(last)}) as r:
                # a resumed stream sends no snapshot: just what was missed, then live events
                for ev in sse_events(r.iter_lines(), min(37, head + n - last)):
                    seen.append(int(ev["id"]))
                    assert json.loads(ev["data"])["id"] == "room-a"
                last = seen[-1]
            reconnects += 1
        publisher.join()
    assert seen == list(range(head + 1, head + n + 1))
    assert reconnects >= 10 and api.app.state.tila.hub.resumed == reconnects
    api.store.close()


def test_many_clients_each_get_every_event(tmp_path: Path) -> None:
    """The shared-queue trap: with one queue for all, each client would get every second event."""
    api = make(tmp_path, ApiSettings(rate_limit=0))
    clients, n = 25, 40

    async def client(base: str, started: asyncio.Event, ready: list[int]) -> list[int]:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            async with http.stream("GET", "/v1/stream") as r:
                got: list[int] = []
                count = 0
                async for line in r.aiter_lines():
                    if line.startswith("id:"):
                        count += 1
                        if count == 5:
                            ready.append(1)
                            await started.wait()
                        elif count > 5:
                            got.append(int(line[3:]))
                            if len(got) == n:
                                return got
        return got

    async def main(base: str) -> list[list[int]]:
        started, ready = asyncio.Event(), []
        tasks = [asyncio.create_task(client(base, started, ready)) for _ in range(clients)]
        while len(ready) < clients:
            await asyncio.sleep(0.01)
        started.set()
        for i in range(n):
            api.live.submit(space_topic("desk-02"), space_payload("occupied" if i % 2 else "free", i % 2))
            await asyncio.sleep(0.001)
        return await asyncio.wait_for(asyncio.gather(*tasks), 20)

    with serving(api.app) as base:
        results = asyncio.run(main(base))
    first = results[0][0]
    for got in results:
        assert got == list(range(first, first + n))
    api.store.close()


def test_the_stream_over_a_websocket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    api = make(tmp_path, ApiSettings(rate_limit=0.001, rate_burst=2))
    api.live.handle(space_topic("desk-01"), space_payload("occupied", 1))
    with serving(api.app) as base:
        ws_url = base.replace("http://", "ws://") + "/v1/stream/ws"
        with connect(ws_url, open_timeout=5) as ws:
            snap = [json.loads(ws.recv(timeout=5)) for _ in range(5)]
            assert [m["data"]["id"] for m in snap] == [s.id for s in api.site.spaces]
            assert snap[0]["event"] == "space" and snap[0]["data"]["state"] == "occupied"
            head = snap[0]["id"]
            api.live.submit(space_topic("room-a"), space_payload("occupied", 2))
            api.live.submit(space_topic("booth-1"), space_payload("free", 0))
            live = [json.loads(ws.recv(timeout=5)) for _ in range(2)]
            assert [(m["id"], m["data"]["id"]) for m in live] == [(head + 1, "room-a"), (head + 2, "booth-1")]
        assert eventually(lambda: api.app.state.tila.hub.clients == 0)
        # resume: just what was missed
        with connect(ws_url + f"?last_event_id={head + 1}", open_timeout=5) as ws:
            assert json.loads(ws.recv(timeout=5))["id"] == head + 2
        # the third connect from this address is over the limit: a real 429
        with pytest.raises(InvalidStatus) as exc, connect(ws_url, open_timeout=5):
            pass
        assert exc.value.response.status_code == 429
        # a known token is not limited; too many streams is refused
        monkeypatch.setattr(stream_route, "MAX_CLIENTS", 0)
        with pytest.raises(InvalidStatus), connect(ws_url, additional_headers=HOST, open_timeout=5):
            pass
        monkeypatch.setattr(stream_route, "MAX_CLIENTS", 1000)
        ws = connect(ws_url, additional_headers=HOST, open_timeout=5)
        for _ in range(5):
            ws.recv(timeout=5)
    # the server stopped: it closed the socket, "going away" (ours) or "service restart" (uvicorn's
    # own at shutdown, whichever comes first), rather than leaving it hanging
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code in (1001, 1012)
    ws.close()
    api.store.close()


# -------------------------------------------------------------------------------------- bench


@pytest.mark.integration
def test_api_bench_quick(tmp_path: Path, mosquitto_available: None) -> None:
    out = tmp_path / "bench.json"
    work = tmp_path / "tmp"
    work.mkdir()
    res = subprocess.run(
        [*TILA, "bench", "--only", "api", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "TMPDIR": str(work)},
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(out.read_text())
    assert doc["complete"] and doc["groups"] == ["api"]
    rows = {r["key"]: r for r in doc["rows"]}
    for key in (
        "api_latency_p50",
        "api_latency_p99",
        "api_fanout_delivered",
        "api_fanout_time",
        "api_spaces_rps",
    ):
        assert key in rows, (key, sorted(rows))
        assert rows[key]["value"] > 0, rows[key]
    assert rows["api_fanout_delivered"]["ratio"] == 1  # every client got every event
    assert rows["api_spaces_rps"]["baseline"] > 0 and rows["api_spaces_rps"]["ratio"] > 0
    assert rows["api_latency_p99"]["value"] >= rows["api_latency_p50"]["value"]
    assert "sensor-to-browser" in res.stdout
    assert not list(work.glob("tila-bench-*")), "temporary directories left behind"
