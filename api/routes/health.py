"""``/healthz`` (liveness, public) and ``/metrics`` (Prometheus text, public)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import PlainTextResponse

from ..deps import CtxDep
from ..models import HealthOut
from ..prometheus import CONTENT_TYPE, family

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
        "tila_api_gateway_online",
        "gauge",
        "Gateway status as last published (1 online, 0 offline or unknown).",
        [({"gateway": gid}, g.status == "online") for gid, g in live.gateways().items()],
    )
    lines += family(
        "tila_api_http_requests_total",
        "counter",
        "HTTP requests by method, route template and status.",
        [({"method": m, "route": r, "status": s}, n) for (m, r, s), n in sorted(ctx.http.requests.items())],
    )
    return PlainTextResponse("\n".join(lines) + "\n", media_type=CONTENT_TYPE)
