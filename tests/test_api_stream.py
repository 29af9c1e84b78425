"""Server-Sent Events: the broadcaster directly (asyncio), then real HTTP against uvicorn via serve()."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import fastapi.routing
import httpx
import pytest
from api_support import make_api, running, space_payload, space_topic, sse_events

from tila.api.broadcast import Broadcaster, StreamEvent, Subscription
from tila.api.routes import stream as stream_route

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SPACES = ["a", "b", "c"]


def snapshot_of(state: dict[str, str]) -> list[str]:
    return [json.dumps({"id": k, "state": v}) for k, v in state.items()]


def hub_with(state: dict[str, str], **kw: int) -> Broadcaster:
    return Broadcaster(lambda: snapshot_of(state), first_id=100, **kw)


async def take(it: AsyncIterator[StreamEvent], n: int) -> list[StreamEvent]:
    return [await asyncio.wait_for(anext(it), 1) for _ in range(n)]


# -------------------------------------------------------------------------------- broadcaster


async def test_every_client_gets_a_snapshot_then_every_event_in_order() -> None:
    state = {s: "unknown" for s in SPACES}
    hub = hub_with(state)
    one, two = hub.subscribe(), hub.subscribe()
    it1, it2 = one.events(), two.events()
    assert hub.clients == 2
    snap1 = await take(it1, 3)
    assert [json.loads(e.data)["id"] for e in snap1] == SPACES
    assert {e.id for e in snap1} == {100}  # the stream position at the snapshot
    await take(it2, 3)
    published = [hub.publish(json.dumps({"id": "a", "n": i})) for i in range(50)]
    assert [e.id for e in published] == list(range(101, 151))
    got1, got2 = await take(it1, 50), await take(it2, 50)
    assert got1 == published
    assert got2 == published
    await it1.aclose()
    await it2.aclose()
    assert hub.clients == 0


async def test_resume_after_last_event_id_gets_only_what_was_missed() -> None:
    hub = hub_with({"a": "free"})
    for i in range(5):
        hub.publish(f'{{"n": {i}}}')  # ids 101..105
    sub = hub.subscribe("102")
    got = await take(sub.events(), 3)
    assert [e.id for e in got] == [103, 104, 105]
    assert hub.resumed == 1
    # up to date: nothing to replay, then live
    sub2 = hub.subscribe("105")
    it2 = sub2.events()
    nxt = asyncio.ensure_future(anext(it2))
    await asyncio.sleep(0.01)
    assert not nxt.done()
    hub.publish('{"n": 5}')
    assert (await asyncio.wait_for(nxt, 1)).id == 106
    nxt.cancel()


@pytest.mark.parametrize("last", ["1", "99", "999", "banana", "", "-3", "１０３"])
async def test_an_unknown_or_too_old_last_event_id_gets_a_snapshot(last: str) -> None:
    hub = hub_with({"a": "free", "b": "occupied"}, ring_size=3)
    for i in range(5):
        hub.publish(f'{{"n": {i}}}')  # ids 101..105, ring keeps 103..105
    got = await take(hub.subscribe(last).events(), 2)
    assert [json.loads(e.data)["id"] for e in got] == ["a", "b"]
    assert {e.id for e in got} == {105}


async def test_ring_edge_resumes_exactly() -> None:
    hub = hub_with({}, ring_size=3)
    for i in range(5):
        hub.publish(f'{{"n": {i}}}')  # ring keeps 103..105
    assert [e.id for e in await take(hub.subscribe("102").events(), 3)] == [103, 104, 105]
    assert hub.resumed == 1


async def test_a_slow_client_skips_to_a_snapshot_without_holding_up_others() -> None:
    state = {"a": "free"}
    hub = hub_with(state, queue_size=4)
    slow, fast = hub.subscribe(), hub.subscribe()
    slow_it, fast_it = slow.events(), fast.events()
    await take(slow_it, 1)
    await take(fast_it, 1)
    for i in range(10):
        state["a"] = f"s{i}"
        hub.publish(json.dumps({"id": "a", "n": i}))
        # the fast client keeps up with every event
        assert json.loads((await take(fast_it, 1))[0].data)["n"] == i
        assert slow._queue.qsize() <= 4  # memory stays bounded
    assert slow.resyncs >= 1 and hub.resyncs >= 1
    # the slow one now gets a fresh snapshot of the current state, then live events again
    got = await take(slow_it, 1)
    assert json.loads(got[0].data) == {"id": "a", "state": "s9"}
    assert got[0].id == hub.head
    hub.publish(json.dumps({"id": "a", "n": 10}))
    assert json.loads((await take(slow_it, 1))[0].data)["n"] == 10


async def test_close_ends_every_stream_and_refuses_new_ones() -> None:
    hub = hub_with({"a": "free"})
    sub = hub.subscribe()
    it = sub.events()
    await take(it, 1)
    waiting = asyncio.ensure_future(anext(it))
    await asyncio.sleep(0.01)
    hub.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 1)
    assert hub.clients == 0
    late: Subscription = hub.subscribe()
    assert [e async for e in late.events()] == []


# ----------------------------------------------------------------------------------- real HTTP


def test_sse_over_http_snapshot_live_events_resume_and_prompt_shutdown(tmp_path: Path) -> None:
    api = make_api(tmp_path)
    api.live.handle(space_topic("desk-01"), space_payload("occupied", 1))
    with running(api.app) as srv, httpx.Client(base_url=srv.base, timeout=5) as http:
        assert http.get("/v1/spaces").status_code == 200
        with http.stream("GET", "/v1/stream") as r1, http.stream("GET", "/v1/stream") as r2:
            assert r1.status_code == 200
            assert r1.headers["content-type"].startswith("text/event-stream")
            lines1, lines2 = r1.iter_lines(), r2.iter_lines()
            snap = sse_events(lines1, 5)
            sse_events(lines2, 5)
            assert all(e["event"] == "space" for e in snap)
            assert [json.loads(e["data"])["id"] for e in snap] == [s.id for s in api.site.spaces]
            first = json.loads(snap[0]["data"])
            assert (first["state"], first["count"], first["position"]) == (
                "occupied",
                1,
                {"x": 0.0, "y": 0.0, "w": 1.0, "h": 1.0},
            )
            assert snap[0]["retry"] == "2000"
            snap_id = int(snap[0]["id"])

            # what paho's thread does for each message: both clients get each change, in order
            api.live.submit(space_topic("desk-02"), space_payload("free", 0))
            api.live.submit(space_topic("room-a"), space_payload("occupied", 3))
            for lines in (lines1, lines2):
                ev = sse_events(lines, 2)
                assert [json.loads(e["data"])["id"] for e in ev] == ["desk-02", "room-a"]
                assert [int(e["id"]) for e in ev] == [snap_id + 1, snap_id + 2]
                assert json.loads(ev[1]["data"])["count"] == 3

        # a reconnecting client with Last-Event-ID gets just what it missed
        api.live.submit(space_topic("booth-1"), space_payload("occupied", 1))
        with http.stream("GET", "/v1/stream", headers={"Last-Event-ID": str(snap_id + 2)}) as r3:
            ev = sse_events(r3.iter_lines(), 1)
            assert json.loads(ev[0]["data"])["id"] == "booth-1"
            assert int(ev[0]["id"]) == snap_id + 3

        # stop while a stream is open: the server (and the stream) end within a couple of seconds
        with http.stream("GET", "/v1/stream") as r4:
            lines4 = r4.iter_lines()
            sse_events(lines4, 5)
            t0 = time.monotonic()
            srv.stop.set()
            rest = list(lines4)  # ends when the server closes the stream
            srv.thread.join(5)
            elapsed = time.monotonic() - t0
        assert not srv.thread.is_alive()
        # well inside uvicorn's 2 s graceful timeout: the stream was ended, not cut
        assert elapsed < 1.5, elapsed
        assert all(not line.startswith("data:") for line in rest)
    assert srv.errors == []
    api.store.close()


def test_serve_picks_a_free_port_and_stops_without_clients(tmp_path: Path) -> None:
    api = make_api(tmp_path)
    with running(api.app) as srv:
        port = int(srv.base.rsplit(":", 1)[1])
        assert port > 0
        assert httpx.get(srv.base + "/healthz", timeout=5).status_code == 200
        t0 = time.monotonic()
        srv.stop.set()
        srv.thread.join(5)
        assert time.monotonic() - t0 < 1.5
    assert not srv.thread.is_alive()
    assert threading.active_count() < 50
    api.store.close()


def test_heartbeats_and_a_closed_client_is_forgotten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # FastAPI's SSE support sends ": ping" after this many idle seconds (15 by default).
    monkeypatch.setattr(fastapi.routing, "_PING_INTERVAL", 0.1)
    api = make_api(tmp_path)
    hub = api.app.state.tila.hub
    with running(api.app) as srv, httpx.Client(base_url=srv.base, timeout=5) as http:
        with http.stream("GET", "/v1/stream") as r:
            lines = r.iter_lines()
            sse_events(lines, 5)
            assert any(line.startswith(": ping") for line, _ in zip(lines, range(10), strict=False))
            assert hub.clients == 1
        deadline = time.monotonic() + 3
        while hub.clients and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hub.clients == 0
        assert "tila_api_sse_clients 0" in http.get("/metrics").text.splitlines()
    api.store.close()


def test_too_many_streams_is_a_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_route, "MAX_CLIENTS", 0)
    api = make_api(tmp_path)
    with TestClient(api.app) as client:
        r = client.get("/v1/stream")
        assert r.status_code == 503
        assert r.headers["retry-after"]
    api.store.close()
