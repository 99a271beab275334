"""A real DPoS network on loopback: producers take their slots on every node, the LIB advances
and agrees everywhere, an offline producer's slots are counted and token holders vote it out,
and a double-producing producer is caught by every node.

Node processes import the installed package: in a second worktree whose venv is installed from
another checkout, run with `PYTHONPATH=$PWD` (and the CLI test, whose driver clears the
environment, only from the checkout the venv is installed from)."""

from __future__ import annotations

import logging

import pytest

from testnet import LocalCluster
from testnet.config.cluster_files import validator_keys
from testnet.waiting import wait_until
from tests.functional.cli_driver import TestnetCLI

log = logging.getLogger("test")

pytestmark = pytest.mark.slow


async def lib_everywhere(cluster, height: int, timeout: float) -> list[dict]:
    async def check():
        statuses = await cluster.statuses()
        if any(s is None or s["finalized"]["height"] < height for s in statuses):
            return None
        return statuses
    return await wait_until(check, timeout, f"every node's LIB to reach height {height}")


async def assert_libs_agree(cluster, statuses: list[dict]) -> None:
    """Every node's LIB is the block at that height on every other node whose LIB is as high."""
    for s in statuses:
        lib = s["finalized"]
        for index, other in enumerate(statuses):
            if other["finalized"]["height"] >= lib["height"]:
                headers = (await cluster.client(index).chain(lib["height"], lib["height"]))
                assert headers["headers"][0]["hash"] == lib["root"], (s["node_id"], index)


async def events_of(cluster, index: int, kind: str) -> list[dict]:
    return [e for e in await cluster.events(index) if e["type"] == kind]


def test_testnet_up_dpos_shows_a_block_every_slot_and_the_lib_advancing(tmp_path):
    cli = TestnetCLI(tmp_path / "cluster")
    cli("up", "--nodes", "4", "--consensus", "dpos")
    try:
        def lib_on_all(height: int):
            def check() -> list | None:
                nodes = cli.status()["nodes"]
                libs = [(n.get("finalized") or {}).get("height", -1) for n in nodes]
                return nodes if len(nodes) == 4 and min(libs) >= height else None
            return check
        first = cli.wait_until(lib_on_all(10), 60, "every node's LIB at height 10")
        later = cli.wait_until(lib_on_all(max(n["finalized"]["height"] for n in first) + 14),
                               60, "the LIB 14 blocks (a round) further on every node")
        for before, after in zip(first, later, strict=True):
            slots = after["slot"] - before["slot"]
            assert after["height"] - before["height"] >= slots - 2, (before, after)
        table = cli("status").stdout
        assert "lib" in table and "(gap " in table
        assert "accept" in cli("vote", "--from", "0", "--for", "c0,c1").stdout
        assert "schedule v0" in cli("dpos", "producers").stdout
    finally:
        cli("down", check=False)


async def test_producers_take_their_slots_and_the_lib_advances_and_agrees(tmp_path):
    async with LocalCluster(nodes=4, consensus="dpos", directory=tmp_path / "cluster",
                            genesis_delay_ms=1000) as cluster:
        log.info("Wait for a LIB of 20 blocks on every node")
        statuses = await lib_everywhere(cluster, 20, 60)
        libs = {s["finalized"]["height"]: s["finalized"]["root"] for s in statuses}
        for index in range(cluster.size):
            for height, root in libs.items():
                block = await cluster.client(index).block(root)
                assert block["height"] == height and block["main_chain"]
                assert block["irreversible"]
        await assert_libs_agree(cluster, statuses)
        gaps = [s["lib_gap"] for s in statuses]
        assert all(1 <= gap <= 12 for gap in gaps), gaps     # 7-8 when no slot is missed
        producers = await cluster.client(0).producers()
        assert len(producers["schedule"]) == 7
        assert all(c["produced"] > 0 for c in producers["candidates"])
        assert await events_of(cluster, 1, "lib_advanced")
        metrics = await cluster.client(2).metrics()
        assert "testnet_lib_height" in metrics


async def test_an_offline_producer_is_counted_and_voted_out(tmp_path):
    async with LocalCluster(nodes=4, consensus="dpos", candidates=1, accounts=4,
                            directory=tmp_path / "cluster", genesis_delay_ms=1000) as cluster:
        keys = [k for node_keys in validator_keys(cluster.manifest) for k in node_keys]
        node_of_v3 = next(n["index"] for n in cluster.info["nodes"] if 3 in n["validators"])
        log.info("Producer v3 goes offline")
        await cluster.admin(node_of_v3, "POST", "/admin/role",
                            {"validator": 3, "role": "producer-offline"})
        await wait_until(lambda: events_of(cluster, 0, "producer_missed"), 30,
                         "a producer_missed event on node0")
        log.info("Token holders vote for everyone but v3 (c7 takes its seat)")
        from consensus.dpos.types import OpKind, sign_operation
        from consensus.keys import public_key
        elected = tuple(public_key(k) for i, k in enumerate(keys) if i != 3)
        for account in cluster.accounts():
            key = bytes.fromhex(account["private_key"])
            nonce = (await cluster.client(0).account(account["account"]))["pending_nonce"]
            op = sign_operation(key, OpKind.VOTE, nonce, candidates=elected)
            await cluster.client(0).post_dpos_operation(op.serialize())

        async def voted_out():
            statuses = await cluster.statuses()
            if all(s and s["schedule_version"] >= 1 for s in statuses):
                return statuses
            return None
        await wait_until(voted_out, 60, "every node to activate the new schedule")
        producers = await cluster.client(1).producers()
        assert public_key(keys[3]).hex() not in producers["schedule"]
        v3 = next(c for c in producers["candidates"] if c["producer"] == public_key(keys[3]).hex())
        assert v3["missed"] > 0 and v3["votes"] == 0
        assert await events_of(cluster, 2, "schedule_changed")


async def test_a_double_producer_is_caught_by_every_node(tmp_path):
    async with LocalCluster(nodes=3, consensus="dpos", directory=tmp_path / "cluster",
                            genesis_delay_ms=1000) as cluster:
        await lib_everywhere(cluster, 3, 30)
        node_of_v1 = next(n["index"] for n in cluster.info["nodes"] if 1 in n["validators"])
        await cluster.admin(node_of_v1, "POST", "/admin/role",
                            {"validator": 1, "role": "double-produce"})
        for index in range(cluster.size):
            await wait_until(lambda i=index: events_of(cluster, i, "double_production"), 30,
                             f"a double_production event on node{index}")
        statuses = await lib_everywhere(cluster, 30, 60)
        await assert_libs_agree(cluster, statuses)
