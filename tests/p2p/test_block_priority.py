"""A node's own new block does not wait behind its transactions (issue 11, block propagation):
published urgent, it goes to every peer in full -- no announcement round trip, even on an
announce topic -- ahead of the transaction frames already queued to each of them."""

from __future__ import annotations

from tests.p2p.p2p_harness import RawPeer, msg_id_of, wait_until


async def gossip_frames(peer: RawPeer, count: int) -> list[tuple[str, bytes]]:
    """The next `count` gossip-family frames the host sends `peer`, as (type, payload or id)."""
    frames: list[tuple[str, bytes]] = []
    while len(frames) < count:
        msg_type, body = await peer.recv()
        if msg_type == "gossip":
            frames.append(("gossip", body["payload"]))
        elif msg_type == "inv":
            frames.extend(("inv", msg_id) for msg_id in body["ids"])
    return frames


async def test_own_block_goes_to_every_peer_in_full_before_queued_transactions(net):
    miner = await net.start("miner")
    miner.add_topic("tx")
    miner.add_topic("block", announce=True)
    peers = [await RawPeer.connect(miner.url, name=f"peer{i}") for i in range(3)]
    try:
        for peer in peers:
            await peer.handshake()
        await wait_until(lambda: miner.peer_ids() == {p.peer_id for p in peers})
        # One step of the miner's loop: transactions queued to every peer, then a block solved
        txs = [f"tx-{i}".encode() for i in range(20)]
        for tx in txs:
            miner.host.publish("tx", msg_id_of(tx), tx)
        miner.host.publish("block", msg_id_of(b"block-1"), b"block-1", urgent=True)
        for peer in peers:
            assert await gossip_frames(peer, 21) == [("gossip", b"block-1")] + [
                ("gossip", tx) for tx in txs]
    finally:
        for peer in peers:
            await peer.close()


async def test_a_forwarded_block_keeps_the_announce_rule(net):
    """Only the node's own block is urgent: a block it forwards is announced as before."""
    a, b = await net.line(["a", "b"])
    for node in (a, b):
        node.add_topic("block", announce=True)
    raw = await RawPeer.connect(b.url)
    try:
        await raw.handshake()
        await wait_until(lambda: b.peer_ids() == {a.peer_id, raw.peer_id})
        a.host.publish("block", msg_id_of(b"block-2"), b"block-2", urgent=True)
        assert await gossip_frames(raw, 1) == [("inv", msg_id_of(b"block-2"))]
        assert b.count("block", msg_id_of(b"block-2")) == 1
    finally:
        await raw.close()
