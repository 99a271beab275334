"""The one wait: it returns what the condition returned, scales with TESTNET_TIMEOUT_FACTOR, and a
timeout says what was awaited and what was last seen."""

from __future__ import annotations

import asyncio

import pytest

from testnet.errors import TestnetError, WaitTimeout
from testnet.waiting import scaled, timeout_factor, wait_for_change, wait_until, wait_until_sync


async def test_returns_the_first_truthy_answer_of_a_plain_or_async_predicate():
    answers = iter([None, 0, {"height": 3}])
    assert await wait_until(lambda: next(answers), 1, "a height", interval=0) == {"height": 3}

    async def later() -> str:
        await asyncio.sleep(0)
        return "done"
    assert await wait_until(later, 1, "the coroutine") == "done"


async def test_a_timeout_names_the_condition_and_the_last_state():
    seen = {"node0": 4, "node1": 2}
    with pytest.raises(WaitTimeout) as caught:
        await wait_until(lambda: False, 0.05, "node1 to reach height 5", interval=0.01,
                         last=lambda: ", ".join(f"{n} at {h}" for n, h in seen.items()))
    message = str(caught.value)
    assert "waiting for node1 to reach height 5" in message
    assert "last seen: node0 at 4, node1 at 2" in message
    assert isinstance(caught.value, TimeoutError) and isinstance(caught.value, TestnetError)


def test_the_sync_wait_shows_the_last_answer_when_it_says_something():
    answers = iter(["2 of 3 up"] * 1000)
    with pytest.raises(WaitTimeout, match="last seen: 2 of 3 up") as caught:
        wait_until_sync(lambda: next(answers) == "3 of 3 up" or None, 0.05, "every node up",
                        interval=0.01, last=lambda: next(answers))
    assert "every node up" in str(caught.value)


def test_timeouts_scale_with_the_environment(monkeypatch):
    monkeypatch.delenv("TESTNET_TIMEOUT_FACTOR", raising=False)
    assert timeout_factor() == 1 and scaled(30) == 30
    monkeypatch.setenv("TESTNET_TIMEOUT_FACTOR", "2.5")
    assert scaled(30) == 75
    with pytest.raises(WaitTimeout, match=r"after 0\.1 s"):
        wait_until_sync(lambda: False, 0.04, "nothing", interval=0.01)
    monkeypatch.setenv("TESTNET_TIMEOUT_FACTOR", "fast")
    with pytest.raises(TestnetError, match="TESTNET_TIMEOUT_FACTOR"):
        timeout_factor()


async def test_a_change_wakes_the_wait_before_its_poll():
    changed, state = asyncio.Event(), {"ready": False}

    async def flip() -> None:
        await asyncio.sleep(0.01)
        state["ready"] = True
        changed.set()
    task = asyncio.create_task(flip())
    # The recheck is longer than the timeout: only the change can end this wait in time.
    await wait_for_change(lambda: state["ready"], changed, 5, "ready", recheck_s=10)
    await task
