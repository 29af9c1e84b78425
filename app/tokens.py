"""``tila token``: a new random API token and its hashed form.

The token goes to the client (``Authorization: Bearer TOKEN``); the hashed form, ``scope:sha256:<hex>``,
goes into ``--tokens`` / ``TILA_TOKENS`` on the server, which then holds no token at all (api/auth.py
keeps only digests anyway). ``--stdin`` hashes an existing token instead, read from standard input so
that it stays out of the process list and the shell history.

Standard output is two lines, the token and the hashed pair, so scripts can read them; what they are
for goes to standard error.
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sys
import threading

from .cli import UsageError

#: Random bytes in a new token: 256 bits, what the documentation of Python's secrets module calls
#: sufficient for typical use; 43 URL-safe characters, valid in an HTTP header as they are.
TOKEN_BYTES = 32


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .api.auth import SCOPES

    parser.add_argument(
        "--scope",
        choices=SCOPES,
        default="host",
        help="what the token may do: host, analyst, booking, or admin (all of them); default host",
    )
    parser.add_argument(
        "--stdin",
        action="store_true",
        help="hash the token given on standard input (one line) instead of making a new one",
    )


def hashed(scope: str, token: str) -> str:
    """The ``--tokens`` item for ``token``: ``scope:sha256:<hex>``."""
    return f"{scope}:sha256:{hashlib.sha256(token.encode('utf-8')).hexdigest()}"


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    from .api.auth import TokenError, Tokens

    if args.stdin:
        token = sys.stdin.readline().strip()
        if "," in token:
            raise UsageError("the token on standard input has a comma, which separates tokens in --tokens")
        if token.lower().startswith("sha256:"):
            raise UsageError(
                "the token on standard input starts with sha256:, which --tokens reads as a digest"
            )
    else:
        token = secrets.token_urlsafe(TOKEN_BYTES)
    try:
        # The same checks as the server's: no empty token, no default, printable ASCII only.
        Tokens.parse(f"{args.scope}:{token}")
    except TokenError as exc:
        message = str(exc).replace("tokens: item 1", "the token on standard input")
        raise UsageError(message.replace(" (tila token makes a random one)", "")) from None
    print("# the token, for the client (Authorization: Bearer TOKEN); keep it secret", file=sys.stderr)
    print(
        f"# then its {args.scope} entry for --tokens / TILA_TOKENS on the server (several: commas)",
        file=sys.stderr,
    )
    print(token)
    print(hashed(args.scope, token))
    return 0
