"""The gateway as a process, between two real Mosquitto brokers."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from conftest import wait_for

from tila.mqtt import Connection, MqttUrl

SITE = """
[site]
id = "gwtest"
timezone = "Europe/Helsinki"
opening_hours = { mon = "00:00-24:00" }

[[zones]]
id = "z"

[[spaces]]
id = "d1"
kind = "desk"
zone = "z"

[[sensors]]
id = "d1-pir"
space = "d1"
format = "zigbee2mqtt"
topic = "zigbee2mqtt/d1-pir"
"""


class Collector:
    """Subscribes to the central broker and keeps every canonical event by (gateway, seq)."""

    def __init__(self, url: str, topic: str) -> None:
        self.events: list[dict[str, object]] = []
        self.retained: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.conn = Connection(
            MqttUrl.parse(url), "collector", subscriptions=[(topic, 1)], on_message=self._on
        )

    def _on(self, msg: object) -> None:
        with self.lock:
            if "/events/" in msg.topic:  # type: ignore[attr-defined]
                self.events.extend(json.loads(msg.payload)["events"])  # type: ignore[attr-defined]
            else:
                self.retained[msg.topic] = msg.payload  # type: ignore[attr-defined]

    def __enter__(self) -> Collector:
        self.conn.start()
        assert self.conn.wait_connected(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.stop()


def local_ready(col: Collector, gateway: str = "gw1") -> bool:
    raw = col.retained.get(f"tila/v1/gwtest/gateways/{gateway}/health")
    return bool(raw) and json.loads(raw)["local_connected"]


def publisher(url: str) -> Connection:
    c = Connection(MqttUrl.parse(url), "device-sim")
    c.start()
    assert c.wait_connected(5)
    return c


@pytest.mark.integration
def test_gateway_forwards_decodes_and_quarantines(tmp_path: Path, mosquitto, tila_proc) -> None:  # type: ignore[no-untyped-def]
    local, central = mosquitto("local"), mosquitto("central")
    site = tmp_path / "site.toml"
    site.write_text(SITE)
    with Collector(central.url, "tila/v1/gwtest/#") as col:
        gw = tila_proc(
            "gateway",
            [
                "gateway",
                "--site",
                str(site),
                "--id",
                "gw1",
                "--local",
                local.url,
                "--central",
                central.url,
                "--data-dir",
                str(tmp_path / "gw"),
                "--health-interval",
                "0.5",
                "--max-payload",
                "1000",
            ],
        )
        wait_for(
            lambda: col.retained.get("tila/v1/gwtest/gateways/gw1/status") == b"online",
            10,
            what="gateway online",
        )
        wait_for(lambda: local_ready(col), 10, what="gateway subscribed locally")
        dev = publisher(local.url)
        for i in range(50):
            dev.publish(
                "zigbee2mqtt/d1-pir",
                json.dumps({"occupancy": i % 2 == 0, "linkquality": 100}).encode(),
                qos=1,
            )
        dev.publish("zigbee2mqtt/d1-pir/availability", b'{"state":"offline"}', qos=1)
        dev.publish("zigbee2mqtt/d1-pir", b"\xff\xfe", qos=1)  # not UTF-8
        dev.publish("zigbee2mqtt/d1-pir", b"{broken", qos=1)
        dev.publish("zigbee2mqtt/d1-pir", b'{"occupancy":"yes"}', qos=1)
        dev.publish("zigbee2mqtt/d1-pir", b"x" * 2000, qos=1)
        dev.publish("zigbee2mqtt/stranger", b'{"occupancy":true}', qos=1)
        dev.publish("zigbee2mqtt/bridge/state", b'{"state":"online"}', qos=1)
        dev.stop()
        # 50 presence + 50 link quality + 1 availability
        wait_for(lambda: len(col.events) >= 101, 10, what="101 events")
        seqs = [e["seq"] for e in col.events]
        assert sorted(set(seqs)) == list(range(1, 102))
        presence = [e["occupied"] for e in col.events if e["type"] == "presence"]
        assert presence == [i % 2 == 0 for i in range(50)]
        assert all(e["space"] == "d1" and e["sensor"] == "d1-pir" for e in col.events)

        def health() -> dict[str, object] | None:
            raw = col.retained.get("tila/v1/gwtest/gateways/gw1/health")
            doc = json.loads(raw) if raw else None
            return doc if doc and sum(doc["quarantined"].values()) >= 5 else None

        h = wait_for(health, 10, what="health with quarantine counts")
        assert h["quarantined"] == {
            "not_utf8": 1,
            "malformed_json": 1,
            "wrong_type": 1,
            "oversize": 1,
            "unknown_sensor": 1,
        }
        assert h["ignored"] == {"housekeeping": 1}
        wait_for(
            lambda: json.loads(col.retained["tila/v1/gwtest/gateways/gw1/health"])["outbox_depth"] == 0,
            10,
            what="empty outbox",
        )
        assert gw.stop() == 0
        wait_for(
            lambda: col.retained.get("tila/v1/gwtest/gateways/gw1/status") == b"offline",
            5,
            what="offline status",
        )


@pytest.mark.integration
def test_gateway_keeps_events_through_an_uplink_outage_and_restart(
    tmp_path: Path, mosquitto, tila_proc
) -> None:  # type: ignore[no-untyped-def]
    local, central = mosquitto("local"), mosquitto("central")
    site = tmp_path / "site.toml"
    site.write_text(SITE)
    args = [
        "gateway",
        "--site",
        str(site),
        "--id",
        "gw1",
        "--local",
        local.url,
        "--central",
        central.url,
        "--data-dir",
        str(tmp_path / "gw"),
    ]
    with Collector(central.url, "tila/v1/gwtest/#") as col:
        gw = tila_proc("gateway", args)
        wait_for(lambda: local_ready(col), 10, what="gateway subscribed locally")
        dev = publisher(local.url)
        dev.publish("zigbee2mqtt/d1-pir", b'{"occupancy":true}', qos=1)
        wait_for(lambda: len(col.events) == 1, 10, what="first event")
        central.stop()
        for i in range(20):
            dev.publish("zigbee2mqtt/d1-pir", json.dumps({"occupancy": i % 2 == 1}).encode(), qos=1)
        # Restart the gateway while the uplink is down: the outbox must keep the 20 events.
        import time

        time.sleep(1.0)
        assert gw.stop() == 0
    central.start()
    with Collector(central.url, "tila/v1/gwtest/events/+") as col2:
        gw2 = tila_proc("gateway2", args)
        wait_for(lambda: len({e["seq"] for e in col2.events}) >= 20, 15, what="20 events after the outage")
        assert sorted({e["seq"] for e in col2.events}) == list(range(2, 22))
        dev.stop()
        gw2.stop()


def test_device_times_far_ahead_or_far_behind_are_quarantined(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from tila.gateway.bridge import Gateway, GatewaySettings
    from tila.sensors.site import parse_site

    site = parse_site({
        "site": {"id": "gwtest", "timezone": "UTC", "opening_hours": {"mon": "00:00-24:00"}},
        "zones": [{"id": "z"}],
        "spaces": [{"id": "d1", "kind": "desk", "zone": "z"}],
        "sensors": [{"id": "d1-pir", "space": "d1", "format": "zigbee2mqtt", "topic": "zigbee2mqtt/d1-pir"}],
    })  # fmt: skip
    url = MqttUrl.parse("mqtt://127.0.0.1:1")
    gw = Gateway(GatewaySettings(site=site, id="gw1", local=url, central=url, data_dir=str(tmp_path)))
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)

    def at(t: datetime) -> list[dict[str, object]]:
        return gw.decode(
            "zigbee2mqtt/d1-pir", json.dumps({"occupancy": True, "last_seen": t.isoformat()}).encode(), now
        )

    assert len(at(now - timedelta(minutes=5))) == 1
    assert at(now + timedelta(hours=1)) == []
    assert at(now - timedelta(days=60)) == []
    assert gw.quarantined == {"time_future": 1, "time_past": 1}
    assert [q["reason"] for q in gw.quarantine_log] == ["time_future", "time_past"]
    gw.outbox.close()
