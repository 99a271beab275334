"""Compose generation and container config, without Docker: what `testnet compose` writes and
refuses, and what each container derives from its environment (the same genesis everywhere)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from testnet.backends.compose_file import (
    ROLES,
    ComposeSpecError,
    NetworkRequest,
    cluster_compose,
    network_compose,
    render,
    validate_network_request,
)
from testnet.backends.node_env import (
    EnvConfigError,
    derive_node_files,
    shared_genesis,
    write_node_files,
)

ROOT = Path(__file__).resolve().parents[2]


def compose_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "testnet.cli", "compose", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("args, message", [
    (["--nodes", "0"], "at least one node"),
    (["--nodes", "4", "--consensus", "pox"], "--consensus 'pox'"),
    (["--nodes", "4", "--consensus", "pos", "--stake", "9=100"], "no node 9 (nodes are 0..3)"),
    (["--nodes", "4", "--role", "4=selfish-miner"], "no node 4"),
    (["--nodes", "4", "--stake", "1=100"], "--stake is for Proof of Stake"),
    (["--nodes", "4", "--role", "1=double-vote"], "pow roles are"),
    (["--nodes", "4", "--hashrate", "2=fast"], "--hashrate 2=fast"),
    (["--nodes", "4", "--topology", "groups:0,1|7"], "names node 7"),
    (["--nodes", "4", "--topology", "mesh"], "unknown topology"),
])
def test_impossible_requests_fail_before_writing(tmp_path, args, message):
    out = tmp_path / "net.yml"
    result = compose_cli(*args, "-o", str(out))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "nothing written" in result.stderr
    assert not out.exists()


def test_root_docker_compose_yml_is_the_generator_output(tmp_path):
    out = tmp_path / "docker-compose.yml"
    result = compose_cli("--nodes", "4", "--wait-healthy", "-o", str(out))
    assert result.returncode == 0, result.stderr
    generated = yaml.safe_load(out.read_text())
    committed = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert generated == committed, ("docker-compose.yml drifted from the generator: regenerate "
                                    "it with `testnet compose --nodes 4 --wait-healthy -o "
                                    "docker-compose.yml`")


def test_generated_file_serves_compose_and_swarm():
    request = NetworkRequest(nodes=3, consensus="pos", stakes={1: 64_0000_0000},
                             roles={2: "double-vote"}, base_port=20000)
    validate_network_request(request)
    doc = yaml.safe_load(render(network_compose(request)))
    assert doc["version"] == "3.8"
    assert doc["networks"] == {"testnet": None} or doc["networks"] == {"testnet": {}}
    node1, node2 = doc["services"]["node1"], doc["services"]["node2"]
    assert node1["depends_on"] == ["node0"]  # the list form `docker stack deploy` accepts
    assert node2["environment"]["ROLE"] == "double-vote"
    assert node1["environment"]["STAKES"] == "1=6400000000"
    assert node1["environment"]["NODE_INDEX"] == "1"
    assert node1["environment"]["CONSENSUS"] == "${CONSENSUS:-pos}"
    assert node1["deploy"]["endpoint_mode"] == "dnsrr"
    assert node1["ports"][0] == {"target": 18444, "published": 20001, "protocol": "tcp",
                                 "mode": "host"}
    assert set(doc["volumes"]) == {"genesis", "node0-data", "node1-data", "node2-data"}


def test_cluster_file_mounts_the_node_folders(tmp_path):
    info = {"project": "testnet-x", "nodes": [
        {"index": i, "name": f"node{i}", "port": 30000 + i} for i in range(2)]}
    compose = cluster_compose(info, tmp_path, image="img:1", user="1000:1000")
    node1 = compose["services"]["node1"]
    assert node1["volumes"][0] == f"{tmp_path / 'node1'}:/node"
    assert node1["command"] == ["--config", "/node/node.yaml"]
    assert node1["ports"] == ["127.0.0.1:30001:18444"]
    assert node1["user"] == "1000:1000"
    swarm = cluster_compose(info, tmp_path, image="img:1", swarm=True)
    assert swarm["networks"]["testnet"]["driver"] == "overlay"
    assert swarm["services"]["node0"]["deploy"]["restart_policy"] == {"condition": "none"}


def test_role_lists_match_the_nodes():
    from node.mining_strategy import ROLES as POW
    from node.validator_duties import VALIDATOR_ROLES as POS
    assert set(ROLES["pow"]) == set(POW)
    assert set(ROLES["pos"]) == set(POS)


# ---- the container's environment -----------------------------------------------------------------
ENV = {"NODES": "4", "SEED": "7", "TOPOLOGY": "ring", "HASHRATES": "3=off"}


@pytest.mark.parametrize("consensus", ["pow", "pos"])
def test_every_container_derives_the_same_genesis_and_its_own_identity(consensus):
    configs, geneses = [], []
    for i in range(4):
        config, genesis = derive_node_files({**ENV, "CONSENSUS": consensus, "NODE_INDEX": str(i),
                                             "GENESIS_TIME": "1800000000"})
        configs.append(config)
        geneses.append(genesis)
    assert all(g == geneses[0] for g in geneses)
    assert len({c["node_key"] for c in configs}) == 4
    assert configs[0]["host"] == "0.0.0.0" and configs[0]["port"] == 18444
    assert configs[0]["peers"] == ["ws://node1:18444/p2p", "ws://node3:18444/p2p"]  # ring
    assert configs[0]["consensus"] == consensus
    if consensus == "pow":
        assert configs[3]["miner"]["enabled"] is False
        assert geneses[0]["genesis_time"] == 1800000000
    else:
        assert geneses[0]["genesis_time_ms"] == 1800000000000
        assert len(configs[1]["validator_keys"]) == 8


def test_first_container_writes_the_genesis_and_the_others_adopt_it(tmp_path):
    shared = tmp_path / "genesis"
    paths = [write_node_files({**ENV, "NODE_INDEX": str(i), "DATA_DIR": str(tmp_path / f"n{i}"),
                               "GENESIS_DIR": str(shared)}) for i in range(2)]
    assert (tmp_path / "n0" / "genesis.json").read_text() == \
        (tmp_path / "n1" / "genesis.json").read_text()
    assert yaml.safe_load(paths[1].read_text())["data_dir"] == str(tmp_path / "n1")
    other = json.loads((shared / "genesis.json").read_text())
    other["chain_id"] = "another-network"
    with pytest.raises(EnvConfigError, match="other settings"):
        shared_genesis(shared, other)


@pytest.mark.parametrize("env, message", [
    ({}, "NODES is required"),
    ({"NODES": "4"}, "NODE_INDEX must be"),
    ({"NODES": "4", "NODE_INDEX": "4"}, "nodes 0..3"),
    ({"NODES": "4", "NODE_INDEX": "0", "CONSENSUS": "pox"}, "CONSENSUS (consensus)"),
    ({"NODES": "4", "NODE_INDEX": "0", "STAKES": "1"}, "STAKES: '1' is not NODE=VALUE"),
    ({"NODES": "4", "NODE_INDEX": "0", "GENESIS_TIME": "soon"}, "GENESIS_TIME must be"),
])
def test_bad_environment_names_the_variable(env, message):
    with pytest.raises(EnvConfigError) as exc:
        derive_node_files(env)
    assert message in str(exc.value)


def test_compose_spec_error_is_a_value_error():
    with pytest.raises(ValueError):
        validate_network_request(NetworkRequest(nodes=2, roles={5: "withhold"}))
    assert issubclass(ComposeSpecError, ValueError)
