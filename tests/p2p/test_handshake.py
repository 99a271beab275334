"""Handshake over real websockets: success, and each mismatch logged on both sides."""

from __future__ import annotations

import logging

from tests.p2p.p2p_harness import CHAIN_ID, GENESIS, RawPeer, wait_until


def warnings_of(caplog, node) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == f"p2p.{node.name}" and r.levelno == logging.WARNING]


async def test_handshake_connects_both_sides(net):
    a = await net.start("a")
    b = await net.start("b", peers=[a.url])
    await wait_until(lambda: a.peer_ids() == {b.peer_id} and b.peer_ids() == {a.peer_id})
    [seen_by_b] = b.host.peers()
    [seen_by_a] = a.host.peers()
    assert seen_by_b.direction == "outbound" and seen_by_b.url == a.url
    assert seen_by_a.direction == "inbound" and seen_by_a.url.startswith("127.0.0.1:")
    assert len(a.peer_id) == 64 and seen_by_a.score == 0


async def test_chain_id_mismatch_is_logged_on_both_sides(net, caplog):
    a = await net.start("a")
    b = await net.start("b", chain_id="other-chain", peers=[a.url])
    await wait_until(lambda: warnings_of(caplog, a) and warnings_of(caplog, b))
    expected = f"chain id mismatch: ours {CHAIN_ID!r}, theirs 'other-chain'"
    assert any("handshake with 127.0.0.1:" in m and expected in m for m in warnings_of(caplog, a))
    assert any(f"handshake with {a.url} failed" in m and "chain id mismatch" in m
               for m in warnings_of(caplog, b))
    assert a.host.peers() == [] and b.host.peers() == []


async def test_genesis_mismatch_is_logged_on_both_sides(net, caplog):
    a = await net.start("a")
    b = await net.start("b", genesis=b"\x07" * 32, peers=[a.url])
    await wait_until(lambda: warnings_of(caplog, a) and warnings_of(caplog, b))
    assert any("genesis mismatch" in m for m in warnings_of(caplog, a))
    assert any("genesis mismatch: ours 0707070707070707" in m for m in warnings_of(caplog, b))


async def test_version_mismatch_is_logged_on_both_sides(net, caplog):
    a = await net.start("a")
    b = await net.start("b", protocol_version=2, peers=[a.url])
    await wait_until(lambda: warnings_of(caplog, a) and warnings_of(caplog, b))
    assert any("version mismatch: ours 1, theirs 2" in m for m in warnings_of(caplog, a))
    assert any("version mismatch: ours 2, theirs 1" in m for m in warnings_of(caplog, b))
    assert a.host.stats["rejected"]["handshake: version mismatch"] >= 1


async def test_self_connection_is_refused_and_not_redialed(net, caplog):
    a = await net.start("a")
    a.host.add_peer(a.url)
    await wait_until(lambda: any("no longer dialing" in m for m in warnings_of(caplog, a)))
    assert any("failed: self-connection" in m for m in warnings_of(caplog, a))
    assert a.host.peers() == []


async def test_bad_signature_is_refused_with_bye(net, caplog):
    a = await net.start("a")
    raw = await RawPeer.connect(a.url)
    try:
        await raw.recv_type("hello")
        await raw.send("hello", {"chain_id": CHAIN_ID, "genesis": GENESIS, "version": 1,
                                 "pubkey": raw.identity.pubkey, "challenge": b"\x02" * 32})
        await raw.send("auth", {"sig": b"\x00" * 64})
        code, frames = await raw.wait_closed()
    finally:
        await raw.close()
    assert ("bye", {"reason": "bad handshake signature"}) in frames
    assert code == 1008
    assert any("bad handshake signature" in m for m in warnings_of(caplog, a))


async def test_handshake_times_out(net, caplog):
    a = await net.start("a", handshake_timeout=0.2)
    raw = await RawPeer.connect(a.url)
    try:
        code, frames = await raw.wait_closed()
    finally:
        await raw.close()
    assert ("bye", {"reason": "handshake timed out after 0.2 s"}) in frames
    assert any("handshake timed out" in m for m in warnings_of(caplog, a))
