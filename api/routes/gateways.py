"""``/v1/gateways`` (extension): each gateway's retained status and health (host scope)."""

from __future__ import annotations

from fastapi import APIRouter

from ..auth import AUTH_RESPONSES, HostDep
from ..deps import CtxDep
from ..models import GatewayOut
from ..views import gateways_out

router = APIRouter(prefix="/v1/gateways", tags=["gateways"])


@router.get("", response_model=list[GatewayOut], responses=AUTH_RESPONSES, summary="Every gateway heard from")
async def list_gateways(ctx: CtxDep, _: HostDep) -> list[GatewayOut]:
    return gateways_out(ctx.live)
