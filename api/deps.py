"""Dependencies shared by the routes (``CtxDep``); the auth ones are in :mod:`.auth`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .context import ApiContext


async def get_ctx(request: Request) -> ApiContext:
    # async: FastAPI runs a plain-def dependency in its thread pool, a thread hop per request.
    ctx = request.app.state.tila
    assert isinstance(ctx, ApiContext), "app not made by tila.api.app.create_app"
    return ctx


CtxDep = Annotated[ApiContext, Depends(get_ctx)]
