"""Apply each (gateway, sequence number) once: QoS 1 redelivers, gateways resend after restarts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Sequence numbers remembered above the contiguous floor before the floor is moved up. A gateway
#: sends in order, so the set stays small unless numbers go missing; 100k bounds memory (~8 MB).
MAX_ABOVE = 100_000


@dataclass(slots=True)
class SeqTracker:
    #: Every sequence number up to and including ``floor`` has been applied.
    floor: int = 0
    above: set[int] = field(default_factory=set)
    compacted: int = 0

    def seen(self, seq: int) -> bool:
        return seq <= self.floor or seq in self.above

    def add(self, seq: int) -> bool:
        """Record ``seq``; False when it was already applied."""
        if self.seen(seq):
            return False
        if seq == self.floor + 1:
            self.floor = seq
            while self.floor + 1 in self.above:
                self.floor += 1
                self.above.discard(self.floor)
        else:
            self.above.add(seq)
            if len(self.above) > MAX_ABOVE:
                # Numbers below the oldest remembered one are taken as never coming (counted).
                self.compacted += 1
                lowest = min(self.above)
                self.floor = lowest
                self.above.discard(lowest)
                while self.floor + 1 in self.above:
                    self.floor += 1
                    self.above.discard(self.floor)
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"floor": self.floor, "above": sorted(self.above)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeqTracker:
        return cls(int(d["floor"]), set(d.get("above", ())))
