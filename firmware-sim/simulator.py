"""Publishing the simulated devices: the behaviour and device models on a real-time clock, to MQTT.

:class:`Simulator` is the library entry point (``tila sim`` and ``tila demo`` both use it). It waits
for the broker, then publishes every reading of :func:`~tila.sim.devices.readings` when the
simulated clock reaches it: QoS 1, availability retained, ``last_seen``/``time`` the wall-clock
time of publication. With a truth path it writes one JSON line per published reading, flushed as
it goes. It stops within about a second of ``stop`` being set (or ``duration`` real seconds passing)
and publishes nothing after that.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from tila.mqtt import Connection, MqttUrl
from tila.sensors.site import Site

from .behaviour import Behaviour
from .clock import SimClock
from .devices import DEFAULT_OUTAGES_PER_DAY, ZigbeeAvailability, readings
from .payloads import render, truth_record

log = logging.getLogger(__name__)

#: Longest single wait, so that ``stop`` and the duration are noticed promptly.
_TICK = 0.2
#: On stop, how long to wait for the broker to acknowledge what was already published.
_FLUSH_SECONDS = 0.5


class Simulator:
    """Simulated firmware for every sensor of ``site``, publishing to the broker at ``url``."""

    def __init__(
        self,
        site: Site,
        url: MqttUrl | str,
        *,
        speed: float = 1.0,
        seed: int | None = None,
        start: datetime | None = None,
        truth_path: str | Path | None = None,
        outages_per_day: float = DEFAULT_OUTAGES_PER_DAY,
        client_id: str | None = None,
    ) -> None:
        if not speed > 0 or speed == float("inf"):
            raise ValueError(f"speed must be a positive number, not {speed!r}")
        if outages_per_day < 0:
            raise ValueError("outages_per_day must not be negative")
        if start is not None and start.tzinfo is None:
            start = start.replace(tzinfo=site.tz)
        self.site = site
        self.url = MqttUrl.parse(url) if isinstance(url, str) else url
        self.speed = speed
        self.seed = seed if seed is not None else secrets.randbits(32)
        self.start = start
        self.truth_path = Path(truth_path) if truth_path is not None else None
        self.outages_per_day = outages_per_day
        self.client_id = client_id or f"tila-sim-{site.id}-{uuid.uuid4().hex[:8]}"
        self.published = 0

    def run(self, stop: threading.Event, duration: float | None = None) -> int:
        """Publish until ``stop`` is set or ``duration`` real seconds have passed; 0 when done, 1 if
        the broker was never reached. Raises OSError if the truth file cannot be opened."""
        deadline = time.monotonic() + duration if duration is not None else None
        truth = self.truth_path.open("w", encoding="utf-8") if self.truth_path else None
        conn = Connection(self.url, self.client_id)
        conn.start()
        try:
            if not self._wait_connected(conn, stop, deadline):
                if stop.is_set():
                    return 0
                log.error("could not reach the MQTT broker at %s; nothing simulated", self.url)
                return 1
            self._publish_all(conn, stop, deadline, truth)
            return 0
        finally:
            # What was already published gets a moment to be acknowledged; then disconnect at once.
            conn.flush(_FLUSH_SECONDS)
            conn.stop(publish_offline=False, flush_timeout=0.0)
            if truth is not None:
                truth.close()

    # -- internals

    def _wait_connected(self, conn: Connection, stop: threading.Event, deadline: float | None) -> bool:
        warned_at = time.monotonic() + 5
        while not stop.is_set():
            if conn.wait_connected(_TICK):
                return True
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            if now >= warned_at:
                log.warning("still waiting for the MQTT broker at %s", self.url)
                warned_at = now + 30
        return False

    def _publish_all(
        self, conn: Connection, stop: threading.Event, deadline: float | None, truth: IO[str] | None
    ) -> None:
        sim_start = (self.start or datetime.now(self.site.tz)).astimezone(UTC)
        behaviour = Behaviour(self.site, self.seed)
        stream = readings(
            self.site, behaviour, sim_start, seed=self.seed, outages_per_day=self.outages_per_day
        )
        clock = SimClock(sim_start, time.monotonic(), self.speed)
        log.info(
            "simulating %d sensors of %s: seed %d, speed %g, simulated start %s",
            len(self.site.sensors),
            self.site.id,
            self.seed,
            self.speed,
            sim_start.astimezone(self.site.tz).isoformat(),
        )
        try:
            for reading in stream:
                if not self._sleep_until(clock.real_at(reading.at), stop, deadline):
                    break
                sensor = self.site.sensor(reading.sensor)
                assert sensor is not None
                wall = datetime.now(UTC)
                message = render(reading, sensor, wall)
                conn.publish(message.topic, message.payload, qos=1, retain=message.retain)
                if truth is not None:
                    truth.write(json.dumps(truth_record(reading, wall), separators=(",", ":")) + "\n")
                    truth.flush()
                self.published += 1
                if isinstance(reading, ZigbeeAvailability) and reading.at > sim_start:
                    log.info(
                        "%s is %s (simulated)", reading.sensor, "back online" if reading.online else "offline"
                    )
        finally:
            log.info("simulator stopped after %d messages", self.published)

    def _sleep_until(self, due: float, stop: threading.Event, deadline: float | None) -> bool:
        """Wait until monotonic time ``due``; False if stopped or past the deadline first."""
        while True:
            if stop.is_set():
                return False
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            if now >= due:
                return True
            limit = due if deadline is None else min(due, deadline)
            stop.wait(min(_TICK, limit - now))
