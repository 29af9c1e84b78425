"""The simulated clock: ``speed`` simulated seconds pass per real second."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(slots=True, frozen=True)
class SimClock:
    #: Simulated time at ``real_start``.
    sim_start: datetime
    #: A ``time.monotonic()`` reading.
    real_start: float
    speed: float

    def __post_init__(self) -> None:
        if not self.speed > 0 or self.speed == float("inf"):
            raise ValueError(f"speed must be a positive number, not {self.speed!r}")
        if self.sim_start.tzinfo is None:
            raise ValueError("sim_start must be timezone-aware")

    def real_at(self, sim: datetime) -> float:
        """The monotonic time at which the simulated clock shows ``sim``."""
        return self.real_start + (sim - self.sim_start).total_seconds() / self.speed

    def sim_at(self, real: float) -> datetime:
        """What the simulated clock shows at monotonic time ``real``."""
        return self.sim_start + timedelta(seconds=(real - self.real_start) * self.speed)
