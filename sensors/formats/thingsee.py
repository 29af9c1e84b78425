"""Haltian Thingsee messages: PRESENCE occupancy, people counting in/out, battery level.

Thingsee sensors talk CBOR over a Wirepas mesh to a Thingsee gateway; the Thingsee cloud hands them
on as JSON *Thingsee messages*: a header (``tsmId`` message type, ``tsmEv`` event type, ``tsmTs`` UTC
epoch seconds added by the gateway, ``tsmTuid`` the device id, optionally ``tsmGw``,
``deploymentGroupId``…) with the type's own fields beside it at the top level.

Read (every other ``tsmId`` decodes to nothing):

- ``2100`` occupancy state (Analytics profile), sent by Thingsee PRESENCE in occupancy mode (mode 1)
  on every change and at least hourly: ``state`` 0 = vacant, 1 = occupied → :class:`Presence`.
- ``13103`` people counting report: ``in`` / ``out``, people who entered and left since the previous
  report → :class:`Flow`. Haltian documents it for the ENTRYWAY counter and says the id is shared by
  sensor types with the same format; Thingsee COUNT's own message list was not found in public
  documentation, so COUNT is read on the assumption that it sends 13103 too.
- ``1110`` battery info (Common profile): ``batl`` in percent → :class:`Battery` (``chrg`` is not
  read). Thingsee COUNT is USB powered and sends none.

PRESENCE's other messages are not occupancy: ``13100`` ``moveCount`` counts PIR detections in the
interval (zero while someone sits still) and ``13102`` ``count`` counts occupancy *periods*, not
people; neither is a head count, so neither is read. For tila, run PRESENCE in mode 1.

Topics. The sensor's topic in the site file ends with the device's TUID, and messages arrive either

- one object per MQTT message on ``<topic>/<tsmId>``: the Thingsee cloud's own MQTT stream publishes
  on ``cloudext/json/<env>/<country>/<customer>/<tuid>/<tsmId>``, so a site that bridges it uses
  ``cloudext/json/<env>/<country>/<customer>/<tuid>`` as the sensor topic; the topic's ``tsmId`` must
  be the message's; or
- on ``<topic>`` itself, as one object or as a JSON array of objects, possibly of mixed types: what
  the Thingsee cloud's HTTP push delivers. A bridge that republishes those pushes uses
  ``thingsee/<tuid>`` and must split them by ``tsmTuid``.

A message's ``tsmTuid``, when present, must be the topic's last segment (case-insensitively): a
message of another device on this sensor's topic is a mis-set bridge, refused as ``bad_value`` rather
than credited to the wrong space. One bad element refuses the whole payload.

Event time is the message's ``tsmTs``, or without one, when the tila gateway received the message.

``ignored``: the rest of the Thingsee cloud stream (other message types of listed devices, and the
devices of the customer group that this site file does not list: a Thingsee group often spans
several buildings), and other message types a bridge publishes below ``thingsee/<tuid>``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ..events import Battery, Event, Flow, Presence
from .base import DecodeContext, DecodeError, Format

#: Message ids (developer.haltian.io "Message Profiles": Analytics 2000–2999, Common 1000–1999,
#: Presence 13000–13999; 13103 from the Haltian ENTRYWAY uplink message reference).
OCCUPANCY_STATE = 2100
PEOPLE_COUNT = 13103
BATTERY = 1110

#: Haltian documents no maximum for ``in``/``out``. A doorway passes a few people a second and a
#: report covers at most the idle interval (1 h by default), so more than this in one report is a
#: corrupt value, not traffic.
_MAX_PER_REPORT = 100_000
#: The last second Python's datetime can hold (9999-12-31T23:59:59Z).
_EPOCH_MAX = 253_402_300_799


def decode(topic: str, payload: bytes, ctx: DecodeContext) -> list[Event]:
    expected = _expected_id(topic, ctx.base_topic)
    tuid = ctx.base_topic.rsplit("/", 1)[-1]
    doc = _json(payload)
    if isinstance(doc, list):
        items = [(f"[{k}]", m) for k, m in enumerate(doc)]
    else:
        items = [("message", doc)]
    events: list[Event] = []
    for where, message in items:
        if not isinstance(message, dict):
            raise DecodeError("not_object", f"{where} is not a JSON object")
        events.extend(_message(message, where, tuid, expected, ctx))
    return events


def _expected_id(topic: str, base: str) -> int | None:
    """The tsmId a subtopic names (``<base>/2100``), or None for the sensor's own topic."""
    if topic == base:
        return None
    leaf = topic[len(base) + 1 :] if topic.startswith(base + "/") else ""
    if leaf not in SUBTOPICS:
        raise DecodeError("unknown_topic", f"not a Thingsee topic of this sensor: {topic[:80]!r}")
    return int(leaf)


def _json(payload: bytes) -> dict[str, Any] | list[Any]:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("not_utf8", "payload is not UTF-8") from exc
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise DecodeError("malformed_json", f"payload is not JSON: {str(exc)[:80]}") from exc
    if not isinstance(doc, (dict, list)):
        raise DecodeError("not_object", "payload is neither a JSON object nor an array")
    return doc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _message(
    m: dict[str, Any], where: str, tuid: str, expected: int | None, ctx: DecodeContext
) -> list[Event]:
    msg_id = m.get("tsmId")
    if msg_id is None:
        raise DecodeError("bad_value", f"{where} has no tsmId")
    if isinstance(msg_id, bool) or not isinstance(msg_id, int):
        raise DecodeError("wrong_type", f"{where}.tsmId must be an integer, not {type(msg_id).__name__}")
    if expected is not None and msg_id != expected:
        raise DecodeError("bad_value", f"{where}.tsmId {str(msg_id)[:12]} on the topic of {expected}")
    owner = m.get("tsmTuid")
    if owner is not None:
        if not isinstance(owner, str):
            raise DecodeError("wrong_type", f"{where}.tsmTuid must be a string, not {type(owner).__name__}")
        if owner.casefold() != tuid.casefold():
            raise DecodeError("bad_value", f"{where}.tsmTuid {owner[:24]!r} is not the topic's {tuid[:24]!r}")
    reader = _READERS.get(msg_id)
    if reader is None:
        return []
    when = _time(m.get("tsmTs"), where, ctx.received)
    return [reader(m, where, ctx.sensor, when)]


def _presence(m: dict[str, Any], where: str, sensor: str, when: datetime) -> Event:
    state = _required_number(m, "state", where)
    if state not in (0, 1):
        raise DecodeError("bad_value", f"{where}.state must be 0 or 1, not {str(state)[:20]}")
    return Presence(sensor, when, state == 1)


def _people(m: dict[str, Any], where: str, sensor: str, when: datetime) -> Event:
    entered, exited = (_count(m, key, where) for key in ("in", "out"))
    return Flow(sensor, when, entered, exited)


def _battery(m: dict[str, Any], where: str, sensor: str, when: datetime) -> Event:
    level = _required_number(m, "batl", where)
    if not 0 <= level <= 100:  # also refuses NaN
        raise DecodeError("bad_value", f"{where}.batl must be 0..100 percent, not {str(level)[:20]}")
    return Battery(sensor, when, float(level))


_READERS: dict[int, Callable[[dict[str, Any], str, str, datetime], Event]] = {
    OCCUPANCY_STATE: _presence,
    PEOPLE_COUNT: _people,
    BATTERY: _battery,
}
#: Subtopics the decoder reads: ``<sensor topic>/<tsmId>``, as the Thingsee cloud stream publishes.
SUBTOPICS = tuple(str(i) for i in _READERS)


def _required_number(m: dict[str, Any], key: str, where: str) -> int | float:
    v = m.get(key)
    if v is None:
        raise DecodeError("bad_value", f"{where} (tsmId {m['tsmId']}) has no {key}")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DecodeError("wrong_type", f"{where}.{key} must be a number, not {type(v).__name__}")
    return v


def _count(m: dict[str, Any], key: str, where: str) -> int:
    v = _required_number(m, key, where)
    # Compare before converting: a huge JSON integer would overflow float(); NaN fails both tests.
    if not 0 <= v <= _MAX_PER_REPORT or (isinstance(v, float) and v != int(v)):
        raise DecodeError("bad_value", f"{where}.{key} must be a whole number of people, not {str(v)[:20]}")
    return int(v)


def _time(value: Any, where: str, received: datetime) -> datetime:
    """``tsmTs``: UTC epoch seconds (Thingsee message header), or the receipt time without one."""
    if value is None:
        return received
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DecodeError("wrong_type", f"{where}.tsmTs must be epoch seconds, not {type(value).__name__}")
    if not 0 <= value <= _EPOCH_MAX:  # also refuses NaN
        raise DecodeError("bad_value", f"{where}.tsmTs out of range: {str(value)[:24]}")
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise DecodeError("bad_value", f"{where}.tsmTs out of range: {str(value)[:24]}") from exc


FORMAT = Format(
    name="thingsee",
    decode=decode,
    subtopics=SUBTOPICS,
    ignored=(
        # The Thingsee cloud stream: cloudext/json/{env}/{country}/{customer}/{tuid}/{tsmId}
        # (support.haltian.com, "How to connect to Thingsee IoT data stream").
        "cloudext/json/+/+/+/+/+",
        # Other message types a bridge republishes below thingsee/<tuid>.
        "thingsee/+/+",
    ),
    # PRESENCE in occupancy mode resends its state every hour without a change (developer.haltian.io,
    # Thingsee PRESENCE operation guide: "Idle reporting - Every 1 hour if no status change"), and
    # ENTRYWAY reports every idle interval, 1 hour by default; twice that. (Firmware of 2019 used a
    # 2-hour keep-alive, wiki.thingsee.com firmware 2019.04.23.2_ts_pirwp34: it would need 4 hours.)
    heartbeat=timedelta(hours=2),
)
