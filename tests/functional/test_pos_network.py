"""A real PoS network on loopback: finality from `testnet up --consensus pos`, and bad PoS input
from a raw websocket peer refused with a reason while the node keeps running."""

from __future__ import annotations

import json
import os

import pytest

from consensus.pos.chain import PosChain
from consensus.pos.signing import sign_attestation
from consensus.pos.spec import PosSpec
from consensus.pos.types import Checkpoint
from node.events import read_log
from testnet import LocalCluster
from testnet.config.cluster_files import validator_keys
from testnet.waiting import wait_until
from tests.functional.cli_driver import TestnetCLI
from tests.p2p.p2p_harness import RawPeer


def test_pos_network_finalizes_and_all_nodes_agree_on_the_checkpoint(tmp_path):
    cli = TestnetCLI(tmp_path / "cluster")
    cli("up", "--nodes", "4", "--consensus", "pos")
    try:
        def finalized() -> set | None:
            nodes = cli.status()["nodes"]
            epochs = {n["finalized"]["epoch"] for n in nodes if n.get("finalized")}
            return epochs if len(nodes) == 4 and min(epochs, default=0) >= 2 else None
        cli.wait_until(finalized, 90, "every node to finalize epoch 2")
        checkpoints = {(n["finalized"]["epoch"], n["finalized"]["root"])
                       for n in cli.status()["nodes"]}
        roots_by_epoch: dict[int, set] = {}
        for epoch, root in checkpoints:
            roots_by_epoch.setdefault(epoch, set()).add(root)
        assert all(len(r) == 1 for r in roots_by_epoch.values()), checkpoints
        assert "finalized" in cli("status").stdout
        events = cli.events("node0")
        assert any(e["type"] == "finalized" for e in events)
        assert any(e["type"] == "attestation" for e in events)
    finally:
        cli("down", check=False)


@pytest.fixture
async def pos_node(tmp_path):
    async with LocalCluster(nodes=1, consensus="pos", validators_per_node=4,
                            directory=tmp_path / "cluster") as cluster:
        yield cluster


async def rejected(cluster, kind: str, text: str) -> dict:
    async def find():
        for e in await cluster.events(0):
            if e["type"] == kind and text in e.get("reason", ""):
                return e
        return None
    return await wait_until(find, 30, f"a {kind} event saying {text!r}")


async def test_bad_pos_input_is_refused_with_a_reason(pos_node):
    cluster = pos_node
    spec = PosSpec.from_json(json.loads((cluster.directory / "genesis.json").read_text()))
    keys = validator_keys(cluster.manifest)[0]
    chain = PosChain(spec)      # our own view of genesis, to find duties and build blocks

    async def fresh_duty() -> tuple[dict, int, int] | None:
        """A validator whose duty slot has started but is at most a few slots old, so the node
        judges each forged vote on its signature and fields rather than ignoring it as stale
        (a loaded machine can be many slots past genesis by the time the cluster is up)."""
        status = await cluster.client(0).status()
        now = status["slot"]
        epoch = now // spec.slots_per_epoch
        duties = [(slot, v) for slot in range(epoch * spec.slots_per_epoch, now + 1)
                  for v in chain.get_attesters(slot) if v < len(keys)]
        recent = [(slot, v) for slot, v in duties if now - slot <= spec.slots_per_epoch // 2]
        return (status, *max(recent)) if recent and now >= 2 else None   # a slot to propose at
    status, duty, validator = await wait_until(fresh_duty, 60, "a fresh attester duty")
    slot = status["slot"]
    genesis = bytes.fromhex(status["genesis"])
    head = genesis
    source = Checkpoint(0, genesis)
    target = Checkpoint(duty // spec.slots_per_epoch, genesis)
    other = (validator + 1) % len(keys)
    peer = await RawPeer.connect(cluster.info["nodes"][0]["p2p"])
    try:
        await peer.handshake(chain_id=cluster.info["chain_id"], genesis=genesis)

        async def gossip(topic: str, obj) -> None:  # type: ignore[no-untyped-def]
            await peer.send("gossip", {"topic": topic, "id": obj.root,
                                       "payload": obj.serialize()})
        # the validator's vote at its duty slot, but signed with another validator's key
        await gossip("attestation", sign_attestation(keys[other], duty, validator, head, source,
                                                     target))
        await gossip("attestation", sign_attestation(keys[validator], duty, 999, head, source,
                                                     target))
        await gossip("attestation", sign_attestation(keys[validator], duty, validator,
                                                     os.urandom(32), source, target))
        future = slot + 1000
        await gossip("attestation", sign_attestation(
            keys[validator], future, validator, head, source,
            Checkpoint(future // spec.slots_per_epoch, head)))
        proposer = chain.get_proposer(slot)
        wrong = next(i for i in range(len(keys)) if i != proposer)
        bad_block = chain.build_block(slot, wrong, keys[wrong])
        await gossip("pos_block", bad_block)
    finally:
        await peer.close()
    await rejected(cluster, "attestation_rejected", "bad attestation signature")
    await rejected(cluster, "attestation_rejected", "unknown validator 999")
    await rejected(cluster, "attestation_rejected", "unknown head block")
    await rejected(cluster, "attestation_rejected", "in the future")
    event = await rejected(cluster, "block_rejected", "proposer")
    assert event["hash"] == bad_block.root.hex()
    log = (cluster.directory / "node0" / "node.log").read_text()
    assert "rejected attestation" in log and "rejected block" in log
    assert (await cluster.client(0).status())["node_id"] == "node0"


def test_deposit_adds_a_validator_and_exit_schedules_one_out(tmp_path):
    cli = TestnetCLI(tmp_path / "cluster")
    cli("up", "--nodes", "2", "--consensus", "pos", "--validators", "4")
    try:
        out = cli("stake", "deposit", "--from", "0", "--amount", str(32 * 10**8)).stdout
        assert "deposit of 3200000000" in out and "accept" in out
        out = cli("stake", "exit", "v3").stdout
        assert "exit of v3: accept" in out
        api = cli.status()["nodes"][0]["api"]

        def validators() -> list[dict]:
            import urllib.request
            return json.loads(urllib.request.urlopen(api + "/validators", timeout=5).read())
        cli.wait_until(lambda: len(validators()) == 9, 60, "the deposit to add validator 8")
        cli.wait_until(lambda: validators()[3]["exit_epoch"] is not None, 60,
                       "validator 3's exit epoch to be set")
        bad = cli("stake", "exit", "v99", check=False)
        assert bad.returncode != 0 and "no genesis validator v99" in bad.stderr
    finally:
        cli("down", check=False)


@pytest.mark.slow
async def test_a_killed_validator_node_restarts_with_its_signing_record(pos_node):
    """Slashing protection outlives a SIGKILL: every vote and block the node signed before the
    kill is read back before its validators sign anything again."""
    cluster = pos_node

    async def voted() -> dict | None:
        validators = (await cluster.status(0))["validators"]
        return validators if validators["attested"] >= 4 and validators["proposed"] >= 1 \
            else None
    await wait_until(voted, 60, "four votes and a block")
    cluster.kill(0)
    events = read_log(cluster.directory / "node0" / "data" / "events.jsonl", 0, 5000)
    signed = [e for e in events if e["type"] == "attestation" and e.get("peer") == "local"]
    cluster.start(0)
    await cluster.healthy(timeout=30, indices=[0])
    validators = (await cluster.status(0))["validators"]
    assert validators["signing_records_loaded"] >= len(signed) + 1
