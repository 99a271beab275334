"""A hybrid cluster as the orchestrator plans it: what its consensus has (one decision point),
the roles it takes (miner roles by node, validator roles by validator), its genesis (a PoW spec
plus EIP-1011's parameters, committed in the genesis block), scenario variants, compose files."""

from __future__ import annotations

import json

import pytest

from consensus.hybrid.spec import HybridSpec
from testnet.backends.compose_file import NetworkRequest, network_compose, validate_network_request
from testnet.config.cluster_files import write_cluster
from testnet.config.manifest import ROLES, validate_manifest
from testnet.errors import ScenarioError
from testnet.scenarios.spec import parse_scenario


@pytest.mark.parametrize("consensus, mining, validators, finality", [
    ("pow", True, False, False), ("pos", False, True, True), ("hybrid", True, True, True)])
def test_each_consensus_says_what_it_has(consensus, mining, validators, finality):
    manifest = validate_manifest({"consensus": consensus})
    assert (manifest.has_mining, manifest.has_validators, manifest.has_finality) == \
        (mining, validators, finality)


def test_the_role_lists_match_the_nodes_own():
    from node.hybrid_validators import VALIDATOR_ROLES
    from node.mining_strategy import ROLES as MINER_ROLES
    assert set(ROLES["hybrid"]) == set(MINER_ROLES) | set(VALIDATOR_ROLES)


def scenario(steps: list[dict], **cluster) -> object:
    return parse_scenario({"name": "t", "cluster": {"nodes": 4, "consensus": "hybrid", **cluster},
                           "steps": steps, "checks": [{"chains_valid": True}]})


def test_a_hybrid_cluster_takes_miner_roles_by_node_and_validator_roles_by_validator():
    steps = scenario([{"role": {"node": 3, "role": "withhold"}},
                      {"role": {"validator": 7, "role": "surround-vote"}},
                      {"wait": {"finalized_epoch": 2}}, {"wait": {"epochs": 1}}]).steps
    assert steps[0].args == {"role": "withhold", "node": 3}
    assert steps[1].args == {"role": "surround-vote", "validator": 7}
    with pytest.raises(ScenarioError, match="unknown validator role 'double-propose'"):
        scenario([{"role": {"validator": 7, "role": "double-propose"}}])
    with pytest.raises(ScenarioError, match="unknown miner role 'silent'"):
        scenario([{"role": {"node": 1, "role": "silent"}}])
    with pytest.raises(ScenarioError, match="v40 does not exist"):
        scenario([{"role": {"validator": 40, "role": "silent"}}])


def test_a_variant_runs_the_same_steps_on_another_cluster():
    raw = {"name": "attack", "cluster": {"nodes": 4, "consensus": "hybrid"},
           "steps": [{"wait": {"height": 3}}, {"role": {"node": 3, "role": "withhold"}}],
           "checks": [{"chains_valid": True}],
           "variants": {"pow": {"cluster": {"consensus": "pow"},
                                "checks": [{"max_reorg_depth": 3}]}}}
    main = parse_scenario(raw)
    (variant,) = main.variants
    assert (main.label, variant.label, variant.manifest.consensus) == ("hybrid", "pow", "pow")
    assert [s.args for s in variant.steps] == [s.args for s in main.steps]
    assert variant.checks == [{"max_reorg_depth": 3}] and variant.variants == []
    raw["steps"].append({"wait": {"finalized_epoch": 1}})
    with pytest.raises(ScenarioError, match="variant pow: step 3 .*PoS and hybrid clusters"):
        parse_scenario(raw)


def test_the_cluster_files_hold_a_hybrid_genesis_with_every_nodes_validators(tmp_path):
    manifest = validate_manifest({"nodes": 3, "consensus": "hybrid", "validators_per_node": 2,
                                  "epoch_length": 7, "overrides": {2: {"stake": 64 * 10**8}}})
    info = write_cluster(tmp_path, manifest, ports=[20000, 20001, 20002])
    spec = HybridSpec.from_json(json.loads((tmp_path / "genesis.json").read_text()))
    assert spec.epoch_length == 7 and len(spec.validators) == 6
    assert [d for _k, d in spec.validators][-1] == 64 * 10**8
    assert info["genesis"] == spec.genesis_block().hash[::-1].hex()
    assert [n["validators"] for n in info["nodes"]] == [[0, 1], [2, 3], [4, 5]]
    config = (tmp_path / "node1" / "node.yaml").read_text()
    assert "consensus: hybrid" in config and "enabled: true" in config
    assert "validator_keys" in config


def test_the_genesis_commits_to_the_casper_parameters():
    a = HybridSpec(genesis_time=1)
    assert HybridSpec.from_json(a.to_json()) == a
    b = HybridSpec(genesis_time=1, epoch_length=6)
    assert a.genesis_block().hash != b.genesis_block().hash


def test_compose_files_take_hybrid_with_stakes_and_both_kinds_of_roles():
    req = NetworkRequest(nodes=4, consensus="hybrid", stakes={1: 64 * 10**8},
                         roles={2: "selfish-miner", 3: "double-vote"})
    validate_network_request(req)
    doc = network_compose(req)
    assert doc["services"]["node2"]["environment"]["ROLE"] == "selfish-miner"
    assert doc["services"]["node3"]["environment"]["ROLE"] == "double-vote"
