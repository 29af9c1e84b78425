"""Webhooks against a real HTTP receiver on a loopback port: signatures, retries, failure, durability,
the routes, and ``space.state`` from retained states on a real Mosquitto."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import stat
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from api_support import TOKENS, make_site, space_payload, space_topic
from conftest import TILA, Mosquitto, free_port, wait_for
from slow_http import SlowHttp

from tila import __version__
from tila.api.app import create_app
from tila.api.live import LiveState
from tila.api.prometheus import webhook_lines
from tila.api.webhooks import DeliveryPolicy, Webhooks, check_url
from tila.mqtt import Connection, MqttUrl
from tila.store.sqlite import SqliteStore

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ALL_TOKENS = TOKENS + ",booking:booking-token-1"
BOOKING = {"Authorization": "Bearer booking-token-1"}
HOST = {"Authorization": "Bearer host-token-1"}
ADMIN = {"Authorization": "Bearer admin-token-1"}
#: Retries within a fraction of a second, so a test sees the whole schedule.
FAST = DeliveryPolicy(first_retry=0.05, max_retry=0.2, timeout=5.0)
NO_SHOW = {
    "uid": "b-42@booking.example.fi",
    "space": "room-a",
    "start": "2026-11-24T09:00:00+02:00",
    "end": "2026-11-24T10:00:00+02:00",
}


def verify(secret: str, headers: Mapping[str, str], body: bytes, tolerance: int = 300) -> bool:
    """The receiver's check, exactly as the README documents it."""
    timestamp = headers["X-Tila-Timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False  # too old (or from the future): a replay
    signed = timestamp.encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Tila-Signature"])


# ------------------------------------------------------------------------------------ receiver


@dataclass
class Request:
    path: str
    headers: Any  # http.client.HTTPMessage: case-insensitive get
    body: bytes

    @property
    def doc(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """A real HTTP server on a free loopback port answering POSTs by ``script`` (then 200)."""

    def __init__(
        self, script: list[int] | None = None, hold: threading.Event | None = None, hold_all: bool = False
    ) -> None:
        """``hold``: the first request (every one with ``hold_all``) is answered once it is set."""
        self.requests: list[Request] = []
        self.script = list(script or [])
        self.hold = hold
        self.hold_all = hold_all
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with owner_lock:
                    first = not owner.requests
                    owner.requests.append(Request(self.path, self.headers, body))
                    code = owner.script.pop(0) if owner.script else 200
                if owner.hold is not None and (first or owner.hold_all):
                    owner.hold.wait(30)
                try:
                    self.send_response(code)
                    if 300 <= code < 400:
                        self.send_header("Location", "/elsewhere")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender gave up on a held request
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        owner_lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/tila?team=1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "tila.db")
    yield s
    s.close()


def make_app(
    store: SqliteStore,
    data_dir: Path | None,
    policy: DeliveryPolicy = FAST,
    live: LiveState | None = None,
) -> Any:
    live = live or LiveState(make_site())
    return create_app(live.site, live, store, ALL_TOKENS, data_dir=data_dir, webhook_policy=policy)


def hooks_of(app: Any) -> Webhooks:
    hooks = app.state.tila.webhooks
    assert isinstance(hooks, Webhooks)
    return hooks


def subscribe(client: TestClient, url: str, events: list[str], **more: Any) -> dict[str, Any]:
    r = client.post("/v1/webhooks", json={"url": url, "events": events, **more}, headers=BOOKING)
    assert r.status_code == 201, r.text
    return r.json()


def deliveries(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/v1/webhooks/deliveries", params=params, headers=BOOKING)
    assert r.status_code == 200, r.text
    return r.json()


# --------------------------------------------------------------------------------------- tests


def test_delivered_and_signed(tmp_path: Path, store: SqliteStore, receiver: Receiver) -> None:
    app = make_app(store, tmp_path)
    with TestClient(app) as client:
        hook = subscribe(client, receiver.url, ["booking.no_show"])
        assert hook["id"].startswith("wh_") and len(hook["secret"]) >= 32
        hooks_of(app).emit("booking.no_show", NO_SHOW)
        wait_for(lambda: receiver.requests, 10, what="the delivery")
        got = receiver.requests[0]
        assert got.path == "/hooks/tila?team=1"
        assert got.headers["Content-Type"] == "application/json"
        assert got.headers["User-Agent"] == f"tila/{__version__}"
        assert got.headers["X-Tila-Event"] == "booking.no_show"
        assert verify(hook["secret"], got.headers, got.body)
        assert not verify("another-secret-of-some-length", got.headers, got.body)
        assert not verify(hook["secret"], got.headers, got.body + b" ")
        doc = got.doc
        assert doc["id"] == got.headers["X-Tila-Delivery"]
        assert (doc["event"], doc["data"]) == ("booking.no_show", NO_SHOW)
        assert doc["time"].endswith("+00:00")

        log = wait_for(lambda: [d for d in deliveries(client) if d["status"] == "delivered"], 10)
        assert log[0]["id"] == doc["id"] and log[0]["webhook"] == hook["id"]
        (attempt,) = log[0]["attempts"]
        assert attempt["status_code"] == 200 and attempt["error"] is None and attempt["latency_ms"] > 0

        # an event nobody subscribed to queues nothing
        hooks_of(app).emit("space.state", {"id": "room-a", "state": "free", "count": 0})
        assert len(deliveries(client)) == 1

        # a ping goes to the one webhook pinged, whatever its events
        r = client.post(f"/v1/webhooks/{hook['id']}/ping", headers=BOOKING)
        assert r.status_code == 202
        wait_for(lambda: len(receiver.requests) == 2, 10, what="the ping")
        ping = receiver.requests[1]
        assert ping.headers["X-Tila-Event"] == "ping" and ping.doc["data"] == {"webhook": hook["id"]}
        assert ping.headers["X-Tila-Delivery"] == r.json()["delivery"]
        assert verify(hook["secret"], ping.headers, ping.body)
        wait_for(lambda: hooks_of(app).delivered == 2, 10, what="the ping recorded")

    mode = stat.S_IMODE(os.stat(tmp_path / "webhooks.db").st_mode)
    assert mode == 0o600, oct(mode)


def test_retried_until_a_2xx(tmp_path: Path, store: SqliteStore) -> None:
    receiver = Receiver([500, 500, 200])
    try:
        app = make_app(store, tmp_path)
        with TestClient(app) as client:
            hook = subscribe(client, receiver.url, ["*"])
            hooks_of(app).emit("booking.no_show", NO_SHOW)
            log = wait_for(lambda: deliveries(client, status="delivered"), 15, what="delivered")
            assert [a["status_code"] for a in log[0]["attempts"]] == [500, 500, 200]
            assert len(receiver.requests) == 3
            # the same delivery each time: same id, same body, each signed afresh
            assert len({r.headers["X-Tila-Delivery"] for r in receiver.requests}) == 1
            assert len({r.body for r in receiver.requests}) == 1
            assert all(verify(hook["secret"], r.headers, r.body) for r in receiver.requests)
            assert (hooks_of(app).retried, hooks_of(app).delivered, hooks_of(app).failed) == (2, 1, 0)
            assert hooks_of(app).pending() == 0
            metrics = "\n".join(webhook_lines(hooks_of(app)))
            assert 'tila_api_webhook_deliveries_total{outcome="delivered"} 1' in metrics
            assert 'tila_api_webhook_deliveries_total{outcome="failed"} 0' in metrics
            assert "tila_api_webhook_retries_total 2" in metrics
            assert "tila_api_webhook_pending 0" in metrics
            assert webhook_lines(None) == []
    finally:
        receiver.close()


def test_redirects_are_not_followed(tmp_path: Path, store: SqliteStore) -> None:
    receiver = Receiver([302, 200])
    try:
        app = make_app(store, tmp_path)
        with TestClient(app) as client:
            subscribe(client, receiver.url, ["booking.no_show"])
            hooks_of(app).emit("booking.no_show", NO_SHOW)
            log = wait_for(lambda: deliveries(client, status="delivered"), 15, what="delivered")
            first, second = log[0]["attempts"]
            assert first["status_code"] == 302 and "not followed" in first["error"]
            assert second["status_code"] == 200
            assert [r.path for r in receiver.requests] == ["/hooks/tila?team=1"] * 2
    finally:
        receiver.close()


def test_receiver_down_fails_after_the_attempt_limit(tmp_path: Path, store: SqliteStore) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    app = make_app(
        store, tmp_path, DeliveryPolicy(first_retry=0.05, max_retry=0.1, max_attempts=3, timeout=2)
    )
    with TestClient(app) as client:
        hook = subscribe(client, url, ["booking.no_show"])
        hooks_of(app).emit("booking.no_show", NO_SHOW)
        log = wait_for(lambda: deliveries(client, status="failed"), 15, what="failed")
        (d,) = log
        assert d["webhook"] == hook["id"] and d["next_attempt"] is None and d["finished"]
        assert len(d["attempts"]) == 3
        assert all(a["status_code"] is None and a["error"] for a in d["attempts"])
        assert all(len(a["error"]) <= 200 for a in d["attempts"])
        assert (hooks_of(app).retried, hooks_of(app).failed) == (2, 1)
        assert deliveries(client, status="pending") == []
        assert hooks_of(app).pending() == 0


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    policy = DeliveryPolicy(first_retry=30, max_retry=3600, retry_hours=1, max_attempts=100)
    rng = random.Random(1)  # jitter, not a secret
    delays = [policy.delay(n, rng) for n in range(1, 12)]
    assert 24 <= delays[0] <= 36 and 48 <= delays[1] <= 72  # 30 s doubling, ±20 %
    assert max(delays) <= 3600 * 1.2 and delays[-1] >= 3600 * 0.8  # capped at an hour


def test_the_retry_window_ends_retries(tmp_path: Path, store: SqliteStore) -> None:
    """Past ``retry_hours`` after it was queued, a delivery is failed however few attempts it had."""
    receiver = Receiver([500])
    try:
        # 0.36 s of retrying; the first retry would come after 10 s
        app = make_app(store, tmp_path, DeliveryPolicy(first_retry=10, retry_hours=0.0001, max_attempts=30))
        with TestClient(app) as client:
            subscribe(client, receiver.url, ["booking.no_show"])
            hooks_of(app).emit("booking.no_show", NO_SHOW)
            (d,) = wait_for(lambda: deliveries(client, status="failed"), 15, what="failed")
            assert [a["status_code"] for a in d["attempts"]] == [500]
    finally:
        receiver.close()


def test_a_queued_delivery_survives_a_restart(tmp_path: Path, store: SqliteStore, receiver: Receiver) -> None:
    # The first app never starts its worker: it is stopped before delivering anything.
    first = make_app(store, tmp_path)
    client = TestClient(first)
    hook = subscribe(client, receiver.url, ["booking.no_show"])
    hooks_of(first).emit("booking.no_show", NO_SHOW)
    assert hooks_of(first).pending() == 1
    hooks_of(first).close()
    assert receiver.requests == []

    second = make_app(store, tmp_path)
    with TestClient(second) as client:
        wait_for(lambda: receiver.requests, 10, what="the delivery after the restart")
        got = receiver.requests[0]
        assert verify(hook["secret"], got.headers, got.body) and got.doc["data"] == NO_SHOW
        wait_for(lambda: deliveries(client, status="delivered"), 10, what="delivered")
        assert [h["id"] for h in client.get("/v1/webhooks", headers=BOOKING).json()] == [hook["id"]]


def test_a_delivery_under_way_at_shutdown_is_sent_again(tmp_path: Path, store: SqliteStore) -> None:
    """At least once: the POST in flight when the API stops is sent again, same id, by the next one."""
    release = threading.Event()
    receiver = Receiver(hold=release)
    try:
        first = make_app(store, tmp_path, DeliveryPolicy(first_retry=60, timeout=30))
        with TestClient(first) as client:
            subscribe(client, receiver.url, ["booking.no_show"])
            hooks_of(first).emit("booking.no_show", NO_SHOW)
            wait_for(lambda: receiver.requests, 10, what="the first attempt")
        # stopped while the receiver held the request: the delivery is still queued, due now
        release.set()
        second = make_app(store, tmp_path)
        with TestClient(second) as client:
            wait_for(lambda: len(receiver.requests) == 2, 10, what="the second attempt")
            wait_for(lambda: deliveries(client, status="delivered"), 10, what="delivered")
        ids = [r.headers["X-Tila-Delivery"] for r in receiver.requests]
        assert ids[0] == ids[1]
    finally:
        release.set()
        receiver.close()


def test_a_stuck_receiver_does_not_hold_up_the_others(tmp_path: Path, store: SqliteStore) -> None:
    """A webhook gets at most half of the concurrent POSTs: the others go on past a stuck receiver."""
    release = threading.Event()
    stuck, fine = Receiver(hold=release, hold_all=True), Receiver()
    try:
        app = make_app(store, tmp_path, DeliveryPolicy(concurrency=2, timeout=30))
        with TestClient(app) as client:
            subscribe(client, stuck.url, ["*"])
            subscribe(client, fine.url, ["*"])
            for n in range(3):
                hooks_of(app).emit("booking.no_show", {**NO_SHOW, "uid": f"b-{n}"})
            wait_for(lambda: len(fine.requests) == 3, 10, what="the other receiver's deliveries")
            assert len(stuck.requests) == 1
            release.set()
            wait_for(lambda: len(deliveries(client, status="delivered")) == 6, 10, what="all delivered")
            assert sorted(r.doc["data"]["uid"] for r in stuck.requests) == ["b-0", "b-1", "b-2"]
    finally:
        release.set()
        stuck.close()
        fine.close()


def test_routes_need_the_booking_scope(tmp_path: Path, store: SqliteStore, receiver: Receiver) -> None:
    app = make_app(store, tmp_path)
    client = TestClient(app)
    body = {"url": receiver.url, "events": ["space.state"]}
    assert client.get("/v1/webhooks").status_code == 401
    assert client.post("/v1/webhooks", json=body).status_code == 401
    # the token is checked before the body is read: a stranger learns nothing from a broken one
    broken = {"content": b"{not json", "headers": {"Content-Type": "application/json"}}
    assert client.post("/v1/webhooks", **broken).status_code == 401
    r = client.post("/v1/webhooks", content=b"{not json", headers={**BOOKING, **broken["headers"]})
    assert r.status_code == 422 and r.json()["message"].startswith("Invalid JSON"), r.text
    assert client.get("/v1/webhooks", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/v1/webhooks", headers=HOST).status_code == 403
    assert client.post("/v1/webhooks", json=body, headers=HOST).status_code == 403
    assert client.get("/v1/webhooks/deliveries", headers=HOST).status_code == 403
    assert client.delete("/v1/webhooks/wh_x", headers=HOST).status_code == 403
    assert client.post("/v1/webhooks/wh_x/ping", headers=HOST).status_code == 403
    # admin implies booking
    r = client.post("/v1/webhooks", json=body, headers=ADMIN)
    assert r.status_code == 201
    assert client.get("/v1/webhooks", headers=BOOKING).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"url": "ftp://example.fi/x", "events": ["*"]}, "url: must be an http:// or https:// URL"),
        ({"url": "https://user:pw@example.fi/x", "events": ["*"]}, "url: must not carry credentials"),
        ({"url": "https:///nohost", "events": ["*"]}, "url: has no host"),
        ({"url": "https://example.fi/a b", "events": ["*"]}, "url: must not contain spaces"),
        ({"url": "https://example.fi:99999/", "events": ["*"]}, "url: is not a valid URL"),
        ({"url": "https://example.fi/" + "x" * 2100, "events": ["*"]}, "url: must be at most 2048"),
        ({"url": "https://example.fi/x", "events": []}, "events: List should have at least 1 item"),
        ({"url": "https://example.fi/x", "events": ["space.moved"]}, "events.0: Input should be"),
        ({"url": "https://example.fi/x", "events": ["*"], "secret": "short"}, "secret: must be 16 to 256"),
        ({"url": "https://example.fi/x", "events": ["*"], "spaces": ["nowhere"]}, "spaces: unknown space"),
        ({"url": "https://example.fi/x", "events": ["*"], "colour": "red"}, "colour: Extra inputs"),
        ({"events": ["*"]}, "url: is required"),
    ],
)
def test_bad_subscriptions_are_422(
    tmp_path: Path, store: SqliteStore, body: dict[str, Any], message: str
) -> None:
    client = TestClient(make_app(store, tmp_path))
    r = client.post("/v1/webhooks", json=body, headers=BOOKING)
    assert r.status_code == 422, r.text
    assert r.json()["message"].startswith(message), r.json()["message"]
    assert client.get("/v1/webhooks", headers=BOOKING).json() == []


def test_secrets_are_never_listed(tmp_path: Path, store: SqliteStore, receiver: Receiver) -> None:
    client = TestClient(make_app(store, tmp_path))
    given = "a-secret-the-caller-chose-1234"
    mine = subscribe(client, receiver.url, ["space.state"], spaces=["room-a"], secret=given)
    made = subscribe(client, receiver.url, ["*"])
    assert mine["secret"] == given and mine["spaces"] == ["room-a"] and made["spaces"] is None
    r = client.get("/v1/webhooks", headers=BOOKING)
    assert [h["id"] for h in r.json()] == [mine["id"], made["id"]]
    assert all("secret" not in h for h in r.json())
    assert given not in r.text and made["secret"] not in r.text
    assert made["secret"] not in client.get("/openapi.json").text

    ping = client.post(f"/v1/webhooks/{mine['id']}/ping", headers=BOOKING).json()["delivery"]
    assert [d["id"] for d in deliveries(client, webhook=mine["id"])] == [ping]
    assert deliveries(client, webhook=made["id"]) == []
    assert client.get("/v1/webhooks/deliveries?status=lost", headers=BOOKING).status_code == 422
    assert client.get("/v1/webhooks/deliveries?limit=0", headers=BOOKING).status_code == 422
    r = client.get("/v1/webhooks/deliveries?stauts=failed", headers=BOOKING)  # misspelt: not ignored
    assert r.status_code == 422 and r.json()["message"].startswith("stauts: unknown parameter")

    assert client.delete(f"/v1/webhooks/{mine['id']}", headers=BOOKING).status_code == 204
    assert client.delete(f"/v1/webhooks/{mine['id']}", headers=BOOKING).status_code == 404
    assert client.post(f"/v1/webhooks/{mine['id']}/ping", headers=BOOKING).status_code == 404
    # the ping never sent (no worker here) ends as failed with its webhook
    assert [d["status"] for d in deliveries(client, webhook=mine["id"])] == ["failed"]
    assert [h["id"] for h in client.get("/v1/webhooks", headers=BOOKING).json()] == [made["id"]]


def test_without_a_data_dir_webhooks_are_off(store: SqliteStore) -> None:
    client = TestClient(make_app(store, None))
    r = client.get("/v1/webhooks", headers=BOOKING)
    assert r.status_code == 503 and r.json()["detail"] == "webhooks need --data-dir"
    assert client.get("/v1/webhooks", headers=HOST).status_code == 403  # the token is checked first
    assert client.get("/v1/spaces").status_code == 200


def test_tila_api_refuses_an_unusable_webhooks_db(tmp_path: Path) -> None:
    (tmp_path / "data" / "webhooks.db").mkdir(parents=True)  # a directory where the file belongs
    out = subprocess.run(
        [
            *TILA,
            "api",
            "--site",
            "bundled",
            "--mqtt",
            "mqtt://127.0.0.1:1",
            "--store",
            f"sqlite:///{tmp_path / 'tila.db'}",
            "--data-dir",
            str(tmp_path / "data"),
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert "webhooks: cannot use" in out.stderr and "Traceback" not in out.stderr
    bad = subprocess.run(
        [
            *TILA,
            "api",
            "--site",
            "bundled",
            "--mqtt",
            "mqtt://127.0.0.1:1",
            "--store",
            f"sqlite:///{tmp_path / 'x.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TILA_WEBHOOK_RETRY_HOURS": "-1"},
    )
    assert bad.returncode == 2 and "--webhook-retry-hours" in bad.stderr


def test_space_filter_and_unknown_events(tmp_path: Path) -> None:
    hooks = Webhooks(tmp_path / "webhooks.db")
    try:
        room = hooks.create("https://example.fi/room", ["*"], spaces=["room-a"])
        every = hooks.create("https://example.fi/all", ["space.state"])
        hooks.emit("booking.no_show", NO_SHOW)  # room-a: only the first wants it
        hooks.emit("booking.no_show", {**NO_SHOW, "space": "booth-1"})  # nobody
        hooks.space_changed({"id": "desk-01", "state": "occupied", "count": 1})  # the second only
        hooks.space_changed({"id": "desk-01", "state": "occupied", "count": 1, "since": "later"})  # same
        assert [d.event for d in hooks.deliveries(room.id)] == ["booking.no_show"]
        assert [d.event for d in hooks.deliveries(every.id)] == ["space.state"]
        with pytest.raises(ValueError, match="unknown webhook event"):
            hooks.emit("booking.made", {})
    finally:
        hooks.close()


def test_finished_deliveries_are_deleted_after_keep_days(tmp_path: Path) -> None:
    hooks = Webhooks(tmp_path / "webhooks.db", DeliveryPolicy(keep_days=30))
    try:
        sub = hooks.create("https://example.fi/x", ["*"])
        hooks.emit("booking.no_show", NO_SHOW)
        hooks.delete(sub.id)  # its pending delivery ends as failed: finished now
        assert hooks.purge(time.time() + 29 * 86400) == 0
        assert len(hooks.deliveries()) == 1
        assert hooks.purge(time.time() + 31 * 86400) == 1
        assert hooks.deliveries() == []
    finally:
        hooks.close()


def test_check_url_accepts_ordinary_urls() -> None:
    for url in ("http://127.0.0.1:8080/hook", "https://booking.example.fi/tila?key=abc", "https://[::1]/x"):
        assert check_url(url) == url


# ------------------------------------------------------------------------ space.state from MQTT


@pytest.mark.integration
def test_space_state_from_retained_states(
    tmp_path: Path,
    shared_broker: Mosquitto,
    receiver: Receiver,
    store: SqliteStore,
    request: pytest.FixtureRequest,
) -> None:
    broker = MqttUrl.parse(shared_broker.url)
    site_id = "wh-" + request.node.name[-8:].lower().replace("_", "-")
    site = make_site(site_id)
    publisher = Connection(broker, "webhook-test-publisher")
    publisher.start()
    assert publisher.wait_connected(5)

    def publish(space: str, state: str, count: int, since: str = "2026-11-24T08:00:00+02:00") -> None:
        payload = space_payload(state, count, since)
        publisher.publish(space_topic(space, site_id), payload, qos=1, retain=True).wait_for_publish(5)

    try:
        live = LiveState(site, broker)
        app = make_app(store, tmp_path, live=live)
        with TestClient(app) as client:
            hook = subscribe(client, receiver.url, ["space.state"], spaces=["room-a"])
            publish("desk-01", "occupied", 1)  # not a space of this webhook
            publish("room-a", "occupied", 3)
            wait_for(lambda: receiver.requests, 10, what="space.state for room-a")
            got = receiver.requests[0]
            assert got.headers["X-Tila-Event"] == "space.state"
            assert verify(hook["secret"], got.headers, got.body)
            data = got.doc["data"]
            assert (data["id"], data["state"], data["count"]) == ("room-a", "occupied", 3)
            assert data["since"] == "2026-11-24T08:00:00+02:00" and data["kind"] == "room"
            # the same state and count with a new since is not news; a new count is
            publish("room-a", "occupied", 3, "2026-11-24T08:05:00+02:00")
            wait_for(lambda: live.space("room-a").since.minute == 5, 10, what="the new since")
            publish("room-a", "occupied", 2)
            wait_for(lambda: len(receiver.requests) == 2, 10, what="the new count")
            assert receiver.requests[1].doc["data"]["count"] == 2

        # a restart receives the retained states again: unchanged, they are not announced again
        live = LiveState(site, broker)
        app = make_app(store, tmp_path, live=live)
        with TestClient(app):
            wait_for(lambda: live.space("room-a").count == 2, 10, what="the retained state")
            publish("room-a", "free", 0)
            wait_for(lambda: len(receiver.requests) == 3, 10, what="free")
        assert [r.doc["data"]["state"] for r in receiver.requests] == ["occupied", "occupied", "free"]
        assert all(r.doc["data"]["id"] == "room-a" for r in receiver.requests)
    finally:
        for space in ("desk-01", "room-a"):
            publisher.publish(space_topic(space, site_id), b"", qos=1, retain=True).wait_for_publish(5)
        publisher.stop()


def trickler() -> SlowHttp:
    """A receiver that answers a POST's headers a line every 0.2 s, for a minute."""
    return SlowHttp(b"HTTP/1.1 200 OK\r\n", "X-Slow-{n}: yes\r\n", "/hook")


def test_an_answer_that_never_completes_is_a_timeout_within_the_limit(
    tmp_path: Path, store: SqliteStore
) -> None:
    """The timeout bounds the whole attempt, not each read: a receiver dribbling its answer out is a
    failed attempt after ``timeout`` seconds (and its lease cannot run out while it is under way)."""
    slow = trickler()
    try:
        app = make_app(store, tmp_path, DeliveryPolicy(first_retry=60, timeout=1.0))
        with TestClient(app) as client:
            subscribe(client, slow.url, ["booking.no_show"])
            hooks_of(app).emit("booking.no_show", NO_SHOW)
            (d,) = wait_for(
                lambda: [d for d in deliveries(client) if d["attempts"]], 20, what="the first attempt's end"
            )
            (attempt,) = d["attempts"]
            assert attempt["status_code"] is None
            assert attempt["error"].startswith("timed out after 1 s"), attempt
            assert d["status"] == "pending" and slow.connections == 1
    finally:
        slow.close()


class _Watched(Webhooks):
    """The real queue, noting which thread runs its bulk queue work (purge, claim)."""

    threads: list[tuple[str, str]] = []

    def purge(self, now: float | None = None) -> int:
        type(self).threads.append(("purge", threading.current_thread().name))
        return super().purge(now)

    def _claim(self, now: float, n: int, busy: Any) -> Any:
        type(self).threads.append(("claim", threading.current_thread().name))
        return super()._claim(now, n, busy)


def test_the_worker_keeps_bulk_queue_work_off_the_event_loop(tmp_path: Path, receiver: Receiver) -> None:
    """A purge of a month of deliveries, or a claim over a large backlog, would stall the API's event
    loop (the live state, the streams) for as long as SQLite takes."""
    import asyncio

    _Watched.threads = []
    hooks = _Watched(tmp_path / "webhooks.db", FAST)

    async def run() -> str:
        await hooks.start()
        try:
            await asyncio.to_thread(hooks.create, receiver.url, ["*"])
            await asyncio.to_thread(hooks.emit, "booking.no_show", NO_SHOW)
            deadline = time.monotonic() + 15
            while not receiver.requests and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await hooks.stop()
        return threading.current_thread().name

    try:
        loop_thread = asyncio.run(run())
    finally:
        hooks.close()
    assert receiver.requests
    assert {what for what, _ in _Watched.threads} == {"purge", "claim"}
    assert [t for _, t in _Watched.threads if t == loop_thread] == []


def test_a_locked_queue_is_a_503_not_a_500(tmp_path: Path, store: SqliteStore, receiver: Receiver) -> None:
    """Another process holding webhooks.db (a backup, a stuck sqlite3 shell) past the busy timeout."""
    import sqlite3

    app = make_app(store, tmp_path)
    with TestClient(app, raise_server_exceptions=False) as client:
        sub = subscribe(client, receiver.url, ["booking.no_show"])
        other = sqlite3.connect(tmp_path / "webhooks.db", isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            r = client.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]}, headers=BOOKING)
            assert r.status_code == 503, r.text
            assert r.json()["detail"].startswith("the webhooks database failed: ")
            r = client.post(f"/v1/webhooks/{sub['id']}/ping", headers=BOOKING)
            assert r.status_code == 503, r.text
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert client.post(f"/v1/webhooks/{sub['id']}/ping", headers=BOOKING).status_code == 202


def test_a_repeated_delivery_filter_is_422(tmp_path: Path, store: SqliteStore, receiver: Receiver) -> None:
    app = make_app(store, tmp_path)
    with TestClient(app) as client:
        r = client.get("/v1/webhooks/deliveries?webhook=a&webhook=b", headers=BOOKING)
        assert r.status_code == 422 and "webhook: give this parameter once" in r.text, r.text
        assert client.get("/v1/webhooks/deliveries?webhook=a", headers=BOOKING).json() == []
