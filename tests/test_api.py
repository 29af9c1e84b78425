"""The HTTP API through the real app (Starlette TestClient) and a real SQLite store."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

with warnings.catch_warnings():
    # Starlette 1.x suggests httpx2 for the test client; httpx works the same for these tests.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from api_support import ADMIN, ANALYST, HOST, Api, make_api, space_payload, space_topic

from tila.aggregator.buckets import Bucket
from tila.store import StoreError


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    api = make_api(tmp_path)
    yield api
    api.store.close()


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    with TestClient(api.app) as c:
        yield c


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


# ----------------------------------------------------------------------------------------- spaces


def test_spaces_are_unknown_until_a_message_arrives(client: TestClient) -> None:
    r = client.get("/v1/spaces")
    assert r.status_code == 200
    rows = r.json()
    assert [s["id"] for s in rows] == ["desk-01", "desk-02", "desk-03", "room-a", "booth-1"]
    for s in rows:
        assert (s["state"], s["count"], s["since"]) == ("unknown", 0, None)
    desk = rows[0]
    assert desk == {
        "id": "desk-01",
        "kind": "desk",
        "zone": "open",
        "capacity": 1,
        "state": "unknown",
        "count": 0,
        "since": None,
        "position": {"x": 0.0, "y": 0.0, "w": 1.0, "h": 1.0},
    }
    # name and position appear only when the site file has them
    room = rows[3]
    assert room["name"] == {"fi": "Neuvotteluhuone A", "sv": "Mötesrum A", "en": "Meeting room A"}
    assert "position" not in room
    assert "name" not in rows[1] and "position" not in rows[1]


def test_spaces_show_the_live_state(api: Api, client: TestClient) -> None:
    assert (
        api.live.handle(space_topic("room-a"), space_payload("occupied", 3, "2026-01-12T08:00:00+02:00"))
        == "room-a"
    )
    r = client.get("/v1/spaces/room-a")
    assert r.status_code == 200
    body = r.json()
    assert (body["state"], body["count"], body["since"]) == ("occupied", 3, "2026-01-12T08:00:00+02:00")
    assert client.get("/v1/spaces").json()[3] == body


def test_unknown_space_is_a_json_404(client: TestClient) -> None:
    r = client.get("/v1/spaces/desk-99")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert "desk-99" in r.json()["detail"]


def test_site_counts_desks_per_zone_and_never_counts_unknown_as_free(api: Api, client: TestClient) -> None:
    api.live.handle(space_topic("desk-01"), space_payload("free", 0))
    api.live.handle(space_topic("desk-02"), space_payload("occupied", 1))
    body = client.get("/v1/site").json()
    assert body["id"] == "lab"
    assert body["name"]["sv"] == "Testlabbet"
    assert body["timezone"] == "Europe/Helsinki"
    assert body["opening_hours"]["mon"] == ["00:00-24:00"]
    assert body["open_now"] is True
    assert body["languages"] == ["fi", "sv", "en"]
    zones = {z["id"]: z for z in body["zones"]}
    assert zones["open"]["name"] == {"fi": "Avotila", "sv": "Öppet kontor", "en": "Open office"}
    assert zones["open"]["desks"] == {"free": 1, "occupied": 1, "unknown": 1, "total": 3}
    assert zones["rooms"]["desks"] == {"free": 0, "occupied": 0, "unknown": 0, "total": 0}
    assert zones["rooms"]["spaces"] == 2
    assert body["desks"]["total"] == 3


# ------------------------------------------------------------------------------------------- auth


def test_sensors_need_a_host_token(api: Api, client: TestClient) -> None:
    r = client.get("/v1/sensors")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = client.get("/v1/sensors", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert "invalid_token" in r.headers["www-authenticate"]
    r = client.get("/v1/sensors", headers={"Authorization": "Basic aG9zdDpob3N0"})
    assert r.status_code == 401
    r = client.get("/v1/sensors", headers=ANALYST)
    assert r.status_code == 403
    assert "host" in r.json()["detail"]
    for headers in (HOST, ADMIN):
        r = client.get("/v1/sensors", headers=headers)
        assert r.status_code == 200


def test_sensors_show_the_latest_state(api: Api, client: TestClient) -> None:
    api.live.handle(
        "tila/v1/lab/sensors/desk-01-pir/state",
        b'{"online": true, "battery": 87.5, "linkquality": 120, "last_seen": "2026-01-12T08:00:00+02:00"}',
    )
    rows = {s["id"]: s for s in client.get("/v1/sensors", headers=HOST).json()}
    assert rows["desk-01-pir"] == {
        "id": "desk-01-pir",
        "space": "desk-01",
        "online": True,
        "battery": 87.5,
        "last_seen": "2026-01-12T08:00:00+02:00",
        "linkquality": 120,
    }
    assert rows["room-a-pir"] == {
        "id": "room-a-pir",
        "space": "room-a",
        "online": None,
        "battery": None,
        "last_seen": None,
        "linkquality": None,
    }


def test_gateways_for_hosts(api: Api, client: TestClient) -> None:
    api.live.handle("tila/v1/lab/gateways/gw-1/status", b"online")
    api.live.handle("tila/v1/lab/gateways/gw-1/health", b'{"outbox": 0, "version": "0.1.0"}')
    assert client.get("/v1/gateways").status_code == 401
    assert client.get("/v1/gateways", headers=HOST).json() == [
        {"id": "gw-1", "status": "online", "health": {"outbox": 0, "version": "0.1.0"}}
    ]


def test_utilisation_needs_an_analyst_token(client: TestClient) -> None:
    q = "/v1/utilisation?from=2026-01-12T00:00:00Z&to=2026-01-12T01:00:00Z"
    assert client.get(q).status_code == 401
    assert client.get(q, headers=HOST).status_code == 403
    assert client.get(q, headers=ANALYST).status_code == 200
    assert client.get(q, headers=ADMIN).status_code == 200
    # auth comes before parameter checks: no token and bad parameters is still a 401
    assert client.get("/v1/utilisation?from=junk").status_code == 401


def test_no_tokens_configured_means_401_for_everyone(tmp_path: Path) -> None:
    api = make_api(tmp_path, tokens="")
    with TestClient(api.app) as c:
        assert c.get("/v1/sensors", headers=ADMIN).status_code == 401
        assert c.get("/v1/spaces").status_code == 200
    api.store.close()


# ------------------------------------------------------------------------------------ utilisation

# Monday 12 January 2026, 02:00–04:00 in Helsinki (UTC+2) = 00:00–02:00 UTC; open all day.
FROM, TO = "2026-01-12T02:00:00+02:00", "2026-01-12T04:00:00+02:00"


def commit_hand_made_buckets(api: Api) -> None:
    t0 = ts("2026-01-12T00:00:00+00:00")
    api.store.write_buckets(
        [
            # desk-01: occupied 10 min of the first quarter (15 min known), the whole second quarter
            Bucket("desk-01", t0, occupied_s=600, covered_s=900, count_s=600, peak=1),
            Bucket("desk-01", t0 + 900, occupied_s=900, covered_s=900, count_s=900, peak=1),
            # room-a: 3 people for the quarter 01:00–01:15 UTC
            Bucket("room-a", t0 + 3600, occupied_s=900, covered_s=900, count_s=2700, peak=3),
            # outside the window: must not count
            Bucket("desk-01", t0 + 7200, occupied_s=900, covered_s=900, count_s=900, peak=1),
        ]
    )


def test_utilisation_total_matches_a_hand_computed_case(api: Api, client: TestClient) -> None:
    commit_hand_made_buckets(api)
    r = client.get(
        "/v1/utilisation", params={"from": FROM, "to": TO, "space": "desk-01,room-a"}, headers=ANALYST
    )
    assert r.status_code == 200, r.text
    rows = {row["space"]: row for row in r.json()}
    assert rows["desk-01"] == {
        "space": "desk-01",
        "start": "2026-01-12T02:00:00+02:00",
        "occupied_seconds": 1500.0,
        "open_seconds": 7200.0,
        "frequency": round(1500 / 7200, 6),
        "occupancy": 1.0,
        "utilisation": round(1500 / 7200, 6),
        "mean_count": 1.0,
        "peak_count": 1,
        "coverage": 0.25,
    }
    assert rows["room-a"] == {
        "space": "room-a",
        "start": "2026-01-12T02:00:00+02:00",
        "occupied_seconds": 900.0,
        "open_seconds": 7200.0,
        "frequency": 0.125,
        "occupancy": 0.75,  # 3 people in a room for 4
        "utilisation": 0.09375,
        "mean_count": 3.0,
        "peak_count": 3,
        "coverage": 0.125,
    }


def test_utilisation_by_hour_and_the_default_selection(api: Api, client: TestClient) -> None:
    commit_hand_made_buckets(api)
    r = client.get("/v1/utilisation", params={"from": FROM, "to": TO, "interval": "1h"}, headers=ANALYST)
    assert r.status_code == 200
    rows = r.json()
    # every space of the site, two hours each, in space then time order
    assert [(x["space"], x["start"]) for x in rows[:2]] == [
        ("desk-01", "2026-01-12T02:00:00+02:00"),
        ("desk-01", "2026-01-12T03:00:00+02:00"),
    ]
    assert len(rows) == 5 * 2
    by = {(x["space"], x["start"][11:13]): x for x in rows}
    assert by[("desk-01", "02")]["frequency"] == round(1500 / 3600, 6)
    assert by[("desk-01", "03")]["frequency"] == 0.0
    assert by[("room-a", "03")]["utilisation"] == 0.1875  # 900/3600 × 3/4
    assert by[("desk-02", "02")]["coverage"] == 0.0


def test_utilisation_filters_by_zone_and_kind(api: Api, client: TestClient) -> None:
    commit_hand_made_buckets(api)

    def get(**p: str):  # type: ignore[no-untyped-def]
        return client.get("/v1/utilisation", params={"from": FROM, "to": TO, **p}, headers=ANALYST)

    assert [x["space"] for x in get(zone="rooms").json()] == ["room-a", "booth-1"]
    assert [x["space"] for x in get(zone="rooms", kind="room").json()] == ["room-a"]
    assert [x["space"] for x in get(kind="desk").json()] == ["desk-01", "desk-02", "desk-03"]
    r = client.get(
        "/v1/utilisation",
        params=[("from", FROM), ("to", TO), ("space", "desk-02"), ("space", "booth-1")],
        headers=ANALYST,
    )
    assert [x["space"] for x in r.json()] == ["desk-02", "booth-1"]
    assert get(zone="open", kind="room").json() == []


@pytest.mark.parametrize(
    ("params", "param", "words"),
    [
        ({"space": "desk-99"}, "space", "unknown space 'desk-99'"),
        ({"zone": "cellar"}, "zone", "unknown zone 'cellar'"),
        ({"kind": "sofa"}, "kind", "unknown kind 'sofa'"),
        ({"interval": "2h"}, "interval", "'15m', '1h', '1d' or 'total'"),
        ({"from": "2026-01-12T02:00:00"}, "from", "has no UTC offset"),
        ({"from": "yesterday"}, "from", "is not an ISO 8601 time"),
        ({"to": "2026-01-12T01:00:00+02:00"}, "to", "to must be after from"),
    ],
)
def test_utilisation_bad_parameters_are_readable_422s(
    client: TestClient, params: dict[str, str], param: str, words: str
) -> None:
    r = client.get("/v1/utilisation", params={"from": FROM, "to": TO, **params}, headers=ANALYST)
    assert r.status_code == 422, r.text
    body = r.json()
    assert words in body["message"]
    assert body["message"].startswith(f"{param}:")
    assert isinstance(body["detail"], list) and body["detail"][0]["loc"][0] == "query"
    assert not body["message"].startswith("Value error")


def test_utilisation_missing_parameters_are_named(client: TestClient) -> None:
    r = client.get("/v1/utilisation", headers=ANALYST)
    assert r.status_code == 422
    assert r.json()["message"] == "from: is required; to: is required"


def test_an_unescaped_plus_in_the_offset_still_reads(api: Api, client: TestClient) -> None:
    commit_hand_made_buckets(api)
    # '+' in a query string means a space; a client that forgot to escape it still gets its answer
    r = client.get(
        "/v1/utilisation?from=2026-01-12T02:00:00+02:00&to=2026-01-12T04:00:00+02:00&space=desk-01",
        headers=ANALYST,
    )
    assert r.status_code == 200, r.text
    assert r.json()[0]["occupied_seconds"] == 1500.0


def test_heatmap_by_weekday_and_hour(api: Api, client: TestClient) -> None:
    commit_hand_made_buckets(api)
    r = client.get(
        "/v1/utilisation/heatmap", params={"from": FROM, "to": TO, "kind": "desk"}, headers=ANALYST
    )
    assert r.status_code == 200, r.text
    cells = r.json()
    assert [(c["day"], c["hour"]) for c in cells] == [("mon", 2), ("mon", 3)]
    # three desks, one occupied 1500 s of the 02:00 hour
    assert cells[0]["frequency"] == round(1500 / (3 * 3600), 6)
    assert cells[0]["utilisation"] == round(1500 / (3 * 3600), 6)
    assert cells[0]["coverage"] == round(1800 / (3 * 3600), 6)
    assert cells[1]["frequency"] == 0.0
    assert (
        client.get("/v1/utilisation/heatmap", params={"from": FROM, "to": TO}, headers=HOST).status_code
        == 403
    )


def test_utilisation_rolled_up_by_zone_kind_and_site(api: Api, client: TestClient) -> None:
    commit_hand_made_buckets(api)

    def get(**p: str) -> list[dict[str, object]]:
        r = client.get("/v1/utilisation", params={"from": FROM, "to": TO, **p}, headers=ANALYST)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    zones = get(group="zone")
    assert zones == [
        {
            "group": "zone",
            "zone": "open",
            "start": "2026-01-12T02:00:00+02:00",
            "occupied_seconds": 1500.0,
            "open_seconds": 21600.0,  # 3 desks × 2 h, in space-seconds
            "frequency": round(1500 / 21600, 6),
            "occupancy": 1.0,
            "utilisation": round(1500 / 21600, 6),
            "mean_count": 1.0,
            "peak_count": 1,
            "coverage": round(1800 / 21600, 6),
            "spaces": 3,
            "capacity": 3,
        },
        {
            "group": "zone",
            "zone": "rooms",
            "start": "2026-01-12T02:00:00+02:00",
            "occupied_seconds": 900.0,
            "open_seconds": 14400.0,
            "frequency": 0.0625,
            "occupancy": 0.75,  # 2700 head-count-seconds ÷ (4 seats × 900 s)
            "utilisation": 0.075,  # 2700 ÷ (5 seats × 7200 s)
            "mean_count": 3.0,
            "peak_count": 3,
            "coverage": 0.0625,
            "spaces": 2,
            "capacity": 5,
        },
    ]
    assert [(x["kind"], x["spaces"]) for x in get(group="kind")] == [("desk", 3), ("room", 1), ("booth", 1)]
    hours = get(group="site", interval="1h")
    assert [(x["site"], x["start"][11:13], x["occupied_seconds"]) for x in hours] == [
        ("lab", "02", 1500.0),
        ("lab", "03", 900.0),
    ]
    # Filters choose the spaces, the group sums them.
    assert [x["zone"] for x in get(group="zone", kind="room")] == ["rooms"]
    assert get(group="site", space="desk-01")[0]["spaces"] == 1
    # The default stays one row per space, as the contract has it.
    assert "group" not in get()[0]
    r = client.get("/v1/utilisation", params={"from": FROM, "to": TO, "group": "floor"}, headers=ANALYST)
    assert r.status_code == 422
    assert r.json()["message"].startswith("group:") and "'zone'" in r.json()["message"]


def test_heatmap_by_group(api: Api, client: TestClient) -> None:
    commit_hand_made_buckets(api)
    r = client.get(
        "/v1/utilisation/heatmap", params={"from": FROM, "to": TO, "group": "zone"}, headers=ANALYST
    )
    assert r.status_code == 200, r.text
    cells = r.json()
    assert [(c["zone"], c["hour"]) for c in cells] == [("open", 2), ("open", 3), ("rooms", 2), ("rooms", 3)]
    rooms = cells[3]
    assert rooms["group"] == "zone" and "space" not in rooms and "site" not in rooms
    assert rooms["utilisation"] == round(2700 / (5 * 3600), 6) and rooms["occupancy"] == 0.75
    default = client.get("/v1/utilisation/heatmap", params={"from": FROM, "to": TO}, headers=ANALYST).json()
    assert {(c["group"], c["site"]) for c in default} == {("site", "lab")}


def test_a_failing_store_is_a_503(api: Api, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> list[Bucket]:
        raise StoreError("disk on fire")

    monkeypatch.setattr(api.store, "buckets", broken)
    r = client.get("/v1/utilisation", params={"from": FROM, "to": TO}, headers=ANALYST)
    assert r.status_code == 503
    assert "disk on fire" in r.json()["detail"]


# ------------------------------------------------------------------------------------ operations


def test_healthz_reports_broker_and_store(
    api: Api, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No broker in this test: degraded, but still 200 (liveness); ?strict=true gives 503.
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "degraded", "mqtt": False, "store": True, "aggregators": {}}
    assert client.get("/healthz?strict=true").status_code == 503
    monkeypatch.setattr(type(api.live), "connected", property(lambda self: True))
    ok = {"status": "ok", "mqtt": True, "store": True, "aggregators": {}}
    assert client.get("/healthz?strict=true").json() == ok
    # An aggregator whose store is down makes the whole degraded.
    site_id = api.live.site.id
    api.live.handle(f"tila/v1/{site_id}/aggregators/1/status", b"online")
    api.live.handle(f"tila/v1/{site_id}/aggregators/1/health", b'{"status":"degraded"}')
    body = client.get("/healthz").json()
    assert body["status"] == "degraded" and body["aggregators"] == {"1": "degraded"}
    api.live.handle(f"tila/v1/{site_id}/aggregators/1/health", b'{"status":"ok"}')
    assert client.get("/healthz").json() == {**ok, "aggregators": {"1": "ok"}}
    api.live.handle(f"tila/v1/{site_id}/aggregators/1/status", b"offline")
    assert client.get("/healthz").json()["aggregators"] == {"1": "offline"}
    monkeypatch.setattr(api.store, "ping", lambda: False)
    assert client.get("/healthz").json()["status"] == "degraded"


def test_metrics_in_prometheus_text(api: Api, client: TestClient) -> None:
    api.live.handle(space_topic("desk-01"), space_payload("free", 0))
    api.live.handle(space_topic("desk-01"), b"not json")
    client.get("/v1/spaces")
    client.get("/v1/spaces/nope")
    client.get("/v1/sensors")
    client.get("/no/such/page")
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    for line in (
        "# TYPE tila_api_sse_clients gauge",
        "tila_api_sse_clients 0",
        'tila_api_mqtt_messages_total{kind="space"} 2',
        'tila_api_mqtt_malformed_total{kind="space"} 1',
        'tila_api_spaces{state="free"} 1',
        'tila_api_http_requests_total{method="GET",route="/v1/spaces",status="200"} 1',
        'tila_api_http_requests_total{method="GET",route="/v1/spaces/{space_id}",status="404"} 1',
        'tila_api_http_requests_total{method="GET",route="/v1/sensors",status="401"} 1',
        'tila_api_http_requests_total{method="GET",route="unmatched",status="404"} 1',
    ):
        assert line in text.splitlines(), line


def test_openapi_describes_every_route(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for path in (
        "/v1/spaces",
        "/v1/spaces/{space_id}",
        "/v1/site",
        "/v1/stream",
        "/v1/utilisation",
        "/v1/utilisation/heatmap",
        "/v1/sensors",
        "/healthz",
        "/metrics",
        "/lobby",
        "/host",
    ):
        assert path in doc["paths"], path
    assert doc["components"]["securitySchemes"]["token"]["scheme"].lower() == "bearer"
    params = {p["name"] for p in doc["paths"]["/v1/utilisation"]["get"]["parameters"]}
    assert {"from", "to", "space", "zone", "kind", "interval", "group"} <= params


# ------------------------------------------------------------------------------------------ pages


def test_lobby_page_and_its_assets_are_same_origin(client: TestClient) -> None:
    r = client.get("/lobby")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    html = r.text
    assert "http://" not in html and "https://" not in html  # no external assets
    for asset in ("static/lobby.css", "static/lobby.js"):
        assert asset in html
        a = client.get("/" + asset)
        assert a.status_code == 200
        assert "http://" not in a.text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in a.text
    js = client.get("/static/lobby.js").text
    for needed in ("EventSource", "v1/stream", "v1/site", '"fi"', '"sv"', '"en"', "lang"):
        assert needed in js
    assert client.head("/lobby").status_code == 200
    assert client.get("/", follow_redirects=False).headers["location"] == "lobby"


def test_host_page_asks_for_a_host_token(client: TestClient) -> None:
    r = client.get("/host")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert 'id="login"' in r.text
    assert client.get("/host", headers=ANALYST).status_code == 403
    assert client.get("/host", headers=HOST).status_code == 200


def test_now_is_recent() -> None:
    # Guards the hand-computed window above against a typo in the time zone offset.
    assert ts(FROM) == int(datetime(2026, 1, 12, 0, 0, tzinfo=UTC).timestamp())
