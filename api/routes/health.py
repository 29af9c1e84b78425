"""``/healthz`` (liveness, public) and ``/metrics`` (Prometheus text, public).

/metrics has the API's own figures (``tila_api_*``) and what the API knows of the rest of the
pipeline from the retained health reports of the gateways (``tila_gateway_*``) and aggregators
(``tila_aggregator_*``): outbox depth, forwarded, quarantined and dropped counts, lag, rows waiting
for the store. Those reports come from the broker, so only their numbers are read, reasons that are
not short identifiers are left out and at most :data:`MAX_REASONS` per report are shown: a broken or
hostile publisher can neither inject text into the exposition nor grow it without bound. Nothing
per sensor appears (the reports' recent quarantined messages name topics and are not read here):
/metrics is public.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import PlainTextResponse

from ..deps import CtxDep
from ..live import GatewayLive
from ..models import HealthOut
from ..prometheus import CONTENT_TYPE, family, histograms, webhook_lines

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])

_MQTT_KINDS = (
    "space",
    "sensor",
    "gateway_status",
    "gateway_health",
    "aggregator_status",
    "aggregator_health",
    "other",
)
#: Reasons (quarantine, ignored, dropped) and counter names shown per report: the gateway's and the
#: aggregator's own have fewer than 20; the cap only matters for a broken publisher.
MAX_REASONS = 32
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@router.get(
    "/healthz",
    response_model=HealthOut,
    summary="Liveness, with the broker and store status",
    responses={503: {"model": HealthOut, "description": "degraded, only with ?strict=true"}},
)
def healthz(
    ctx: CtxDep,
    response: Response,
    strict: Annotated[bool, Query(description="answer 503 when degraded (for a readiness probe)")] = False,
) -> HealthOut:
    # 200 even when degraded: the process is alive, and restarting the API would not bring back a
    # broker or a store. A readiness probe or load balancer asks with ?strict=true to get 503.
    mqtt = ctx.live.connected
    try:
        store = bool(ctx.store.ping())
    except Exception as exc:
        log.warning("store ping failed: %s", exc)
        store = False
    aggregators = ctx.live.aggregators()
    ok = mqtt and store and all(a == "ok" for a in aggregators.values())
    if strict and not ok:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return HealthOut(status="ok" if ok else "degraded", mqtt=mqtt, store=store, aggregators=aggregators)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format 0.0.4"}},
)
async def metrics(ctx: CtxDep) -> PlainTextResponse:
    live, hub = ctx.live, ctx.hub
    states = {"free": 0, "occupied": 0, "unknown": 0}
    for s in ctx.site.spaces:
        states[live.space(s.id).state] += 1
    lines: list[str] = []
    lines += family(
        "tila_api_sse_clients", "gauge", "Connected Server-Sent-Event clients.", [({}, hub.clients)]
    )
    lines += family(
        "tila_api_sse_events_total", "counter", "Space events published to the stream.", [({}, hub.published)]
    )
    lines += family(
        "tila_api_sse_resyncs_total",
        "counter",
        "Times a slow stream client skipped to a snapshot.",
        [({}, hub.resyncs)],
    )
    lines += family(
        "tila_api_sse_resumes_total", "counter", "Streams resumed from Last-Event-ID.", [({}, hub.resumed)]
    )
    lines += family(
        "tila_api_mqtt_connected", "gauge", "Connected to the MQTT broker.", [({}, live.connected)]
    )
    lines += family(
        "tila_api_mqtt_messages_total",
        "counter",
        "State messages received from MQTT, by kind.",
        [({"kind": k}, live.received[k]) for k in _MQTT_KINDS],
    )
    lines += family(
        "tila_api_mqtt_malformed_total",
        "counter",
        "Malformed MQTT messages ignored, by kind.",
        [({"kind": k}, live.malformed[k]) for k in _MQTT_KINDS],
    )
    lines += family(
        "tila_api_mqtt_unknown_total",
        "counter",
        "MQTT messages for ids or topics this site does not have, by kind.",
        [({"kind": k}, live.unknown[k]) for k in _MQTT_KINDS],
    )
    lines += family(
        "tila_api_stale_expiries_total",
        "counter",
        "Times every space was set unknown after losing the broker.",
        [({}, live.stale_expiries)],
    )
    lines += family(
        "tila_api_spaces", "gauge", "Spaces by live state.", [({"state": k}, v) for k, v in states.items()]
    )
    lines += family(
        "tila_api_http_requests_total",
        "counter",
        "HTTP requests by method, route template and status.",
        [({"method": m, "route": r, "status": s}, n) for (m, r, s), n in sorted(ctx.http.requests.items())],
    )
    lines += histograms(
        "tila_api_http_request_duration_seconds",
        "Time from a request's arrival to the end of its answer (to the first byte for a stream), "
        "by method and route template.",
        [({"method": m, "route": r}, h) for (m, r), h in sorted(ctx.http.latency.items())],
    )
    limiter = ctx.limiter
    lines += family(
        "tila_api_rate_limited_total",
        "counter",
        "Requests answered 429: over the per-address rate limit without a token.",
        [({}, limiter.limited if limiter else 0)],
    )
    lines += family(
        "tila_api_rate_limit_addresses",
        "gauge",
        "Client addresses (IPv6: /64 networks) with a rate-limit bucket now.",
        [({}, len(limiter) if limiter else 0)],
    )
    lines += _gateway_lines(live.gateways())
    lines += _aggregator_lines(live.aggregator_reports(), live.aggregators())
    lines += webhook_lines(ctx.webhooks)
    return PlainTextResponse("\n".join(lines) + "\n", media_type=CONTENT_TYPE)


# ------------------------------------------------------------------- the pipeline, from its reports


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _field(doc: Mapping[str, Any] | None, *path: str) -> float | None:
    value: Any = doc
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return _num(value)


def _reasons(doc: Mapping[str, Any] | None, key: str) -> list[tuple[str, float]]:
    """``{reason: count}`` of a report, numbers only, names that are short identifiers only."""
    table = doc.get(key) if doc else None
    if not isinstance(table, Mapping):
        return []
    out = []
    for name, value in sorted(table.items()):
        n = _num(value)
        if isinstance(name, str) and _NAME.match(name) and n is not None:
            out.append((name, n))
    return out[:MAX_REASONS]


def _age(doc: Mapping[str, Any] | None, now: datetime) -> float | None:
    value = doc.get("time") if doc else None
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    if t.tzinfo is None:
        return None
    return round(max(0.0, (now - t).total_seconds()), 3)


def _series(
    reports: Mapping[str, GatewayLive], label: str, pick: Any
) -> Iterator[tuple[dict[str, str], float]]:
    for ident, report in reports.items():
        value = pick(report.health)
        if value is not None:
            yield {label: ident}, value


def _gateway_lines(gateways: Mapping[str, GatewayLive]) -> list[str]:
    now = datetime.now(UTC)
    lines: list[str] = []
    lines += family(
        "tila_api_gateway_online",
        "gauge",
        "Gateway status as last published (1 online, 0 offline or unknown).",
        [({"gateway": gid}, g.status == "online") for gid, g in gateways.items()],
    )
    gauges = (
        (
            "tila_gateway_health_age_seconds",
            "Age of the gateway's last health report.",
            lambda d: _age(d, now),
        ),
        (
            "tila_gateway_local_connected",
            "The gateway's subscription to its local broker is up (from its last health report).",
            lambda d: _field(d, "local_connected"),
        ),
        (
            "tila_gateway_outbox_depth",
            "Events in the gateway's outbox, not yet acknowledged centrally.",
            lambda d: _field(d, "outbox_depth"),
        ),
        (
            "tila_gateway_outbox_capacity",
            "Events the gateway's outbox holds at most.",
            lambda d: _field(d, "outbox_capacity"),
        ),
        (
            "tila_gateway_oldest_unsent_age_seconds",
            "Age of the oldest event in the gateway's outbox (absent when it is empty).",
            lambda d: _field(d, "oldest_unsent_age_s"),
        ),
    )
    for name, help_text, pick in gauges:
        lines += family(name, "gauge", help_text, _series(gateways, "gateway", pick))
    lines += family(
        "tila_gateway_forwarded_total",
        "counter",
        "Events the gateway has forwarded to the central broker (since it started).",
        _series(gateways, "gateway", lambda d: _field(d, "forwarded")),
    )
    lines += family(
        "tila_gateway_clock_steps_back_total",
        "counter",
        "Times the gateway's clock stepped back.",
        _series(gateways, "gateway", lambda d: _field(d, "clock_steps_back")),
    )
    for key, help_text in (
        ("quarantined", "Device messages the gateway quarantined, by reason."),
        ("ignored", "Device messages the gateway ignored (housekeeping topics), by reason."),
        ("dropped", "Events the gateway dropped (a full outbox), by reason."),
    ):
        lines += family(
            f"tila_gateway_{key}_total",
            "counter",
            help_text,
            [
                ({"gateway": gid, "reason": reason}, n)
                for gid, g in gateways.items()
                for reason, n in _reasons(g.health, key)
            ],
        )
    return lines


def _aggregator_lines(reports: Mapping[str, GatewayLive], status: Mapping[str, str]) -> list[str]:
    now = datetime.now(UTC)
    lines: list[str] = []
    lines += family(
        "tila_aggregator_ok",
        "gauge",
        "Aggregator instance status (1 ok; 0 degraded, its store is down, or offline).",
        [({"aggregator": ident}, s == "ok") for ident, s in status.items()],
    )
    gauges = (
        (
            "tila_aggregator_health_age_seconds",
            "Age of the aggregator's last health report.",
            lambda d: _age(d, now),
        ),
        (
            "tila_aggregator_lag_seconds",
            "How far behind event time the aggregator's processing is.",
            lambda d: _field(d, "lag_s"),
        ),
        (
            "tila_aggregator_store_ok",
            "The aggregator's store answers (1) or not (0).",
            lambda d: _field(d, "store", "ok"),
        ),
        (
            "tila_aggregator_store_pending_rows",
            "Bucket rows in the aggregator's journal waiting for the store.",
            lambda d: _field(d, "store", "pending_rows"),
        ),
        (
            "tila_aggregator_lateness_window_events",
            "Events held in the aggregator's lateness window.",
            lambda d: _field(d, "lateness_window_events"),
        ),
        ("tila_aggregator_spaces", "Spaces the aggregator instance keeps.", lambda d: _field(d, "spaces")),
    )
    for name, help_text, pick in gauges:
        lines += family(name, "gauge", help_text, _series(reports, "aggregator", pick))
    lines += family(
        "tila_aggregator_events_total",
        "counter",
        "The aggregator's event counters by name: events applied, duplicates, late, reaccrued, "
        "quarantined_*, … (since it started).",
        [
            ({"aggregator": ident, "counter": name}, n)
            for ident, r in reports.items()
            for name, n in _reasons(r.health, "counters")
        ],
    )
    return lines
