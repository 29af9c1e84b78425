"""LiveState fed through a real Mosquitto: retained states published before and after the API starts."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import make_api, make_site, space_payload, space_topic
from conftest import Mosquitto

from tila.api.live import LiveState
from tila.mqtt import Connection, MqttUrl

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = [pytest.mark.integration]


@pytest.fixture
def broker(shared_broker: Mosquitto) -> MqttUrl:
    """The session's Mosquitto; each test uses its own site id, so topics never collide."""
    return MqttUrl.parse(shared_broker.url)


@pytest.fixture
def publisher(broker: MqttUrl) -> Iterator[Connection]:
    conn = Connection(broker, "api-test-publisher")
    conn.start()
    assert conn.wait_connected(5)
    yield conn
    conn.stop()


def publish(conn: Connection, topic: str, payload: bytes) -> None:
    conn.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)


def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.02)


def test_retained_states_reach_v1_spaces(
    tmp_path: Path, broker: MqttUrl, publisher: Connection, request: pytest.FixtureRequest
) -> None:
    site_id = "lab-" + request.node.name[-8:].lower().replace("_", "-")
    site = make_site(site_id)
    # published before the API connects: arrives as a retained message on subscribe
    publish(
        publisher, space_topic("desk-01", site_id), space_payload("occupied", 1, "2026-01-12T08:00:00+02:00")
    )
    publish(publisher, f"tila/v1/{site_id}/sensors/desk-01-pir/state", b'{"online": true, "battery": 91}')
    publish(publisher, f"tila/v1/{site_id}/gateways/gw-1/status", b"online")
    publish(publisher, space_topic("desk-02", site_id), b"{broken")  # must not stop anything

    live = LiveState(site, broker)
    api = make_api(tmp_path, live=live, tokens="host:h")
    with TestClient(api.app) as client:

        def desk(space: str) -> dict[str, Any]:
            return {s["id"]: s for s in client.get("/v1/spaces").json()}[space]

        assert eventually(lambda: desk("desk-01")["state"] == "occupied"), desk("desk-01")
        assert desk("desk-01")["since"] == "2026-01-12T08:00:00+02:00"
        assert eventually(lambda: client.get("/healthz").json()["mqtt"] is True)
        assert eventually(lambda: live.malformed["space"] == 1)
        assert desk("desk-02")["state"] == "unknown"

        # published while the API runs: a live update
        publish(publisher, space_topic("room-a", site_id), space_payload("occupied", 3))
        assert eventually(lambda: desk("room-a")["count"] == 3)

        sensors = {
            s["id"]: s for s in client.get("/v1/sensors", headers={"Authorization": "Bearer h"}).json()
        }
        assert (sensors["desk-01-pir"]["online"], sensors["desk-01-pir"]["battery"]) == (True, 91.0)
        assert (
            client.get("/v1/gateways", headers={"Authorization": "Bearer h"}).json()[0]["status"] == "online"
        )
        metrics = client.get("/metrics").text
        assert "tila_api_mqtt_connected 1" in metrics
        assert 'tila_api_mqtt_malformed_total{kind="space"} 1' in metrics
    # the lifespan stopped the connection
    assert not live.connected
    api.store.close()
