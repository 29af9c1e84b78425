"""Every MQTT topic tila publishes or subscribes to is built and parsed here."""

from __future__ import annotations

PREFIX = "tila/v1"


def events(site: str, gateway: str) -> str:
    return f"{PREFIX}/{site}/events/{gateway}"


def events_all(site: str) -> str:
    return f"{PREFIX}/{site}/events/+"


def gateway_status(site: str, gateway: str) -> str:
    return f"{PREFIX}/{site}/gateways/{gateway}/status"


def gateway_health(site: str, gateway: str) -> str:
    return f"{PREFIX}/{site}/gateways/{gateway}/health"


def gateways_all(site: str) -> str:
    return f"{PREFIX}/{site}/gateways/+/+"


def aggregator_status(site: str, instance: str) -> str:
    return f"{PREFIX}/{site}/aggregators/{instance}/status"


def aggregator_health(site: str, instance: str) -> str:
    return f"{PREFIX}/{site}/aggregators/{instance}/health"


def aggregators_all(site: str) -> str:
    return f"{PREFIX}/{site}/aggregators/+/+"


def space_state(site: str, space: str) -> str:
    return f"{PREFIX}/{site}/spaces/{space}/state"


def space_state_all(site: str) -> str:
    return f"{PREFIX}/{site}/spaces/+/state"


def sensor_state(site: str, sensor: str) -> str:
    return f"{PREFIX}/{site}/sensors/{sensor}/state"


def sensor_state_all(site: str) -> str:
    return f"{PREFIX}/{site}/sensors/+/state"


def parse(topic: str) -> tuple[str, str, str, str] | None:
    """``tila/v1/<site>/<kind>/<id>/<leaf>`` → (site, kind, id, leaf); events topics have leaf ''."""
    parts = topic.split("/")
    if len(parts) < 5 or parts[0] != "tila" or parts[1] != "v1":
        return None
    if len(parts) == 5:
        return parts[2], parts[3], parts[4], ""
    if len(parts) == 6:
        return parts[2], parts[3], parts[4], parts[5]
    return None


def device_filters(sensor_topics: list[str]) -> list[str]:
    """Subscriptions that cover every sensor topic and its subtopics: ``<first segment>/#`` each.

    Subscribing to the whole tree (not sensor by sensor) lets the gateway see, count and quarantine
    messages of devices the site file does not know.
    """
    return sorted({t.split("/", 1)[0] + "/#" for t in sensor_topics})
