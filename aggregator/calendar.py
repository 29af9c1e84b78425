"""The site's local calendar over a window of 15-minute slots, as numpy arrays.

For every slot of a window: its open seconds (opening hours, public holidays and the site's own
closed and open dates, all in local time) and the UTC offset in force when it starts. From those
follow the local hour, day and weekday each slot belongs to (a slot belongs to the local hour it
starts in), so the metrics group slots without a ``datetime`` per slot. Daylight saving changes the
offset: the spring-forward day has 23 local hours and the autumn day 25, and the autumn day's two
03:00 hours are two groups because their offsets differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from ..sensors.site import Site
from .buckets import BUCKET_SECONDS

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

#: 1970-01-01, local day 0 of the epoch, was a Thursday (Monday = 0).
_EPOCH_WEEKDAY = 3


def utc_offsets(tz: ZoneInfo, starts: Ints) -> Ints:
    """The UTC offset (seconds) in force at each of ``starts`` (epoch seconds, ascending).

    Offsets are sampled once a day and, where two samples differ, the change is found by bisection:
    one zoneinfo call per day instead of one per slot. This assumes offset changes at least a day
    apart, which holds for every zone's rules today (DST changes are months apart).
    """
    n = len(starts)
    if n == 0:
        return np.zeros(0, dtype=np.int64)

    def offset(i: int) -> int:
        off = datetime.fromtimestamp(int(starts[i]), tz).utcoffset()
        return int(off.total_seconds()) if off is not None else 0

    step = max(1, 86400 // max(1, int(starts[1] - starts[0]) if n > 1 else 1))
    samples = [*range(0, n, step), n - 1]
    out = np.empty(n, dtype=np.int64)
    lo, lo_off = samples[0], offset(samples[0])
    for hi in samples[1:]:
        hi_off = offset(hi)
        if hi_off == lo_off:
            out[lo : hi + 1] = lo_off
        else:
            # The first index with the new offset lies in (lo, hi].
            a, b = lo, hi
            while b - a > 1:
                mid = (a + b) // 2
                if offset(mid) == lo_off:
                    a = mid
                else:
                    b = mid
            out[lo:b] = lo_off
            out[b : hi + 1] = hi_off
        lo, lo_off = hi, hi_off
    return out


def open_seconds(site: Site, starts: Ints, length: int = BUCKET_SECONDS) -> Floats:
    """Open seconds of each slot [s, s + length) for ``starts`` evenly spaced by ``length``."""
    n = len(starts)
    if n == 0:
        return np.zeros(0)
    a, b = int(starts[0]), int(starts[-1]) + length
    spans = site.open_intervals(datetime.fromtimestamp(a, UTC), datetime.fromtimestamp(b, UTC))
    if not spans:
        return np.zeros(n)
    x = np.array([s.timestamp() for s, _ in spans])
    y = np.array([e.timestamp() for _, e in spans])
    # Open time before t is piecewise linear: the lengths of the spans ended before t plus the part
    # of the span t is in. Slot i's open seconds are its difference between the slot's two edges.
    # (Spans are disjoint and in time order: one day's ranges never overlap and days follow.)
    before = np.concatenate([[0.0], np.cumsum(y - x)])
    edges = np.append(starts, b).astype(np.float64)
    k = np.searchsorted(x, edges, side="right") - 1
    inside = np.where(k >= 0, np.clip(edges - x[np.maximum(k, 0)], 0.0, (y - x)[np.maximum(k, 0)]), 0.0)
    cum = np.where(k >= 0, before[np.maximum(k, 0)] + inside, 0.0)
    return np.diff(cum)


@dataclass(slots=True, frozen=True)
class Calendar:
    """Slots [a, b) of a site: start, open seconds and UTC offset of each, as arrays."""

    site: Site
    a: int
    b: int
    starts: Ints
    open_s: Floats
    offsets: Ints

    @classmethod
    def of(cls, site: Site, a: int, b: int) -> Calendar:
        starts = np.arange(a, b, BUCKET_SECONDS, dtype=np.int64)
        return cls(site, a, b, starts, open_seconds(site, starts), utc_offsets(site.tz, starts))

    @property
    def n(self) -> int:
        return len(self.starts)

    @property
    def local(self) -> Ints:
        """Each slot's start as local wall-clock seconds since the epoch."""
        return self.starts + self.offsets

    def intervals(self, interval: str) -> tuple[Ints, list[datetime]]:
        """Each slot's interval index and each interval's start, for ``15m``, ``1h``, ``1d``, ``1w``,
        ``1mo``, ``total``.

        Intervals are runs of consecutive slots, in time order; an interval's start is the local
        start of its quarter, hour, day, week (Monday, as ISO 8601 weeks) or calendar month (its
        midnight even when the window starts later), or the window's start for ``total``.
        """
        tz = self.site.tz
        if self.n == 0:
            return np.zeros(0, dtype=np.int64), []
        if interval == "total":
            return np.zeros(self.n, dtype=np.int64), [datetime.fromtimestamp(self.a, tz)]
        if interval == "15m":
            key = self.starts
        elif interval == "1h":
            # The UTC instant of the local hour's start: the autumn day's two 03:00 hours differ.
            key = self.local // 3600 * 3600 - self.offsets
        elif interval == "1d":
            key = self.local // 86400
        elif interval == "1w":
            # Local days since the epoch's Monday (1969-12-29) ÷ 7: the week's Monday as a day number.
            days = self.local // 86400
            key = days - (days + _EPOCH_WEEKDAY) % 7
        elif interval == "1mo":
            key = _month_first_days(self.local // 86400)
        else:
            raise ValueError(f"unknown interval {interval!r}")
        change = np.flatnonzero(key[1:] != key[:-1]) + 1
        index = np.zeros(self.n, dtype=np.int64)
        index[change] = 1
        np.cumsum(index, out=index)
        firsts = np.concatenate([[0], change])
        if interval in ("1d", "1w", "1mo"):
            days = (datetime.fromtimestamp(int(d) * 86400, UTC).date() for d in key[firsts])
            # Midnight in the zone, localised afresh: its offset may differ from the first slot's.
            labels = [datetime(d.year, d.month, d.day, tzinfo=tz) for d in days]
        else:
            labels = [datetime.fromtimestamp(int(k), tz) for k in key[firsts]]
        return index, labels

    def weekday_hour(self) -> Ints:
        """Each slot's heatmap cell: local weekday (0 = Monday) × 24 + local hour it starts in."""
        local = self.local
        weekday = (local // 86400 + _EPOCH_WEEKDAY) % 7
        return weekday * 24 + (local % 86400) // 3600


def _month_first_days(days: Ints) -> Ints:
    """The first day of each local day's calendar month, both as days since 1970-01-01."""
    months = days.astype("datetime64[D]").astype("datetime64[M]")
    return months.astype("datetime64[D]").astype(np.int64)
