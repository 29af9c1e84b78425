"""15-minute utilisation buckets: how a space's state over time is accrued into them.

A bucket holds, for one space and one 15-minute slot (aligned in UTC, which is aligned in every
time zone whose offset is a whole number of quarter hours: all of them today), the seconds within
opening hours during which the space was occupied, the seconds with a known state (coverage), the
integral of the head count over occupied open time, and the peak head count. Opening seconds
themselves come from the site, not from the bucket, so a slot with no data at all still counts as
open time with zero coverage.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from ..sensors.site import Site

BUCKET_SECONDS = 15 * 60


@dataclass(slots=True)
class Bucket:
    space: str
    #: Slot start, UTC epoch seconds, a multiple of BUCKET_SECONDS.
    start: int
    occupied_s: float = 0.0
    covered_s: float = 0.0
    count_s: float = 0.0
    peak: int = 0

    def as_tuple(self) -> tuple[str, int, float, float, float, int]:
        return (self.space, self.start, self.occupied_s, self.covered_s, self.count_s, self.peak)


def slot(t: float) -> int:
    return int(t // BUCKET_SECONDS) * BUCKET_SECONDS


class OpenHours:
    """Opening hours per 15-minute slot as epoch-second spans, memoised (zoneinfo is slow)."""

    def __init__(self, site: Site, cache_size: int = 4096) -> None:
        self.site = site
        self._cache: OrderedDict[int, tuple[tuple[float, float], ...]] = OrderedDict()
        self._size = cache_size

    def spans(self, start: int) -> tuple[tuple[float, float], ...]:
        spans = self._cache.get(start)
        if spans is None:
            a = datetime.fromtimestamp(start, UTC)
            b = datetime.fromtimestamp(start + BUCKET_SECONDS, UTC)
            spans = tuple((x.timestamp(), y.timestamp()) for x, y in self.site.open_intervals(a, b))
            self._cache[start] = spans
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return spans

    def open_seconds(self, start: int) -> float:
        return sum(b - a for a, b in self.spans(start))

    def overlap(self, a: float, b: float) -> float:
        """Open seconds within [a, b), which must lie inside one slot."""
        total = 0.0
        for x, y in self.spans(slot(a)):
            lo, hi = max(a, x), min(b, y)
            if hi > lo:
                total += hi - lo
        return total


def accrue(
    buckets: dict[int, Bucket],
    space: str,
    hours: OpenHours,
    a: float,
    b: float,
    state: str,
    count: int,
) -> None:
    """Add the interval [a, b) spent in ``state`` with ``count`` people to the space's buckets."""
    t = a
    while t < b:
        s = slot(t)
        end = min(b, s + BUCKET_SECONDS)
        open_s = hours.overlap(t, end)
        if open_s > 0:
            bucket = buckets.get(s)
            if bucket is None:
                bucket = buckets[s] = Bucket(space, s)
            if state != "unknown":
                bucket.covered_s += open_s
            if state == "occupied":
                bucket.occupied_s += open_s
                bucket.count_s += open_s * count
                bucket.peak = max(bucket.peak, count)
        t = end
