"""A DPoS cluster as the orchestrator plans it: what its consensus has, the roles its producers
take (addressed like validators, `v3`), its genesis (a preset with the producer keys spread over
the nodes, every account staked), and the compose files that start it from the environment."""

from __future__ import annotations

import json

import pytest

from consensus.dpos.spec import DposSpec
from testnet.backends.compose_file import NetworkRequest, network_compose, validate_network_request
from testnet.backends.node_env import manifest_from_env
from testnet.config.cluster_files import write_cluster
from testnet.config.manifest import ROLES, validate_manifest
from testnet.errors import ScenarioError
from testnet.scenarios.spec import parse_scenario


def test_dpos_says_what_it_has():
    manifest = validate_manifest({"consensus": "dpos"})
    assert (manifest.has_mining, manifest.has_validators, manifest.has_finality) == \
        (False, False, False)
    assert manifest.has_producers and manifest.has_irreversibility and manifest.has_slots


def test_the_role_list_matches_the_nodes_own():
    from node.producer_duties import PRODUCER_ROLES
    assert set(ROLES["dpos"]) == set(PRODUCER_ROLES)


@pytest.mark.parametrize("nodes, producers, candidates, spread", [
    (4, None, 0, [2, 2, 2, 1]),          # default preset: 7 producers
    (4, 21, 0, [6, 5, 5, 5]),
    (3, 3, 2, [2, 2, 1]),
    (16, 21, 0, [2] * 5 + [1] * 11),
])
def test_producer_keys_are_spread_over_the_nodes(nodes, producers, candidates, spread):
    manifest = validate_manifest({"consensus": "dpos", "nodes": nodes, "producers": producers,
                                  "candidates": candidates})
    assert [manifest.node_validators(i) for i in range(nodes)] == spread


def test_the_cluster_files_hold_a_dpos_genesis_with_every_nodes_producers(tmp_path):
    manifest = validate_manifest({"nodes": 3, "consensus": "dpos", "preset": "eosio",
                                  "candidates": 2, "slash_double_production": True})
    info = write_cluster(tmp_path, manifest, ports=[27100, 27101, 27102])
    spec = DposSpec.from_json(json.loads((tmp_path / "genesis.json").read_text()))
    assert (spec.producers, spec.repetitions, spec.slot_duration_ms) == (21, 12, 500)
    assert len(spec.schedule) == 21 and len(spec.candidates) == 2
    assert spec.slash_double_production
    assert len(spec.stakes) == manifest.account_count
    assert info["genesis"] == spec.genesis_block().root.hex()
    assert [len(n["validators"]) for n in info["nodes"]] == [8, 8, 7]
    config = (tmp_path / "node1" / "node.yaml").read_text()
    assert "consensus: dpos" in config and "validator_keys" in config


def scenario(steps: list[dict]) -> object:
    return parse_scenario({"name": "t", "cluster": {"nodes": 4, "consensus": "dpos"},
                           "steps": steps, "checks": [{"chains_valid": True}]})


def test_a_dpos_cluster_takes_producer_roles_by_producer():
    steps = scenario([{"role": {"validator": 3, "role": "producer-offline"}},
                      {"role": {"validator": 1, "role": "censor:" + "ab" * 32}}]).steps
    assert steps[0].args == {"role": "producer-offline", "validator": 3}
    with pytest.raises(ScenarioError, match="unknown validator role 'double-vote'"):
        scenario([{"role": {"validator": 3, "role": "double-vote"}}])
    with pytest.raises(ScenarioError, match="v7 does not exist"):
        scenario([{"role": {"validator": 7, "role": "producer-offline"}}])


def test_compose_files_take_dpos_with_producer_roles():
    req = NetworkRequest(nodes=4, consensus="dpos", roles={3: "producer-offline"})
    validate_network_request(req)
    doc = network_compose(req)
    env = doc["services"]["node3"]["environment"]
    assert env["ROLE"] == "producer-offline"
    assert env["<<"]["CONSENSUS"] == "${CONSENSUS:-dpos}"
    manifest = validate_manifest(manifest_from_env({"NODES": "4", "CONSENSUS": "dpos",
                                                    "MANIFEST_PRESET": "eosio"}))
    assert manifest.schedule_size == 21
