"""The orchestrator on containers: `testnet up --backend docker`, then every fault of the CLI,
status, logs and a scenario run, exactly as on local processes."""

from __future__ import annotations

import json
import logging
import re
import sys

import pytest

from tests.docker.conftest import ROOT, ContainerCLI, run

log = logging.getLogger("test")


@pytest.fixture(scope="module")
def cli(node_image, tmp_path_factory):
    directory = tmp_path_factory.mktemp("docker") / "cluster"
    driver = ContainerCLI(directory)
    driver("up", "--backend", "docker", "--image", node_image, "--nodes", "4",
           "--block-interval", "1", "--seed", "5", timeout=180)
    yield driver
    result = driver("down", check=False)
    print(result.stdout, result.stderr)
    for log_file in sorted(directory.glob("node*/node.log")):
        print(f"---- {log_file.parent.name} ----")
        print("\n".join(log_file.read_text(errors="replace").splitlines()[-15:]))


def containers(cli: ContainerCLI) -> dict[str, str]:
    """Container name -> docker status, for this cluster's compose project."""
    from testnet.backends.containers import docker_client
    project = json.loads((cli.directory / "cluster.json").read_text())["project"]
    found = docker_client().containers.list(
        all=True, filters={"label": f"com.docker.compose.project={project}"})
    return {c.name: c.status for c in found}


def peers(cli: ContainerCLI) -> dict[str, int | None]:
    return {n["name"]: n.get("peers") for n in cli.status()["nodes"]}


def test_up_records_the_backend_and_status_and_logs_work(cli):
    info = json.loads((cli.directory / "cluster.json").read_text())
    assert info["backend"] == "docker"
    assert sorted(containers(cli).values()) == ["running"] * 4
    cli.wait_until(lambda: cli.status()["agree"] and cli.node("node0")["height"] >= 2, 60,
                   "the nodes to agree at height >= 2")
    assert {n["process"] for n in cli.status()["nodes"]} == {"running"}
    assert "serving on http://0.0.0.0:18444" in cli("logs", "node1").stdout


def test_kill_and_start_keep_the_chain_and_catch_up(cli):
    height = cli.node("node2")["height"]
    log.info("SIGKILL node2's container at height %d", height)
    assert "kill applied on node2" in cli("kill", "2").stdout
    assert cli.node("node2")["process"] == "down"
    cli.wait_until(lambda: cli.node("node0")["height"] >= height + 2, 60,
                   "the others to mine on")
    log.info("Start it again: it loads its chain from the cluster folder and catches up")
    cli("start", "2")
    loaded = re.findall(r"loaded (\d+) stored blocks", cli("logs", "node2", "-n", "500").stdout)
    assert loaded and int(loaded[-1]) >= height, loaded
    cli.wait_until(lambda: cli.status()["agree"], 60, "node2 to catch up")


def test_pause_and_resume_freeze_the_container(cli):
    cli("pause", "1")
    assert cli.node("node1")["process"] == "paused"
    assert "paused" in containers(cli).values()
    cli("resume", "1")
    cli.wait_until(lambda: cli.status()["agree"], 60, "node1 to catch up after resume")


def test_restart_and_stop_start(cli):
    cli("restart", "3")
    cli("stop", "3")
    assert cli.node("node3")["process"] == "down"
    cli("start", "3")
    cli.wait_until(lambda: cli.status()["agree"], 60, "node3 to rejoin")


def test_network_level_partition_and_heal(cli):
    log.info("Cut 0,1 from 2,3 with iptables inside the containers")
    out = cli("partition", "0,1", "2,3", "--layer", "net").stdout
    assert "layer=net" in out
    cli.wait_until(lambda: set(peers(cli).values()) == {1}, 30,
                   "each node to keep only the peer on its side")
    start = cli.node("node0")["height"]
    cli.wait_until(lambda: len({n["head"] for n in cli.status()["nodes"]}) == 2 and
                   cli.node("node0")["height"] >= start + 2, 90, "two branches to grow")
    log.info("Heal: the rules go, the links come back, one chain wins")
    cli("heal")
    cli.wait_until(lambda: set(peers(cli).values()) == {3}, 60, "the full mesh to come back")
    cli.wait_until(lambda: cli.status()["agree"], 60, "all nodes to agree after the heal")


def test_p2p_layer_faults_work_unchanged(cli):
    cli("partition", "--isolate", "3")
    cli.wait_until(lambda: peers(cli)["node3"] == 0, 30, "node3 to lose its peers")
    cli("heal")
    cli("link", "--delay", "50ms", "--loss", "5%")
    cli("skew", "1", "+5s")
    assert cli.node("node1")["clock_offset_s"] == pytest.approx(5, abs=0.5)
    cli("skew", "1", "0")
    cli("link", "--clear")
    cli.wait_until(lambda: cli.status()["agree"], 60, "agreement after the p2p faults")


def test_down_removes_every_container(cli):
    cli("down")
    assert containers(cli) == {}
    cli("up", timeout=180)  # resumes the same folder: chains come back
    cli.wait_until(lambda: cli.status()["agree"], 60, "the resumed cluster to agree")


@pytest.mark.timeout(900)
def test_partition_heal_scenario_passes_on_docker(node_image, tmp_path):
    report = tmp_path / "report"
    result = run([sys.executable, "-m", "testnet.cli", "run",
                  str(ROOT / "scenarios" / "partition-heal-pow.yaml"), "--backend", "docker",
                  "--report", str(report)], check=False, timeout=800)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "PASSED" in result.stdout
    history = [json.loads(line) for line in (report / "history.jsonl").read_text().splitlines()]
    assert any(e.get("source") == "node" and e["type"] == "reorg" for e in history) or \
        any(e.get("source") == "node" and e["type"] == "head_changed" for e in history)
    checks = json.loads((report / "checks.json").read_text())
    assert checks and all(c["passed"] for c in checks)
    assert not containers_of(report / "cluster")


@pytest.mark.timeout(900)
def test_pos_partition_scenario_passes_on_docker(node_image, tmp_path):
    report = tmp_path / "report"
    result = run([sys.executable, "-m", "testnet.cli", "run",
                  str(ROOT / "scenarios" / "partition-heal-pos.yaml"), "--backend", "docker",
                  "--report", str(report)], check=False, timeout=800)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    checks = {c["name"]: c for c in json.loads((report / "checks.json").read_text())}
    assert checks["no_finality_during_partition"]["passed"]
    assert checks["no_conflicting_finality"]["passed"]
    assert not containers_of(report / "cluster")


@pytest.mark.timeout(900)
def test_dpos_partition_scenario_passes_on_docker(node_image, tmp_path):
    report = tmp_path / "report"
    result = run([sys.executable, "-m", "testnet.cli", "run",
                  str(ROOT / "scenarios" / "dpos-partition-minority-stalls.yaml"),
                  "--backend", "docker", "--report", str(report)], check=False, timeout=800)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    checks = {c["name"]: c for c in json.loads((report / "checks.json").read_text())}
    assert checks["lib_stalled_during_partition"]["passed"]
    assert checks["no_irreversible_block_reverted"]["passed"]
    assert not containers_of(report / "cluster")


def containers_of(directory) -> list[str]:  # type: ignore[no-untyped-def]
    from testnet.backends.containers import docker_client
    project = json.loads((directory / "cluster.json").read_text())["project"]
    return [c.name for c in docker_client().containers.list(
        all=True, filters={"label": f"com.docker.compose.project={project}"})]
