"""Bad input closes only the offending connection, with a close code; the host keeps serving."""

from __future__ import annotations

import os

import pytest

from tests.p2p.p2p_harness import RawPeer, msg_id_of, wait_until

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
