"""The node's clock: the host's wall clock plus an adjustable offset (for clock-skew experiments).

Every timestamp decision (block times, the future-time rule, event times) reads this clock, so a
skewed node behaves as a node whose clock is really wrong.
"""

from __future__ import annotations

import time


class NodeClock:
    def __init__(self, offset_s: float = 0.0) -> None:
        self.offset_s = offset_s

    def now(self) -> float:
        return time.time() + self.offset_s

    def __call__(self) -> float:
        return self.now()
