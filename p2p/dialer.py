"""Dialer: keep one outbound connection per configured peer URL, with exponential backoff.

One loop per URL dials, serves the connection until it ends (through the host's `dial_once`),
then waits a backoff delay -- 0.2 s doubling to 5 s, jittered by the host rng, reset after a
connection that got through the handshake -- and dials again. Before dialing it waits while
the peer behind that URL is already connected by another link (e.g. it dialed us and the
duplicate-connection rule kept that one), so neither side thrashes. `reset_backoff` cuts a
backoff wait short and starts the delays over, e.g. when a partition heals (link_shaper.py).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Awaitable, Callable, Iterable

INITIAL_BACKOFF_S = 0.2
MAX_BACKOFF_S = 5.0
BACKOFF_JITTER = 0.25  # each delay is scaled by a factor in [1 - j, 1 + j]


class DialOutcome(enum.Enum):
    ESTABLISHED = "established"  # the handshake succeeded (the link has ended since)
    FAILED = "failed"  # no connection, or the handshake failed
    GIVE_UP = "give up"  # never dial this URL again (it is ourselves)


class Backoff:
    def __init__(self, rng: random.Random, initial: float = INITIAL_BACKOFF_S,
                 maximum: float = MAX_BACKOFF_S) -> None:
        self._rng = rng
        self._initial = initial
        self._maximum = maximum
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next * self._rng.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)
        self._next = min(self._next * 2, self._maximum)
        return min(delay, self._maximum)

    def reset(self) -> None:
        self._next = self._initial


class Dialer:
    def __init__(
        self,
        *,
        dial_once: Callable[[str], Awaitable[DialOutcome]],
        wait_until_needed: Callable[[str], Awaitable[None]],
        rng: random.Random,
        log: logging.Logger,
    ) -> None:
        self._dial_once = dial_once
        self._wait_until_needed = wait_until_needed
        self._rng = rng
        self._log = log
        self._urls: list[str] = []
        self._tasks: dict[str, asyncio.Task] = {}
        self._serving: set[str] = set()  # URLs whose loop is inside dial_once
        self._backoffs: dict[str, Backoff] = {}
        self._wakeups: dict[str, asyncio.Event] = {}  # set to end a loop's backoff wait early
        self._task_group: asyncio.TaskGroup | None = None

    @property
    def urls(self) -> list[str]:
        return list(self._urls)

    def add(self, url: str) -> None:
        if url in self._urls:
            return
        self._urls.append(url)
        if self._task_group is not None and url not in self._tasks:  # else its old loop goes on
            self._start(url)

    def remove(self, url: str, *, wait_for_connection: bool = False) -> None:
        """Stop dialing `url`. With `wait_for_connection` a loop that is serving a connection
        ends when that connection does (the host closes it gracefully); else it is cancelled."""
        if url in self._urls:
            self._urls.remove(url)
        if not (wait_for_connection and url in self._serving):
            task = self._tasks.pop(url, None)
            if task is not None:
                task.cancel()

    def reset_backoff(self, urls: Iterable[str] | None = None) -> None:
        """Dial `urls` (default: every URL) again soon: end their backoff wait, restart the
        delays."""
        for url in self._urls if urls is None else urls:
            backoff = self._backoffs.get(url)
            if backoff is not None:
                backoff.reset()
            wakeup = self._wakeups.get(url)
            if wakeup is not None:
                wakeup.set()

    async def run(self) -> None:
        """Run the dial loops. Returns: never; ends when cancelled, cancelling every loop."""
        try:
            async with asyncio.TaskGroup() as task_group:
                self._task_group = task_group
                for url in self._urls:
                    self._start(url)
                await asyncio.Future()  # the loops run until we are cancelled
        finally:
            self._task_group = None
            self._tasks.clear()
            self._backoffs.clear()
            self._wakeups.clear()

    def _start(self, url: str) -> None:
        assert self._task_group is not None
        self._tasks[url] = self._task_group.create_task(self._dial_loop(url))

    async def _dial_loop(self, url: str) -> None:
        """Keep `url` connected. Returns on GIVE_UP or once `url` was removed; else ends when
        cancelled.

        Error handling: dial and handshake failures are reported by `dial_once` (which logs them)
        and only lengthen the backoff.
        """
        backoff = self._backoffs[url] = Backoff(self._rng)
        wakeup = self._wakeups[url] = asyncio.Event()
        while True:
            await self._wait_until_needed(url)
            self._serving.add(url)
            try:
                outcome = await self._dial_once(url)
            finally:
                self._serving.discard(url)
            if url not in self._urls:
                self._tasks.pop(url, None)
                return
            if outcome is DialOutcome.GIVE_UP:
                self._log.warning("no longer dialing %s", url)
                self._tasks.pop(url, None)
                return
            if outcome is DialOutcome.ESTABLISHED:
                backoff.reset()
            await _pause(backoff.next_delay(), wakeup)


async def _pause(seconds: float, wakeup: asyncio.Event) -> None:
    """Sleep `seconds`, or not at all once `wakeup` is set (also if it was set during the dial)."""
    try:
        async with asyncio.timeout(seconds):
            await wakeup.wait()
    except TimeoutError:
        pass
    wakeup.clear()
