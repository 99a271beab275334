"""The default clock of p2p/: the running event loop's time, in seconds.

On asyncio's own loop this is `time.monotonic()`; on a virtual-time loop (testnet/sim/loop.py) it
is virtual time. Timing in p2p/ (link shaping, seen-cache ages, the host clock when node/ gives
none) reads this instead of `time.monotonic`, so it follows whichever loop runs the host.
"""

from __future__ import annotations

import asyncio


def loop_time() -> float:
    """The running loop's `time()`; raises RuntimeError outside a running loop."""
    return asyncio.get_running_loop().time()
