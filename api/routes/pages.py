"""The pages: ``/lobby`` (public) and ``/host`` (host scope), with their same-origin CSS and JS.

No external assets and a strict Content-Security-Policy: a lobby screen must keep working on a
network that reaches only this server, and nothing on it can load code from elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from ..auth import bearer, check
from ..deps import CtxDep

STATIC = Path(__file__).resolve().parent.parent / "static"
PAGE_HEADERS = {
    # no-cache: revalidate every load, so a screen picks up a new release at its next reload.
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(tags=["pages"])


class StaticAssets(StaticFiles):
    """The pages' CSS and JS, revalidated on each load like the pages themselves."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def _page(name: str, status_code: int = 200, headers: Mapping[str, str] | None = None) -> FileResponse:
    return FileResponse(
        STATIC / name,
        status_code=status_code,
        media_type="text/html; charset=utf-8",
        headers={**PAGE_HEADERS, **(headers or {})},
    )


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse("lobby")


@router.head("/lobby", include_in_schema=False)
@router.get(
    "/lobby",
    response_class=HTMLResponse,
    summary="The lobby screen: free desks per zone, rooms, floor plan (fi/sv/en)",
    responses={
        200: {
            "content": {"text/html": {}},
            "description": "`?lang=fi|sv|en` fixes the language (else fi, sv, en in turn every `?every=` "
            "seconds, 10); `?stale=S`: every space shows as unknown after S seconds (30) without the stream",
        }
    },
)
async def lobby() -> FileResponse:
    return _page("lobby.html")


@router.get(
    "/host",
    response_class=HTMLResponse,
    summary="The hosts' view: spaces, sensors, gateways and alerts",
    responses={
        200: {"content": {"text/html": {}}},
        401: {"content": {"text/html": {}}, "description": "no or unknown token: the page asks for one"},
        403: {"content": {"text/html": {}}, "description": "the token lacks the host scope"},
    },
)
async def host(
    ctx: CtxDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> FileResponse:
    # A browser cannot send a bearer token when it navigates, so without one this answers 401 (as the
    # scope says) with the page itself, which asks for the token and then calls /v1/* with it.
    try:
        check(ctx.tokens, credentials, "host")
    except HTTPException as exc:
        return _page("host.html", exc.status_code, exc.headers)
    return _page("host.html")
