"""The virtual-time loop: timers in order, cancellation, timeouts, speed and repeatability."""

from __future__ import annotations

import asyncio
import time

import pytest

from testnet.sim.loop import Deadlock, VirtualTimeLoop, run


def test_time_starts_at_zero_or_the_given_start():
    async def now() -> float:
        return asyncio.get_running_loop().time()

    assert run(now()) == 0.0
    assert run(now(), start=500.0) == 500.0


def test_timers_fire_in_due_order_and_same_time_ones_in_scheduling_order():
    fired: list[tuple[float, str]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for name, delay in [("c", 3.0), ("a", 1.0), ("b1", 2.0), ("b2", 2.0), ("b3", 2.0)]:
            loop.call_later(delay, lambda name=name: fired.append((loop.time(), name)))
        for index in range(20):  # many ties: a heap alone would not keep them in order
            loop.call_at(5.0, lambda index=index: fired.append((loop.time(), f"t{index}")))
        await asyncio.sleep(10)

    run(main())
    assert fired == ([(1.0, "a"), (2.0, "b1"), (2.0, "b2"), (2.0, "b3"), (3.0, "c")]
                     + [(5.0, f"t{index}") for index in range(20)])


def test_cancelled_timers_and_tasks_do_not_run():
    fired: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        fired.append(name)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        handle = loop.call_later(1.0, fired.append, "timer")
        task = asyncio.create_task(sleeper("task", 2.0))
        kept = asyncio.create_task(sleeper("kept", 3.0))
        await asyncio.sleep(0.5)
        handle.cancel()
        task.cancel()
        await kept
        return loop.time()

    assert run(main()) == 3.0
    assert fired == ["kept"]


def test_timeout_and_wait_for_expire_on_virtual_time():
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        marks = []
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(2.5):
                await asyncio.sleep(100)
        marks.append(loop.time())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), 1.5)
        marks.append(loop.time())
        return marks

    assert run(main()) == [2.5, 4.0]


def test_task_group_children_run_concurrently_in_virtual_time():
    async def main() -> float:
        async with asyncio.TaskGroup() as task_group:
            for seconds in (1.0, 5.0, 3.0):
                task_group.create_task(asyncio.sleep(seconds))
        return asyncio.get_running_loop().time()

    assert run(main()) == 5.0


def test_an_hour_of_sleeps_takes_milliseconds():
    async def ticker(period: float, ticks: list[float]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            ticks.append(loop.time())

    ticks: list[float] = []

    async def main() -> None:
        async with asyncio.TaskGroup() as task_group:
            for period in (1.0, 7.0, 60.0):
                task_group.create_task(ticker(period, ticks))

    wall = time.perf_counter()
    assert run(main(), until=3600.5) is None  # the tickers never end: cancelled at `until`
    assert time.perf_counter() - wall < 2.0  # typically ~30 ms
    assert len(ticks) == 3600 + 514 + 60
    assert ticks[-1] == 3600.0


def test_run_until_cancels_main_at_that_virtual_time():
    async def forever() -> None:
        await asyncio.Event().wait()

    async def main() -> float:
        loop = asyncio.get_running_loop()
        asyncio.get_running_loop().call_later(10, lambda: None)
        try:
            await asyncio.sleep(3600)
        finally:
            ended.append(loop.time())
        return loop.time()

    ended: list[float] = []
    assert run(main(), until=42.0) is None
    assert ended == [42.0]


def test_a_timeout_raised_inside_main_is_not_mistaken_for_the_end_of_the_run():
    async def main() -> None:
        async with asyncio.timeout(1):
            await asyncio.sleep(5)

    with pytest.raises(TimeoutError):
        run(main(), until=100.0)


def test_deadlock_is_reported_instead_of_hanging():
    async def main() -> None:
        await asyncio.Event().wait()

    with pytest.raises(Deadlock):
        run(main())


def _trace(seed: int) -> list[tuple[float, int, int]]:
    import random

    async def worker(rng: random.Random, name: int, trace: list[tuple[float, int, int]]) -> None:
        loop = asyncio.get_running_loop()
        for step in range(50):
            await asyncio.sleep(rng.choice([0.0, 0.001, 0.5, 1.0]))
            trace.append((loop.time(), name, step))

    async def main() -> list[tuple[float, int, int]]:
        trace: list[tuple[float, int, int]] = []
        rng = random.Random(seed)
        async with asyncio.TaskGroup() as task_group:
            for name in range(30):
                task_group.create_task(worker(random.Random(rng.random()), name, trace))
        return trace

    result = run(main())
    assert result is not None
    return result


def test_two_runs_with_one_seed_give_identical_traces():
    assert _trace(7) == _trace(7)
    assert _trace(7) != _trace(8)


def test_loop_never_reads_the_wall_clock(monkeypatch):
    def no_wall_clock() -> float:
        raise AssertionError("the wall clock was read")

    async def main() -> float:
        await asyncio.sleep(5)
        async with asyncio.timeout(1):
            await asyncio.sleep(0.5)
        return asyncio.get_running_loop().time()

    loop = VirtualTimeLoop()
    monkeypatch.setattr(time, "monotonic", no_wall_clock)
    monkeypatch.setattr(time, "time", no_wall_clock)
    try:
        assert loop.run_until_complete(main()) == 5.5
    finally:
        loop.close()


def test_real_io_and_threads_are_refused_not_left_hanging():
    import socket

    async def main() -> None:
        loop = asyncio.get_running_loop()
        left, right = socket.socketpair()
        try:
            with pytest.raises(RuntimeError, match="no real I/O"):
                loop.add_reader(left.fileno(), lambda: None)
        finally:
            left.close()
            right.close()
        with pytest.raises(RuntimeError, match="no threads"):
            await asyncio.to_thread(lambda: None)

    run(main())
