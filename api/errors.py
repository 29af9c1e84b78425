"""Error answers: 422 keeps FastAPI's ``detail`` list and adds one readable ``message`` line."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

_WHERE = ("query", "path", "header", "body", "cookie")


def invalid(param: str | None, message: str, value: Any = None) -> RequestValidationError:
    """A 422 for a parameter that parsed but means nothing here (an unknown space, an empty window)."""
    loc: tuple[str, ...] = ("query", param) if param else ("query",)
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": message, "input": value}])


def readable(errors: Sequence[Any]) -> str:
    parts = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x not in _WHERE]
        msg = str(e.get("msg", "invalid"))
        # pydantic prefixes messages raised by our own validators; the prefix says nothing to a reader.
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if e.get("type") == "missing":
            msg = "is required"
        parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


def _clean(e: dict[str, Any]) -> dict[str, Any]:
    # ctx may hold the exception object itself, url points at pydantic's site: neither helps a client.
    out = {k: v for k, v in e.items() if k not in ("ctx", "url")}
    out["loc"] = list(out.get("loc", ()))
    if isinstance(out.get("msg"), str):
        out["msg"] = out["msg"].removeprefix("Value error, ")
    return out


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_clean(dict(e)) for e in exc.errors()]
    return JSONResponse(
        status_code=422, content={"detail": jsonable_encoder(errors), "message": readable(errors)}
    )


async def store_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("store failed answering %s: %s", request.url.path, exc)
    return JSONResponse(status_code=503, content={"detail": f"the store is not answering: {exc}"})
