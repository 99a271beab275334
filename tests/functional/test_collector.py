"""The collector's merged timeline of a real cluster: no holes across a node's crash and restart,
faults interleaved with node events, and the union block tree across a partition and heal."""

from __future__ import annotations

import json
import logging

import aiohttp
import pytest

from testnet import LocalCluster
from testnet.faults.grudge import complete
from testnet.faults.nemesis import Nemesis
from testnet.observe.collector import Collector

log = logging.getLogger("test")

FAST = {"block_interval_s": 1, "hashrate": 20_000}


def seqs(collector: Collector, node: str) -> list[int]:
    return [e["seq"] for e in collector.node_events(node)]


def logged_seqs(cluster: LocalCluster, index: int) -> list[int]:
    path = cluster.directory / f"node{index}" / "data" / "events.jsonl"
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line)["seq"])
        except (json.JSONDecodeError, KeyError):
            pass
    return out


@pytest.mark.slow
async def test_a_node_killed_and_restarted_leaves_no_hole_in_the_timeline(tmp_path):
    async with LocalCluster(nodes=3, directory=tmp_path / "c", seed=5, **FAST) as cluster:
        await cluster.converged(timeout=30)
        async with Collector(cluster, poll_interval=0.5) as collector:
            def height_of(c: Collector, node: str) -> int:
                head = c.tree.heads.get(node)
                return c.tree.blocks[head].height if head in c.tree.blocks else -1
            await collector.wait_for(lambda c: height_of(c, "node1") >= 2, 60,
                                     "node1 at height 2")
            log.info("Kill node1 mid-run; the others keep mining while it is down")
            cluster.kill(1)
            had = height_of(collector, "node1")
            height = collector.tree.max_height
            await collector.wait_for(lambda c: c.tree.max_height >= height + 2, 60,
                                     "two blocks while node1 is down")
            cluster.start(1)
            await cluster.healthy(timeout=30, indices=[1])
            await cluster.converged(timeout=60)
            log.info("node1 catches up: it accepts the blocks it missed, emitting new events")
            await collector.wait_for(
                lambda c: any(e["type"] == "node_started" for e in c.node_events("node1")[1:])
                and c.node_events("node1")[-1]["seq"] >= logged_seqs(cluster, 1)[-1], 60,
                "node1's restart and catch-up in the timeline")
        for index in range(3):
            name = f"node{index}"
            got = seqs(collector, name)
            assert got == list(range(1, got[-1] + 1)), f"{name}: hole or duplicate in {got}"
            assert got == logged_seqs(cluster, index)[: len(got)]
        restarts = [e for e in collector.node_events("node1") if e["type"] == "node_started"]
        assert len(restarts) == 2
        assert restarts[1]["height"] >= had, "the killed node restarts with every block it accepted"
        kills = [e for e in collector.timeline if e.get("source") == "nemesis"]
        assert kills == [], "kill/start from the Python API are not nemesis actions"


@pytest.mark.slow
async def test_partition_and_heal_show_in_the_union_tree_and_timeline(tmp_path):
    async with LocalCluster(nodes=4, directory=tmp_path / "c", seed=9, **FAST) as cluster:
        await cluster.converged(timeout=30)
        async with Collector(cluster, poll_interval=0.5) as collector:
            nemesis = Nemesis(cluster)
            await nemesis.partition(complete(4, [[0, 1], [2, 3]]))
            await collector.wait_for(lambda c: c.partition()["partitioned"], 30, "grudge seen")
            assert collector.partition()["groups"] == [["node0", "node1"], ["node2", "node3"]]
            log.info("Both sides mine their own branch")
            start = collector.tree.max_height

            def two_branches(c: Collector) -> bool:
                heads = {c.tree.heads.get(f"node{i}") for i in range(4)}
                return len(heads) == 2 and all(
                    h in c.tree.blocks and c.tree.blocks[h].height > start for h in heads)
            await collector.wait_for(two_branches, 120, "two branches past the split")
            assert max(collector.tree.lanes().values()) >= 1
            await nemesis.heal()
            await collector.wait_for(lambda c: c.tree.reorgs > 0
                                     and len(set(c.tree.heads.values())) == 1, 90,
                                     "a reorg and one head")
            await collector.catch_up()
            window = collector.tree.window()
            stale = [b for b in window["blocks"] if not b["canonical"]]
            assert stale and all(b["lane"] >= 1 for b in stale)
            kinds = [(e.get("source"), e["type"], e.get("fault")) for e in collector.timeline
                     if e.get("source") == "nemesis"]
            assert kinds == [("nemesis", "fault_applied", "partition"),
                             ("nemesis", "fault_cleared", "heal")]
            assert not collector.partition()["partitioned"]
            ordered = collector.merged()
            assert [e.get("rx_ts", e["ts"]) for e in ordered] == sorted(
                e.get("rx_ts", e["ts"]) for e in ordered)


async def test_event_log_endpoint_pages_and_refuses_bad_input(tmp_path):
    async with LocalCluster(nodes=1, directory=tmp_path / "c", **FAST) as cluster:
        client = cluster.client(0)
        page = await client.event_log(0, 2)
        assert [e["seq"] for e in page["events"]] == [1, 2][: len(page["events"])]
        assert page["last_seq"] >= len(page["events"])
        async with aiohttp.ClientSession() as session:
            for query in ("after=x", "after=-1", "limit=0"):
                async with session.get(f"{client.api}/events/log?{query}") as resp:
                    assert resp.status == 400
                    assert "error" in await resp.json()
        assert (await cluster.status(0)) is not None, "the node keeps running"
