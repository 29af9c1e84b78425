"""The site model: zones, spaces and sensors of one site, read from its TOML file and validated.

Every problem is reported as a :class:`SiteError` naming the file, the key and what is wrong, so the
command line can stop with one clear line.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .holidays import CALENDARS, holidays_in

KINDS = ("desk", "room", "booth", "event")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LANGUAGES = ("fi", "sv", "en")

#: Ids end up in MQTT topics and URLs: no '/', '+', '#', spaces or upper case.
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: ``holidays = "none"`` in the site file: no public-holiday calendar.
NO_HOLIDAYS = "none"


class SiteError(ValueError):
    """A site file that cannot be used. ``str()`` is one line: file, key, problem."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = file, key, problem
        super().__init__(f"{file}: {key}: {problem}" if key else f"{file}: {problem}")


@dataclass(slots=True, frozen=True)
class Zone:
    id: str
    name: dict[str, str]

    def label(self, lang: str = "en") -> str:
        return self.name.get(lang) or self.name.get("en") or next(iter(self.name.values()), self.id)


@dataclass(slots=True, frozen=True)
class Position:
    """Where a space is drawn on the lobby floor plan, in the site's own plan units."""

    x: float
    y: float
    w: float = 1.0
    h: float = 1.0


@dataclass(slots=True, frozen=True)
class Space:
    id: str
    kind: str
    zone: str
    capacity: int
    name: dict[str, str] = field(default_factory=dict)
    position: Position | None = None


@dataclass(slots=True, frozen=True)
class Sensor:
    id: str
    space: str
    format: str
    topic: str


@dataclass(slots=True, frozen=True)
class Site:
    id: str
    name: dict[str, str]
    timezone: str
    #: Opening hours per weekday (0 = Monday) as (start, end) minutes after local midnight.
    opening_hours: dict[int, tuple[tuple[int, int], ...]]
    zones: tuple[Zone, ...]
    spaces: tuple[Space, ...]
    sensors: tuple[Sensor, ...]
    source: str = "<site>"
    #: Public-holiday calendar (a key of :data:`tila.sensors.holidays.CALENDARS`), None for none.
    holidays: str | None = "FI"
    #: Local dates closed although their weekday has hours (an extra closure).
    closed_dates: frozenset[date] = frozenset()
    #: Local dates open with these hours although a holiday or a closed weekday.
    open_dates: dict[date, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    _space_index: dict[str, Space] = field(init=False, repr=False, compare=False)
    _sensor_index: dict[str, Sensor] = field(init=False, repr=False, compare=False)
    _topic_index: dict[str, Sensor] = field(init=False, repr=False, compare=False)
    _sensors_by_space: dict[str, tuple[Sensor, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_space_index", {s.id: s for s in self.spaces})
        object.__setattr__(self, "_sensor_index", {s.id: s for s in self.sensors})
        object.__setattr__(self, "_topic_index", {s.topic: s for s in self.sensors})
        by_space: dict[str, list[Sensor]] = {}
        for sensor in self.sensors:
            by_space.setdefault(sensor.space, []).append(sensor)
        object.__setattr__(self, "_sensors_by_space", {k: tuple(v) for k, v in by_space.items()})

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def zone(self, zone_id: str) -> Zone | None:
        return next((z for z in self.zones if z.id == zone_id), None)

    def space(self, space_id: str) -> Space | None:
        return self._space_index.get(space_id)

    def sensor(self, sensor_id: str) -> Sensor | None:
        return self._sensor_index.get(sensor_id)

    def sensor_by_topic(self, topic: str) -> Sensor | None:
        return self._topic_index.get(topic)

    def sensors_of(self, space_id: str) -> tuple[Sensor, ...]:
        return self._sensors_by_space.get(space_id, ())

    def holiday(self, day: date) -> str | None:
        """The name of the public holiday on the local date ``day``, if the calendar has one."""
        if self.holidays is None:
            return None
        return holidays_in(self.holidays, day.year).get(day)

    def hours_on(self, day: date) -> tuple[tuple[int, int], ...]:
        """Opening hours of the local date ``day`` as (start, end) minutes after local midnight.

        ``open_dates`` win over everything, then ``closed_dates`` and public holidays close the day,
        else the weekday's hours apply.
        """
        hours = self.open_dates.get(day)
        if hours is not None:
            return hours
        if day in self.closed_dates or self.holiday(day) is not None:
            return ()
        return self.opening_hours.get(day.weekday(), ())

    def open_intervals(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """Opening hours that fall within [start, end), as UTC intervals in time order.

        Hours are local wall-clock times in the site's time zone, so a day on which daylight saving
        changes has one hour more or less of opening time only if the change falls inside the hours.
        Public holidays and ``closed_dates`` have none; ``open_dates`` have theirs (see
        :meth:`hours_on`).
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("open_intervals needs timezone-aware datetimes")
        tz = self.tz
        out: list[tuple[datetime, datetime]] = []
        day: date = start.astimezone(tz).date() - timedelta(days=1)
        last: date = end.astimezone(tz).date() + timedelta(days=1)
        while day <= last:
            for a, b in self.hours_on(day):
                lo = _local(day, a, tz)
                hi = _local(day, b, tz)
                lo, hi = max(lo, start), min(hi, end)
                if lo < hi:
                    out.append((lo.astimezone(UTC), hi.astimezone(UTC)))
            day += timedelta(days=1)
        return out

    def open_seconds(self, start: datetime, end: datetime) -> float:
        return sum((b - a).total_seconds() for a, b in self.open_intervals(start, end))


def _local(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """Local wall-clock time ``minutes`` after midnight of ``day`` (24:00 is the next midnight)."""
    extra, minutes = divmod(minutes, 24 * 60)
    d = day + timedelta(days=extra)
    return datetime.combine(d, time(minutes // 60, minutes % 60), tzinfo=tz)


# --------------------------------------------------------------------------------------------- load


def bundled_site_path(name: str = "work20lab") -> Path:
    """The site file shipped with tila (the Work 2.0 Lab by default)."""
    return Path(str(resources.files("tila.sensors") / "sites" / f"{name}.toml"))


def load_site(path: str | Path) -> Site:
    """Read and validate a site file; raises :class:`SiteError`."""
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise SiteError(file, "", f"cannot read: {exc.strerror or exc}") from exc
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SiteError(file, "", "not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SiteError(file, "", f"not valid TOML: {exc}") from exc
    return parse_site(doc, file)


def parse_site(doc: dict[str, Any], file: str = "<site>") -> Site:
    # Imported here: the registry imports the format modules, which import events, not site.
    from .formats import FORMATS

    def err(key: str, problem: str) -> SiteError:
        return SiteError(file, key, problem)

    unknown_top = set(doc) - {"site", "zones", "spaces", "sensors"}
    if unknown_top:
        raise err(sorted(unknown_top)[0], "unknown section (expected site, zones, spaces, sensors)")
    site = doc.get("site")
    if not isinstance(site, dict):
        raise err("site", "missing [site] table")
    site_id = _ident(site.get("id"), "site.id", err)
    name = _names(site.get("name", site_id), "site.name", err)
    tz_name = site.get("timezone")
    if not isinstance(tz_name, str):
        raise err("site.timezone", "missing (an IANA name such as Europe/Helsinki)")
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise err("site.timezone", f"unknown time zone {tz_name!r}") from exc
    hours = _opening_hours(site.get("opening_hours"), err)
    calendar, closed, opened = _calendar(site, hours, err)

    zones: list[Zone] = []
    zone_ids: set[str] = set()
    for i, z in enumerate(_tables(doc, "zones", err)):
        key = f"zones[{i}]"
        zid = _ident(z.get("id"), f"{key}.id", err)
        if zid in zone_ids:
            raise err(f"{key}.id", f"duplicate zone id {zid!r}")
        zone_ids.add(zid)
        zones.append(Zone(zid, _names(z.get("name", zid), f"{key}.name", err)))

    spaces: list[Space] = []
    space_ids: set[str] = set()
    for i, s in enumerate(_tables(doc, "spaces", err)):
        key = f"spaces[{i}]"
        sid = _ident(s.get("id"), f"{key}.id", err)
        if sid in space_ids:
            raise err(f"{key}.id", f"duplicate space id {sid!r}")
        space_ids.add(sid)
        kind = s.get("kind")
        if kind not in KINDS:
            raise err(f"{key}.kind", f"must be one of {', '.join(KINDS)}, not {kind!r}")
        zone = s.get("zone")
        if zone not in zone_ids:
            raise err(f"{key}.zone", f"unknown zone {zone!r}")
        cap = s.get("capacity", 1)
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise err(f"{key}.capacity", f"must be a whole number of at least 1, not {cap!r}")
        if kind == "desk" and cap != 1:
            raise err(f"{key}.capacity", "a desk seats one")
        pos = s.get("position")
        position = None
        if pos is not None:
            position = _position(pos, f"{key}.position", err)
        names = _names(s["name"], f"{key}.name", err) if "name" in s else {}
        spaces.append(Space(sid, kind, zone, cap, names, position))

    sensors: list[Sensor] = []
    sensor_ids: set[str] = set()
    topics: dict[str, str] = {}
    for i, s in enumerate(_tables(doc, "sensors", err)):
        key = f"sensors[{i}]"
        sid = _ident(s.get("id"), f"{key}.id", err)
        if sid in sensor_ids:
            raise err(f"{key}.id", f"duplicate sensor id {sid!r}")
        sensor_ids.add(sid)
        space = s.get("space")
        if space not in space_ids:
            raise err(f"{key}.space", f"unknown space {space!r}")
        fmt = s.get("format")
        if fmt not in FORMATS:
            raise err(f"{key}.format", f"unknown format {fmt!r} (known: {', '.join(sorted(FORMATS))})")
        topic = s.get("topic")
        if (
            not isinstance(topic, str)
            or not topic
            or any(c in topic for c in "+#\0")
            or topic != topic.strip("/")
        ):
            raise err(f"{key}.topic", f"must be an MQTT topic without wildcards, not {topic!r}")
        if topic in topics:
            raise err(f"{key}.topic", f"topic {topic!r} is also sensor {topics[topic]!r}'s")
        topics[topic] = sid
        sensors.append(Sensor(sid, space, fmt, topic))

    return Site(
        site_id,
        name,
        tz_name,
        hours,
        tuple(zones),
        tuple(spaces),
        tuple(sensors),
        file,
        calendar,
        closed,
        opened,
    )


def _tables(doc: dict[str, Any], name: str, err: Any) -> list[dict[str, Any]]:
    items = doc.get(name, [])
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise err(name, f"must be an array of tables ([[{name}]])")
    return items


def _ident(value: Any, key: str, err: Any) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise err(key, f"must be an id of lower-case letters, digits, '-', '_' or '.', not {value!r}")
    return value


def _names(value: Any, key: str, err: Any) -> dict[str, str]:
    if isinstance(value, str) and value:
        return {"en": value}
    if isinstance(value, dict) and value and all(isinstance(v, str) and v for v in value.values()):
        bad = set(value) - set(LANGUAGES)
        if bad:
            raise err(key, f"unknown language {sorted(bad)[0]!r} (use {', '.join(LANGUAGES)})")
        return dict(value)
    raise err(key, "must be a string or a table of fi/sv/en strings")


def _position(value: Any, key: str, err: Any) -> Position:
    if not isinstance(value, dict):
        raise err(key, "must be a table { x, y, w, h }")
    nums: dict[str, float] = {}
    for k, v in value.items():
        if k not in ("x", "y", "w", "h"):
            raise err(f"{key}.{k}", "unknown key (expected x, y, w, h)")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v < 0:
            raise err(f"{key}.{k}", f"must be a non-negative number, not {v!r}")
        nums[k] = float(v)
    if "x" not in nums or "y" not in nums:
        raise err(key, "needs x and y")
    if nums.get("w", 1.0) <= 0 or nums.get("h", 1.0) <= 0:
        raise err(key, "w and h must be positive")
    return Position(**nums)


def _opening_hours(value: Any, err: Any) -> dict[int, tuple[tuple[int, int], ...]]:
    if value is None:
        raise err("site.opening_hours", 'missing (e.g. { mon = "07:00-20:00" })')
    if not isinstance(value, dict):
        raise err("site.opening_hours", 'must be a table of day = "HH:MM-HH:MM"')
    out: dict[int, tuple[tuple[int, int], ...]] = {}
    for day, spec in value.items():
        key = f"site.opening_hours.{day}"
        if day not in DAYS:
            raise err(key, f"unknown day (use {', '.join(DAYS)})")
        out[DAYS.index(day)] = _ranges(spec, key, err)
    return out


def _ranges(spec: Any, key: str, err: Any) -> tuple[tuple[int, int], ...]:
    """``"HH:MM-HH:MM"`` ranges (comma-separated or a list) as sorted (start, end) minutes."""
    specs = spec if isinstance(spec, list) else [spec]
    ranges: list[tuple[int, int]] = []
    for one in specs:
        for part in str(one).split(",") if isinstance(one, str) else [one]:
            m = _HOURS.match(part.strip()) if isinstance(part, str) else None
            if not m:
                raise err(key, f'must be "HH:MM-HH:MM", not {part!r}')
            h1, m1, h2, m2 = map(int, m.groups())
            if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
                raise err(key, f"not a time of day in {part.strip()!r}")
            a, b = h1 * 60 + m1, h2 * 60 + m2
            if b <= a:
                raise err(key, f"closes before it opens in {part.strip()!r}")
            ranges.append((a, b))
    ranges.sort()
    for (_, b1), (a2, _) in itertools.pairwise(ranges):
        if a2 < b1:
            raise err(key, "overlapping hours")
    return tuple(ranges)


def _date(value: Any, key: str, err: Any) -> date:
    """A local date: TOML's own ``2026-12-24`` or the string ``"2026-12-24"``."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE.match(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise err(key, f"must be a date YYYY-MM-DD, not {value!r}")


def _calendar(
    site: dict[str, Any], hours: dict[int, tuple[tuple[int, int], ...]], err: Any
) -> tuple[str | None, frozenset[date], dict[date, tuple[tuple[int, int], ...]]]:
    """``holidays``, ``closed_dates`` and ``open_dates`` of the [site] table."""
    name = site.get("holidays", "FI")
    known = ", ".join([*CALENDARS, NO_HOLIDAYS])
    if not isinstance(name, str) or (name not in CALENDARS and name != NO_HOLIDAYS):
        raise err("site.holidays", f"unknown holiday calendar {name!r} (known: {known})")
    calendar = None if name == NO_HOLIDAYS else name

    raw_closed = site.get("closed_dates", [])
    if not isinstance(raw_closed, list):
        raise err("site.closed_dates", 'must be a list of dates, e.g. ["2026-12-23"]')
    closed = frozenset(_date(v, f"site.closed_dates[{i}]", err) for i, v in enumerate(raw_closed))

    raw_open = site.get("open_dates", [])
    opened: dict[date, tuple[tuple[int, int], ...]] = {}
    if isinstance(raw_open, list):
        # A list opens each date on its weekday's own hours (lifting a holiday or a closure).
        for i, v in enumerate(raw_open):
            key = f"site.open_dates[{i}]"
            day = _date(v, key, err)
            spans = hours.get(day.weekday(), ())
            if not spans:
                raise err(
                    key,
                    f"{day} is a {DAYS[day.weekday()]}, which has no opening hours; give its hours: "
                    f'open_dates = {{ "{day}" = "10:00-16:00" }}',
                )
            opened[day] = spans
    elif isinstance(raw_open, dict):
        for k, spec in raw_open.items():
            key = f"site.open_dates.{k}"
            opened[_date(k, key, err)] = _ranges(spec, key, err)
    else:
        raise err(
            "site.open_dates",
            'must be a list of dates or a table of date = "HH:MM-HH:MM", e.g. { "2026-05-02" = "10:00-16:00" }',
        )
    both = sorted(closed & opened.keys())
    if both:
        raise err("site.open_dates", f"{both[0]} is also in site.closed_dates")
    return calendar, closed, opened
