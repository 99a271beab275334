"""Link faults over real websockets: loss, delay, duplicates, rate, partitions and their healing.

Timing is asserted only as lower bounds (a delay can not arrive early) or against deadlines of
seconds; rates are asserted with generous tolerances (the link rng is seeded, so they repeat).
"""

from __future__ import annotations

import asyncio
import logging
import random

from p2p import LINK_BLOCKED_REASON, GossipMessage, LinkRule, P2PHost, Verdict
from p2p.dialer import Backoff, Dialer, DialOutcome
from p2p.identity import compute_peer_id
from p2p.wire import PROTOCOL_VERSION
from tests.p2p.p2p_harness import (
    CHAIN_ID,
    GENESIS,
    RawPeer,
    join_network,
    msg_id_of,
    seed_for,
    split_network,
    wait_until,
)

log = logging.getLogger("test")


def publish(node, topic: str, payload: bytes) -> bytes:
    msg_id = msg_id_of(payload)
    node.host.publish(topic, msg_id, payload)
    return msg_id


def record_arrivals(node, topic: str) -> dict[bytes, float]:
    """Register `topic` on `node`, noting the loop time each message reaches its validator."""
    arrivals: dict[bytes, float] = {}
    loop = asyncio.get_running_loop()

    def accept(msg: GossipMessage) -> Verdict:
        arrivals[msg.msg_id] = loop.time()
        return Verdict.accept()

    node.add_topic(topic, verdict=accept)
    return arrivals


async def test_loss_drops_that_share_of_gossip_and_counts_it(net):
    a, b = await net.line(["a", "b"], link_seed=11)
    a.add_topic("t")
    b.add_topic("t")
    a.host.set_link_rule(b.peer_id, LinkRule(loss=0.3), "out")
    sent = 500
    for i in range(sent):
        publish(a, "t", f"msg-{i}".encode())
    lost = a.host.stats["shaped"]
    await wait_until(lambda: len(b.received["t"]) + lost["out lost"] == sent)
    delivered = len(b.received["t"])
    log.info("loss 0.3: %d of %d delivered", delivered, sent)
    assert 0.62 <= delivered / sent <= 0.78
    assert b.host.stats["messages_in"]["gossip"] == delivered
    assert a.host.stats["messages_out"]["gossip"] == delivered  # what actually left the host
    assert b.host.stats["shaped"] == {}  # the rule is a's, for its outgoing frames only
    assert a.peer_ids() == {b.peer_id}


async def test_delay_is_visible_and_clearing_removes_it(net):
    a, b = await net.line(["a", "b"])
    a.add_topic("t")
    arrivals = record_arrivals(b, "t")
    loop = asyncio.get_running_loop()

    async def latencies(tag: str) -> list[float]:
        published = {publish(a, "t", f"{tag}-{i}".encode()): loop.time() for i in range(5)}
        await wait_until(lambda: all(m in arrivals for m in published),
                         what=f"{tag} messages arrived")
        return [arrivals[m] - at for m, at in published.items()]

    a.host.set_link_rule(b.peer_id, LinkRule(delay_ms=150))
    slow = await latencies("slow")
    assert min(slow) >= 0.145, slow  # a lower bound: a delayed frame never arrives early
    assert a.host.stats["shaped"]["out delayed"] == 5
    a.host.clear_link_rules(b.peer_id)
    fast = await latencies("fast")
    assert a.host.stats["shaped"]["out delayed"] == 5  # nothing delayed since the clear
    assert min(fast) < 0.15, fast
    log.info("latency with 150 ms delay: %s; after clearing: %s", slow, fast)
    # frames still held back when the link closes are dropped cleanly (the fixture checks the loop)
    a.host.set_link_rule(b.peer_id, LinkRule(delay_ms=10_000))
    publish(a, "t", b"never arrives")
    assert a.host.stats["shaped"]["out delayed"] == 6


async def test_duplicates_reach_the_peer_twice_and_its_seen_cache_drops_them(net):
    a, b = await net.line(["a", "b"])
    a.add_topic("t")
    b.add_topic("t")
    a.host.set_link_rule(b.peer_id, LinkRule(duplicate=1.0), "out")
    ids = [publish(a, "t", f"dup-{i}".encode()) for i in range(20)]
    await wait_until(lambda: b.host.stats["messages_in"]["gossip"] == 40)
    await wait_until(lambda: b.host.stats["dropped"]["duplicate"] == 20)
    # the second copies are dropped on arrival; the first ones may still be in validation
    await wait_until(lambda: all(b.count("t", m) == 1 for m in ids))
    assert a.host.stats["shaped"]["out duplicated"] == 20


async def test_bandwidth_limit_spreads_a_burst_and_keeps_order(net):
    a, b = await net.line(["a", "b"])
    a.add_topic("t")
    arrivals = record_arrivals(b, "t")
    rate, frames, size = 100_000, 20, 5000
    a.host.set_link_rule(b.peer_id, LinkRule(bandwidth_bps=rate), "out")
    start = asyncio.get_running_loop().time()
    ids = [publish(a, "t", i.to_bytes(2, "big") * (size // 2)) for i in range(frames)]
    await wait_until(lambda: len(arrivals) == frames)
    # all but the burst (a tenth of a second of bandwidth) wait for the link: a lower bound
    assert arrivals[ids[-1]] - start >= (frames * size - rate * 0.1) / rate * 0.95
    assert sorted(ids, key=arrivals.get) == ids


async def test_handshake_is_never_shaped(net):
    b = await net.start("b")
    a = await net.start("a")
    b.add_topic("t")
    a.add_topic("t")
    a.host.set_link_rule("*", LinkRule(loss=1.0))
    a.host.add_peer(b.url)
    await wait_until(lambda: a.peer_ids() == {b.peer_id} and b.peer_ids() == {a.peer_id})
    publish(a, "t", b"lost")
    publish(b, "t", b"lost too")
    await wait_until(lambda: a.host.stats["shaped"]["out lost"] == 1
                     and a.host.stats["shaped"]["in lost"] == 1)
    assert a.received["t"] == [] and b.received["t"] == []


async def test_block_both_ways_disconnects_refuses_and_heals_quickly(net, monkeypatch):
    reasons = {"a": [], "b": []}
    b = await net.start("b", on_peer_disconnected=lambda info, why: reasons["b"].append(why))
    a = await net.start("a", peers=[b.url],
                        on_peer_disconnected=lambda info, why: reasons["a"].append(why))
    await wait_until(lambda: a.peer_ids() == {b.peer_id} and b.peer_ids() == {a.peer_id})

    log.info("Block the link a-b both ways on a: both sides see the peer go")
    a.host.set_link_rule(b.peer_id, LinkRule(block=True))
    await wait_until(lambda: a.host.peers() == [] and b.host.peers() == [])
    assert reasons == {"a": [LINK_BLOCKED_REASON], "b": [f"peer said bye: {LINK_BLOCKED_REASON}"]}

    log.info("a keeps dialing b and every attempt is refused at the handshake")
    refused = a.host.stats["rejected"]
    await wait_until(lambda: refused["handshake: refused"] >= 2)
    await wait_until(lambda: b.host.stats["rejected"]["handshake: peer said bye"] >= 2)
    raw = await RawPeer.connect(a.url, name="b")  # b's identity, dialing in
    try:
        await raw.recv_type("hello")
        await raw.send("hello", {"chain_id": CHAIN_ID, "genesis": GENESIS,
                                 "version": PROTOCOL_VERSION, "pubkey": raw.identity.pubkey,
                                 "challenge": b"\x02" * 32})
        assert (await raw.recv_type("bye"))["reason"] == LINK_BLOCKED_REASON
    finally:
        await raw.close()
    assert a.host.peers() == [] and b.host.peers() == []
    assert len(reasons["a"]) == len(reasons["b"]) == 1  # refused links never counted as connected

    log.info("Heal: a redials at once, not after its backoff")
    monkeypatch.setattr(Backoff, "next_delay", lambda self: 30.0)  # only a reset can end this wait
    attempts = refused["handshake: refused"]
    await wait_until(lambda: refused["handshake: refused"] > attempts)
    a.host.clear_link_rules()
    await wait_until(lambda: a.peer_ids() == {b.peer_id} and b.peer_ids() == {a.peer_id}, timeout=4)


async def test_block_one_way_keeps_the_link_and_silences_one_direction(net):
    a, b = await net.line(["a", "b"])
    a.add_topic("t")
    b.add_topic("t")
    b.host.set_link_rule(a.peer_id, LinkRule(block=True), "in")  # b stops hearing a
    from_a = [publish(a, "t", f"from a {i}".encode()) for i in range(5)]
    from_b = [publish(b, "t", f"from b {i}".encode()) for i in range(5)]
    await wait_until(lambda: all(a.count("t", m) == 1 for m in from_b))
    await wait_until(lambda: b.host.stats["shaped"]["in blocked"] >= 5)
    assert b.received["t"] == []
    assert a.peer_ids() == {b.peer_id} and b.peer_ids() == {a.peer_id}
    assert (sum(a.host.stats["disconnects"].values())
            == sum(b.host.stats["disconnects"].values()) == 0)

    b.host.clear_link_rules(a.peer_id)
    healed = publish(a, "t", b"after the heal")
    await wait_until(lambda: b.count("t", healed) == 1)
    assert all(b.count("t", m) == 0 for m in from_a)  # dropped frames stay dropped


async def test_split_a_mesh_in_two_and_heal(net):
    nodes = await net.mesh(["a", "b", "c", "d"])
    a, b, c, d = nodes
    for node in nodes:
        node.add_topic("t")

    log.info("Split the network into {a, b} and {c, d}")
    split_network([[a, b], [c, d]])
    await wait_until(lambda: a.peer_ids() == {b.peer_id} and b.peer_ids() == {a.peer_id}
                     and c.peer_ids() == {d.peer_id} and d.peer_ids() == {c.peer_id})
    left, right = publish(a, "t", b"left side"), publish(d, "t", b"right side")
    await wait_until(lambda: b.count("t", left) == 1 and c.count("t", right) == 1)
    assert (c.count("t", left) == d.count("t", left) == a.count("t", right)
            == b.count("t", right) == 0)

    log.info("Join the network: every link comes back within seconds")
    join_network(nodes)
    everyone = {n.peer_id for n in nodes}
    await wait_until(lambda: all(n.peer_ids() == everyone - {n.peer_id} for n in nodes), timeout=4)

    log.info("Isolate a from everyone with a '*' rule, then heal it")
    a.host.set_link_rule("*", LinkRule(block=True))
    await wait_until(lambda: a.host.peers() == []
                     and all(a.peer_id not in n.peer_ids() for n in nodes[1:]))
    a.host.clear_link_rules("*")
    await wait_until(lambda: a.peer_ids() == everyone - {a.peer_id}, timeout=4)


async def test_dialer_reset_ends_a_backoff_wait(monkeypatch):
    dials = []

    async def dial_once(url: str) -> DialOutcome:
        dials.append(url)
        if len(dials) == 2:
            dialer.reset_backoff()  # a reset during a dial: the pause after it is skipped
        return DialOutcome.FAILED

    async def wait_until_needed(url: str) -> None:
        pass

    dialer = Dialer(dial_once=dial_once, wait_until_needed=wait_until_needed,
                    rng=random.Random(0), log=logging.getLogger("test"))
    monkeypatch.setattr(Backoff, "next_delay", lambda self: 60.0)  # only a reset can end a wait
    dialer.add("ws://x/p2p")
    task = asyncio.create_task(dialer.run())
    try:
        await wait_until(lambda: len(dials) == 1)
        dialer.reset_backoff(["ws://y/p2p"])  # another URL: no effect on this one
        dialer.reset_backoff(["ws://x/p2p"])
        await wait_until(lambda: len(dials) == 3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_link_seed_makes_the_fault_schedule_repeatable():
    def host(**kwargs) -> P2PHost:
        return P2PHost(private_key=seed_for("a"), chain_id=CHAIN_ID, genesis_hash=GENESIS, **kwargs)

    rule = LinkRule(delay_ms=50, jitter_ms=50, loss=0.3, duplicate=0.1)
    peer = compute_peer_id(b"\x01" * 32)

    def schedule(h: P2PHost) -> list[list[float]]:
        return [h.link_shaper.plan(rule, 100, 0.0, peer=peer) for _ in range(50)]

    assert schedule(host(link_seed=5)) == schedule(host(link_seed=5))
    assert schedule(host(link_seed=5)) != schedule(host(link_seed=6))
    assert schedule(host(rng=random.Random(9))) == schedule(host(rng=random.Random(9)))
