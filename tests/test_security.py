"""Security: every route's access control, hostile paths and parameters, oversize bodies, the public
routes fuzzed, secure defaults on the real command line, and hashed tokens end to end.

The routes are enumerated from the FastAPI app itself, so a route added later is covered at once:
unless :data:`PUBLIC` lists it, it must answer 401 without a known token and 403 with a token of a
scope it does not accept. The API under test has bookings and webhooks on (a data directory), one
token of every scope (the booking one configured hashed) and no rate limit (tested in
test_api_ops.py), so that hundreds of anonymous requests meet the auth checks, not a 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import secrets
import socket
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from api_support import make_site, running
from conftest import TILA, free_port, wait_for, wait_port
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tila.api.app import create_app
from tila.api.auth import TokenError, Tokens
from tila.api.headers import BODY_LIMITS, MAX_BODY
from tila.api.live import LiveState
from tila.api.settings import ApiSettings
from tila.cli import mqtt_arg, store_arg
from tila.secrets import (
    WeakSecretError,
    check_credentials,
    check_secret,
    digest_is_weak,
    hide_password,
    weakness,
)
from tila.store.sqlite import SqliteStore

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.routing import APIRoute, APIWebSocketRoute
    from fastapi.testclient import TestClient
    from starlette.routing import Mount, Route, WebSocketRoute

#: Routes anyone may call, as (method, path template). Everything else needs a token.
PUBLIC: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/"),
        ("GET", "/lobby"),
        ("HEAD", "/lobby"),
        ("GET", "/v1/spaces"),
        ("GET", "/v1/spaces/{space_id}"),
        ("GET", "/v1/site"),
        ("GET", "/v1/stream"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        # availability per bookable space now: aggregates only, like /v1/spaces
        ("GET", "/v1/availability"),
        *(
            (m, p)
            for p in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
            for m in ("GET", "HEAD")
        ),
    }
)
#: Mounted apps anyone may call: the pages' CSS and JS.
PUBLIC_MOUNTS = frozenset({"/static"})
#: WebSocket routes anyone may call: the stream's WebSocket form.
PUBLIC_WEBSOCKETS = frozenset({"/v1/stream/ws"})
#: Public routes outside the OpenAPI description (test_api_fuzz.py fuzzes the described ones with
#: schemathesis, and /v1/stream by hand): fuzzed here.
UNDESCRIBED_PUBLIC = ("/", "/lobby", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
#: Never ends: left out of the loops below (test_api_fuzz.py fuzzes it over real HTTP).
ENDLESS = frozenset({("GET", "/v1/stream")})

#: Tokens of every scope, random per run; the booking one is configured in its hashed form.
TOKEN = {scope: secrets.token_urlsafe(24) for scope in ("host", "analyst", "booking", "admin")}
SCOPED = ("host", "analyst", "booking")


def hashed_entry(scope: str, token: str) -> str:
    return f"{scope}:sha256:{hashlib.sha256(token.encode()).hexdigest()}"


TOKENS = ",".join(
    hashed_entry(scope, token) if scope == "booking" else f"{scope}:{token}" for scope, token in TOKEN.items()
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


#: Values for parameters whose meaning is known, so that one hostile parameter at a time is tested.
GOOD = {"from": "2026-01-12T00:00:00+02:00", "to": "2026-01-19T00:00:00+02:00"}

# ------------------------------------------------------------------------------------ the app


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)

    def url(self, value: str = "x") -> str:
        """The path with every path parameter set to ``value`` (already URL-encoded)."""
        return re.sub(r"\{[^}]+\}", lambda _: value, self.path)


def _params(dependant: Any, kind: str) -> list[str]:
    """Names of the ``kind`` parameters of a dependant and all its sub-dependencies."""
    names = [getattr(p, "alias", None) or p.name for p in getattr(dependant, kind, ())]
    for sub in getattr(dependant, "dependencies", ()):
        names += _params(sub, kind)
    return list(dict.fromkeys(names))


def _flat_routes(routes: Any) -> Iterator[tuple[str, Any]]:
    """(path, route) for every route, through included routers (FastAPI ≥ 0.16x keeps them nested)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # an older FastAPI: routes are flat already
        for route in routes:
            yield route.path, route
        return
    for rc in iter_route_contexts(routes):
        yield rc.path, rc.original_route


@dataclass(frozen=True)
class Surface:
    endpoints: tuple[Endpoint, ...]
    mounts: tuple[str, ...]
    websockets: tuple[str, ...]


def surface(app: Any) -> Surface:
    endpoints: list[Endpoint] = []
    mounts: list[str] = []
    websockets: list[str] = []
    for path, route in _flat_routes(app.routes):
        if isinstance(route, (APIWebSocketRoute, WebSocketRoute)):
            websockets.append(path)
        elif isinstance(route, Mount):
            mounts.append(path)
        elif isinstance(route, APIRoute):
            for method in sorted(route.methods):
                endpoints.append(
                    Endpoint(
                        method,
                        path,
                        tuple(_params(route.dependant, "path_params")),
                        tuple(_params(route.dependant, "query_params")),
                    )
                )
        elif isinstance(route, Route):
            for method in sorted(route.methods or ()):
                endpoints.append(Endpoint(method, path, tuple(route.param_convertors), ()))
        else:
            raise AssertionError(f"a route of a kind this test does not know: {route!r} at {path}")
    return Surface(tuple(endpoints), tuple(mounts), tuple(websockets))


@contextlib.contextmanager
def make_app(tmp: Path, data: bool = True) -> Iterator[Any]:
    """The API with every token, no rate limit, and bookings and webhooks on (``data``) or off."""
    site = make_site()
    store = SqliteStore(tmp / "tila.db")
    data_dir = tmp / "data" if data else None
    if data_dir is not None:
        data_dir.mkdir()  # as tila api does (data_dir_of)
    try:
        yield create_app(site, LiveState(site), store, TOKENS, ApiSettings(rate_limit=0), data_dir)
    finally:
        store.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with make_app(tmp_path_factory.mktemp("security")) as app:
        yield app


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Any]:
    """An app of its own for a real server (the module's app has its lifespan in the test client)."""
    with make_app(tmp_path) as app, running(app) as srv:
        yield app, srv


@pytest.fixture(scope="module")
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def api_surface(app: Any) -> Surface:
    return surface(app)


@pytest.fixture(scope="module")
def declared_scopes(app: Any) -> dict[tuple[str, str], set[str] | None]:
    """(method, path) → the scopes its OpenAPI operation names (None when it names none)."""
    out: dict[tuple[str, str], set[str] | None] = {}
    for path, ops in app.openapi()["paths"].items():
        for method, op in ops.items():
            names = {s for req in op.get("security", []) for ss in req.values() for s in ss}
            out[(method.upper(), path)] = names or None
    return out


def call(client: TestClient, method: str, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return client.request(method, url, headers=headers or {})


def test_the_enumeration_sees_the_known_routes(api_surface: Surface) -> None:
    keys = {e.key for e in api_surface.endpoints}
    # a few of each kind: public and protected API routes, pages, the app's own description
    assert {
        ("GET", "/v1/spaces/{space_id}"),
        ("GET", "/v1/utilisation"),
        ("GET", "/v1/sensors"),
        ("GET", "/host"),
        ("GET", "/openapi.json"),
    } <= keys
    assert "/static" in api_surface.mounts
    protected = [e for e in api_surface.endpoints if e.key not in PUBLIC]
    assert len(protected) >= 5, protected
    util = next(e for e in api_surface.endpoints if e.key == ("GET", "/v1/utilisation"))
    assert {"from", "to", "space"} <= set(util.query_params)


def test_every_websocket_and_mount_is_public_by_design(api_surface: Surface) -> None:
    # This test checks HTTP routes for tokens; a protected WebSocket or mounted app would need a
    # check of its own here.
    assert set(api_surface.websockets) <= PUBLIC_WEBSOCKETS, api_surface.websockets
    assert set(api_surface.mounts) <= PUBLIC_MOUNTS, api_surface.mounts


# ------------------------------------------------------------------------------------- access

MALFORMED = [
    "Bearer",
    "Bearer ",
    "Basic " + "YWRtaW46YWRtaW4=",  # admin:admin
    "Token {admin}",  # a valid token under another scheme
    "{admin}",  # no scheme
    "Bearer {admin} extra",
    "Bearer {admin},",
    'Bearer "{admin}"',
    "Bearer " + "a" * 8000,
    "Bearer \x7f",
]


def malformed_headers() -> list[dict[str, bytes]]:
    return [{"Authorization": v.replace("{admin}", TOKEN["admin"]).encode()} for v in MALFORMED]


def test_every_protected_route_needs_a_known_token(client: TestClient, api_surface: Surface) -> None:
    failures = unknown_token_failures(client, api_surface)
    assert not failures, "\n".join(failures)


def test_with_bookings_and_webhooks_off_the_token_is_still_checked_first(
    tmp_path: Path, declared_scopes: dict[tuple[str, str], set[str] | None]
) -> None:
    # Without a data directory those features answer 503, but only to a token that may use them.
    with make_app(tmp_path, data=False) as off:
        with TestClient(off, raise_server_exceptions=False) as client:
            failures = unknown_token_failures(client, surface(off))
            for e in surface(off).endpoints:
                declared = declared_scopes.get(e.key)
                for scope in SCOPED if declared and e.key not in PUBLIC else ():
                    r = call(client, e.method, e.url(), bearer(TOKEN[scope]))
                    if scope not in declared and r.status_code != 403:
                        failures.append(f"{e.method} {e.path}: {r.status_code} to a {scope} token")
    assert not failures, "\n".join(failures)


def unknown_token_failures(client: TestClient, api_surface: Surface) -> list[str]:
    """What is wrong with the protected routes' answers to requests without a known token."""
    failures: list[str] = []
    wrong = [
        bearer(secrets.token_urlsafe(24)),
        bearer(TOKEN["admin"].upper() if TOKEN["admin"] != TOKEN["admin"].upper() else "x" + TOKEN["admin"]),
        bearer(TOKEN["admin"][:-1]),
        # the digest a server keeps is no token: presenting it (in either form) gets nothing
        bearer(hashed_entry("booking", TOKEN["booking"]).partition(":")[2]),
        bearer(hashlib.sha256(TOKEN["booking"].encode()).hexdigest()),
    ]
    for e in api_surface.endpoints:
        if e.key in PUBLIC:
            continue
        url = e.url()
        for label, headers in (
            [("no token", None)]
            + [(f"malformed {i}", h) for i, h in enumerate(malformed_headers())]
            + [(f"wrong token {i}", h) for i, h in enumerate(wrong)]
        ):
            r = call(client, e.method, url, headers)  # type: ignore[arg-type]
            if r.status_code != 401:
                failures.append(f"{e.method} {e.path} with {label}: {r.status_code} {r.text[:100]}")
            elif not r.headers.get("www-authenticate", "").startswith("Bearer"):
                failures.append(f"{e.method} {e.path} with {label}: 401 without WWW-Authenticate: Bearer")
            if TOKEN["admin"] in r.text:
                failures.append(f"{e.method} {e.path} with {label}: the answer repeats the token")
    return failures


def test_every_protected_route_answers_403_to_a_scope_it_does_not_take(
    client: TestClient,
    api_surface: Surface,
    declared_scopes: dict[tuple[str, str], set[str] | None],
) -> None:
    failures: list[str] = []
    for e in api_surface.endpoints:
        if e.key in PUBLIC:
            continue
        url = e.url()
        declared = declared_scopes.get(e.key)
        answers = {scope: call(client, e.method, url, bearer(TOKEN[scope])) for scope in SCOPED}
        for scope, r in answers.items():
            if r.status_code == 401:
                failures.append(f"{e.method} {e.path}: a {scope} token is a known token, not a 401")
            if r.status_code >= 500:
                failures.append(f"{e.method} {e.path} with a {scope} token: {r.status_code}")
            if declared is not None:
                # admin implies every scope, so an operation naming admin only is admin-only
                takes = scope in declared
                if takes and r.status_code == 403:
                    failures.append(f"{e.method} {e.path}: 403 to a {scope} token, which it names")
                if not takes and r.status_code != 403:
                    failures.append(
                        f"{e.method} {e.path}: {r.status_code} to a {scope} token (it names {sorted(declared)})"
                    )
        if not any(r.status_code == 403 for r in answers.values()):
            failures.append(f"{e.method} {e.path}: every scope's token gets in; is it meant to be public?")
        admin = call(client, e.method, url, bearer(TOKEN["admin"]))
        if admin.status_code in (401, 403) or admin.status_code >= 500:
            failures.append(f"{e.method} {e.path}: {admin.status_code} to an admin token")
    assert not failures, "\n".join(failures)


def test_public_routes_answer_without_a_token(client: TestClient, api_surface: Surface) -> None:
    failures: list[str] = []
    for e in api_surface.endpoints:
        if e.key not in PUBLIC or e.key in ENDLESS:
            continue
        r = call(client, e.method, e.url("desk-01"))
        if r.status_code in (401, 403) or r.status_code >= 500:
            failures.append(f"{e.method} {e.path}: {r.status_code}")
    assert not failures, "\n".join(failures)


def protected_body_routes(api_surface: Surface) -> list[Endpoint]:
    return [e for e in api_surface.endpoints if e.key not in PUBLIC and e.method in ("POST", "PUT", "PATCH")]


def test_a_protected_route_refuses_before_it_parses_a_body(client: TestClient, api_surface: Surface) -> None:
    routes = protected_body_routes(api_surface)
    if not routes:
        pytest.skip("no protected route takes a body")
    failures = []
    for e in routes:
        r = client.request(
            e.method, e.url(), content=b"{not json", headers={"Content-Type": "application/json"}
        )
        if r.status_code != 401:
            failures.append(f"{e.method} {e.path}: {r.status_code}")
    assert not failures, failures


# ------------------------------------------------------------------------------ hostile values

#: Path segments, URL-encoded as a client would send them (or a careless one would not).
HOSTILE_SEGMENTS = [
    "..",
    "..%2f..%2fetc%2fpasswd",
    "..%2F..%2F..%2Fpyproject.toml",
    "%2e%2e%2f%2e%2e%2fapp.py",
    "%2F",
    "%5c..%5c..%5cwindows",
    "a%00b",
    "%00",
    "%ff%fe",  # not UTF-8
    "%ED%A0%80",  # a UTF-16 surrogate in UTF-8 form
    "desk-01'%20OR%20'1'%3D'1",
    "'%3B%20DROP%20TABLE%20buckets%3B%20--",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
    "%0d%0aSet-Cookie:%20x=1",
    "%24%7Bjndi:ldap://x%7D",
    "%7B%7B7*7%7D%7D",
    "a" * 5000,
    "%E2%80%AE10-ksed",  # right-to-left override
    "%EF%BD%84esk-01",  # fullwidth d
    "desk-01%CC%81",  # combining accent
    "%F0%9F%92%A9",
    "desk-01%20",
    "DESK-01",
]
#: Query values, decoded (quote() encodes them), plus raw ones that are not UTF-8.
HOSTILE_VALUES = [
    "../../etc/passwd",
    "a/b",
    "\x00",
    "desk-01\x00",
    "' OR '1'='1",
    "'; DROP TABLE buckets; --",
    '") UNION SELECT * FROM sqlite_master --',
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "\r\nSet-Cookie: x=1",
    "${jndi:ldap://x}",
    "{{7*7}}",
    "x" * 5000,
    "\u202e10-ksed",
    "ｄｅｓｋ-01",
    "desk-01\u0301",
    "\U0001f4a9",
    "-1",
    "1e309",
    "NaN",
    "",
]
RAW_VALUES = ["%ff%fe", "%ED%A0%80", "%", "%zz"]
#: Query parameters that filter by a free-form id: an unknown id matches nothing, so any value is
#: answered 200 with nothing in it (and never echoed) rather than 404/422.
FREE_FORM = frozenset({("GET", "/v1/webhooks/deliveries", "webhook")})
#: What must never come back in an HTML page as it was sent.
MARKUP = ("<script>alert(1)", "onerror=alert(1)", "<img src=x")


def encoded_values() -> list[str]:
    return [quote(v, safe="") for v in HOSTILE_VALUES] + RAW_VALUES


def reflected(r: httpx.Response) -> str | None:
    """Markup sent in a request that comes back unescaped in an HTML answer, if any."""
    if "html" not in r.headers.get("content-type", ""):
        return None
    return next((m for m in MARKUP if m in r.text), None)


def fill_query(e: Endpoint, hostile: str, encoded: str) -> str:
    """A query with ``hostile`` (encoded) for parameter ``hostile`` and good values for the others."""
    parts = [f"{hostile}={encoded}"]
    parts += [f"{n}={quote(GOOD[n], safe='')}" for n in e.query_params if n != hostile and n in GOOD]
    return "&".join(parts)


def test_hostile_path_parameters_are_404_or_422(client: TestClient, api_surface: Surface) -> None:
    failures: list[str] = []
    for e in api_surface.endpoints:
        if not e.path_params or e.key in ENDLESS:
            continue
        # an encoded slash is a slash to the router: the answer is the one to the path with "//"
        slash = call(client, e.method, e.url("/"), bearer(TOKEN["admin"])).status_code
        for segment in HOSTILE_SEGMENTS:
            r = call(client, e.method, e.url(segment), bearer(TOKEN["admin"]))
            if r.status_code not in (404, 405, 422) and not (segment == "%2F" and r.status_code == slash):
                failures.append(f"{e.method} {e.path} with {segment[:40]!r}: {r.status_code} {r.text[:100]}")
            if m := reflected(r):
                failures.append(f"{e.method} {e.path} with {segment[:40]!r}: {m!r} in the page")
    for mount in PUBLIC_MOUNTS:
        for segment in HOSTILE_SEGMENTS:
            # (a client resolves a bare ".." itself: /static/.. is /, the lobby)
            r = call(client, "GET", f"{mount}/{segment}")
            if r.status_code >= 500 or b"[project]" in r.content or b"import " in r.content:
                failures.append(f"GET {mount}/{segment[:40]!r}: {r.status_code}")
    assert not failures, "\n".join(failures)


def refusals(e: Endpoint) -> tuple[int, ...]:
    """What a hostile value may get: 404 or 422; a route taking a body, sent none, may refuse that
    first (400, 411, 415, ...), but never with 401/403 (the token is admin) or 5xx."""
    if e.method in ("GET", "HEAD", "DELETE"):
        return (404, 422)
    return tuple(c for c in range(400, 500) if c not in (401, 403))


def test_hostile_query_parameters_are_404_or_422(client: TestClient, api_surface: Surface) -> None:
    failures: list[str] = []
    checked = 0
    for e in api_surface.endpoints:
        if not e.query_params or e.key in ENDLESS:
            continue
        for name in e.query_params:
            for value in encoded_values():
                url = f"{e.url('desk-01')}?{fill_query(e, name, value)}"
                r = call(client, e.method, url, bearer(TOKEN["admin"]))
                checked += 1
                # an empty value is no value: the parameter's default
                ok = refusals(e) + ((200,) if value == "" or (e.method, e.path, name) in FREE_FORM else ())
                if r.status_code not in ok:
                    failures.append(
                        f"{e.method} {e.path} ?{name}={value[:40]}: {r.status_code} {r.text[:100]}"
                    )
                elif r.status_code == 200 and value and value in r.text:
                    failures.append(f"{e.method} {e.path} ?{name}={value[:40]}: echoed in a 200")
                if m := reflected(r):
                    failures.append(f"{e.method} {e.path} ?{name}={value[:40]}: {m!r} in the page")
            # the same parameter many times over
            url = f"{e.url('desk-01')}?" + "&".join([fill_query(e, name, quote("<x>' OR 1=1"))] * 300)
            r = call(client, e.method, url, bearer(TOKEN["admin"]))
            ok = refusals(e) + ((200,) if (e.method, e.path, name) in FREE_FORM else ())
            if r.status_code not in ok:
                failures.append(f"{e.method} {e.path} ?{name}= ×300: {r.status_code} {r.text[:100]}")
    assert checked > 100
    assert not failures, "\n".join(failures)


def test_unknown_query_parameters_change_nothing_and_are_never_reflected(
    client: TestClient, api_surface: Surface
) -> None:
    failures: list[str] = []
    for e in api_surface.endpoints:
        if e.key in ENDLESS or e.method not in ("GET", "HEAD"):
            continue
        base = e.url("desk-01")
        query = "&".join(f"{n}={quote(GOOD[n], safe='')}" for n in e.query_params if n in GOOD)
        plain = call(client, e.method, f"{base}?{query}", bearer(TOKEN["admin"]))
        for value in encoded_values():
            r = call(client, e.method, f"{base}?{query}&lang={value}&{value}=1", bearer(TOKEN["admin"]))
            if r.status_code >= 500 or (r.status_code != plain.status_code and r.status_code != 422):
                failures.append(
                    f"{e.method} {e.path} +{value[:40]}: {r.status_code} (plain {plain.status_code})"
                )
            if m := reflected(r):
                failures.append(f"{e.method} {e.path} +{value[:40]}: {m!r} in the page")
    assert not failures, "\n".join(failures)


@given(
    path=st.sampled_from(UNDESCRIBED_PUBLIC),
    query=st.lists(st.tuples(st.text(max_size=30), st.text(max_size=200)), max_size=6),
    extra=st.text(max_size=60),
)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_fuzz_the_public_routes_outside_the_description(
    client: TestClient, path: str, query: list[tuple[str, str]], extra: str
) -> None:
    # surrogates cannot be UTF-8-encoded by any client; the raw-byte cases above cover them
    enc = [(quote(k, safe="", errors="replace"), quote(v, safe="", errors="replace")) for k, v in query]
    url = path + "?" + "&".join(f"{k}={v}" for k, v in enc)
    for method in ("GET", "HEAD"):
        r = client.request(method, url)
        assert r.status_code < 500 and r.status_code not in (401, 403), (method, url, r.status_code)
        assert reflected(r) is None, (url, r.text[:200])
    r = client.get("/static/" + quote(extra, safe="/", errors="replace"))
    assert r.status_code in (200, 404, 400), (extra, r.status_code)
    assert b"[project]" not in r.content and b"import " not in r.content


def test_every_public_route_is_fuzzed(app: Any, api_surface: Surface) -> None:
    """Described routes are fuzzed by test_api_fuzz.py (all of /openapi.json but the endless stream,
    which it fuzzes by hand); the others by the test above."""
    described = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    for e in api_surface.endpoints:
        if e.key in PUBLIC:
            assert e.key in described or e.path in UNDESCRIBED_PUBLIC, e.key


# -------------------------------------------------------------------------------- oversize bodies

#: Declared far over any limit tila could choose (1 GiB).
HUGE = 1 << 30


async def asgi_call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, int]:
    """Call the app as a server would, with a body that never comes: (status, times it asked for the
    body)."""
    asked = 0
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1
        if asked > 1:
            await asyncio.sleep(3600)  # a client that sends nothing more
        return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    await asyncio.wait_for(app(scope, receive, send), 10)
    return statuses[0], asked


async def test_oversize_bodies_are_refused_before_they_are_read(app: Any, api_surface: Surface) -> None:
    failures: list[str] = []
    targets = [(e.method, e.url()) for e in api_surface.endpoints if e.key not in ENDLESS]
    targets += [(m, f"{mount}/lobby.css") for mount in api_surface.mounts for m in ("GET", "POST")]
    targets += [("POST", "/nowhere"), ("PUT", "/v1/spaces")]
    for method, path in targets:
        for auth in ([], [(b"authorization", f"Bearer {TOKEN['admin']}".encode())]):
            headers = [(b"content-length", str(HUGE).encode()), (b"content-type", b"application/json"), *auth]
            status, asked = await asgi_call(app, method, path, headers)
            if status != 413 or asked:
                failures.append(f"{method} {path} (token: {bool(auth)}): {status}, body read {asked} times")
    assert not failures, "\n".join(failures)


def raw_answer(base: str, request: bytes, more: bytes = b"") -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        try:
            s.sendall(more)
        except OSError:  # the server answered and closed while this was sent
            pass
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    return b"".join(chunks)


def test_oversize_bodies_over_a_real_socket(served: tuple[Any, Any], api_surface: Surface) -> None:
    _, srv = served
    routes = [e for e in api_surface.endpoints if e.method in ("POST", "PUT", "PATCH", "DELETE")]
    for e in routes or [Endpoint("POST", "/v1/spaces", (), ())]:
        head = (
            f"{e.method} {e.url()} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {TOKEN['admin']}\r\nContent-Length: {HUGE}\r\n\r\n"
        ).encode()
        # 1 KiB of a declared GiB: the answer comes without the rest
        answer = raw_answer(srv.base, head, b"{" * 1024)
        assert answer.startswith(b"HTTP/1.1 413 "), (e.method, e.path, answer[:200])
    assert srv.errors == []


def test_oversize_chunked_bodies_are_refused(served: tuple[Any, Any], api_surface: Surface) -> None:
    routes = protected_body_routes(api_surface)
    if not routes:
        pytest.skip("no route takes a body")
    chunk = b"{" * 65536
    _, srv = served
    for e in routes:
        limit = BODY_LIMITS.get(e.path, MAX_BODY)
        body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(2 * limit // len(chunk)))
        head = (
            f"{e.method} {e.url()} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {TOKEN['admin']}\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        answer = raw_answer(srv.base, head, body + b"0\r\n\r\n")
        # A route about a resource that does not exist answers 404 without reading the body at all.
        allowed = (b"HTTP/1.1 413 ", b"HTTP/1.1 404 ") if e.path_params else (b"HTTP/1.1 413 ",)
        assert answer.startswith(allowed), (e.method, e.path, answer[:200])


# ------------------------------------------------------------------------------ secure defaults

STRONG = secrets.token_urlsafe(16)


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        (None, "is empty"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("changeme", "well-known"),
        ("ChangeMe", "well-known"),
        ("change-me", "well-known"),
        ("CHANGE-ME", "well-known"),
        ("change-me-central-mqtt-password", "well-known"),
        ("change_me_7", "well-known"),
        ("password", "well-known"),
        ("Password1", "well-known"),
        ("pass_word", "well-known"),
        ("secret", "well-known"),
        ("default", "well-known"),
        ("admin", "well-known"),
        ("admin123", "well-known"),
        ("token", "well-known"),
        ("tila", "well-known"),
        ("TILA", "well-known"),
        ("example", "well-known"),
        ("test", "well-known"),
        ("mosquitto", "well-known"),
        ("LONG-RANDOM-TOKEN", "well-known"),
        ("replace-me", "well-known"),
        ("<token>", "placeholder"),
        ("${TILA_TOKENS}", "placeholder"),
        ("123456", "digits"),
        ("---", "no letters"),
    ],
)
def test_weak_secrets(secret: str | None, why: str) -> None:
    assert why in (weakness(secret) or "")
    with pytest.raises(WeakSecretError) as err:
        check_secret(secret, "--thing")
    assert str(err.value).startswith("--thing ")
    if secret and secret.strip() and len(secret) > 3:
        assert secret not in str(err.value).replace("well-known default", "")


@pytest.mark.parametrize(
    "secret", [STRONG, "host-token-1", "s3cr3t-T0KEN", "correct horse battery staple", "x7", "123456789012"]
)
def test_real_secrets_pass(secret: str) -> None:
    assert weakness(secret) is None
    check_secret(secret, "--thing")


def test_credentials_as_urls_carry_them() -> None:
    check_credentials(None, None, "URL")  # none at all: a loopback or test broker
    check_credentials("gw1", STRONG, "URL")
    check_credentials("gw1", None, "URL", password_elsewhere=True)  # from a password file
    for user, password, words in [
        ("gw1", None, "no password"),
        ("gw1", "", "no password"),
        (None, STRONG, "no user name"),
        ("gw1", "gw1", "same as the user name"),
        ("Admin", "admin", "well-known"),
        ("gw1", "change-me-gateway", "well-known"),
    ]:
        with pytest.raises(WeakSecretError, match=words) as err:
            check_credentials(user, password, "URL")
        assert "\n" not in str(err.value)
        if password and password != user:
            assert password not in str(err.value)


def test_the_argument_types_refuse_weak_url_secrets() -> None:
    import argparse

    assert mqtt_arg("mqtt://127.0.0.1:1883").username is None
    assert mqtt_arg(f"mqtts://gw1:{STRONG}@mqtt.example.fi:8883").password == STRONG
    assert store_arg(f"influxdb://tila:{STRONG}@influx.example/tila").password == STRONG
    assert store_arg(f"influxdb://influx.example/tila?token={STRONG}").token == STRONG
    assert store_arg("sqlite:///tmp/tila.db").kind == "sqlite"
    refused = [
        (mqtt_arg, "mqtt://gw1:changeme@127.0.0.1:1883", "changeme"),
        (mqtt_arg, "mqtt://gw1@127.0.0.1:1883", None),
        (mqtt_arg, "mqtt://gw1:@127.0.0.1:1883", None),
        (mqtt_arg, "mqtts://gw1:CHANGE-ME@mqtt.example.fi:8883", "CHANGE-ME"),
        (store_arg, "influxdb://tila:change-me-influx@influx.example/tila", "change-me-influx"),
        (store_arg, "influxdb://tila@influx.example/tila", None),
        (store_arg, "influxdb://influx.example/tila?token=change-me-influx-token", "change-me-influx-token"),
        (store_arg, "influxdb://influx.example/tila?token=", None),
    ]
    for parse, url, secret in refused:
        with pytest.raises(argparse.ArgumentTypeError) as err:
            parse(url)
        assert "\n" not in str(err.value)
        if secret:
            assert secret not in str(err.value), str(err.value)


def test_a_password_file_is_held_to_the_same_rules(tmp_path: Path) -> None:
    import argparse

    file = tmp_path / "central.password"
    file.write_text("CHANGE-ME\n")
    with pytest.raises(argparse.ArgumentTypeError, match="well-known default") as err:
        mqtt_arg(f"mqtts://gw1@mqtt.example.fi:8883?password_file={file}")
    assert "CHANGE-ME" not in str(err.value)
    file.write_text(STRONG + "\n")
    assert mqtt_arg(f"mqtts://gw1@mqtt.example.fi:8883?password_file={file}").password == STRONG


def test_url_errors_do_not_show_the_password() -> None:
    msg = "MQTT URL takes no path or query: 'mqtt://gw1:p%40ss-Wörd@h:1/x'"
    assert hide_password(msg, "mqtt://gw1:p%40ss-Wörd@h:1/x") == (
        "MQTT URL takes no path or query: 'mqtt://gw1:***@h:1/x'"
    )
    secret = secrets.token_urlsafe(12)
    import argparse

    with pytest.raises(argparse.ArgumentTypeError) as err:
        mqtt_arg(f"mqtt://gw1:{secret}@127.0.0.1:1/path")
    assert secret not in str(err.value)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("host:changeme", "well-known"),
        ("analyst:change-me-api-token-analyst", "well-known"),
        (f"host:{STRONG},admin:admin", "item 2 (admin)"),
        ("booking:Token", "well-known"),
        ("admin:", "empty token"),
        ("host:<host-token>", "placeholder"),
        ("admin:sha256:" + hashlib.sha256(b"admin").hexdigest(), "digest of a well-known"),
        ("admin:sha256:" + hashlib.sha256(b"CHANGE-ME").hexdigest(), "digest of a well-known"),
        ("admin:sha256:" + "ab" * 31, "64 hex digits"),
        ("admin:sha256:" + "g" * 64, "64 hex digits"),
    ],
)
def test_weak_and_malformed_tokens_are_refused(spec: str, words: str) -> None:
    with pytest.raises(TokenError) as err:
        Tokens.parse(spec)
    msg = str(err.value)
    assert words in msg and "\n" not in msg
    secret = spec.rpartition(":")[2]
    if len(secret) > 5:
        assert secret not in msg


def test_hashed_tokens_work_beside_plain_ones() -> None:
    plain, hidden = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    digest = hashlib.sha256(hidden.encode()).hexdigest()
    tokens = Tokens.parse(f"host:{plain},analyst:sha256:{digest},admin:SHA256:{digest.upper()}")
    assert tokens.scopes(plain) == {"host"}
    assert tokens.scopes(hidden) == {"host", "analyst", "booking", "admin"}
    # the digest is not a token
    assert tokens.scopes(digest) == frozenset() and tokens.scopes(f"sha256:{digest}") == frozenset()
    assert digest_is_weak(hashlib.sha256(b"changeme").digest())
    assert not digest_is_weak(bytes.fromhex(digest))


# --------------------------------------------------------------- the real command line

SITE_TOML = (
    '[site]\nid = "mini"\nname = "Mini"\ntimezone = "Europe/Helsinki"\n'
    'opening_hours = { mon = "07:00-20:00" }\n'
    '[[zones]]\nid = "z"\nname = { fi = "Vyöhyke", sv = "Zon", en = "Zone" }\n'
    '[[spaces]]\nid = "desk-01"\nkind = "desk"\nzone = "z"\ncapacity = 1\n'
    '[[sensors]]\nid = "desk-01-pir"\nspace = "desk-01"\nformat = "zigbee2mqtt"\n'
    'topic = "zigbee2mqtt/desk-01-pir"\n'
)
#: (command, extra arguments, extra environment, the option the message must name, the secret).
#: Every command is otherwise complete and would start: only the secret stops it.
BROKER = "mqtt://127.0.0.1:9"
REFUSALS: list[tuple[str, list[str], dict[str, str], str, str | None]] = [
    ("api", ["--tokens", "host:changeme"], {}, "--tokens", "changeme"),
    (
        "api",
        [],
        {"TILA_TOKENS": f"host:{STRONG},analyst:change-me-api-token"},
        "--tokens",
        "change-me-api-token",
    ),
    ("api", ["--tokens", "admin:"], {}, "--tokens", None),
    ("api", ["--tokens", "admin:sha256:" + hashlib.sha256(b"password").hexdigest()], {}, "--tokens", None),
    ("api", ["--mqtt", "mqtt://api:Password1@127.0.0.1:9"], {}, "--mqtt", "Password1"),
    (
        "api",
        ["--store", "influxdb://tila:change-me-influx@127.0.0.1:9/tila"],
        {},
        "--store",
        "change-me-influx",
    ),
    ("aggregator", ["--mqtt", "mqtt://aggregator@127.0.0.1:9"], {}, "--mqtt", None),
    ("aggregator", [], {"TILA_MQTT": "mqtt://aggregator:Secret@127.0.0.1:9"}, "--mqtt", "Secret"),
    (
        "aggregator",
        ["--store", "influxdb://127.0.0.1:9/tila?token=changeme-influx"],
        {},
        "--store",
        "changeme-influx",
    ),
    ("gateway", ["--central", "mqtts://gw1:CHANGE-ME@mqtt.example.fi:8883"], {}, "--central", "CHANGE-ME"),
    ("gateway", ["--local", "mqtt://z2m:@127.0.0.1:9"], {}, "--local", None),
    ("gateway", [], {"TILA_CENTRAL": "mqtt://gw1:Admin123@127.0.0.1:9"}, "--central", "Admin123"),
    ("sim", ["--mqtt", "mqtt://sim:change-me-sim@127.0.0.1:9"], {}, "--mqtt", "change-me-sim"),
    ("sim", ["--mqtt", "mqtt://sim:sim@127.0.0.1:9"], {}, "--mqtt", None),
]


def base_command(command: str, tmp: Path, site: Path) -> list[str]:
    store = f"sqlite:///{tmp}/tila.db"
    return {
        "api": ["api", "--site", str(site), "--mqtt", BROKER, "--store", store, "--port", "0"],
        "aggregator": ["aggregator", "--site", str(site), "--mqtt", BROKER, "--store", store],
        "gateway": [
            "gateway", "--site", str(site), "--id", "gw-1", "--local", BROKER, "--central", BROKER,
            "--data-dir", str(tmp / "outbox"),
        ],
        "sim": ["sim", "--site", str(site), "--mqtt", BROKER, "--duration", "1"],
    }[command]  # fmt: skip


def without(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option`` and its value: the case gives it (on the command line or as
    TILA_<OPTION>, which a command-line value would override)."""
    if option not in argv:
        return argv
    i = argv.index(option)
    return argv[:i] + argv[i + 2 :]


def test_every_service_refuses_default_secrets_on_the_command_line(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(SITE_TOML)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILA_")}
    procs = []
    for command, extra, extra_env, option, secret in REFUSALS:
        argv = [*TILA, *without(base_command(command, tmp_path, site), option), *extra]
        p = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**env, **extra_env}
        )
        procs.append((p, command, extra or extra_env, option, secret))
    failures = []
    for p, command, given_, option, secret in procs:
        try:
            out, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            failures.append(f"tila {command} {given_}: did not stop")
            continue
        where = f"tila {command} with {given_}"
        if p.returncode != 2:
            failures.append(f"{where}: exit {p.returncode}: {err[-300:]}")
        if err.count("\n") != 1 or out:
            failures.append(f"{where}: not one line: {out!r} {err!r}")
        if option not in err or f"tila {command}: error:" not in err:
            failures.append(f"{where}: the message does not name {option}: {err!r}")
        if secret and secret in out + err:
            failures.append(f"{where}: the secret is shown: {err!r}")
    assert not failures, "\n".join(failures)


def test_tila_token_makes_a_random_token_and_its_hashed_form() -> None:
    runs = [
        subprocess.run(
            [*TILA, "token", "--scope", "analyst"], capture_output=True, text=True, timeout=60, check=True
        )
        for _ in range(2)
    ]
    tokens = []
    for run in runs:
        token, entry = run.stdout.splitlines()
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token), token
        assert re.fullmatch(r"analyst:sha256:[0-9a-f]{64}", entry), entry
        assert entry == hashed_entry("analyst", token)
        assert Tokens.parse(entry).scopes(token) == {"analyst"}
        assert "--tokens" in run.stderr and token not in run.stderr
        tokens.append(token)
    assert tokens[0] != tokens[1]
    existing = secrets.token_urlsafe(20)
    hashed = subprocess.run(
        [*TILA, "token", "--scope", "booking", "--stdin"],
        input=existing + "\n", capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert hashed.stdout.splitlines() == [existing, hashed_entry("booking", existing)]
    weak = subprocess.run(
        [*TILA, "token", "--stdin"],
        input="changeme\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert weak.returncode == 2 and weak.stdout == "" and weak.stderr.count("\n") == 1
    assert "changeme" not in weak.stderr


def test_hashed_tokens_end_to_end_with_tila_api(tmp_path: Path, tila_proc: Any) -> None:
    made = subprocess.run(
        [*TILA, "token", "--scope", "host"], capture_output=True, text=True, timeout=60, check=True
    )
    token, entry = made.stdout.splitlines()
    site = tmp_path / "site.toml"
    site.write_text(SITE_TOML)
    port = free_port()
    api = tila_proc(
        "api",
        [
            "api",
            "--site",
            str(site),
            "--mqtt",
            BROKER,
            "--store",
            f"sqlite:///{tmp_path}/tila.db",
            "--port",
            str(port),
        ],
        env={"TILA_TOKENS": entry},
    )
    wait_port(port, timeout=60)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=10) as http:
        r = wait_for(
            lambda: (r := http.get("/v1/sensors", headers=bearer(token))).status_code == 200 and r,
            30,
            what="/v1/sensors with the token",
        )
        assert [s["id"] for s in r.json()] == ["desk-01-pir"]  # type: ignore[union-attr]
        assert http.get("/host", headers=bearer(token)).status_code == 200
        # the token's scope only
        assert http.get("/v1/utilisation", params=GOOD, headers=bearer(token)).status_code == 403
        # what the server holds is no token
        digest = entry.partition(":")[2]
        for presented in (digest, digest.partition(":")[2], entry):
            assert http.get("/v1/sensors", headers=bearer(presented)).status_code == 401
        assert http.get("/v1/sensors").status_code == 401
    # the token is nowhere in the server's process: not its command line, not its environment
    assert api.proc is not None
    for name in ("cmdline", "environ"):
        raw = Path(f"/proc/{api.proc.pid}/{name}").read_bytes()
        assert token.encode() not in raw
    assert entry.encode() in Path(f"/proc/{api.proc.pid}/environ").read_bytes()
    assert api.stop() == 0
    assert token not in api.output()


def test_json_answers_cannot_be_read_as_html(client: TestClient) -> None:
    r = client.get("/v1/spaces/" + quote("<script>alert(1)</script>", safe=""))
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["x-content-type-options"] == "nosniff"
    json.loads(r.text)
