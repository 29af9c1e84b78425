"""The HTTP answers' shapes (pydantic at the boundary only; the core uses dataclasses)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema, model_serializer

#: Times keep their UTC offset as given (``+02:00``, ``+00:00``), as the contract asks, rather than
#: pydantic's ``Z`` for UTC.
IsoTime = Annotated[
    datetime,
    PlainSerializer(lambda t: t.isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Names = Annotated[dict[str, str], Field(description="by language: fi, sv, en", examples=[{"fi": "Avotila"}])]
State = Literal["free", "occupied", "unknown"]
Kind = Literal["desk", "room", "booth", "event"]


class Position(BaseModel):
    """Where the space is drawn on the floor plan, in the site's plan units."""

    x: float
    y: float
    w: float
    h: float


class SpaceOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"description": "`name` and `position` only when the site has them"}
    )

    id: str
    kind: Kind
    zone: str
    capacity: int
    state: State
    count: int = Field(description="people there now, as the sensors count them (1 for an occupied desk)")
    since: IsoTime | None = Field(description="when the state began; null if never known")
    name: Names | None = None
    position: Position | None = None

    @model_serializer(mode="wrap")
    def _drop_absent(self, handler: Any):  # type: ignore[no-untyped-def]  # unannotated: keeps the schema
        # Optional site-file keys are left out rather than null, so the answer reads like the site.
        out = handler(self)
        for key in ("name", "position"):
            if out.get(key) is None:
                out.pop(key, None)
        return out


class DeskCounts(BaseModel):
    free: int
    occupied: int
    unknown: int
    total: int


class ZoneOut(BaseModel):
    id: str
    name: Names
    desks: DeskCounts = Field(description="desks of the zone by state (unknown is never counted as free)")
    spaces: int = Field(description="spaces of every kind in the zone")


class SiteOut(BaseModel):
    id: str
    name: Names
    timezone: str
    opening_hours: dict[str, list[str]] = Field(examples=[{"mon": ["07:00-20:00"]}])
    open_now: bool
    languages: list[str]
    desks: DeskCounts
    zones: list[ZoneOut]


class SensorOut(BaseModel):
    id: str
    space: str
    online: bool | None
    battery: float | None = Field(description="percent")
    last_seen: IsoTime | None
    linkquality: int | None = Field(description="Zigbee LQI 0–255")


class GatewayOut(BaseModel):
    id: str
    status: Literal["online", "offline"] | None
    health: dict[str, Any] | None


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    mqtt: bool = Field(description="connected to the broker")
    store: bool = Field(description="the store answers")
    aggregators: dict[str, str] = Field(
        default_factory=dict,
        description="each aggregator instance: ok, degraded (its store is down) or offline",
    )


class UtilisationRow(BaseModel):
    space: str
    start: str = Field(description="start of the interval, ISO 8601 in the site's time zone")
    occupied_seconds: float
    open_seconds: float
    frequency: float | None = Field(description="occupied seconds within opening hours ÷ open seconds")
    occupancy: float | None = Field(description="mean head count while occupied ÷ capacity")
    utilisation: float | None = Field(description="frequency × occupancy")
    mean_count: float | None
    peak_count: int
    coverage: float | None = Field(description="share of open time with live sensor data")


Level = Literal["space", "zone", "kind", "site"]


def _drop_absent_ids(out: dict[str, Any]) -> dict[str, Any]:
    # A row names its group under the level's own key (``"zone": "quiet-zone"``); the other id
    # keys are left out rather than null.
    for key in ("space", "zone", "kind", "site"):
        if key in out and out[key] is None:
            del out[key]
    return out


class UtilisationGroupRow(BaseModel):
    """A row for a group of spaces (``group=zone|kind|site``): sums over the selected spaces."""

    model_config = ConfigDict(
        json_schema_extra={"description": "the group's id is under the key named by `group`"}
    )

    group: Literal["zone", "kind", "site"]
    zone: str | None = None
    kind: Kind | None = None
    site: str | None = None
    start: str = Field(description="start of the interval, ISO 8601 in the site's time zone")
    occupied_seconds: float = Field(description="occupied space-seconds within opening hours")
    open_seconds: float = Field(description="open space-seconds: open seconds × spaces")
    frequency: float | None = Field(description="Σ occupied seconds ÷ Σ open seconds")
    occupancy: float | None = Field(description="Σ head-count-seconds ÷ Σ (capacity × occupied seconds)")
    utilisation: float | None = Field(description="Σ head-count-seconds ÷ Σ (capacity × open seconds)")
    mean_count: float | None = Field(description="Σ head-count-seconds ÷ Σ occupied seconds")
    peak_count: int = Field(
        description="largest Σ over the spaces of their peak in one 15-minute slot: an upper bound "
        "of the largest concurrent head count"
    )
    coverage: float | None = Field(description="Σ seconds with a known state ÷ Σ open seconds")
    spaces: int = Field(description="selected spaces in the group")
    capacity: int = Field(description="seats of those spaces (Σ capacity)")

    @model_serializer(mode="wrap")
    def _drop_absent(self, handler: Any):  # type: ignore[no-untyped-def]  # unannotated: keeps the schema
        return _drop_absent_ids(handler(self))


class HeatmapCell(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"description": "the group's id is under the key named by `group`"}
    )

    group: Level
    space: str | None = None
    zone: str | None = None
    kind: Kind | None = None
    site: str | None = None
    weekday: int = Field(description="0 = Monday … 6 = Sunday", ge=0, le=6)
    day: str = Field(description="mon … sun")
    hour: int = Field(
        description="local hour of the day, 0–23, that the 15-minute slots start in", ge=0, le=23
    )
    open_seconds: float = Field(description="open seconds of one space in these hours over the window")
    frequency: float | None = Field(description="Σ occupied seconds ÷ Σ open seconds")
    occupancy: float | None = Field(description="Σ head-count-seconds ÷ Σ (capacity × occupied seconds)")
    utilisation: float | None = Field(description="Σ head-count-seconds ÷ Σ (capacity × open seconds)")
    coverage: float | None = Field(description="Σ seconds with a known state ÷ Σ open seconds")
    spaces: int = Field(description="selected spaces in the group")

    @model_serializer(mode="wrap")
    def _drop_absent(self, handler: Any):  # type: ignore[no-untyped-def]  # unannotated: keeps the schema
        return _drop_absent_ids(handler(self))


class ErrorOut(BaseModel):
    detail: str


class ValidationErrorOut(BaseModel):
    detail: list[dict[str, Any]]
    message: str = Field(description="the problems in one readable line")
