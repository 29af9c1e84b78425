"""The bookings routes through the real app and SQLite, and live no-shows against a real Mosquitto."""

from __future__ import annotations

import contextlib
import http.server
import json
import signal
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from api_support import ADMIN, ANALYST, HOST, SITE, make_site, space_payload, space_topic
from conftest import Mosquitto, free_port, wait_for
from slow_http import CALENDAR_HEAD, SlowHttp

from tila.aggregator.buckets import Bucket
from tila.api.app import create_app
from tila.api.live import LiveState
from tila.api.settings import ApiSettings
from tila.mqtt import Connection, MqttUrl
from tila.store.sqlite import SqliteStore

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

FIXTURES = Path(__file__).parent / "fixtures" / "ical"
TOKENS = "host:host-token-1,analyst:analyst-token-1,admin:admin-token-1,booking:booking-token-1"
BOOKING = {"Authorization": "Bearer booking-token-1"}
ICS = {"Content-Type": "text/calendar; charset=utf-8"}


def make(tmp_path: Path, live: LiveState | None = None, data_dir: bool = True, **kw: Any) -> Any:
    site = live.site if live is not None else make_site()
    live = live or LiveState(site)
    store = SqliteStore(tmp_path / "tila.db")
    (tmp_path / "data").mkdir(exist_ok=True)  # as ``tila api`` makes it
    app = create_app(
        site, live, store, TOKENS, ApiSettings(rate_limit=0), tmp_path / "data" if data_dir else None, **kw
    )
    return app, store


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app, store = make(tmp_path)
    with TestClient(app) as c:
        yield c
    store.close()


def iso(t: datetime) -> str:
    return t.isoformat()


NOW = datetime.now(UTC).replace(microsecond=0)


def room_calendar(*events: tuple[str, datetime, datetime], location: str = "") -> bytes:
    """A small calendar, as a booking tool would send it."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//tila tests//EN"]
    for uid, a, b in events:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uid}",
            f"DTSTART:{a.astimezone(UTC):%Y%m%dT%H%M%SZ}",
            f"DTEND:{b.astimezone(UTC):%Y%m%dT%H%M%SZ}",
            *([f"LOCATION:{location}"] if location else []),
            "SUMMARY:Planning",
            "END:VEVENT",
        ]
    return ("\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n").encode()


# ------------------------------------------------------------------------------ off and access

ROUTES = [
    ("GET", "/v1/availability", None),
    ("GET", "/v1/bookings", {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"}),
    ("GET", "/v1/bookings/noshows", {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"}),
    ("DELETE", "/v1/bookings/x", None),
]


@pytest.mark.parametrize(("method", "path", "params"), ROUTES)
def test_without_a_data_dir_bookings_answer_503(
    tmp_path: Path, method: str, path: str, params: dict[str, str] | None
) -> None:
    app, store = make(tmp_path, data_dir=False)
    with TestClient(app) as c:
        r = c.request(method, path, params=params, headers=ADMIN)
        assert (r.status_code, r.json()["detail"]) == (503, "bookings need --data-dir")
        r = c.post("/v1/bookings/import", content=b"x", headers={**ADMIN, **ICS})
        assert r.status_code == 503
    store.close()


def test_tokens_and_scopes(client: TestClient) -> None:
    window = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"}
    body = {"space": "room-a", "start": "2026-11-10T10:00:00+02:00", "end": "2026-11-10T11:00:00+02:00"}
    assert client.get("/v1/bookings", params=window).status_code == 401
    assert (
        client.get("/v1/bookings", params=window, headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    assert client.get("/v1/bookings", params=window, headers=ANALYST).status_code == 403
    assert client.get("/v1/bookings", params=window, headers=HOST).status_code == 200
    assert client.get("/v1/bookings", params=window, headers=BOOKING).status_code == 200
    assert client.post("/v1/bookings", json=body).status_code == 401
    r = client.post("/v1/bookings", json=body, headers=HOST)
    assert (r.status_code, r.json()["detail"]) == (403, "this needs the booking scope")
    assert client.post("/v1/bookings", json=body, headers=ANALYST).status_code == 403
    assert client.post("/v1/bookings/import", content=b"", headers={**HOST, **ICS}).status_code == 403
    assert client.delete("/v1/bookings/x", headers=ANALYST).status_code == 403
    r = client.get("/v1/bookings/noshows", params=window, headers=HOST)
    assert (r.status_code, r.json()["detail"]) == (403, "this needs the analyst or booking scope")
    assert client.get("/v1/bookings/noshows", params=window, headers=ANALYST).status_code == 200
    assert client.get("/v1/bookings/noshows", params=window, headers=BOOKING).status_code == 200
    assert client.post("/v1/bookings", json=body, headers=ADMIN).status_code == 201  # admin implies booking
    assert client.get("/v1/availability").status_code == 200  # public


# ------------------------------------------------------------------------------- bookings CRUD


def test_add_list_and_delete_bookings(client: TestClient) -> None:
    body = {
        "uid": "bk-1",
        "space": "room-a",
        "start": "2026-11-10T10:00:00+02:00",
        "end": "2026-11-10T11:00:00+02:00",
        "expected": 3,
    }
    r = client.post("/v1/bookings", json=body, headers=BOOKING)
    assert r.status_code == 201
    assert r.json() == {**body, "source": "api"}
    window = {"from": "2026-11-10T00:00:00+02:00", "to": "2026-11-11T00:00:00+02:00"}
    assert [b["uid"] for b in client.get("/v1/bookings", params=window, headers=HOST).json()] == ["bk-1"]
    assert client.get("/v1/bookings", params={**window, "space": "desk-01"}, headers=HOST).json() == []
    # the same room, overlapping: 409; the same uid: 409
    clash = {**body, "uid": "bk-2", "start": "2026-11-10T10:45:00+02:00", "end": "2026-11-10T12:00:00+02:00"}
    r = client.post("/v1/bookings", json=clash, headers=BOOKING)
    assert (r.status_code, r.json()["detail"]) == (409, "room-a is booked already for part of that time")
    assert client.post("/v1/bookings", json={**body, "space": "room-a"}, headers=BOOKING).status_code == 409
    # back to back is fine, and without a uid one is made up
    nxt = {k: v for k, v in clash.items() if k != "uid"} | {"start": "2026-11-10T11:00:00+02:00"}
    r = client.post("/v1/bookings", json=nxt, headers=BOOKING)
    assert r.status_code == 201 and r.json()["uid"].startswith("api-")
    assert client.delete("/v1/bookings/bk-1", headers=BOOKING).status_code == 204
    assert client.delete("/v1/bookings/bk-1", headers=BOOKING).status_code == 404
    assert len(client.get("/v1/bookings", params=window, headers=HOST).json()) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"space": "room-zz"}, "space: unknown space 'room-zz'"),
        ({"end": "2026-11-10T09:00:00+02:00"}, "end: end must be after start"),
        ({"end": "2026-11-12T09:00:00+02:00"}, "end: a booking lasts at most 24 hours"),
        ({"start": "2026-11-10T10:00:00"}, "has no UTC offset"),
        ({"uid": "has space"}, "uid"),
        ({"expected": -1}, "expected"),
        ({"title": "Secret meeting"}, "title"),
    ],
)
def test_bad_bookings_are_422_with_a_readable_message(
    client: TestClient, change: dict[str, Any], message: str
) -> None:
    body = {"space": "room-a", "start": "2026-11-10T10:00:00+02:00", "end": "2026-11-10T11:00:00+02:00"}
    r = client.post("/v1/bookings", json={**body, **change}, headers=BOOKING)
    assert r.status_code == 422, r.text
    assert message in r.json()["message"]


@pytest.mark.parametrize("body", [b"{not json", b"\x90\xff", b""])
def test_a_body_that_is_no_json_is_a_422_after_the_token_check(client: TestClient, body: bytes) -> None:
    headers = {"Content-Type": "application/json"}
    for path in ("/v1/bookings", "/v1/bookings/import"):
        assert client.post(path, content=body, headers=headers).status_code == 401
        r = client.post(path, content=body, headers={**BOOKING, **headers})
        assert r.status_code == 422 and r.json()["message"].startswith("Invalid JSON"), r.text


def test_bad_windows_are_422(client: TestClient) -> None:
    r = client.get(
        "/v1/bookings", params={"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, headers=HOST
    )
    assert (r.status_code, r.json()["message"]) == (422, "to: to must be after from")
    r = client.get("/v1/bookings", params={"from": "2026-11-02", "to": "x"}, headers=HOST)
    assert r.status_code == 422
    r = client.get("/v1/availability", params={"zone": "nowhere"})
    assert r.status_code == 422 and "unknown zone" in r.json()["message"]


# ----------------------------------------------------------------------------------------- import


def test_import_an_ics_body_replacing_its_source(client: TestClient) -> None:
    params = {"from": "2026-11-01T00:00:00+02:00", "to": "2026-12-01T00:00:00+02:00"}
    data = (FIXTURES / "floating.ics").read_bytes()
    r = client.post("/v1/bookings/import", params=params, content=data, headers={**BOOKING, **ICS})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "source": "upload",
        "imported": 1,
        "skipped": 0,
        "skipped_by_reason": {},
        "from": "2026-11-01T00:00:00+02:00",
        "to": "2026-12-01T00:00:00+02:00",
        "replaced": 0,
    }
    # A room's own calendar with unknown rooms named: mapped by ?space=; a second source.
    cal = room_calendar(
        ("e1", datetime(2026, 11, 11, 8, tzinfo=UTC), datetime(2026, 11, 11, 9, tzinfo=UTC)),
        ("e2", datetime(2026, 11, 11, 8, 30, tzinfo=UTC), datetime(2026, 11, 11, 9, 30, tzinfo=UTC)),
        location="Somewhere",
    )
    r = client.post(
        "/v1/bookings/import", params={**params, "space": "booth-1"}, content=cal, headers={**BOOKING, **ICS}
    )
    body = r.json()
    assert (body["source"], body["imported"], body["skipped_by_reason"]) == (
        "upload:booth-1",
        1,
        {"overlap": 1},
    )
    # without ?space= the LOCATION names no space
    r = client.post("/v1/bookings/import", params=params, content=cal, headers={**BOOKING, **ICS})
    assert r.json()["skipped_by_reason"] == {"unknown_space": 2} and r.json()["replaced"] == 1
    window = {"from": "2026-11-01T00:00:00+02:00", "to": "2026-12-01T00:00:00+02:00"}
    assert [b["uid"] for b in client.get("/v1/bookings", params=window, headers=HOST).json()] == ["e1"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ((FIXTURES / "google.ics").read_bytes()[:700], "calendar: truncated iCalendar file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "calendar: not iCalendar text (binary data)"),
        ("BEGIN:VCALENDAR\nX:ä\nEND:VCALENDAR\n".encode("latin-1"), "calendar: not UTF-8 text"),
        (b"", "calendar: not an iCalendar file"),
    ],
)
def test_a_broken_import_is_422_and_writes_nothing(client: TestClient, data: bytes, message: str) -> None:
    params = {"from": "2026-11-01T00:00:00+02:00", "to": "2026-12-01T00:00:00+02:00"}
    good = (FIXTURES / "floating.ics").read_bytes()
    assert (
        client.post(
            "/v1/bookings/import", params=params, content=good, headers={**BOOKING, **ICS}
        ).status_code
        == 200
    )
    r = client.post("/v1/bookings/import", params=params, content=data, headers={**BOOKING, **ICS})
    assert r.status_code == 422
    assert r.json()["message"].startswith(message), r.json()
    assert len(client.get("/v1/bookings", params=params, headers=HOST).json()) == 1


def test_import_refuses_other_media_types_and_huge_bodies(client: TestClient) -> None:
    r = client.post(
        "/v1/bookings/import", content=b"<xml/>", headers={**BOOKING, "Content-Type": "application/xml"}
    )
    assert r.status_code == 415
    r = client.post("/v1/bookings/import", content=b"x" * (3 * 1024 * 1024), headers={**BOOKING, **ICS})
    assert r.status_code == 413


class _Feed(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        if self.path != "/room.ics":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/calendar")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def feed_url() -> Iterator[str]:
    _Feed.body = (FIXTURES / "outlook_room.ics").read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_import_a_feed_by_url(client: TestClient, feed_url: str) -> None:
    doc = {
        "url": f"{feed_url}/room.ics",
        "space": "room-a",
        "from": "2026-10-01T00:00:00+03:00",
        "to": "2026-12-01T00:00:00+02:00",
    }
    r = client.post("/v1/bookings/import", json=doc, headers=BOOKING)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["imported"], body["skipped_by_reason"]) == (3, {"cancelled": 1})
    assert body["source"].startswith("feed:127.0.0.1#")
    r = client.post("/v1/bookings/import", json={**doc, "url": f"{feed_url}/missing.ics"}, headers=BOOKING)
    assert r.status_code == 422 and "HTTP 404" in r.json()["message"]
    r = client.post("/v1/bookings/import", json={**doc, "url": "file:///etc/passwd"}, headers=BOOKING)
    assert r.status_code == 422 and "http://, https:// or webcal://" in r.json()["message"]
    r = client.post("/v1/bookings/import", json={"space": "room-a"}, headers=BOOKING)
    assert r.status_code == 422 and "url" in r.json()["message"]
    r = client.post("/v1/bookings/import", json={**doc, "space": "room-zz"}, headers=BOOKING)
    assert r.status_code == 422 and "unknown space" in r.json()["message"]


# ----------------------------------------------------------------------------- no-shows and now


def test_noshows_from_the_store(tmp_path: Path) -> None:
    app, store = make(tmp_path)
    t = datetime(2026, 11, 10, 10, tzinfo=UTC)  # 12:00 in Helsinki; the test site is always open
    slots = [int((t + timedelta(minutes=15 * k)).timestamp()) for k in range(8)]
    store.write_buckets(
        [Bucket("room-a", s, 0.0, 900.0, 0.0, 0) for s in slots[:4]]  # seen, empty: a no-show
        + [Bucket("room-a", s, 900.0, 900.0, 900.0, 1) for s in slots[4:]]  # one person: used, half-empty
    )
    with TestClient(app) as c:
        for uid, k in (("n1", 0), ("u1", 4)):
            body = {
                "uid": uid,
                "space": "room-a",
                "start": iso(t + timedelta(hours=k / 4)),
                "end": iso(t + timedelta(hours=(k + 4) / 4)),
            }
            assert c.post("/v1/bookings", json=body, headers=BOOKING).status_code == 201
        r = c.get(
            "/v1/bookings/noshows",
            params={"from": iso(t), "to": iso(t + timedelta(hours=2))},
            headers=ANALYST,
        )
        assert r.status_code == 200, r.text
        doc = r.json()
    rows = {b["uid"]: b for b in doc["bookings"]}
    assert (rows["n1"]["outcome"], rows["n1"]["detected"], rows["n1"]["occupied_seconds"]) == (
        "no_show",
        None,
        0,
    )
    assert (rows["u1"]["outcome"], rows["u1"]["half_empty"], rows["u1"]["mean_count"]) == ("used", True, 1.0)
    room = {s["space"]: s for s in doc["spaces"]}["room-a"]
    assert (room["bookings"], room["no_shows"], room["no_show_rate"]) == (2, 1, 0.5)
    assert doc["grace_minutes"] == 15 and doc["from"] == iso(t)
    store.close()


def test_availability_is_public_and_aggregate(client: TestClient) -> None:
    start = NOW - timedelta(minutes=5)
    body = {"uid": "now-1", "space": "room-a", "start": iso(start), "end": iso(start + timedelta(hours=1))}
    assert client.post("/v1/bookings", json=body, headers=BOOKING).status_code == 201
    rows = client.get("/v1/availability").json()
    assert [r["id"] for r in rows] == ["room-a"]  # the only room; desks and booths are drop-in
    (a,) = rows
    assert (a["booked_now"], a["free_now"], a["state"]) == (True, False, "unknown")
    assert datetime.fromisoformat(a["booked_until"]) == start + timedelta(hours=1)
    assert "uid" not in a and "source" not in a  # nothing of the booking itself
    booths = client.get("/v1/availability", params={"kind": "booth"}).json()
    assert [r["id"] for r in booths] == ["booth-1"]


# --------------------------------------------------------------------------- live, real Mosquitto


class _Receiver(http.server.BaseHTTPRequestHandler):
    got: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).got.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.got = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.mark.integration
def test_live_no_show_and_used_against_mosquitto(
    tmp_path: Path, shared_broker: Mosquitto, receiver: str, request: pytest.FixtureRequest
) -> None:
    site_id = "bk-" + request.node.name[-6:].lower().replace("_", "-")
    site = make_site(site_id)
    broker = MqttUrl.parse(shared_broker.url)
    publisher = Connection(broker, f"{site_id}-publisher")
    publisher.start()
    assert publisher.wait_connected(5)
    long_ago = iso(datetime.now(UTC) - timedelta(hours=1))
    # room-a has been free for an hour; booth-1 is occupied
    for space, state, count in (("room-a", "free", 0), ("booth-1", "occupied", 1)):
        publisher.publish(
            space_topic(space, site_id), space_payload(state, count, long_ago), qos=1, retain=True
        ).wait_for_publish(5)
    live = LiveState(site, broker)
    app, store = make(tmp_path, live=live, noshow_grace=timedelta(seconds=2))
    try:
        with TestClient(app) as c:
            ctx = app.state.tila
            assert ctx.webhooks is not None, "the webhooks feature is part of the API"
            ctx.webhooks.create(receiver, ["booking.no_show"])
            wait_for(
                lambda: live.space("room-a").state == "free" and live.space("booth-1").state == "occupied",
                10,
                what="retained states",
            )
            start = datetime.now(UTC).replace(microsecond=0)
            for uid, space in (("live-free", "room-a"), ("live-used", "booth-1")):
                body = {
                    "uid": uid,
                    "space": space,
                    "start": iso(start),
                    "end": iso(start + timedelta(hours=1)),
                }
                assert c.post("/v1/bookings", json=body, headers=BOOKING).status_code == 201
            window = (start - timedelta(minutes=1), start + timedelta(minutes=1))
            detected = wait_for(
                lambda: len(found := ctx.bookings.db.detected(*window)) == 2 and found, 20, what="decisions"
            )
            assert {uid: d.outcome for uid, d in detected.items()} == {
                "live-free": "no_show",
                "live-used": "used",
            }
            d = detected["live-free"]
            assert d.detected_at >= start + timedelta(seconds=2)
            # announced once, as a signed webhook delivery
            wait_for(lambda: _Receiver.got, 20, what="the webhook")
            (hook,) = _Receiver.got
            assert hook["event"] == "booking.no_show"
            data = hook["data"]
            assert data["uid"] == "live-free" and data["space"] == "room-a"
            assert (data["grace_minutes"], datetime.fromisoformat(data["start"])) == (2 / 60, start)
            assert set(data) == {"uid", "space", "start", "end", "grace_minutes", "detected_at"}
            # and shown beside the store's verdict
            r = c.get(
                "/v1/bookings/noshows", params={"from": iso(window[0]), "to": iso(window[1])}, headers=BOOKING
            )
            assert {b["uid"]: b["detected"] for b in r.json()["bookings"]} == {
                "live-free": "no_show",
                "live-used": "used",
            }
        # restarted: decided bookings are not decided or announced again
        app2, store2 = make(tmp_path, live=LiveState(site, broker), noshow_grace=timedelta(seconds=2))
        with TestClient(app2):
            monitor = app2.state.tila.bookings.monitor
            # its first look at the database finds both decided already
            wait_for(
                lambda: {"live-free", "live-used"} <= {b.uid for b in monitor._done},
                10,
                what="the first look",
            )
            assert monitor.decisions.total() == 0
        store2.close()
        assert len(_Receiver.got) == 1
    finally:
        for space in ("room-a", "booth-1"):
            publisher.publish(space_topic(space, site_id), b"", qos=1, retain=True).wait_for_publish(5)
        publisher.stop()
        store.close()


def test_the_site_fixture_is_the_api_one() -> None:
    assert make_site().id == SITE


# ------------------------------------------------------------------------------- tila api option


@pytest.mark.parametrize("value", ["0", "-5", "soon", "nan"])
def test_a_bad_noshow_grace_exits_2_with_one_line(
    tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tila.cli import main

    args = [
        "api",
        "--site",
        "bundled",
        "--mqtt",
        "mqtt://127.0.0.1:1",
        "--store",
        f"sqlite:///{tmp_path}/t.db",
    ]
    with pytest.raises(SystemExit) as stop:
        main([*args, "--noshow-grace", value])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--noshow-grace" in err


def test_the_grace_reaches_the_api(tmp_path: Path) -> None:
    app, store = make(tmp_path, noshow_grace=timedelta(minutes=5))
    with TestClient(app) as c:
        r = c.get(
            "/v1/bookings/noshows",
            params={"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"},
            headers=ANALYST,
        )
        assert r.json()["grace_minutes"] == 5
        assert app.state.tila.bookings.monitor.grace == timedelta(minutes=5)
    store.close()


def test_an_occurrence_of_a_series_is_deleted_by_its_uid(client: TestClient) -> None:
    # Occurrences' uids hold a "/" (UID/RECURRENCE-ID); a client sends it percent-encoded.
    cal = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tila tests//EN\r\nBEGIN:VEVENT\r\nUID:weekly-1\r\n"
        b"DTSTART:20261110T080000Z\r\nDTEND:20261110T090000Z\r\nRRULE:FREQ=WEEKLY;COUNT=2\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    params = {"from": "2026-11-01T00:00:00+02:00", "to": "2026-12-01T00:00:00+02:00"}
    r = client.post(
        "/v1/bookings/import", params={**params, "space": "room-a"}, content=cal, headers={**BOOKING, **ICS}
    )
    assert r.json()["imported"] == 2, r.text
    uids = [b["uid"] for b in client.get("/v1/bookings", params=params, headers=HOST).json()]
    assert uids == ["weekly-1/20261110T080000Z", "weekly-1/20261117T080000Z"]
    r = client.delete(f"/v1/bookings/{quote(uids[0], safe='')}", headers=BOOKING)
    assert r.status_code == 204, r.text
    r = client.delete(f"/v1/bookings/{quote(uids[0], safe='')}", headers=BOOKING)
    assert r.status_code == 404
    left = [b["uid"] for b in client.get("/v1/bookings", params=params, headers=HOST).json()]
    assert left == uids[1:]


def test_sigterm_during_a_slow_feed_import_stops_the_api_at_once(tmp_path: Path, tila_proc: Any) -> None:
    """The import's feed is fetched off the event loop; the API's stop does not wait for it."""
    port = free_port()
    api = tila_proc(
        "api",
        [
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
            str(port),
            "--tokens",
            "booking:booking-token-1",
        ],
    )
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(f"{base}/healthz"), 30, what="the API")
    slow = SlowHttp(CALENDAR_HEAD, "X-LINE-{n}:x\r\n", "/slow.ics", interval=1.0, lines=120)
    try:

        def post() -> None:
            request = urllib.request.Request(
                f"{base}/v1/bookings/import",
                data=json.dumps({"url": slow.url}).encode(),
                headers={**BOOKING, "Content-Type": "application/json"},
                method="POST",
            )
            with contextlib.suppress(OSError):
                urllib.request.urlopen(request, timeout=60).read()

        threading.Thread(target=post, daemon=True).start()
        assert slow.connected.wait(30), "the API did not fetch the feed"
        assert api.proc is not None
        api.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        try:
            api.wait(30)
        finally:
            took = time.monotonic() - t0
        assert took < 8, f"the API took {took:.1f} s to stop"
    finally:
        slow.close()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
