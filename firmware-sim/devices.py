"""Simulated device firmware: what each sensor sends, and when, given who is there. Pure: no I/O.

Every sensor is an iterator of readings in simulated time; :func:`readings` merges them into one
stream in time order. Device timings (occupancy timeout, heartbeat, report interval) are simulated
time; the publisher maps them onto real time. Randomness comes from ``(seed, sensor)`` only, so the
same seed and start give the same stream.

- Desk and booth sensors: an Aqara RTCGQ11LM PIR behind Zigbee2MQTT (format ``zigbee2mqtt``).
- Room and hall sensors: a Milesight VS121 behind ChirpStack v4 (format ``chirpstack-milesight``).
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeAlias

from tila.sensors.site import Sensor, Site

from .behaviour import Behaviour

# --- Aqara RTCGQ11LM through Zigbee2MQTT
#: Zigbee2MQTT clears occupancy this long after the last motion: its ``occupancy_timeout`` device
#: option, "default 90 seconds" (zigbee2mqtt.io/devices/RTCGQ11LM.html).
OCCUPANCY_TIMEOUT = timedelta(seconds=90)
#: After a detection the Aqara PIR does not report motion again for about a minute (its hardware
#: detection interval; hence Zigbee2MQTT's timeout for it is longer than 60 s).
PIR_BLIND = timedelta(seconds=60)
#: A seated person moves often enough to re-trigger soon after the blind time; the mean extra wait
#: (exponential) is chosen so that a still sitter now and then outlasts the timeout (~0.7 % of
#: re-triggers), as real PIR desks do.
PIR_STILLNESS_MEAN = 6.0
#: Xiaomi/Aqara end devices send a heartbeat (battery voltage, state) about every 50 minutes, as
#: the zigbee2mqtt format's heartbeat note says (an observed figure, not a datasheet value).
PIR_HEARTBEAT = timedelta(minutes=50)
#: Simulated device outages (battery pulled, radio lost): how long one lasts, uniformly.
OUTAGE_MINUTES = (10.0, 45.0)
#: Default mean number of outages per sensor per simulated day: with the bundled site's 44 PIRs,
#: about one outage every two simulated hours somewhere, so a demo shows one now and then.
DEFAULT_OUTAGES_PER_DAY = 0.25

# --- Milesight VS121 through ChirpStack v4
#: Periodic report of the head count: 10 minutes by default (Milesight VS121 user guide, LoRaWAN
#: settings; to be re-checked against the current guide); it also reports on every change.
COUNTER_REPORT_INTERVAL = timedelta(minutes=10)
#: Milesight's application port for VS-series uplinks (VS121 user guide: "Application port is 85").
COUNTER_FPORT = 85


@dataclass(slots=True, frozen=True)
class ZigbeeState:
    """Zigbee2MQTT publishes the device's state: on motion, on the occupancy timeout, on heartbeat."""

    at: datetime
    sensor: str
    space: str
    occupancy: bool
    battery: int
    voltage: int
    linkquality: int
    cause: str  # motion | timeout | heartbeat | startup | rejoin

    @property
    def truth(self) -> tuple[str, bool]:
        return "presence", self.occupancy


@dataclass(slots=True, frozen=True)
class ZigbeeAvailability:
    """Zigbee2MQTT's retained ``<topic>/availability`` for the device."""

    at: datetime
    sensor: str
    space: str
    online: bool

    @property
    def truth(self) -> tuple[str, bool]:
        return "availability", self.online


@dataclass(slots=True, frozen=True)
class LoraUplink:
    """A VS121 uplink as ChirpStack's MQTT integration publishes it (``event/up``)."""

    at: datetime
    sensor: str
    space: str
    count: int
    #: The most people seen since the last periodic report; only periodic reports carry it.
    count_max: int | None
    region_count: int
    region_mask: int
    f_cnt: int
    rssi: int
    snr: float
    deduplication_id: str
    uplink_id: int

    @property
    def truth(self) -> tuple[str, int]:
        return "count", self.count


Reading: TypeAlias = ZigbeeState | ZigbeeAvailability | LoraUplink


def readings(
    site: Site,
    behaviour: Behaviour,
    start: datetime,
    *,
    seed: int,
    outages_per_day: float = DEFAULT_OUTAGES_PER_DAY,
) -> Iterator[Reading]:
    """Everything every sensor of the site sends from ``start`` on, in simulated-time order."""
    streams: list[Iterator[Reading]] = []
    for sensor in site.sensors:
        space = site.space(sensor.space)
        if space is None:  # parse_site guarantees it; keep the type checker honest
            continue
        rng = random.Random(f"{seed}:device:{sensor.id}")
        if sensor.format == "zigbee2mqtt":
            streams.append(aqara_pir(sensor, behaviour, start, rng, outages_per_day))
        elif sensor.format == "chirpstack-milesight":
            streams.append(vs121(sensor, behaviour, start, rng, regions=8 if space.kind == "event" else 4))
    # heapq.merge breaks ties by stream order: deterministic.
    return heapq.merge(*streams, key=lambda r: r.at)


# ---------------------------------------------------------------------------------------- PIR


def _presence(
    behaviour: Behaviour, space: str, start: datetime
) -> Iterator[tuple[datetime, datetime | None]]:
    """The space's occupied stretches from ``start`` on (one already under way starts at ``start``)."""
    since = start if behaviour.count_at(space, start) > 0 else None
    for step in behaviour.steps(space, start):
        if step.count > 0 and since is None:
            since = step.time
        elif step.count == 0 and since is not None:
            yield since, step.time
            since = None
    if since is not None:  # only for a finite behaviour; kept for completeness
        yield since, None


def _motions(behaviour: Behaviour, space: str, start: datetime, rng: random.Random) -> Iterator[datetime]:
    """PIR detections: soon after someone arrives, then again after each blind time while they stay."""
    for a, b in _presence(behaviour, space, start):
        t = a + timedelta(seconds=rng.uniform(0, 15))
        while b is None or t < b:
            yield t
            t += PIR_BLIND + timedelta(seconds=rng.expovariate(1 / PIR_STILLNESS_MEAN))


def _outages(start: datetime, rng: random.Random, per_day: float) -> Iterator[tuple[datetime, datetime]]:
    if per_day <= 0:
        return
    t = start
    while True:
        t += timedelta(days=rng.expovariate(per_day))
        end = t + timedelta(minutes=rng.uniform(*OUTAGE_MINUTES))
        yield t, end
        t = end


def _at(value: datetime | None) -> float:
    return value.timestamp() if value is not None else math.inf


def aqara_pir(
    sensor: Sensor, behaviour: Behaviour, start: datetime, rng: random.Random, outages_per_day: float
) -> Iterator[Reading]:
    """An Aqara RTCGQ11LM as Zigbee2MQTT presents it.

    On start, Zigbee2MQTT publishes the retained availability and the cached state
    (``cache_state_send_on_startup``). Each detection publishes ``occupancy: true``; Zigbee2MQTT's
    own timer publishes ``occupancy: false`` :data:`OCCUPANCY_TIMEOUT` after the last detection (the
    timer runs in Zigbee2MQTT, so it fires during an outage too). Heartbeats republish the state.
    During an outage the device sends nothing and its availability is ``offline``: published at
    the start of the outage, where Zigbee2MQTT would notice a silent battery device only after its
    passive availability timeout (25 h by default), so that a demo shows outages at all.
    """
    battery = rng.randint(55, 100)
    base_lqi = rng.randint(60, 200)
    motion_rng = random.Random(rng.random())
    motions = _motions(behaviour, sensor.space, start, motion_rng)
    outages = _outages(start, random.Random(rng.random()), outages_per_day)

    def state(at: datetime, occupied: bool, cause: str) -> ZigbeeState:
        # A CR2450 cell, ~3.1 V when full; Zigbee2MQTT derives the Xiaomi battery % from the voltage.
        pct = max(1, battery - int((at - start).total_seconds() // (7 * 86400)))
        lqi = max(0, min(255, base_lqi + rng.randint(-15, 15)))
        return ZigbeeState(at, sensor.id, sensor.space, occupied, pct, 2800 + 3 * pct, lqi, cause)

    occupied = behaviour.count_at(sensor.space, start) > 0
    timeout: datetime | None = start + OCCUPANCY_TIMEOUT if occupied else None
    yield ZigbeeAvailability(start, sensor.id, sensor.space, True)
    yield state(start, occupied, "startup")

    next_motion = next(motions, None)
    heartbeat: datetime = start + PIR_HEARTBEAT * rng.random()
    outage = next(outages, None)
    offline_until: datetime | None = None

    while True:
        candidates = {
            "motion": _at(next_motion),
            "timeout": _at(timeout),
            "heartbeat": _at(heartbeat),
            "outage": _at(outage[0]) if offline_until is None and outage else math.inf,
            "back": _at(offline_until),
        }
        what = min(candidates, key=lambda k: candidates[k])
        if candidates[what] == math.inf:
            return
        if what == "motion":
            assert next_motion is not None
            t, next_motion = next_motion, next(motions, None)
            if offline_until is None:
                occupied, timeout = True, t + OCCUPANCY_TIMEOUT
                yield state(t, True, "motion")
        elif what == "timeout":
            assert timeout is not None
            t, timeout, occupied = timeout, None, False
            yield state(t, False, "timeout")
        elif what == "heartbeat":
            t = heartbeat
            heartbeat = t + PIR_HEARTBEAT + timedelta(minutes=rng.uniform(-3, 3))
            if offline_until is None:
                yield state(t, occupied, "heartbeat")
        elif what == "outage":
            assert outage is not None
            t, offline_until = outage
            outage = next(outages, None)
            yield ZigbeeAvailability(t, sensor.id, sensor.space, False)
        else:  # back
            assert offline_until is not None
            t, offline_until = offline_until, None
            yield ZigbeeAvailability(t, sensor.id, sensor.space, True)
            yield state(t, occupied, "rejoin")


# -------------------------------------------------------------------------------------- VS121


def vs121(
    sensor: Sensor, behaviour: Behaviour, start: datetime, rng: random.Random, regions: int
) -> Iterator[Reading]:
    """A Milesight VS121: an uplink on every change of the head count and one every report interval.

    Periodic reports also carry the interval's maximum. The first periodic report comes within
    half a minute of the start (the device's own reporting phase).
    """
    f_cnt = rng.randint(0, 5000)
    base_rssi = rng.randint(-95, -65)

    def uplink(at: datetime, count: int, count_max: int | None) -> LoraUplink:
        nonlocal f_cnt
        f_cnt = (f_cnt + 1) % 2**32
        occupied_regions = rng.sample(range(regions), min(count, regions))
        mask = sum(1 << r for r in occupied_regions)
        return LoraUplink(
            at=at,
            sensor=sensor.id,
            space=sensor.space,
            count=count,
            count_max=count_max,
            region_count=regions,
            region_mask=mask,
            f_cnt=f_cnt,
            rssi=base_rssi + rng.randint(-4, 4),
            snr=round(rng.uniform(4.0, 11.0) * 4) / 4,
            deduplication_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            uplink_id=rng.randint(1, 65535),
        )

    count = behaviour.count_at(sensor.space, start)
    peak = count
    changes = behaviour.steps(sensor.space, start + timedelta(microseconds=1))
    change = next(changes, None)
    periodic = start + timedelta(seconds=rng.uniform(0, 30))
    while True:
        if change is not None and change.time < periodic:
            count = change.count
            peak = max(peak, count)
            yield uplink(change.time, count, None)
            change = next(changes, None)
        else:
            yield uplink(periodic, count, peak)
            peak = count
            periodic += COUNTER_REPORT_INTERVAL
