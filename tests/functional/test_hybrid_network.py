"""A real hybrid network on loopback: `testnet up --consensus hybrid` mines, votes and finalizes,
`/status` keeps the PoW keys and adds the checkpoints, `testnet stake` and the miner and validator
roles work on it; bad votes and blocks from a raw websocket peer are refused with a reason."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import replace

import pytest

from consensus import keys
from consensus.block_builder import solve
from consensus.hybrid.builder import build_block, make_vote
from consensus.hybrid.chain import HybridChain
from consensus.hybrid.operations import CasperPool
from consensus.hybrid.spec import HybridSpec
from consensus.hybrid.types import CasperBody, HybridVote
from testnet import LocalCluster
from testnet.config.cluster_files import validator_keys
from testnet.waiting import wait_until
from tests.functional.cli_driver import TestnetCLI
from tests.p2p.p2p_harness import RawPeer


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_hybrid_network_finalizes_and_takes_stake_and_roles(tmp_path):
    cli = TestnetCLI(tmp_path / "cluster")
    cli("up", "--nodes", "4", "--consensus", "hybrid", "--block-interval", "1")
    try:
        def finalized() -> list | None:
            nodes = cli.status()["nodes"]
            epochs = [(n.get("finalized") or {}).get("epoch", -1) for n in nodes]
            return nodes if len(nodes) == 4 and min(epochs) >= 2 else None
        nodes = cli.wait_until(finalized, 150, "every node to finalize epoch 2")
        node = nodes[0]
        for key in ("height", "head", "total_work", "hashrate", "epoch", "justified"):
            assert node.get(key) is not None, key
        assert node["finalized"]["height"] == node["finalized"]["epoch"] * 5 - 1
        roots: dict[int, set] = {}
        for n in cli.status()["nodes"]:
            roots.setdefault(n["finalized"]["epoch"], set()).add(n["finalized"]["root"])
        assert all(len(r) == 1 for r in roots.values()), roots
        table = cli("status").stdout
        assert "finalized" in table and "hashrate" in table
        events = cli.events("node0")
        assert {"finalized", "justified", "vote"} <= {e["type"] for e in events}

        api = node["api"]

        def validators() -> list[dict]:
            return json.loads(urllib.request.urlopen(api + "/validators", timeout=5).read())
        out = cli("stake", "deposit", "--from", "0", "--amount", str(32 * 10**8)).stdout
        assert "deposit of 3200000000" in out and "accept" in out
        assert "exit of v3: accept" in cli("stake", "exit", "v3").stdout
        cli.wait_until(lambda: len(validators()) == 33, 90, "the deposit to add validator 32")
        cli.wait_until(lambda: validators()[3]["end_dynasty"] is not None, 90,
                       "validator 3's logout to be scheduled")

        cli("role", "v7", "double-vote")
        cli("role", "2", "selfish-miner")
        assert cli.node("node2")["role"] == "selfish-miner"
        cli.wait_until(lambda: any(e["type"] == "slashed" and e["validator"] == 7
                                   for e in cli.events("node1")), 120,
                       "validator 7 slashed for its double vote")
        assert validators()[7]["slashed"]
        cli("role", "2", "honest")
    finally:
        cli("down", check=False)


@pytest.fixture
async def hybrid_node(tmp_path):
    # slow blocks: the forged votes target the epoch the node is in when the test starts; with
    # 2 s blocks a loaded machine could pass into the next epoch first, and a vote for an epoch
    # that is not the current one is IGNOREd before its signature is looked at
    async with LocalCluster(nodes=1, consensus="hybrid", validators_per_node=4,
                            block_interval_s=30, directory=tmp_path / "cluster") as cluster:
        yield cluster


async def rejected(cluster, kind: str, text: str) -> dict:
    async def find():
        for e in await cluster.events(0):
            if e["type"] == kind and text in e.get("reason", ""):
                return e
        return None
    return await wait_until(find, 60, f"a {kind} event saying {text!r}")


async def test_bad_hybrid_input_is_refused_with_a_reason(hybrid_node):
    cluster = hybrid_node
    spec = HybridSpec.from_json(json.loads((cluster.directory / "genesis.json").read_text()))
    validator_key = validator_keys(cluster.manifest)[0][1]
    chain = HybridChain(spec)          # our own view of genesis, to sign votes and mine blocks
    state = chain.next_state()
    honest = make_vote(state, 1, validator_key, source_epoch=0)
    stranger = keys.derive_private_key("not", "a validator")
    forged = make_vote(state, 1, stranger)
    unknown = replace(honest, validator_index=99)
    block = solve(build_block(chain, CasperPool(), b"\x07" * 32, (), spec.genesis_time + 60))
    stripped = replace(block, casper=CasperBody(votes=(honest,)))   # a relay adds a vote
    cases = [
        ("forger", "vote", forged.root, forged.serialize(), "vote_rejected", "bad vote signature"),
        ("stranger", "vote", unknown.root, unknown.serialize(), "vote_rejected",
         "unknown validator 99"),
        ("relay", "block", stripped.hash, stripped.serialize(), "block_rejected",
         "coinbase does not commit"),
    ]
    for name, topic, msg_id, payload, kind, reason in cases:
        # one peer per bad input, open until the node has judged it: a rejected frame gets its
        # sender dropped, and frames still queued from a dropped peer need not be looked at
        peer = await RawPeer.connect(cluster.info["nodes"][0]["p2p"], name=name)
        try:
            await peer.handshake(chain_id=cluster.info["chain_id"], genesis=chain.genesis_hash)
            await peer.send("gossip", {"topic": topic, "id": msg_id, "payload": payload})
            await rejected(cluster, kind, reason)
        finally:
            await peer.close()
    assert isinstance(HybridVote.deserialize(honest.serialize()), HybridVote)
    assert (await cluster.client(0).status())["consensus"] == "hybrid"


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_checkpoints_sit_on_the_pow_block_tree_for_dashboard_and_prometheus(tmp_path):
    """What the dashboard draws (the collector's union block tree) puts each node's justified
    and finalized checkpoint on a mined block; Prometheus gets the epochs as gauges."""
    import aiohttp

    from testnet.observe.collector import Collector
    async with LocalCluster(nodes=2, consensus="hybrid", validators_per_node=4,
                            block_interval_s=1, directory=tmp_path / "cluster") as cluster:
        async with Collector(cluster, poll_interval=0.5) as collector:
            def on_tree(c: Collector) -> bool:
                tree = c.tree
                return len(tree.finalized) == 2 and all(
                    cp["root"] in tree.blocks and cp["epoch"] >= 1
                    for cp in (*tree.finalized.values(), *tree.justified.values()))
            await collector.wait_for(on_tree, 120, "finalized checkpoints on mined blocks")
            window = collector.snapshot()["tree"]
            drawn = {b["hash"] for b in window["blocks"]}
            assert {cp["root"] for cp in window["finalized"].values()} <= drawn
        async with aiohttp.ClientSession() as session:
            async with session.get(cluster.info["nodes"][0]["api"] + "/metrics") as resp:
                text = await resp.text()
        assert "testnet_finalized_epoch{" in text and "testnet_total_work{" in text
