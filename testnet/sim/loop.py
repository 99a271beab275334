"""A virtual-time asyncio event loop: the clock jumps to the next timer when nothing is ready.

The simulation backend runs many nodes' asyncio code in one process on this loop. `loop.time()`
starts at `start` (0 by default) and moves only when every task waits: the selector, asked to
wait `timeout` seconds for I/O, never blocks and instead advances the clock to the earliest
scheduled timer. `asyncio.sleep`, `call_later`/`call_at`, `asyncio.timeout`, `wait_for` and
TaskGroup all use the loop's timers, so they run on virtual time unchanged. The wall clock is
never read, there is no thread and no real I/O, so a run is a pure function of its inputs.

Callbacks due at the same virtual time run in the order they were scheduled: timers carry a
sequence number (asyncio's own heap compares the due time only, and a heap is not stable).
If nothing is ready and no timer is scheduled, every task waits for something that can never
happen: the loop raises `Deadlock` instead of hanging.

Why not `looptime` (nolar/looptime 0.9, evaluated): it patches an existing loop for tests, so
it keeps doing real `select()` polling; before each time jump it spins 42 no-op loop cycles
(to let code arm its timers), which at thousands of nodes multiplies the scheduler's work; when
idle with no timer it waits in real-time steps; it reads `time.perf_counter` to synchronise
with executors; and it does not order same-time timers. What the simulation needs is the
opposite of each: no I/O, a jump per timer, a deadlock error, FIFO ties -- about sixty lines on
top of `asyncio.SelectorEventLoop` with a selector that never blocks, and no new dependency.

Unsupported on this loop (they need real I/O or threads), and refused with RuntimeError rather
than left to wait for ever: sockets and pipes (`add_reader`/`add_writer`), subprocesses,
`run_in_executor` (so `asyncio.to_thread`); `call_soon_threadsafe` from another thread would not
wake it.
"""

from __future__ import annotations

import asyncio
import heapq
import selectors
from collections.abc import Callable, Coroutine
from contextvars import Context
from typing import Any, TypeVar

T = TypeVar("T")


class Deadlock(RuntimeError):
    """Every task waits, and no timer is scheduled: nothing can ever happen again."""


class _OrderedTimerHandle(asyncio.TimerHandle):
    """A timer that sorts by (due time, scheduling order)."""

    __slots__ = ("_sequence",)

    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...],
                 loop: asyncio.AbstractEventLoop, context: Context | None,
                 sequence: int) -> None:
        super().__init__(when, callback, args, loop, context=context)
        self._sequence = sequence

    def __lt__(self, other: object) -> bool:
        if isinstance(other, _OrderedTimerHandle):
            return ((self._when, self._sequence)  # type: ignore[attr-defined]
                    < (other._when, other._sequence))  # type: ignore[attr-defined]
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, _OrderedTimerHandle):
            return ((self._when, self._sequence)  # type: ignore[attr-defined]
                    <= (other._when, other._sequence))  # type: ignore[attr-defined]
        return NotImplemented


class _TimeJumpSelector(selectors.BaseSelector):
    """A selector with nothing to select: "wait `timeout`" moves the loop's clock instead."""

    def __init__(self) -> None:
        self._map: dict[Any, selectors.SelectorKey] = {}
        self.loop: VirtualTimeLoop | None = None

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        # Only the loop's own self-pipe may register (asyncio does it while the loop is built);
        # it stays silent. Any other file is real I/O, which would wait for ever here: refuse it.
        if self.loop is not None:
            raise RuntimeError(f"a virtual-time loop does no real I/O (register {fileobj!r}): "
                               f"use the in-memory transport and connector")
        key = selectors.SelectorKey(fileobj, fileobj if isinstance(fileobj, int)
                                    else fileobj.fileno(), events, data)
        self._map[fileobj] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._map.pop(fileobj)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        assert self.loop is not None
        if timeout is None:
            raise Deadlock(f"every task waits and no timer is scheduled "
                           f"(virtual time {self.loop.time():.6f} s)")
        if timeout > 0:
            self.loop._jump_to_next_timer()
        return []

    def close(self) -> None:
        self._map.clear()

    def get_map(self) -> Any:
        return self._map


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on virtual time; see the module docstring."""

    def __init__(self, start: float = 0.0, *, virtual_epoch: float | None = None) -> None:
        """`virtual_epoch`: the Unix time that loop time 0 stands for; with it, the
        orchestrator's and the nodes' wall clocks read `virtual_epoch + loop.time()`
        (testnet/clock.py) instead of the host clock."""
        selector = _TimeJumpSelector()
        super().__init__(selector)
        selector.loop = self
        self.virtual_epoch = virtual_epoch
        self._now = float(start)
        self._timer_sequence = 0
        self._clock_resolution = 1e-9

    def time(self) -> float:
        return self._now

    @property
    def timers_scheduled(self) -> int:
        """Timers scheduled since the loop was made (sleeps, timeouts, call_later): a measure
        of the scheduler's work."""
        return self._timer_sequence

    def call_at(  # type: ignore[override]
        self, when: float, callback: Callable[..., object], *args: Any,
        context: Context | None = None,
    ) -> asyncio.TimerHandle:
        self._check_closed()  # type: ignore[attr-defined]
        timer = _OrderedTimerHandle(when, callback, args, self, context, self._timer_sequence)
        self._timer_sequence += 1
        heapq.heappush(self._scheduled, timer)  # type: ignore[attr-defined]
        timer._scheduled = True  # type: ignore[attr-defined]
        return timer

    def _jump_to_next_timer(self) -> None:
        scheduled: list[asyncio.TimerHandle] = self._scheduled  # type: ignore[attr-defined]
        if scheduled:
            self._now = max(self._now, scheduled[0].when())

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., T], *args: Any,
    ) -> asyncio.Future[T]:
        raise RuntimeError("a virtual-time loop runs no threads (run_in_executor)")


def run(main: Coroutine[Any, Any, T], *, until: float | None = None,
        start: float = 0.0, virtual_epoch: float | None = None) -> T | None:
    """Run `main` on a new VirtualTimeLoop; returns its result.

    With `until` (virtual seconds since `start`), `main` is cancelled at that time if still
    running and None is returned. Raises Deadlock if every task waits with no timer left, and
    whatever `main` raises. The loop is closed on the way out, its leftover tasks cancelled.
    """
    loop = VirtualTimeLoop(start, virtual_epoch=virtual_epoch)
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(_bounded(main, until))
    finally:
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


async def _bounded(main: Coroutine[Any, Any, T], until: float | None) -> T | None:
    if until is None:
        return await main
    deadline = asyncio.timeout(until)
    try:
        async with deadline:
            return await main
    except TimeoutError:
        if deadline.expired():
            return None
        raise


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
