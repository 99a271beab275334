"""Batched announcements (`batch_s`, as Bitcoin trickles transaction invs): the ids accepted
within a batch reach each peer in one `inv`, the peer asks for what it lacks in one `getdata`,
and every host still gets every message exactly once."""

from __future__ import annotations

import pytest

from tests.p2p.p2p_harness import RawPeer, msg_id_of, wait_until

BATCH_S = 0.05


async def test_ids_published_together_reach_a_peer_in_one_inv(net):
    h = await net.start("h")
    h.add_topic("tx", announce=True, batch_s=BATCH_S)
    raw = await RawPeer.connect(h.url)
    try:
        await raw.handshake()
        await wait_until(lambda: h.peer_ids() == {raw.peer_id})
        txs = [f"tx-{i}".encode() for i in range(30)]
        for tx in txs:
            h.host.publish("tx", msg_id_of(tx), tx)
        assert await raw.recv_type("inv") == {"topic": "tx", "ids": [msg_id_of(t) for t in txs]}
        await raw.send("getdata", {"topic": "tx", "ids": [msg_id_of(t) for t in txs[:2]]})
        assert (await raw.recv_type("data"))["payload"] == txs[0]
        assert (await raw.recv_type("data"))["payload"] == txs[1]
    finally:
        await raw.close()


async def test_an_id_the_peer_announced_meanwhile_is_not_announced_back(net):
    h = await net.start("h")
    h.add_topic("tx", announce=True, batch_s=BATCH_S)
    raw = await RawPeer.connect(h.url)
    try:
        await raw.handshake()
        await wait_until(lambda: h.peer_ids() == {raw.peer_id})
        h.host.publish("tx", msg_id_of(b"mine"), b"mine")
        h.host.publish("tx", msg_id_of(b"both"), b"both")
        await raw.send("inv", {"topic": "tx", "ids": [msg_id_of(b"both")]})
        assert await raw.recv_type("inv") == {"topic": "tx", "ids": [msg_id_of(b"mine")]}
    finally:
        await raw.close()


async def test_a_mesh_delivers_each_batched_message_exactly_once(net):
    nodes = await net.mesh(["a", "b", "c", "d", "e"])
    for node in nodes:
        node.add_topic("tx", announce=True, batch_s=BATCH_S)
    published = [(node, f"{node.name}-{i}".encode()) for node in nodes for i in range(20)]
    for node, tx in published:
        node.host.publish("tx", msg_id_of(tx), tx)

    def everyone_has_everything() -> bool:
        return all(n.count("tx", msg_id_of(tx)) == 1
                   for n in nodes for origin, tx in published if origin is not n)

    await wait_until(everyone_has_everything, timeout=10)
    assert all(len(n.received["tx"]) == 80 for n in nodes)   # nothing twice
    gossip_frames = sum(n.host.stats["messages_out"]["gossip"] for n in nodes)
    data_frames = sum(n.host.stats["messages_out"]["data"] for n in nodes)
    assert gossip_frames == 0 and data_frames == 4 * 100   # one payload per message per host


async def test_only_announce_topics_batch(net):
    h = await net.start("h")
    with pytest.raises(ValueError, match="only announce topics"):
        h.add_topic("tx", batch_s=BATCH_S)
