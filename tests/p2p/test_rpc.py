"""Request/response over real websockets: results, remote errors, timeouts, peers going away."""

from __future__ import annotations

import asyncio
import logging

import pytest

from p2p import RequestError
from tests.p2p.p2p_harness import wait_until


async def test_request_returns_the_handler_result(net):
    a, b = await net.line(["a", "b"])
    calls = []

    async def echo(peer_id, body):
        calls.append(peer_id)
        return {"echo": body, "n": 7}

    b.host.add_handler("echo", echo)
    assert await a.host.request(b.peer_id, "echo", [b"x", "y"]) == {"echo": [b"x", "y"], "n": 7}
    assert calls == [a.peer_id]


async def test_handler_error_becomes_an_error_response(net, caplog):
    a, b = await net.line(["a", "b"])

    async def broken(peer_id, body):
        raise ValueError("boom")

    b.host.add_handler("broken", broken)
    with pytest.raises(RequestError, match="remote error from .*handler error: ValueError: boom"):
        await a.host.request(b.peer_id, "broken", None)
    assert b.host.stats["errors"]["handler error"] == 1
    assert any(r.levelno == logging.WARNING and "handler for 'broken'" in r.getMessage()
               for r in caplog.records if r.name == "p2p.b")
    assert b.peer_ids() == {a.peer_id}  # the link survives


async def test_unknown_method_is_an_error_response(net):
    a, b = await net.line(["a", "b"])
    with pytest.raises(RequestError, match="unknown method 'nope'"):
        await a.host.request(b.peer_id, "nope", None)


async def test_request_times_out(net):
    a, b = await net.line(["a", "b"])
    release = asyncio.Event()

    async def slow(peer_id, body):
        await release.wait()
        return "late"

    b.host.add_handler("slow", slow)
    with pytest.raises(RequestError, match="timed out after 0.1 s"):
        await a.host.request(b.peer_id, "slow", None, timeout=0.1)
    release.set()
    # the late answer
    await wait_until(lambda: a.host.stats["dropped"]["unsolicited response"] == 1)


async def test_request_fails_when_the_peer_goes_away(net):
    a, b = await net.line(["a", "b"])

    async def never(peer_id, body):
        await asyncio.Event().wait()

    b.host.add_handler("never", never)
    pending = asyncio.create_task(a.host.request(b.peer_id, "never", None))
    await wait_until(lambda: b.host.stats["messages_in"]["req"] == 1)
    await net.stop(b)
    with pytest.raises(RequestError, match="disconnected"):
        await pending


async def test_request_to_unknown_peer_fails_at_once(net):
    a = await net.start("a")
    with pytest.raises(RequestError, match="not connected"):
        await a.host.request("ab" * 32, "echo", None)
