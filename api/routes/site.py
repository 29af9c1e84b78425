"""``/v1/site`` (extension): the site, its zones and desk counts per zone — what a lobby screen needs."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import CtxDep
from ..models import SiteOut
from ..views import site_out

router = APIRouter(prefix="/v1/site", tags=["site"])


@router.get("", response_model=SiteOut, summary="The site, its zones and free desks per zone")
async def get_site(ctx: CtxDep) -> SiteOut:
    return site_out(ctx.site, ctx.live)
