"""Secure defaults: a secret tila is given must be a real one.

Secrets in tila are API tokens (``--tokens``), MQTT passwords in broker URLs, InfluxDB passwords and
tokens in store URLs and webhook secrets. Wherever one is given, it is refused when it is

- **empty**: a user name without a password, ``?token=`` with nothing after it, ``analyst:``;
- **a well-known default or placeholder** (:data:`DEFAULTS`, compared case-insensitively, ignoring
  ``-``, ``_``, ``.`` and spaces, and trailing digits: ``Admin``, ``pass_word``, ``password1``), or a
  member of a placeholder family (:data:`PLACEHOLDER_PREFIXES`: ``change-me-api-token`` as
  .env.example writes them, ``CHANGE-ME`` as deploy/systemd's example, ``<token>``, ``${TOKEN}``);
- **the same as its user name** (``gw1:gw1``).

Giving no credentials at all stays allowed: a Raspberry Pi's loopback broker or a test broker needs
none. Only ``tila demo`` runs without real secrets, and it makes random tokens of its own.

Messages name the option and the reason, never the secret. This module has no I/O and imports
nothing of tila, so anything taking a secret can use it (the command line's URL types in tila.cli,
:meth:`tila.api.auth.Tokens.parse`, webhook subscriptions).
"""

from __future__ import annotations

import hashlib
import re

#: Well-known defaults: what vendor documentation, tutorials and quick starts use (Mosquitto, InfluxDB
#: and Grafana examples use admin/password/secret), tila's own names, and the words people type when
#: asked for a secret they mean to change later. Compared after :func:`_normal`, trailing digits removed.
DEFAULTS = frozenset(
    {
        "admin",
        "administrator",
        "changeit",
        "changeme",
        "default",
        "example",
        "guest",
        "influx",
        "influxdb",
        "letmein",
        "mosquitto",
        "mqtt",
        "pass",
        "passw0rd",
        "password",
        "qwerty",
        "root",
        "secret",
        "test",
        "tila",
        "token",
        "user",
        # docker-compose.yml's hint for TILA_TOKENS, should one copy it as it is
        "longrandomtoken",
        "othertoken",
    }
)
#: Placeholder families, compared after :func:`_normal` with the start of the secret: .env.example's
#: ``change-me-…`` values, deploy/systemd's ``CHANGE-ME``, and ``replace-me…`` / ``your-…-here`` forms.
PLACEHOLDER_PREFIXES = ("changeme", "replaceme", "yoursecret", "yourtoken", "yourpassword")
#: Digits-only secrets this short are PINs or keyboard runs (123456, 0000), guessed at once.
SHORT_DIGITS = 8
#: An unfilled template: ``<token>``, ``${TILA_TOKEN}``, ``$(cat file)`` left unexpanded by a shell
#: or an env-file loader that does not expand.
_TEMPLATE = re.compile(r"^(<.*>|\$\{.*\}|\$\(.*\)|\{\{.*\}\})$", re.DOTALL)
#: What :func:`_normal` removes: separators people vary (``change-me``, ``CHANGE_ME``, ``change me``).
_SEPARATORS = re.compile(r"[\s_.\-]+")


class WeakSecretError(ValueError):
    """A secret that must not be used; the message names the option and never the secret."""


def _normal(value: str) -> str:
    return _SEPARATORS.sub("", value.strip().casefold())


def weakness(secret: str | None, user: str | None = None) -> str | None:
    """Why ``secret`` must not be used, as words following its name (``"is empty"``), or None if it may.

    ``user``: the user name the secret goes with, when there is one (a password equal to it is refused).
    """
    if secret is None or not secret.strip():
        return "is empty"
    stripped = secret.strip()
    norm = _normal(stripped)
    if _TEMPLATE.match(stripped):
        return "is an unfilled placeholder"
    if not norm:
        return "has no letters or digits"
    if norm.rstrip("0123456789") in DEFAULTS or norm.startswith(PLACEHOLDER_PREFIXES):
        return "is a well-known default or placeholder"
    if norm.isdigit() and len(norm) <= SHORT_DIGITS:
        return f"is {SHORT_DIGITS} digits or fewer"
    if user and norm == _normal(user):
        return "is the same as the user name"
    return None


def check_secret(secret: str | None, what: str, user: str | None = None) -> None:
    """Raise :class:`WeakSecretError` (``"<what> is empty"`` …) unless ``secret`` may be used."""
    why = weakness(secret, user)
    if why is not None:
        raise WeakSecretError(f"{what} {why}")


def check_credentials(
    user: str | None, password: str | None, what: str, *, password_elsewhere: bool = False
) -> None:
    """A user name and password as a URL carries them: none at all, or a user with a real password.

    ``password_elsewhere``: the password comes from somewhere this check does not see (a password
    file), so a user without one in the URL is fine.
    """
    if not user:
        if password:
            raise WeakSecretError(f"{what} has a password but no user name")
        return
    if password is None or password == "":
        if password_elsewhere:
            return
        raise WeakSecretError(
            f"{what} has user {user[:40]!r} but no password (give user:password, or no credentials at all)"
        )
    check_secret(password, f"{what}: the password of user {user[:40]!r}", user)


#: SHA-256 digests of the defaults as people write them (lower case, upper case, capitalised, and the
#: placeholder spelled ``change-me`` / ``CHANGE-ME``), to refuse a hashed token (``sha256:<hex>``)
#: that is one of them.
_WEAK_DIGESTS = frozenset(
    hashlib.sha256(v.encode()).digest()
    for word in (
        *DEFAULTS,
        "change-me",
        "change_me",
        "long-random-token",
        "other-token",
        "LONG-RANDOM-TOKEN",
        "OTHER-TOKEN",
        "123456",
        "12345678",
    )
    for v in {word, word.upper(), word.capitalize()}
)


def digest_is_weak(digest: bytes) -> bool:
    """Whether a SHA-256 digest is that of a well-known default (the one check a hashed token allows)."""
    return digest in _WEAK_DIGESTS


def hide_password(message: str, url: str) -> str:
    """``message`` with ``url`` in it shown without its password (``user:***@``): for the errors of URL
    parsers that quote the URL they refuse."""
    # Greedy up to the last '@': a password with an unencoded '@' is hidden whole.
    redacted = re.sub(r"(://[^/@:]*:).*@", r"\1***@", url, flags=re.DOTALL)
    if redacted != url:
        message = message.replace(url, redacted)
    return message
