"""The orchestrator's clocks: the host's, or the simulation's when the running loop keeps one.

Timestamps the orchestrator writes into a run's history (observations, faults, the collector's
receive times) and the deadlines it plays a timeline by must follow the nodes' time. For real
processes that is the host clock. The simulation backend runs nodes and orchestrator on one
virtual-time event loop and marks it with `virtual_epoch` (the wall-clock second its time 0
stands for): then wall time is `virtual_epoch + loop.time()`, and no host clock is read, which
is what makes a simulated run repeat byte for byte.
"""

from __future__ import annotations

import asyncio
import time


def _virtual_loop() -> asyncio.AbstractEventLoop | None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return loop if getattr(loop, "virtual_epoch", None) is not None else None


def wall_time() -> float:
    """Seconds since the Unix epoch, as the cluster's nodes see them."""
    loop = _virtual_loop()
    if loop is None:
        return time.time()
    return float(loop.virtual_epoch) + loop.time()  # type: ignore[attr-defined]


def monotonic() -> float:
    """A clock for deadlines and intervals (the loop's own time on a virtual loop)."""
    loop = _virtual_loop()
    return time.monotonic() if loop is None else loop.time()
