"""``/v1/spaces``: every space with its live state (public)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status

from ..deps import CtxDep
from ..models import ErrorOut, SpaceOut

#: The answers are made from the cached documents of api/views.py (SpaceDocs), which are SpaceOut
#: dumped: the response_model describes them, and FastAPI passes a Response through unchanged.
JSON = "application/json"

router = APIRouter(prefix="/v1/spaces", tags=["spaces"])


@router.get("", response_model=list[SpaceOut], summary="Every space and its state now")
async def list_spaces(ctx: CtxDep) -> Response:
    return Response(ctx.docs.body(), media_type=JSON)


@router.get(
    "/{space_id}",
    response_model=SpaceOut,
    responses={404: {"model": ErrorOut, "description": "no such space"}},
    summary="One space and its state now",
)
async def get_space(space_id: str, ctx: CtxDep) -> Response:
    space = ctx.site.space(space_id)
    if space is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no space {space_id[:64]!r} in site {ctx.site.id}")
    return Response(ctx.docs.one(space), media_type=JSON)
