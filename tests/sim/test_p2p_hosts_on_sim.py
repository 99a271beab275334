"""Real P2PHosts on the virtual-time loop over a MemoryNetwork: handshake, gossip and sync across
regions, in virtual time, with one seed giving one delivery trace."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from p2p import GossipMessage, P2PHost, Verdict
from p2p.memory_transport import MemoryNetwork, url_of
from testnet.sim.loop import run
from testnet.sim.network_model import RegionLinks, assign_regions
from tests.p2p.p2p_harness import CHAIN_ID, GENESIS, ListChain, make_items, msg_id_of, seed_for
from tests.p2p.p2p_harness import wait_until as harness_wait_until

Trace = list[tuple[float, str, str]]
NAMES = ("a", "b", "c")
PEERS = {"a": [], "b": ["a"], "c": ["b"]}  # a line: c hears a only through b


async def line_of_hosts(seed: int) -> Trace:
    """Three hosts in a line; a holds 40 items and publishes one gossip message; until c has
    everything. Returns what happened when, in virtual time."""
    loop = asyncio.get_running_loop()
    trace: Trace = []

    def note(host: str, what: str) -> None:
        trace.append((round(loop.time(), 9), host, what))

    regions = assign_regions(list(NAMES), seed=seed)
    network = MemoryNetwork(RegionLinks(regions, seed=seed), seed=seed)
    hosts: dict[str, P2PHost] = {}
    chains = {name: ListChain(make_items(40) if name == "a" else []) for name in NAMES}
    for name in NAMES:
        rng = random.Random(f"{seed}/{name}")
        host = hosts[name] = P2PHost(
            private_key=seed_for(name), chain_id=CHAIN_ID, genesis_hash=GENESIS,
            peers=[url_of(peer) for peer in PEERS[name]], rng=rng,
            challenge_source=random.Random(f"{seed}/{name}/challenges").randbytes,
            transport=network.transport(name), logger=logging.getLogger(f"p2p.sim.{name}"),
            on_peer_connected=lambda info, name=name: note(name, f"connected {info.url}"),
        )
        host.set_sync_source(chains[name])

        async def validate(msg: GossipMessage, name: str = name) -> Verdict:
            note(name, f"gossip {msg.payload.decode()}")
            return Verdict.accept()

        host.add_topic("news", validate)

    async with asyncio.TaskGroup() as task_group:
        tasks = [task_group.create_task(host.run()) for host in hosts.values()]
        await wait_until(lambda: len(hosts["b"].peers()) == 2, "b to connect to a and c")
        hosts["a"].publish("news", msg_id_of(b"extra!"), b"extra!")
        await wait_until(lambda: any(what == "gossip extra!" for _, host, what in trace
                                     if host == "c"), "the gossip to reach c")
        await wait_until(lambda: chains["c"].items == chains["a"].items, "c to sync a's items")
        note("c", f"synced {len(chains['c'].items)} items")
        for task in tasks:
            task.cancel()
    return trace


async def wait_until(predicate, what: str) -> None:
    await harness_wait_until(predicate, timeout=60.0, what=what)


def test_hosts_handshake_gossip_and_sync_in_virtual_time():
    wall = time.perf_counter()
    trace = run(line_of_hosts(seed=5))
    assert trace is not None
    hosts_that_heard = [host for _, host, what in trace if what == "gossip extra!"]
    assert hosts_that_heard == ["b", "c"]  # a published it; each other host validated it once
    assert trace[-1][1:] == ("c", "synced 40 items")
    assert 0 < trace[-1][0] < 60  # virtual seconds
    gossip_at = {host: at for at, host, what in trace if what == "gossip extra!"}
    assert gossip_at["c"] > gossip_at["b"]  # one more hop
    assert time.perf_counter() - wall < 20


def test_one_seed_gives_one_delivery_trace():
    first = run(line_of_hosts(seed=11))
    assert first == run(line_of_hosts(seed=11))
    assert first != run(line_of_hosts(seed=12))  # other regions, other latencies


def test_the_trace_does_not_depend_on_string_hashing_or_memory_layout():
    script = ("from testnet.sim.loop import run\n"
              "from tests.sim.test_p2p_hosts_on_sim import line_of_hosts\n"
              "print(repr(run(line_of_hosts(seed=3))))\n")
    root = Path(__file__).resolve().parents[2]
    traces = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(root)}
        result = subprocess.run([sys.executable, "-c", script], env=env, cwd=root,
                                capture_output=True, text=True, timeout=60, check=True)
        traces.append(result.stdout)
    assert traces[0] == traces[1]
    assert traces[0].count("gossip extra!") == 2


def make_host(network: MemoryNetwork, name: str, peers: list[str], seed: int,
              notes: list[str]) -> P2PHost:
    return P2PHost(
        private_key=seed_for(name), chain_id=CHAIN_ID, genesis_hash=GENESIS,
        peers=[url_of(peer) for peer in peers], rng=random.Random(f"{seed}/{name}"),
        challenge_source=random.Random(f"{seed}/{name}/challenges").randbytes,
        transport=network.transport(name), logger=logging.getLogger(f"p2p.sim.{name}"),
        on_peer_connected=lambda info: notes.append(f"{name} connected"),
        on_peer_disconnected=lambda info, reason: notes.append(f"{name} lost peer: {reason}"),
    )


def test_a_crashed_host_is_a_lost_link_and_its_restart_is_redialed():
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        network = MemoryNetwork(RegionLinks({"a": "europe", "b": "japan"}, pareto=False))
        notes: list[str] = []
        async with asyncio.TaskGroup() as task_group:
            b = make_host(network, "b", ["a"], 1, notes)
            b_task = task_group.create_task(b.run())
            a = make_host(network, "a", [], 1, notes)
            a_task = task_group.create_task(a.run())
            await wait_until(lambda: len(b.peers()) == 1, "b to connect to a")
            crash_at = loop.time()
            network.transport("a").sever()  # kill -9: no bye, no close handshake
            a_task.cancel()
            await asyncio.wait([a_task])  # the process is gone before it restarts
            await wait_until(lambda: not b.peers(), "b to notice")
            assert loop.time() - crash_at <= 0.252 + 0.01  # one Europe-Japan latency
            a = make_host(network, "a", [], 1, notes)  # restarted: same key, same address
            a_task = task_group.create_task(a.run())
            await wait_until(lambda: len(b.peers()) == 1, "b to redial the restarted a")
            a_task.cancel()
            b_task.cancel()
        return notes

    notes = run(main())
    assert notes is not None
    b_notes = [note for note in notes if note.startswith("b ")]
    assert b_notes[:3] == ["b connected", "b lost peer: closed by peer (1006)", "b connected"]


def test_a_partition_by_link_rules_closes_links_and_healing_reconnects_at_once():
    from p2p import LinkRule

    async def main() -> list[tuple[float, str]]:
        loop = asyncio.get_running_loop()
        network = MemoryNetwork(RegionLinks({"a": "europe", "b": "europe"}, pareto=False))
        notes: list[str] = []
        timeline: list[tuple[float, str]] = []
        async with asyncio.TaskGroup() as task_group:
            a = make_host(network, "a", [], 2, notes)
            b = make_host(network, "b", ["a"], 2, notes)
            tasks = [task_group.create_task(host.run()) for host in (a, b)]
            await wait_until(lambda: len(b.peers()) == 1, "b to connect to a")
            timeline.append((loop.time(), "connected"))
            a.set_link_rule(b.peer_id, LinkRule(block=True))
            b.set_link_rule(a.peer_id, LinkRule(block=True))
            await wait_until(lambda: not a.peers() and not b.peers(), "the link to close")
            timeline.append((loop.time(), "split"))
            await asyncio.sleep(30)  # b keeps dialing; a refuses it at the handshake
            assert not a.peers() and not b.peers()
            a.clear_link_rules()
            b.clear_link_rules()
            healed_at = loop.time()
            await wait_until(lambda: len(b.peers()) == 1, "b to reconnect")
            timeline.append((loop.time() - healed_at, "rejoined after"))
            for task in tasks:
                task.cancel()
        return timeline

    timeline = run(main())
    assert timeline is not None
    assert [label for _, label in timeline] == ["connected", "split", "rejoined after"]
    assert timeline[2][0] < 0.5  # backoff reset at heal: one dial and handshake, not a 5 s wait
    assert run(main()) == timeline
