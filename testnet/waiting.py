"""The one way to wait: poll a condition until it holds, or fail naming it and what was last seen.

    await wait_until(lambda: cluster.converged_now(), 30, "nodes to agree",
                     last=lambda: describe(statuses))

Every wait of the orchestrator and of the test helpers goes through here, so that

- timeouts scale with `TESTNET_TIMEOUT_FACTOR` (e.g. 3 on a slow CI machine), in one place;
- a timeout always says what was awaited, for how long, and the last state seen (`last` returns
  that description, or the predicate's last non-truthy answer is shown when it says something);
- nobody sleeps "to let things settle": the wait ends the moment the condition holds.

A predicate may be a plain function or a coroutine function; `wait_until` awaits what it returns
when that is awaitable. `wait_until_sync` is the same for code without an event loop (subprocess
drivers, Docker calls). Time is the event loop's clock (`loop.time()`), so a test loop with a
virtual clock waits in virtual time.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import Callable
from typing import Any

from testnet.errors import TestnetError, WaitTimeout

TIMEOUT_FACTOR_ENV = "TESTNET_TIMEOUT_FACTOR"
DEFAULT_INTERVAL_S = 0.2


def timeout_factor() -> float:
    """The factor every wait's timeout is multiplied by (1 unless the environment says)."""
    raw = os.environ.get(TIMEOUT_FACTOR_ENV, "").strip()
    if not raw:
        return 1.0
    try:
        factor = float(raw)
    except ValueError:
        raise TestnetError(f"{TIMEOUT_FACTOR_ENV} must be a number like 2 or 1.5, got {raw!r}"
                           ) from None
    if not factor > 0:
        raise TestnetError(f"{TIMEOUT_FACTOR_ENV} must be positive, got {raw!r}")
    return factor


def scaled(timeout: float) -> float:
    """`timeout` as this machine should wait it."""
    return timeout * timeout_factor()


def _timeout_message(what: str, timeout: float, last: Callable[[], Any] | None,
                     last_value: Any) -> str:
    message = f"timed out after {timeout:.1f} s waiting for {what}"
    seen: Any = None
    if last is not None:
        try:
            seen = last()
        except Exception as exc:  # noqa: BLE001  describing the state must not hide the timeout
            seen = f"(could not describe it: {type(exc).__name__}: {exc})"
    elif last_value not in (None, False, 0, "", [], {}):
        seen = last_value
    return f"{message}; last seen: {seen}" if seen not in (None, "") else message


async def wait_until(predicate: Callable[[], Any], timeout: float, what: str, *,
                     interval: float = DEFAULT_INTERVAL_S,
                     last: Callable[[], Any] | None = None) -> Any:
    """Polls `predicate` every `interval` until it returns something truthy, and returns that.

    Raises WaitTimeout after `timeout` (scaled by TESTNET_TIMEOUT_FACTOR) naming `what` and the
    last state (`last()`, or the predicate's last answer when that is not simply false).
    Exceptions from the predicate propagate: a node that is gone is the predicate's to handle.
    """
    loop = asyncio.get_running_loop()
    budget = scaled(timeout)
    deadline = loop.time() + budget
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            raise WaitTimeout(_timeout_message(what, budget, last, value))
        await asyncio.sleep(interval)


def wait_until_sync(predicate: Callable[[], Any], timeout: float, what: str, *,
                    interval: float = DEFAULT_INTERVAL_S,
                    last: Callable[[], Any] | None = None) -> Any:
    """`wait_until` for code without an event loop."""
    budget = scaled(timeout)
    deadline = time.monotonic() + budget
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(_timeout_message(what, budget, last, value))
        time.sleep(interval)


async def wait_for_change(predicate: Callable[[], Any], changed: asyncio.Event, timeout: float,
                          what: str, *, last: Callable[[], Any] | None = None,
                          recheck_s: float = 0.5) -> Any:
    """Like `wait_until`, but re-checks as soon as `changed` is set (and at least every
    `recheck_s`) instead of on a fixed poll: for conditions on state this process updates."""
    loop = asyncio.get_running_loop()
    budget = scaled(timeout)
    deadline = loop.time() + budget
    while True:
        value = predicate()
        if value:
            return value
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise WaitTimeout(_timeout_message(what, budget, last, value))
        changed.clear()
        try:
            await asyncio.wait_for(changed.wait(), min(remaining, recheck_s))
        except TimeoutError:
            pass
