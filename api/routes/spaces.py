"""``/v1/spaces``: every space with its live state (public)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from ..deps import CtxDep
from ..models import ErrorOut, SpaceOut
from ..views import space_out, spaces_out

router = APIRouter(prefix="/v1/spaces", tags=["spaces"])


@router.get("", response_model=list[SpaceOut], summary="Every space and its state now")
async def list_spaces(ctx: CtxDep) -> list[SpaceOut]:
    return spaces_out(ctx.site, ctx.live)


@router.get(
    "/{space_id}",
    response_model=SpaceOut,
    responses={404: {"model": ErrorOut, "description": "no such space"}},
    summary="One space and its state now",
)
async def get_space(space_id: str, ctx: CtxDep) -> SpaceOut:
    space = ctx.site.space(space_id)
    if space is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no space {space_id[:64]!r} in site {ctx.site.id}")
    return space_out(space, ctx.live)
