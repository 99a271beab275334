"""Gossip over real websockets: exactly-once delivery, no double forwarding, announce/fetch,
verdicts."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import pytest

from p2p import Verdict
from p2p.connection import Connection
from p2p.gossip import MAX_REJECT_CATEGORIES
from p2p.peer_score import BAN_DURATION_S
from p2p.wire import decode_frame
from tests.p2p.p2p_harness import FakeClock, RawPeer, msg_id_of, wait_until

log = logging.getLogger("test")


def publish(node, topic: str, payload: bytes) -> bytes:
    msg_id = msg_id_of(payload)
    node.host.publish(topic, msg_id, payload)
    return msg_id


async def test_line_delivers_once_and_each_host_forwards_once(net):
    nodes = await net.line(["a", "b", "c", "d"])
    for node in nodes:
        node.add_topic("blocks")
    a, b, c, d = nodes
    msg_id = publish(a, "blocks", b"block-1")
    await wait_until(lambda: d.count("blocks", msg_id) == 1)
    assert [n.count("blocks", msg_id) for n in nodes] == [0, 1, 1, 1]
    assert [n.host.stats["messages_out"]["gossip"] for n in nodes] == [1, 1, 1, 0]
    assert d.received["blocks"][0].peer_id == c.peer_id
    assert d.received["blocks"][0].payload == b"block-1"


@pytest.mark.parametrize("announce", [False, True], ids=["push", "announce"])
async def test_full_mesh_delivers_each_message_exactly_once(net, monkeypatch, announce):
    sent = record_sent_frames(monkeypatch)
    nodes = await net.mesh(["a", "b", "c", "d"])
    for node in nodes:
        node.add_topic("blocks", announce=announce)
    published = {node.name: [publish(node, "blocks", f"{node.name}-{i}".encode())
                             for i in range(10)]
                 for node in nodes}
    all_ids = [(origin, m) for origin, ids in published.items() for m in ids]

    def everyone_has_everything() -> bool:
        return all(n.count("blocks", m) >= 1
                   for n in nodes for origin, m in all_ids if origin != n.name)

    await wait_until(everyone_has_everything)
    # a last round trip on every link, so that any late duplicate would have arrived by now
    for node in nodes:
        for other in nodes:
            if other is not node:
                await node.host.request(other.peer_id, "get_blocks", {"locator": [], "limit": 1})
    spread_type = "inv" if announce else "gossip"
    for node in nodes:
        own = set(published[node.name])
        assert all(node.count("blocks", m) == (0 if m in own else 1) for _, m in all_ids), node.name
        for _, msg_id in all_ids:
            targets = sent[(node.name, spread_type, msg_id)]
            # never the same message to the same peer twice; never back to whoever delivered it
            assert len(targets) == len(set(targets)), (node.name, targets)
            if msg_id in own:
                assert len(targets) == 3
            else:
                [delivered] = [m for m in node.received["blocks"] if m.msg_id == msg_id]
                assert delivered.peer_id not in targets and len(targets) <= 2


def record_sent_frames(monkeypatch) -> dict[tuple[str, str, bytes], list[str]]:
    """Record, through the Connection._egress seam, which host sent which message id to whom."""
    sent: dict[tuple[str, str, bytes], list[str]] = defaultdict(list)
    original = Connection._egress

    def egress(conn, frame_type, data, *args, **kwargs):
        if frame_type in ("gossip", "inv"):
            _, body = decode_frame(data)
            for msg_id in body.get("ids", [body.get("id")]):
                sent[(conn._log.name.removeprefix("p2p."), frame_type, msg_id)].append(conn.peer_id)
        return original(conn, frame_type, data, *args, **kwargs)

    monkeypatch.setattr(Connection, "_egress", egress)
    return sent


async def test_announce_topic_uses_inv_getdata_data(net):
    nodes = await net.line(["a", "b", "c"])
    for node in nodes:
        node.add_topic("blocks", announce=True)
    a, b, c = nodes
    msg_id = publish(a, "blocks", b"big block")
    await wait_until(lambda: c.count("blocks", msg_id) == 1)
    assert b.count("blocks", msg_id) == 1
    assert c.received["blocks"][0].payload == b"big block"
    for node in nodes:
        assert node.host.stats["messages_out"]["gossip"] == 0
    assert a.host.stats["messages_out"]["inv"] == 1 and a.host.stats["messages_out"]["data"] == 1
    assert b.host.stats["messages_out"]["getdata"] == 1 and b.host.stats["messages_out"]["inv"] == 1


async def test_fetch_falls_back_to_another_announcer(net):
    """The first announcer cannot serve the id (notfound); the host then asks the second one."""
    h = await net.start("h")
    h.add_topic("blocks", announce=True)
    p = await net.start("p", peers=[h.url])
    p.add_topic("blocks", announce=True)
    raw = await RawPeer.connect(h.url)
    try:
        await raw.handshake()
        await wait_until(lambda: h.peer_ids() == {p.peer_id, raw.peer_id})
        msg_id = msg_id_of(b"block")
        await raw.send("inv", {"topic": "blocks", "ids": [msg_id]})
        getdata = await raw.recv_type("getdata")
        assert getdata == {"topic": "blocks", "ids": [msg_id]}
        publish(p, "blocks", b"block")  # p announces the same id: it becomes the next candidate
        await wait_until(lambda: h.host.stats["messages_in"]["inv"] == 2)
        await raw.send("notfound", {"topic": "blocks", "ids": [msg_id]})
        await wait_until(lambda: h.count("blocks", msg_id) == 1)
        assert h.received["blocks"][0].peer_id == p.peer_id
    finally:
        await raw.close()


async def test_getdata_is_served_from_the_node_store(net):
    store = {msg_id_of(b"old block"): b"old block"}
    h = await net.start("h")
    h.add_topic("blocks", announce=True, fetch=store.get)
    raw = await RawPeer.connect(h.url)
    try:
        await raw.handshake()
        await raw.send("getdata", {"topic": "blocks", "ids": [msg_id_of(b"old block"), b"missing"]})
        assert await raw.recv_type("data") == {"topic": "blocks", "id": msg_id_of(b"old block"),
                                               "payload": b"old block"}
        assert await raw.recv_type("notfound") == {"topic": "blocks", "ids": [b"missing"]}
    finally:
        await raw.close()


async def test_ignore_drops_quietly_without_forwarding(net):
    a, b, c = await net.line(["a", "b", "c"])
    a.add_topic("txs")
    b.add_topic("txs", verdict=lambda msg: Verdict.ignore("not interesting"))
    c.add_topic("txs")
    msg_id = publish(a, "txs", b"tx")
    await wait_until(lambda: b.count("txs", msg_id) == 1)
    await b.host.request(c.peer_id, "get_blocks", {"locator": [], "limit": 1})  # flush the b-c link
    assert c.count("txs", msg_id) == 0
    assert b.host.stats["dropped"]["ignored"] == 1
    assert [p.score for p in b.host.peers()] == [0.0, 0.0]


async def test_reject_penalises_and_eventually_disconnects(net, caplog):
    clock = FakeClock()
    b = await net.start("b", clock=clock)
    b.add_topic("txs",
                verdict=lambda msg: Verdict.reject("bad signature 3", category="bad signature"))
    disconnected = []
    a = await net.start("a", peers=[b.url],
                        on_peer_disconnected=lambda info, reason: disconnected.append(reason))
    a.add_topic("txs")
    await wait_until(lambda: b.peer_ids() == {a.peer_id})
    publish(a, "txs", b"tx-0")
    await wait_until(lambda: b.host.stats["rejected"]["txs: bad signature"] == 1)
    [info] = b.host.peers()
    assert info.score == -10
    clock.advance(4)  # scores recover with time
    assert b.host.peers()[0].score == -6
    for i in range(1, 11):  # -6 - 10 * 10 crosses the -100 threshold
        publish(a, "txs", f"tx-{i}".encode())
    await wait_until(lambda: disconnected == ["peer said bye: too many invalid messages"])
    assert any("disconnecting" in r.getMessage() and "too many invalid messages" in r.getMessage()
               for r in caplog.records if r.name == "p2p.b")
    # a redials, but b refuses it while the ban lasts
    await wait_until(lambda: b.host.stats["rejected"]["banned peer"] >= 1)
    assert b.host.peers() == []
    clock.advance(BAN_DURATION_S)  # the ban ends
    await wait_until(lambda: b.peer_ids() == {a.peer_id}, timeout=8)


async def test_rejects_are_counted_by_category_from_a_bounded_set(net):
    """Issue 11, defect 7: every distinct reason used to become a stats key (and a /metrics
    series)."""
    clock = FakeClock()
    b = await net.start("b", clock=clock)
    b.add_topic("txs", verdict=lambda msg: Verdict.reject(f"amount {msg.payload.decode()} too big",
                                                           category="bad amount"))
    a = await net.start("a", peers=[b.url])
    a.add_topic("txs")
    await wait_until(lambda: b.peer_ids() == {a.peer_id})
    for i in range(5):
        publish(a, "txs", f"{i}".encode())
        await wait_until(lambda: len(b.received["txs"]) == i + 1)
        clock.advance(10)  # the score recovers: a stays connected
    assert dict(b.host.stats["rejected"]) == {"txs: bad amount": 5}

    log.info("A validator that names more categories than the bound: the rest count as 'other'")
    b.verdicts["txs"] = lambda msg: Verdict.reject("no",
                                                   category=f"category {msg.payload.decode()}")
    extra = MAX_REJECT_CATEGORIES + 10
    for i in range(5, 5 + extra):
        publish(a, "txs", f"{i}".encode())
        await wait_until(lambda: len(b.received["txs"]) == i + 1)
        clock.advance(10)
    rejected = b.host.stats["rejected"]
    assert len(rejected) == MAX_REJECT_CATEGORIES + 1
    assert rejected["txs: other"] == 11 and sum(rejected.values()) == 5 + extra
    assert b.peer_ids() == {a.peer_id}


async def test_validators_of_a_topic_run_one_at_a_time_in_order(net):
    a, b = await net.line(["a", "b"])
    a.add_topic("blocks")
    running, order = [], []

    async def slow_validator(msg):
        running.append(msg.msg_id)
        assert len(running) == 1, "validators overlapped"
        await asyncio.sleep(0.002)
        order.append(msg.payload)
        running.remove(msg.msg_id)
        return Verdict.accept()

    b.host.add_topic("blocks", slow_validator)
    payloads = [f"block-{i}".encode() for i in range(20)]
    for payload in payloads:
        publish(a, "blocks", payload)
    await wait_until(lambda: len(order) == 20)
    assert order == payloads


async def test_a_peer_that_stops_reading_does_not_block_the_others(net):
    """Frames for a stalled peer pile up in its own bounded queue and are dropped, counted."""
    h = await net.start("h", send_queue_bytes=1024 * 1024)
    h.add_topic("blocks")
    n = await net.start("n", peers=[h.url])
    n.add_topic("blocks")
    stalled = await RawPeer.connect(h.url)
    try:
        await stalled.handshake()  # ... and never reads again
        await wait_until(lambda: h.peer_ids() == {n.peer_id, stalled.peer_id})
        for i in range(200):  # 20 MB in all: far more than the stalled link's buffers and queue
            msg_id = publish(h, "blocks", i.to_bytes(4, "big") * 25_000)
            await wait_until(lambda: n.count("blocks", msg_id) == 1, timeout=1)
        assert h.host.stats["dropped"]["send queue full"] > 0
    finally:
        await stalled.close()
