"""Fixtures for p2p/ tests: a TestNetwork of real hosts on loopback, torn down after each test.

The fixture also fails a test whose event loop reported an error on the way (a task destroyed
while pending, an exception never retrieved, an unclosed session): shutdown must be clean.
"""

from __future__ import annotations

import asyncio
import gc

import pytest

from tests.p2p.p2p_harness import TestNetwork


@pytest.fixture
async def net():
    loop = asyncio.get_running_loop()
    loop_errors: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(
        lambda loop, context: loop_errors.append(context.get("message", repr(context))))
    network = TestNetwork()
    try:
        yield network
    finally:
        await network.stop_all()
        gc.collect()
        await asyncio.sleep(0)
        loop.set_exception_handler(previous)
    assert loop_errors == [], f"event loop reported errors: {loop_errors}"
