"""Bad input closes only the offending connection, with a close code; the host keeps serving."""

from __future__ import annotations

import asyncio
import logging
import os

import msgpack
import pytest

from p2p import RequestError
from tests.p2p.p2p_harness import RawPeer, log_problems, masked_ping, msg_id_of, wait_until

SMALL_FRAME_CAP = 64 * 1024


async def assert_still_serves(net, node):
    """A well-behaved host can still connect to `node` and gossip with it."""
    other = await net.start(f"other-of-{node.name}", peers=[node.url],
                            max_frame_bytes=SMALL_FRAME_CAP)
    await wait_until(lambda: other.peer_id in node.peer_ids())
    other.add_topic("t")
    node.add_topic("t")
    node.host.publish("t", msg_id_of(b"still alive"), b"still alive")
    await wait_until(lambda: other.count("t", msg_id_of(b"still alive")) == 1)


@pytest.mark.parametrize(
    ("send", "code", "category", "logged"),
    [
        (lambda ws: ws.send_bytes(b"\xc1" + os.urandom(200)), 1002, "malformed frame",
         "not valid msgpack"),
        (lambda ws: ws.send_str("hello?"), 1003, "text frame", "text frames are not allowed"),
        (lambda ws: ws.send_bytes(b"\x00" * (SMALL_FRAME_CAP + 1)), 1009, "frame too large",
         "exceeds limit 65536"),
        (lambda ws: ws.send_bytes(b"\x93\x01\xa4nope\x80"), 1002, "malformed frame",
         "unknown message type 'nope'"),
    ],
    ids=["random bytes", "text frame", "oversized frame", "unknown type"],
)
async def test_bad_frame_closes_that_connection_only(net, caplog, send, code, category, logged):
    node = await net.start("a", max_frame_bytes=SMALL_FRAME_CAP)
    raw = await RawPeer.connect(node.url)
    try:
        await raw.recv_type("hello")
        await send(raw.ws)
        close_code, _ = await raw.wait_closed()
    finally:
        await raw.close()
    assert close_code == code
    await wait_until(lambda: node.host.stats["rejected"][category] == 1)
    assert any(m.startswith("closing connection to 127.0.0.1:") and logged in m
               for m in [r.getMessage() for r in caplog.records if r.name == "p2p.a"])
    await assert_still_serves(net, node)


async def test_garbage_after_handshake_penalises_the_peer(net):
    node = await net.start("a")
    raw = await RawPeer.connect(node.url)
    try:
        await raw.handshake()
        await wait_until(lambda: raw.peer_id in node.peer_ids())
        await raw.ws.send_bytes(b"\xff" * 10)
        close_code, _ = await raw.wait_closed()
    finally:
        await raw.close()
    assert close_code == 1002
    await wait_until(lambda: node.host.peers() == [])
    assert node.host._scores.get(raw.peer_id) < 0


async def test_unexpected_hello_after_handshake_is_a_protocol_error(net):
    node = await net.start("a")
    raw = await RawPeer.connect(node.url)
    try:
        hello = await raw.handshake()
        await raw.send("hello", hello)
        close_code, _ = await raw.wait_closed()
    finally:
        await raw.close()
    assert close_code == 1002
    assert node.host.stats["rejected"]["unexpected handshake message"] == 1


def nested(depth: int, leaf: object = 1) -> object:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


@pytest.mark.parametrize("handshaken", [False, True], ids=["before handshake", "after handshake"])
@pytest.mark.parametrize("frame", [
    [nested(1000), "status", {}],
    [1, nested(1000), {}],
    [1, "x" * 100_000, {}],
], ids=["version nested 1000 deep", "type nested 1000 deep", "type of 100000 characters"])
async def test_a_frame_with_a_monstrous_version_or_type_is_a_malformed_frame(net, caplog, frame,
                                                                             handshaken):
    """Issue 11, defect 4: formatting the reason raised RecursionError (close 1001, no penalty)."""
    node = await net.start("a")
    raw = await RawPeer.connect(node.url)
    try:
        if handshaken:
            await raw.handshake()
            await wait_until(lambda: raw.peer_id in node.peer_ids())
        else:
            await raw.recv_type("hello")
        await raw.ws.send_bytes(msgpack.packb(frame))
        close_code, _ = await raw.wait_closed()
    finally:
        await raw.close()
    assert close_code == 1002
    await wait_until(lambda: node.host.stats["rejected"]["malformed frame"] == 1)
    assert node.host.stats["errors"] == {}
    assert log_problems(caplog, "p2p.a") == []
    assert all(len(r.getMessage()) < 300 for r in caplog.records if r.name == "p2p.a")
    if handshaken:
        assert node.host._scores.get(raw.peer_id) < 0


async def test_pings_from_a_peer_that_hangs_up_end_its_link_quietly(net, caplog):
    """Issue 11, defect 5: the automatic pong to a gone peer raised out of the read loop."""
    node = await net.start("a")
    for i in range(3):
        raw = await RawPeer.connect(node.url, name=f"raw{i}")
        try:
            await raw.handshake()
            await wait_until(lambda: raw.peer_id in node.peer_ids())
            raw.write_and_hang_up(masked_ping() * 50)
            await wait_until(lambda: raw.peer_id not in node.peer_ids())
        finally:
            await raw.close()
    assert node.host.stats["errors"] == {}
    assert node.host.stats["disconnects"] == {"receive failed": 3}
    assert log_problems(caplog, "p2p.a") == []
    await assert_still_serves(net, node)


@pytest.mark.parametrize("body", [{"locator": "nope", "limit": 1}, nested(1000), None,
                                  {"limit": -1}])
async def test_a_malformed_get_blocks_request_is_answered_refused_and_penalised(net, caplog, body):
    node = await net.start("a")
    raw = await RawPeer.connect(node.url)
    try:
        await raw.handshake()
        await raw.send("req", {"id": 7, "method": "get_blocks", "body": body})
        reply = await raw.recv_type("resp")
    finally:
        await raw.close()
    assert reply["id"] == 7 and reply["ok"] is False
    assert reply["body"].startswith(
        "bad request: get_blocks body must be {locator: [id, ...], limit: int > 0}")
    assert node.host.stats["rejected"]["bad request"] == 1
    assert node.host._scores.get(raw.peer_id) < 0
    assert log_problems(caplog, "p2p.a") == []
    [line] = [r for r in caplog.records
              if r.name == "p2p.a" and "bad 'get_blocks' request" in r.getMessage()]
    assert line.levelno == logging.WARNING


async def test_an_error_reply_nested_a_thousand_deep_fails_the_request_only(net, caplog):
    node = await net.start("a")
    raw = await RawPeer.connect(node.url)
    try:
        await raw.handshake()
        await wait_until(lambda: raw.peer_id in node.peer_ids())
        request = asyncio.ensure_future(
            node.host.request(raw.peer_id, "get_blocks", {"locator": [], "limit": 1}))
        asked = await raw.recv_type("req")
        await raw.send("resp", {"id": asked["id"], "ok": False, "body": nested(1000)})
        with pytest.raises(RequestError, match="remote error from .*: a list of 1 items"):
            await request
        assert raw.peer_id in node.peer_ids()
    finally:
        await raw.close()
    assert node.host.stats["errors"] == {}
    assert log_problems(caplog, "p2p.a") == []
