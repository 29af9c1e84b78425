"""Answers built from the site and the live state (no I/O, no FastAPI)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from ..sensors.site import DAYS, LANGUAGES, Site, Space
from .live import LiveState
from .models import DeskCounts, GatewayOut, Position, SensorOut, SiteOut, SpaceOut, ZoneOut


def space_out(space: Space, live: LiveState) -> SpaceOut:
    now = live.space(space.id)
    p = space.position
    return SpaceOut(
        id=space.id,
        kind=space.kind,  # type: ignore[arg-type]  # validated against KINDS by the site parser
        zone=space.zone,
        capacity=space.capacity,
        state=now.state,  # type: ignore[arg-type]  # validated against STATES by LiveState
        count=now.count,
        since=now.since,
        name=dict(space.name) if space.name else None,
        position=Position(x=p.x, y=p.y, w=p.w, h=p.h) if p is not None else None,
    )


def space_json(space: Space, live: LiveState) -> str:
    """One space as the SSE ``data:`` line: the same document as in /v1/spaces."""
    return space_out(space, live).model_dump_json()


def spaces_out(site: Site, live: LiveState) -> list[SpaceOut]:
    return [space_out(s, live) for s in site.spaces]


class SpaceDocs:
    """Each space's JSON document (the one /v1/spaces, /v1/spaces/{id} and the stream send), made
    again only when the space's live state has changed.

    LiveState replaces a space's frozen :class:`SpaceLive` on every change, so the object itself says
    whether the document made from it still holds: an identity check per space instead of a pydantic
    model per space and request (which made /v1/spaces a third as fast as a bare FastAPI route).
    """

    def __init__(self, site: Site, live: LiveState) -> None:
        self.site = site
        self.live = live
        self._docs: dict[str, tuple[object, str]] = {}
        #: /v1/spaces as sent, and the LiveState.space_changes it was made at.
        self._body: tuple[int, bytes] = (-1, b"")

    def one(self, space: Space) -> str:
        now = self.live.space(space.id)
        cached = self._docs.get(space.id)
        if cached is not None and cached[0] is now:
            return cached[1]
        doc = space_json(space, self.live)
        self._docs[space.id] = (now, doc)
        return doc

    def all(self) -> list[str]:
        return [self.one(s) for s in self.site.spaces]

    def body(self) -> bytes:
        """/v1/spaces: every space, in site order, as one JSON array."""
        changes = self.live.space_changes
        if self._body[0] != changes:
            self._body = (changes, ("[" + ",".join(self.all()) + "]").encode())
        return self._body[1]


def desk_counts(spaces: Iterable[Space], live: LiveState) -> DeskCounts:
    n = {"free": 0, "occupied": 0, "unknown": 0}
    for s in spaces:
        if s.kind == "desk":
            n[live.space(s.id).state] += 1
    return DeskCounts(free=n["free"], occupied=n["occupied"], unknown=n["unknown"], total=sum(n.values()))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def opening_hours(site: Site) -> dict[str, list[str]]:
    return {
        DAYS[d]: [f"{_hhmm(a)}-{_hhmm(b)}" for a, b in spans]
        for d, spans in sorted(site.opening_hours.items())
    }


def is_open(site: Site, now: datetime) -> bool:
    return bool(site.open_intervals(now, now + timedelta(seconds=1)))


def site_out(site: Site, live: LiveState, now: datetime | None = None) -> SiteOut:
    now = now or datetime.now(UTC)
    zones = [
        ZoneOut(
            id=z.id,
            name=dict(z.name),
            desks=desk_counts((s for s in site.spaces if s.zone == z.id), live),
            spaces=sum(1 for s in site.spaces if s.zone == z.id),
        )
        for z in site.zones
    ]
    return SiteOut(
        id=site.id,
        name=dict(site.name),
        timezone=site.timezone,
        opening_hours=opening_hours(site),
        open_now=is_open(site, now),
        languages=list(LANGUAGES),
        desks=desk_counts(site.spaces, live),
        zones=zones,
    )


def sensors_out(site: Site, live: LiveState) -> list[SensorOut]:
    out = []
    for s in site.sensors:
        st = live.sensor(s.id)
        out.append(
            SensorOut(
                id=s.id,
                space=s.space,
                online=st.online,
                battery=st.battery,
                last_seen=st.last_seen,
                linkquality=st.linkquality,
            )
        )
    return out


def gateways_out(live: LiveState) -> list[GatewayOut]:
    return [
        GatewayOut(id=gid, status=g.status, health=g.health)  # type: ignore[arg-type]  # online/offline/None
        for gid, g in live.gateways().items()
    ]
