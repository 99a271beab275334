"""Dialing: reconnect with backoff after a restart, one link per peer pair, clean shutdown."""

from __future__ import annotations

from tests.p2p.p2p_harness import msg_id_of, seed_for, wait_until


async def test_reconnects_after_peer_restarts_on_the_same_port(net):
    b = await net.start("b")
    connected, disconnected = [], []
    a = await net.start("a", peers=[b.url], on_peer_connected=connected.append,
                        on_peer_disconnected=lambda info, reason: disconnected.append(reason))
    await wait_until(lambda: a.peer_ids() == {b.peer_id})
    port = b.port
    await net.stop(b)
    await wait_until(lambda: a.host.peers() == [])
    assert disconnected == ["peer said bye: host shutting down"]
    await wait_until(lambda: a.host.stats["errors"]["dial failed"] >= 2)  # a keeps trying meanwhile
    b = await net.start("b", port=port, seed=seed_for("b"))
    await wait_until(lambda: a.peer_ids() == {b.peer_id}, timeout=8)
    assert [info.peer_id for info in connected] == [b.peer_id, b.peer_id]
    b.add_topic("t")
    a.add_topic("t")
    b.host.publish("t", msg_id_of(b"after restart"), b"after restart")
    await wait_until(lambda: a.count("t", msg_id_of(b"after restart")) == 1)


async def test_both_dialing_each_other_keeps_exactly_one_connection(net):
    a = await net.start("a", status_interval=0.02)
    b = await net.start("b", status_interval=0.02)
    connected = {"a": [], "b": []}
    a.host._on_peer_connected = connected["a"].append
    b.host._on_peer_connected = connected["b"].append
    a.host.add_peer(b.url)
    b.host.add_peer(a.url)
    await wait_until(lambda: a.peer_ids() == {b.peer_id} and b.peer_ids() == {a.peer_id})
    smaller = a if a.peer_id < b.peer_id else b
    larger = b if smaller is a else a
    # the survivor is the one dialed by the smaller peer id, seen the same way from both ends
    await wait_until(lambda: smaller.host.peers()[0].direction == "outbound"
                     and larger.host.peers()[0].direction == "inbound")
    # and it stays: many status rounds later nothing has been closed or re-dialed
    [link_a], [link_b] = a.host.peers(), b.host.peers()
    statuses = a.host.stats["messages_in"]["status"]
    a.host.set_sync_source(_StaticSource())
    b.host.set_sync_source(_StaticSource())
    await wait_until(lambda: a.host.stats["messages_in"]["status"] >= statuses + 20)
    assert a.host.peers()[0].connected_at == link_a.connected_at
    assert b.host.peers()[0].connected_at == link_b.connected_at
    assert (sum(a.host.stats["disconnects"].values())
            == sum(b.host.stats["disconnects"].values()) == 0)
    assert len(connected["a"]) == len(connected["b"]) == 1


async def test_remove_peer_closes_and_stops_dialing(net):
    b = await net.start("b")
    a = await net.start("a", peers=[b.url])
    await wait_until(lambda: a.peer_ids() == {b.peer_id})
    a.host.remove_peer(b.url)
    await wait_until(lambda: a.host.peers() == [] and b.host.peers() == [])
    assert b.host.stats["messages_in"]["bye"] == 1


async def test_stopping_a_host_closes_its_inbound_connections(net):
    b = await net.start("b")
    a = await net.start("a", peers=[b.url])
    c = await net.start("c", peers=[b.url])
    await wait_until(lambda: b.peer_ids() == {a.peer_id, c.peer_id})
    await net.stop(b)
    assert b.host.peers() == []
    await wait_until(lambda: a.host.peers() == [] and c.host.peers() == [])


class _StaticSource:
    def status(self):
        from p2p import ChainStatus
        return ChainStatus(tip=b"", score=0, height=0)

    def locator(self):
        return []

    def blocks_after(self, locator, limit):
        return []

    async def ingest(self, peer_id, payloads):
        pass
