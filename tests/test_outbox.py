"""The outbox on its own: sequence numbers, capacity policies, counted drops, redelivery records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tila.gateway.bridge import ReceiptClock
from tila.gateway.outbox import Outbox, digest


def ev(i: int) -> dict[str, object]:
    return {
        "type": "presence",
        "sensor": "s",
        "space": "d",
        "time": f"t{i}",
        "received": f"r{i}",
        "occupied": True,
    }


def test_sequence_numbers_survive_restarts_and_are_never_reused(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    assert ob.append([ev(1), ev(2), ev(3)]) == [1, 2, 3]
    ob.remove([1, 2, 3])
    ob.close()
    ob = Outbox(tmp_path / "o.db")
    assert ob.depth == 0
    assert ob.append([ev(4)]) == [4]
    assert [seq for seq, _ in ob.peek(0, 10)] == [4]


def test_drop_oldest_keeps_the_newest_and_counts(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", max_events=5, policy="drop-oldest")
    ob.append([ev(i) for i in range(4)])
    seqs = ob.append([ev(i) for i in range(4, 8)])
    assert seqs == [5, 6, 7, 8]
    assert ob.depth == 5 and ob.dropped == 3
    assert [d["time"] for _, d in ob.peek(0, 10)] == ["t3", "t4", "t5", "t6", "t7"]
    # A group larger than the whole outbox keeps its newest part.
    ob.append([ev(i) for i in range(8, 16)])
    assert [d["time"] for _, d in ob.peek(0, 10)] == ["t11", "t12", "t13", "t14", "t15"]
    assert ob.dropped == 3 + 5 + 3
    ob.close()
    assert Outbox(tmp_path / "o.db", max_events=5).dropped == 11, "drop counts survive restarts"


def test_refuse_newest_keeps_the_oldest_and_counts(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", max_events=3, policy="refuse-newest")
    assert ob.append([ev(i) for i in range(5)]) == [1, 2, 3, 0, 0]
    assert ob.dropped == 2
    assert [d["time"] for _, d in ob.peek(0, 10)] == ["t0", "t1", "t2"]


def test_disk_quota_limits_capacity(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", max_bytes=400_000)
    for i in range(40):
        ob.append([ev(j) for j in range(i * 100, i * 100 + 100)])
    assert ob.capacity < 4000
    assert ob.depth <= ob.capacity and ob.dropped > 0


def test_redelivery_records(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    d = digest("zigbee2mqtt/x", b'{"occupancy":true}')
    ob.append([ev(1)], [(17, d)])
    assert ob.seen_local(17, d)
    assert not ob.seen_local(17, digest("zigbee2mqtt/x", b'{"occupancy":false}'))
    assert not ob.seen_local(18, d)


def test_peek_upto(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    ob.append([ev(i) for i in range(10)])
    assert [s for s, _ in ob.peek(3, 100, upto=6)] == [4, 5, 6]
    assert ob.last_seq() == 10


def test_receipt_clock_never_goes_backwards(monkeypatch: pytest.MonkeyPatch) -> None:
    import tila.gateway.bridge as bridge

    now = [datetime(2026, 11, 24, 12, tzinfo=UTC)]

    class FakeDatetime(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def, override]
            return now[0]

    monkeypatch.setattr(bridge, "datetime", FakeDatetime)
    clock = ReceiptClock()
    a = clock.now()
    now[0] -= timedelta(minutes=5)  # NTP steps the clock back
    b = clock.now()
    now[0] += timedelta(minutes=10)
    c = clock.now()
    assert a <= b <= c and b == a and clock.steps_back == 1
