"""The node's clock: a time source (the host's wall clock by default) plus an adjustable offset
(for clock-skew experiments).

Every timestamp decision (block times, the future-time rule, event times, slot timers) reads this
clock, so a skewed node behaves as a node whose clock is really wrong. The time source is the
seam a simulation uses: `epoch + loop.time()` on a virtual-time loop makes the node's wall clock
virtual too. Durations (uptime, hash-rate windows) read the running loop's clock (`loop_time`),
which is `time.monotonic()` on asyncio's own loop and virtual time on a simulated one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class NodeClock:
    def __init__(self, time_source: Callable[[], float] = time.time,
                 offset_s: float = 0.0) -> None:
        self.time_source = time_source
        self.offset_s = offset_s

    def now(self) -> float:
        """Wall-clock seconds as this node believes them (time source + skew)."""
        return self.time_source() + self.offset_s

    def __call__(self) -> float:
        return self.now()


def loop_time() -> float:
    """The running event loop's clock in seconds; raises RuntimeError outside a running loop."""
    return asyncio.get_running_loop().time()


async def sleep_until(now_ms: Callable[[], int], t_ms: int) -> None:
    """Sleep until `now_ms()` reads at least `t_ms` (a slot start on the node's clock).

    The clock is read again after each sleep, so the wait follows the node's clock rather than the
    loop's: a skew set back meanwhile extends it, and rounding between a virtual loop's time and a
    wall-clock time source (an epoch of ~1.7e9 s leaves float steps of ~0.2 us) cannot wake a duty
    a millisecond before its slot."""
    while (delay := (t_ms - now_ms()) / 1000) > 0:
        await asyncio.sleep(delay)
