"""``/v1/sensors``: every sensor's health (host scope)."""

from __future__ import annotations

from fastapi import APIRouter

from ..auth import AUTH_RESPONSES, HostDep
from ..deps import CtxDep
from ..models import SensorOut
from ..views import sensors_out

router = APIRouter(prefix="/v1/sensors", tags=["sensors"])


@router.get(
    "",
    response_model=list[SensorOut],
    responses=AUTH_RESPONSES,
    summary="Every sensor: online, battery, last seen",
)
async def list_sensors(ctx: CtxDep, _: HostDep) -> list[SensorOut]:
    return sensors_out(ctx.site, ctx.live)
