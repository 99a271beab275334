"""A bad node config is refused before anything starts, naming the field and the reason."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from consensus.chain_spec import ChainSpec


def write(tmp_path, **overrides):
    (tmp_path / "genesis.json").write_text(json.dumps(ChainSpec().to_json()))
    config = {"node_id": "n0", "data_dir": "data", "genesis": "genesis.json", "port": 18555,
              "node_key": "11" * 32, **overrides}
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_node(path):
    return subprocess.run([sys.executable, "-m", "testnet.cli", "node", "--config", str(path)],
                          capture_output=True, text=True, timeout=30)


def test_bad_port_names_the_field(tmp_path):
    result = run_node(write(tmp_path, port=70000))
    assert result.returncode != 0
    assert "port" in result.stderr and "65535" in result.stderr


def test_unknown_field_and_bad_key_are_both_reported(tmp_path):
    result = run_node(write(tmp_path, node_key="zz", colour="blue"))
    assert result.returncode != 0
    assert "node_key" in result.stderr and "colour" in result.stderr


def test_missing_genesis_file(tmp_path):
    result = run_node(write(tmp_path, genesis="nope.json"))
    assert result.returncode != 0
    assert "genesis" in result.stderr and "nope.json" in result.stderr


def test_config_that_is_not_yaml(tmp_path):
    path = tmp_path / "node.yaml"
    path.write_text("node_id: [unclosed")
    result = run_node(path)
    assert result.returncode != 0
    assert "not valid YAML" in result.stderr
