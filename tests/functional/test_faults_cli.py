"""Every CLI fault works on a running local cluster and shows in node events and `testnet status`.

The cluster is started with `testnet up` and driven with `testnet <fault>`, exactly as a user would.
"""

from __future__ import annotations

import logging

import pytest

from tests.functional.cli_driver import TestnetCLI

log = logging.getLogger("test")


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    directory = tmp_path_factory.mktemp("faults") / "cluster"
    driver = TestnetCLI(directory)
    driver("up", "--nodes", "4", "--block-interval", "1", "--seed", "3")
    yield driver
    driver("down", check=False)
    for log_file in sorted(directory.glob("node*/node.log")):
        print(f"---- {log_file.parent.name} ----")
        print("\n".join(log_file.read_text(errors="replace").splitlines()[-15:]))


def peers(cli: TestnetCLI) -> dict[str, int]:
    return {n["name"]: n.get("peers") for n in cli.status()["nodes"]}


def test_partition_and_heal_show_in_peer_counts_and_events(cli):
    log.info("Cut 0,1 from 2,3: each node keeps exactly one peer")
    out = cli("partition", "0,1", "2,3").stdout
    assert "partition applied" in out
    cli.wait_until(lambda: set(peers(cli).values()) == {1}, 15, "every node to have 1 peer")
    status = cli.status()
    assert all(n["faults"]["blocked_peers"] == 2 for n in status["nodes"])
    reasons = [e.get("reason", "") for e in cli.events("node0") if e["type"] == "peer_disconnected"]
    assert any("blocked" in r for r in reasons), reasons
    log.info("Heal: full mesh again and one head")
    assert "heal cleared" in cli("heal").stdout
    cli.wait_until(lambda: set(peers(cli).values()) == {3}, 15, "the full mesh to come back")
    cli.wait_until(lambda: cli.status()["agree"], 60, "all nodes to agree after the heal")
    assert any(e["type"] == "fault_cleared" and e.get("fault") == "heal"
               for e in cli.events("node2"))


def test_isolate_and_one_way(cli):
    cli("partition", "--isolate", "3")
    cli.wait_until(lambda: peers(cli)["node3"] == 0, 15, "node3 to lose all peers")
    cli("heal")
    cli.wait_until(lambda: peers(cli)["node3"] == 3, 15, "node3 to reconnect")
    log.info("One-way 0>1: the link stays up, node1 stops hearing node0")
    out = cli("partition", "--oneway", "0>1").stdout
    assert "one_way=[[0, 1]]" in out
    assert peers(cli)["node1"] == 3
    assert cli.node("node1")["faults"]["blocked_peers"] == 1
    cli("heal")


def test_link_shaping_is_visible_and_clears(cli):
    out = cli("link", "--delay", "50ms", "--jitter", "10ms", "--loss", "5%", "--from", "0",
              "--to", "3").stdout
    assert "link applied on node0" in out
    assert cli.node("node0")["faults"]["shaped_links"] == 1   # what node0 sends to node3
    events = [e for e in cli.events("node0") if e["type"] == "fault_applied"
              and e["fault"] == "link"]
    assert events[-1]["rule"]["delay_ms"] == 50.0 and events[-1]["rule"]["loss"] == 0.05
    cli("link", "--clear")
    assert cli.node("node0")["faults"]["shaped_links"] == 0
    bad = cli("link", "--loss", "150%", check=False)
    assert bad.returncode != 0 and "between 0% and 100%" in bad.stderr


def test_pause_resume_kill_restart(cli):
    cli("pause", "2")
    assert cli.node("node2")["process"] == "paused" and not cli.node("node2")["up"]
    assert "paused" in cli("status").stdout
    cli("resume", "2")
    cli.wait_until(lambda: cli.node("node2")["up"], 15, "node2 to answer again")
    height = cli.node("node1")["height"]
    cli("kill", "1")
    assert cli.node("node1")["process"] == "down"
    cli("start", "1")
    assert cli.node("node1")["height"] >= height, "a killed node keeps its chain"
    cli("restart", "1")
    cli.wait_until(lambda: cli.status()["agree"], 60, "all nodes to agree again")
    started = [e for e in cli.events("node1") if e["type"] == "node_started"]
    assert len(started) >= 3


def test_skew_and_role_show_in_status_and_events(cli):
    cli("skew", "1", "+30s")
    assert cli.node("node1")["faults"]["clock_offset_s"] == 30.0
    assert "clock +30s" in cli("status").stdout
    cli("skew", "1", "0")
    cli("role", "3", "selfish-miner")
    assert cli.node("node3")["role"] == "selfish-miner"
    roles = [e for e in cli.events("node3") if e.get("fault") == "role"]
    assert roles[-1]["role"] == "selfish-miner"
    cli("role", "3", "honest")
    out = cli("miner", "3", "--share", "51%").stdout
    assert "miner applied on node3" in out
    bad = cli("role", "9", "honest", check=False)
    assert bad.returncode != 0 and "no node" in bad.stderr
