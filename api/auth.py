"""Bearer tokens and scopes: ``TILA_TOKENS`` / ``--tokens`` as ``scope:token`` pairs, comma-separated.

Scopes are ``host``, ``analyst``, ``booking`` and ``admin``; ``admin`` implies the others. Only SHA-256 digests of
the tokens are kept, every presented token is compared against every configured one in constant time
(:func:`hmac.compare_digest`, no early exit), and no message, log line or ``repr`` ever shows a token.

A token may be configured hashed, ``scope:sha256:<64 hex digits>`` (the digest kept anyway; ``tila token``
prints both forms), so that the token itself is in no env file or process list on the server. An empty
token or a well-known default or placeholder is refused (:mod:`tila.secrets`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..secrets import digest_is_weak, weakness
from .models import ErrorOut

#: The hashed form's marker: ``scope:sha256:<hex>``.
HASHED = "sha256:"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")

#: ``booking`` is for booking systems: bookings in and out, no-shows, webhooks.
SCOPES = ("host", "analyst", "booking", "admin")
#: What each scope grants: admin implies the others (CONTRACT.md, HTTP).
_GRANTS: dict[str, frozenset[str]] = {
    "host": frozenset({"host"}),
    "analyst": frozenset({"analyst"}),
    "booking": frozenset({"booking"}),
    "admin": frozenset(SCOPES),
}


class TokenError(ValueError):
    """A tokens string that cannot be used; the message never contains a token."""


@dataclass(slots=True, frozen=True, repr=False)
class Tokens:
    """The configured tokens, as (SHA-256 digest, granted scopes) pairs."""

    entries: tuple[tuple[bytes, frozenset[str]], ...] = ()

    @classmethod
    def parse(cls, spec: str) -> Tokens:
        """``"host:abc,analyst:sha256:<hex>"`` → Tokens; an empty string configures no tokens at all."""
        grants: dict[bytes, set[str]] = {}
        items = [x.strip() for x in spec.split(",")] if spec.strip() else []
        for n, item in enumerate(items, 1):
            if not item:
                raise TokenError(
                    f"tokens: item {n} is empty (expected scope:token pairs separated by commas)"
                )
            scope, sep, token = item.partition(":")
            scope = scope.strip()
            if not sep:
                # No colon: the whole item may be a token, so it is not repeated in the message.
                raise TokenError(f"tokens: item {n} is not scope:token (scopes: {', '.join(SCOPES)})")
            if scope not in _GRANTS:
                raise TokenError(
                    f"tokens: item {n} has unknown scope {scope[:20]!r} (use {', '.join(SCOPES)})"
                )
            token = token.strip()
            if not token:
                raise TokenError(f"tokens: item {n} ({scope}) has an empty token")
            if token[: len(HASHED)].lower() == HASHED:
                hexdigest = token[len(HASHED) :]
                if not _HEX64.fullmatch(hexdigest):
                    raise TokenError(
                        f"tokens: item {n} ({scope}) is not {scope}:sha256:<64 hex digits> "
                        "(tila token prints one)"
                    )
                digest = bytes.fromhex(hexdigest)
                if digest_is_weak(digest):
                    raise TokenError(
                        f"tokens: item {n} ({scope}) is the digest of a well-known default or placeholder"
                        " (tila token makes a random one)"
                    )
                grants.setdefault(digest, set()).update(_GRANTS[scope])
                continue
            if any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7E for c in token):
                # An HTTP header carries printable ASCII only, and whitespace would split the header.
                raise TokenError(
                    f"tokens: item {n} ({scope}) has a token with spaces or non-ASCII characters"
                )
            why = weakness(token)
            if why is not None:
                raise TokenError(f"tokens: item {n} ({scope}): the token {why} (tila token makes a random one)")
            grants.setdefault(_digest(token), set()).update(_GRANTS[scope])
        return cls(tuple((d, frozenset(s)) for d, s in grants.items()))

    def scopes(self, presented: str) -> frozenset[str]:
        """The scopes a presented token grants (empty if it matches none)."""
        digest = _digest(presented)
        granted: set[str] = set()
        for known, scopes in self.entries:
            # Every entry is compared, matching or not, so timing tells nothing about which matched.
            if hmac.compare_digest(digest, known):
                granted |= scopes
        return frozenset(granted)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"Tokens({len(self.entries)} configured)"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


# ------------------------------------------------------------------------------------- FastAPI side

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="A token from TILA_TOKENS: host, analyst, booking or admin scope (admin implies the others).",
)


def _unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = 'Bearer realm="tila"' + (f', error="{error}"' if error else "")
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": challenge})


def check(tokens: Tokens, credentials: HTTPAuthorizationCredentials | None, scope: str) -> frozenset[str]:
    """The scopes granted, or the 401/403 :class:`HTTPException` to answer."""
    if credentials is None:
        raise _unauthorized("this needs a bearer token (Authorization: Bearer TOKEN)")
    granted = tokens.scopes(credentials.credentials)
    if not granted:
        raise _unauthorized("unknown token", "invalid_token")
    if scope not in granted:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the {scope} scope")
    return granted


def require(scope: str) -> Callable[..., Awaitable[frozenset[str]]]:
    """A dependency answering 401 without a known token and 403 without ``scope``."""
    if scope not in _GRANTS:
        raise ValueError(f"unknown scope {scope!r}")

    async def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None
    ) -> frozenset[str]:
        # async: a plain def would run in FastAPI's thread pool, a thread hop per request.
        # The tokens live in the app's context (api/context.py), reached through the request so that
        # this module stays free of the rest of the API.
        return check(request.app.state.tila.tokens, credentials, scope)

    # Security(scopes=…) rather than Depends: the OpenAPI description then names the scope each
    # operation needs (``"security": [{"token": ["analyst"]}]``, role names as OpenAPI 3.1 allows).
    # Set as an object, not written in the signature: with postponed annotations FastAPI would
    # evaluate the string where the closure's ``scope`` is not defined.
    dependency.__annotations__["credentials"] = Annotated[
        HTTPAuthorizationCredentials | None, Security(bearer, scopes=[scope])
    ]
    dependency.__name__ = f"require_{scope}"
    return dependency


#: For ``responses=`` on protected routes, so the OpenAPI description lists 401 and 403.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {
        "model": ErrorOut,
        "description": "no token, or an unknown one",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Bearer realm="tila"'}},
        "content": {"application/json": {"example": {"detail": "unknown token"}}},
    },
    403: {
        "model": ErrorOut,
        "description": "the token lacks the scope",
        "content": {"application/json": {"example": {"detail": "this needs the host scope"}}},
    },
}

HostDep = Annotated[frozenset[str], Depends(require("host"))]
AnalystDep = Annotated[frozenset[str], Depends(require("analyst"))]
AdminDep = Annotated[frozenset[str], Depends(require("admin"))]
