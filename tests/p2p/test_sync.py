"""Sync of a toy chain (a list of byte strings whose score is its length) over real websockets."""

from __future__ import annotations

from tests.p2p.p2p_harness import ListChain, make_items, wait_until


async def test_sync_catches_up_1200_items_in_batches(net):
    ahead = ListChain(make_items(1200))
    behind = ListChain()
    a = await net.start("a")
    a.host.set_sync_source(ahead)
    b = await net.start("b")
    b.host.set_sync_source(behind)
    b.host.add_peer(a.url)
    await wait_until(lambda: len(behind.items) == 1200)
    assert behind.items == ahead.items
    assert behind.ingested_batches == [500, 500, 200]
    assert b.host.stats["sync_batches"] == 3
    await wait_until(lambda: not b.host.sync.syncing)
    assert a.host.stats["sync_batches"] == 0  # a is ahead: it never syncs from b


async def test_sync_follows_a_peer_that_keeps_growing(net):
    ahead = ListChain(make_items(10))
    behind = ListChain()
    a = await net.start("a", status_interval=0.05)
    a.host.set_sync_source(ahead)
    b = await net.start("b", status_interval=0.05, peers=[a.url])
    b.host.set_sync_source(behind)
    await wait_until(lambda: len(behind.items) == 10)
    ahead.items.extend(make_items(5, start=10))  # a grows; its next status tells b
    await wait_until(lambda: len(behind.items) == 15)
    assert [p.status.height for p in b.host.peers()] == [15]


async def test_request_sync_fetches_from_a_peer_not_known_to_be_ahead(net):
    ahead = ListChain(make_items(10))
    behind = ListChain(make_items(10))
    a = await net.start("a", status_interval=60)
    a.host.set_sync_source(ahead)
    b = await net.start("b", status_interval=60, peers=[a.url])
    b.host.set_sync_source(behind)
    await wait_until(lambda: b.host.stats["messages_in"]["status"] == 1)
    ahead.items.extend(make_items(700, start=10))  # b does not know: no status for a minute
    b.host.sync.request_sync(a.peer_id)
    await wait_until(lambda: len(behind.items) == 710)
    assert behind.ingested_batches == [500, 200]


async def test_get_blocks_response_is_trimmed_to_the_frame_cap(net):
    big = ListChain([f"item-{i}".encode().ljust(10_000, b".") for i in range(20)])
    a = await net.start("a", max_frame_bytes=64 * 1024)
    a.host.set_sync_source(big)
    b = await net.start("b", max_frame_bytes=64 * 1024, peers=[a.url])
    await wait_until(lambda: b.peer_ids() == {a.peer_id})
    reply = await b.host.request(a.peer_id, "get_blocks", {"locator": [], "limit": 500})
    assert len(reply["blocks"]) == 6 and reply["blocks"] == big.items[:6]
