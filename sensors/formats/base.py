"""What every message format module provides, and the errors decoders raise."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..events import Event


class DecodeError(ValueError):
    """A payload that cannot be decoded. ``reason`` is a short counter name (``malformed_json``…)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(slots=True, frozen=True)
class DecodeContext:
    """What a decoder knows besides the message: whose it is and when the gateway got it."""

    sensor: str
    #: The sensor's topic from the site file (a message may come on a subtopic of it).
    base_topic: str
    received: datetime


Decoder = Callable[[str, bytes, DecodeContext], list[Event]]


@dataclass(slots=True, frozen=True)
class Format:
    """A message format: its decoder and what the gateway and aggregator need to know of it."""

    name: str
    decode: Decoder
    #: Subtopics below a sensor's topic that the decoder also reads (``availability``).
    subtopics: tuple[str, ...] = ()
    #: Topic filters of the format's own housekeeping (bridge state, commands): counted as ignored.
    ignored: tuple[str, ...] = ()
    #: Silence longer than this makes a sensor's state unknown (the device's own reporting interval
    #: with margin).
    heartbeat: timedelta = timedelta(hours=2)


# ----------------------------------------------------------------------- helpers shared by decoders


def json_object(payload: bytes) -> dict[str, Any]:
    """Parse a JSON object, raising DecodeError with reason not_utf8, malformed_json or not_object."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("not_utf8", "payload is not UTF-8") from exc
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise DecodeError("malformed_json", f"payload is not JSON: {str(exc)[:80]}") from exc
    if not isinstance(doc, dict):
        raise DecodeError("not_object", "payload is not a JSON object")
    return doc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def number(doc: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    """An optional finite number in [lo, hi] (bool is not a number)."""
    if key not in doc or doc[key] is None:
        return None
    v = doc[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DecodeError("wrong_type", f"{key} must be a number, not {type(v).__name__}")
    # Compare before any float conversion: a huge JSON integer would overflow math.isnan().
    if not lo <= v <= hi or (isinstance(v, float) and math.isnan(v)):
        raise DecodeError("bad_value", f"{key} out of range: {str(v)[:40]}")
    return v


def timestamp(value: Any, key: str) -> datetime:
    """A device timestamp: ISO 8601 with an offset, or epoch milliseconds."""
    if isinstance(value, bool):
        raise DecodeError("wrong_type", f"{key} must be a timestamp")
    if isinstance(value, (int, float)):
        if math.isnan(value) or math.isinf(value) or not 0 <= value < 2**53:
            raise DecodeError("bad_value", f"{key} out of range")
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise DecodeError("bad_value", f"{key} out of range") from exc
    if isinstance(value, str):
        try:
            t = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError as exc:
            raise DecodeError("bad_value", f"{key} is not ISO 8601: {value[:40]!r}") from exc
        if t.tzinfo is None or t.utcoffset() is None:
            raise DecodeError("bad_value", f"{key} has no UTC offset: {value[:40]!r}")
        try:
            return t.astimezone(UTC)
        except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+01:00
            raise DecodeError("bad_value", f"{key} out of range: {value[:40]!r}") from exc
    raise DecodeError("wrong_type", f"{key} must be ISO 8601 text or epoch milliseconds")
