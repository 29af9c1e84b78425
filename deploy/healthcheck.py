"""Container healthchecks of tila's services (docker-compose.yml runs them inside each container).

    python /src/deploy/healthcheck.py api          GET /healthz?strict=true answers 200: the API serves,
                                                   and its broker, store and aggregators are up
    python /src/deploy/healthcheck.py aggregator   its retained health report on the broker is recent
                                                   and says "ok" (the store takes its writes)
    python /src/deploy/healthcheck.py gateway      its retained health report is recent and it is
                                                   connected to its local broker
    python /src/deploy/healthcheck.py sim          a device message arrives on the simulator's broker

Each reads the service's own settings from the environment (TILA_MQTT, TILA_CENTRAL, TILA_SITE,
TILA_ID, TILA_PORT, TILA_HEALTH_INTERVAL), so it connects as the service's own MQTT user, which the
broker's ACL lets read that service's own reports. Exit 0 when healthy; otherwise exit 1 and one
line saying why (`docker inspect --format '{{json .State.Health}}' CONTAINER` shows it).
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime

#: Seconds to wait for a broker's answer.
TIMEOUT = 8.0
#: The aggregator reports every 10 s (aggregator/service.py HEALTH_INTERVAL); a report this many
#: intervals old means it stopped reporting.
MISSED_REPORTS = 3
AGGREGATOR_INTERVAL = 10.0


class UnhealthyError(Exception):
    """Why the service is not healthy, in one line."""


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise UnhealthyError(f"{name} is not set in the container")
    return value


def retained(url_text: str, topic: str) -> bytes:
    """The retained message on ``topic``, as the user of ``url_text`` may read it."""
    from tila.mqtt import Connection, MqttUrl

    got: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    conn = Connection(
        MqttUrl.parse(url_text),
        f"tila-healthcheck-{secrets.token_hex(4)}",
        subscriptions=[(topic, 1)],
        on_message=lambda m: got.put(m.payload),
    )
    conn.start()
    try:
        if not conn.wait_connected(TIMEOUT):
            raise UnhealthyError(f"cannot connect to the broker {conn.url}")
        try:
            return got.get(timeout=TIMEOUT)
        except queue.Empty:
            raise UnhealthyError(f"no report on {topic}") from None
    finally:
        conn.stop(flush_timeout=0.5)


def report(url_text: str, topic: str, interval: float) -> dict[str, object]:
    try:
        doc = json.loads(retained(url_text, topic))
        age = time.time() - datetime.fromisoformat(doc["time"]).timestamp()
    except (ValueError, KeyError, TypeError) as exc:
        raise UnhealthyError(f"unreadable report on {topic}: {exc}") from None
    if age > MISSED_REPORTS * interval:
        raise UnhealthyError(f"the last report on {topic} is {age:.0f} s old")
    return dict(doc)


def site_id() -> str:
    from tila.cli import site_arg

    return str(site_arg(env("TILA_SITE")).id)


def check_api() -> str:
    url = f"http://127.0.0.1:{env('TILA_PORT', '8000')}/healthz?strict=true"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
            return f"api: {resp.read(200).decode(errors='replace')}"
    except urllib.error.HTTPError as exc:
        raise UnhealthyError(f"api: HTTP {exc.code}: {exc.read(300).decode(errors='replace')}") from None
    except OSError as exc:
        raise UnhealthyError(f"api: {url}: {exc}") from None


def check_aggregator() -> str:
    from tila.sensors import topics

    instance = env("TILA_ID", "1")
    doc = report(env("TILA_MQTT"), topics.aggregator_health(site_id(), instance), AGGREGATOR_INTERVAL)
    if doc.get("status") != "ok":
        raise UnhealthyError(f"aggregator {instance}: {doc.get('status')}: {doc.get('store')}")
    return f"aggregator {instance}: ok"


def check_gateway() -> str:
    from tila.sensors import topics

    gateway = env("TILA_ID")
    interval = float(env("TILA_HEALTH_INTERVAL", "30"))
    doc = report(env("TILA_CENTRAL"), topics.gateway_health(site_id(), gateway), interval)
    if not doc.get("local_connected"):
        raise UnhealthyError(f"gateway {gateway}: not connected to its local broker")
    return f"gateway {gateway}: ok, outbox depth {doc.get('outbox_depth')}"


def check_sim() -> str:
    from tila.mqtt import Connection, MqttUrl

    got: queue.SimpleQueue[str] = queue.SimpleQueue()
    conn = Connection(
        MqttUrl.parse(env("TILA_MQTT")),
        f"tila-healthcheck-{secrets.token_hex(4)}",
        subscriptions=[("#", 0)],
        on_message=lambda m: got.put(m.topic),
    )
    conn.start()
    try:
        try:
            return f"sim: {got.get(timeout=3 * TIMEOUT)}"
        except queue.Empty:
            raise UnhealthyError("sim: no device message on its broker") from None
    finally:
        conn.stop(flush_timeout=0.5)


CHECKS = {"api": check_api, "aggregator": check_aggregator, "gateway": check_gateway, "sim": check_sim}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in CHECKS:
        print(f"usage: healthcheck.py {'|'.join(CHECKS)}", file=sys.stderr)
        return 2
    try:
        print(CHECKS[argv[0]]())
    except UnhealthyError as exc:
        print(f"unhealthy: {exc}")
        return 1
    except Exception as exc:  # any failure of the check itself is an unhealthy answer too
        print(f"unhealthy: {argv[0]}: {type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
