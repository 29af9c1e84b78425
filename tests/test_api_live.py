"""LiveState.handle with good and malformed payloads, listeners and the thread hand-over."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timedelta, timezone

import pytest
from api_support import make_site, space_payload, space_topic

from tila.api.live import MAX_PAYLOAD, LiveState, SensorLive, SpaceLive


@pytest.fixture
def live() -> LiveState:
    return LiveState(make_site())


def test_a_space_state_is_kept_and_reported_once(live: LiveState) -> None:
    assert live.space("desk-01") == SpaceLive("unknown", 0, None)
    assert (
        live.handle(space_topic("desk-01"), space_payload("occupied", 1, "2026-01-12T08:00:00+02:00"))
        == "desk-01"
    )
    s = live.space("desk-01")
    assert (s.state, s.count) == ("occupied", 1)
    assert s.since == datetime(2026, 1, 12, 8, tzinfo=timezone(timedelta(hours=2)))
    # the same retained state again (a reconnect) is no change
    assert (
        live.handle(space_topic("desk-01"), space_payload("occupied", 1, "2026-01-12T08:00:00+02:00")) is None
    )
    assert live.handle(space_topic("desk-01"), space_payload("free", 0, "2026-01-12T09:00:00Z")) == "desk-01"
    assert live.received["space"] == 3
    assert live.malformed.total() == 0


def test_extra_keys_are_ignored_and_since_may_be_null(live: LiveState) -> None:
    assert live.handle(space_topic("room-a"), b'{"state":"unknown","count":0,"since":null,"x":1}') is None
    assert (
        live.handle(space_topic("room-a"), b'{"state":"occupied","count":4,"since":null,"by":"agg"}')
        == "room-a"
    )
    assert live.space("room-a") == SpaceLive("occupied", 4, None)


def test_an_empty_retained_message_means_unknown_again(live: LiveState) -> None:
    live.handle(space_topic("desk-02"), space_payload("free", 0))
    assert live.handle(space_topic("desk-02"), b"") == "desk-02"
    assert live.space("desk-02") == SpaceLive()
    assert live.malformed.total() == 0


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'"free"',
        b'{"count": 1}',
        b'{"state": "busy", "count": 1}',
        b'{"state": "occupied", "count": -1}',
        b'{"state": "occupied", "count": true}',
        b'{"state": "occupied", "count": 1.5}',
        b'{"state": "occupied", "count": NaN}',
        b'{"state": "free", "count": 0, "since": "2026-01-12T08:00:00"}',
        b'{"state": "free", "count": 0, "since": "noon"}',
        b'{"state": "free", "count": 0, "since": 1700000000}',
        b'{"state": "free", "count": 0, "pad": "' + b"x" * MAX_PAYLOAD + b'"}',
    ],
)
def test_malformed_space_payloads_are_counted_not_raised(
    live: LiveState, payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    live.handle(space_topic("desk-01"), space_payload("free", 0))
    with caplog.at_level(logging.WARNING, logger="tila.api.live"):
        assert live.handle(space_topic("desk-01"), payload) is None
    assert live.space("desk-01").state == "free"  # the last good state stands
    assert live.malformed["space"] == 1
    assert caplog.records and len(caplog.records[0].getMessage()) < 600  # logged, truncated


def test_unknown_ids_and_foreign_topics_are_counted(live: LiveState) -> None:
    assert live.handle(space_topic("desk-99"), space_payload("free", 0)) is None
    assert live.handle("tila/v1/other-site/spaces/desk-01/state", space_payload("free", 0)) is None
    assert live.handle("tila/v1/lab/sensors/nope/state", b"{}") is None
    assert live.handle("tila/v1/lab/spaces/desk-01/whatever", b"{}") is None
    assert live.handle("zigbee2mqtt/desk-01-pir", b"{}") is None
    assert live.unknown == {"space": 1, "sensor": 1, "other": 3}
    assert live.space("desk-01").state == "unknown"


def test_sensor_state(live: LiveState) -> None:
    topic = "tila/v1/lab/sensors/desk-01-pir/state"
    assert (
        live.handle(topic, b'{"online": false, "battery": 12, "linkquality": null, "last_seen": null}')
        is None
    )
    assert live.sensor("desk-01-pir") == SensorLive(False, 12.0, None, None)
    for bad in (
        b'{"online": "yes"}',
        b'{"battery": 140}',
        b'{"battery": "full"}',
        b'{"linkquality": 300}',
        b'{"last_seen": "yesterday"}',
        b"[]",
    ):
        live.handle(topic, bad)
    assert live.malformed["sensor"] == 6
    assert live.sensor("desk-01-pir") == SensorLive(False, 12.0, None, None)
    assert live.sensor("room-a-pir") == SensorLive()


def test_gateway_status_and_health(live: LiveState) -> None:
    live.handle("tila/v1/lab/gateways/gw-1/status", b"online\n")
    live.handle("tila/v1/lab/gateways/gw-1/health", b'{"outbox": 3, "dropped": {"bad": 1}}')
    live.handle("tila/v1/lab/gateways/gw-2/status", b"offline")
    live.handle("tila/v1/lab/gateways/gw-2/status", b"maybe")
    live.handle("tila/v1/lab/gateways/gw-2/health", b"[1]")
    g = live.gateways()
    assert list(g) == ["gw-1", "gw-2"]
    assert (g["gw-1"].status, g["gw-1"].health) == ("online", {"outbox": 3, "dropped": {"bad": 1}})
    assert (g["gw-2"].status, g["gw-2"].health) == ("offline", None)
    assert live.malformed == {"gateway_status": 1, "gateway_health": 1}


def test_listeners_hear_of_space_changes_only(live: LiveState) -> None:
    heard: list[str] = []
    remove = live.add_listener(heard.append)
    live.deliver(space_topic("desk-01"), space_payload("occupied", 1))
    live.deliver(space_topic("desk-01"), space_payload("occupied", 1))
    live.deliver("tila/v1/lab/sensors/desk-01-pir/state", b'{"online": true}')
    live.deliver(space_topic("desk-02"), b"garbage")
    remove()
    live.deliver(space_topic("desk-03"), space_payload("free", 0))
    assert heard == ["desk-01"]


@pytest.mark.allow_logged_exceptions
def test_a_broken_listener_does_not_stop_the_others(live: LiveState) -> None:
    heard: list[str] = []

    def broken(space: str) -> None:
        raise RuntimeError("boom")

    live.add_listener(broken)
    live.add_listener(heard.append)
    live.deliver(space_topic("desk-01"), space_payload("free", 0))
    assert heard == ["desk-01"]


def test_expire_turns_known_states_unknown(live: LiveState) -> None:
    heard: list[str] = []
    live.add_listener(heard.append)
    live.deliver(space_topic("desk-01"), space_payload("free", 0))
    live.deliver(space_topic("room-a"), space_payload("occupied", 2))
    heard.clear()
    live.expire()
    assert sorted(heard) == ["desk-01", "room-a"]
    assert live.space("desk-01").state == "unknown"
    assert live.space("room-a").count == 0
    # the retained state after a reconnect brings it back
    live.deliver(space_topic("desk-01"), space_payload("free", 0))
    assert live.space("desk-01").state == "free"


async def test_messages_from_another_thread_are_handled_on_the_loop(live: LiveState) -> None:
    loop = asyncio.get_running_loop()
    live.start(loop)
    seen: list[tuple[str, bool]] = []
    done = asyncio.Event()

    def listener(space: str) -> None:
        seen.append((space, threading.current_thread() is threading.main_thread()))
        done.set()

    live.add_listener(listener)
    # what paho's network thread does: submit, never touching the state itself
    t = threading.Thread(target=live.submit, args=(space_topic("desk-02"), space_payload("occupied", 1)))
    t.start()
    t.join()
    await asyncio.wait_for(done.wait(), 2)
    assert seen == [("desk-02", True)]
    live.stop()


async def test_losing_the_broker_for_long_makes_spaces_unknown() -> None:
    live = LiveState(make_site(), stale_after=0.05)
    live.start(asyncio.get_running_loop())
    live.deliver(space_topic("desk-01"), space_payload("free", 0))
    live._on_disconnect()  # what the connection calls from paho's thread
    await asyncio.sleep(0.2)
    assert live.space("desk-01").state == "unknown"
    assert live.stale_expiries == 1
    # a reconnect within the grace time cancels the expiry
    live.deliver(space_topic("desk-01"), space_payload("free", 0))
    live._on_disconnect()
    live._on_connect()
    await asyncio.sleep(0.2)
    assert live.space("desk-01").state == "free"
    live.stop()
