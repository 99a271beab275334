"""Compose networks, as a user brings them up: the repository's docker-compose.yml (PoW, and PoS
or hybrid through CONSENSUS=pos|hybrid) and a generated 8-node file. Nodes must become healthy,
connect and agree."""

from __future__ import annotations

import logging
import re

import pytest

from tests.docker.conftest import (
    ROOT,
    free_base_port,
    node_status,
    run_testnet,
    wait_for_agreement,
    wait_until,
)

log = logging.getLogger("test")

ROOT_PORTS = [18441, 18442, 18443, 18444]


def container_health(project) -> list[str]:  # type: ignore[no-untyped-def]
    ids = project("ps", "-q").stdout.split()
    from testnet.backends.containers import docker_client
    client = docker_client()
    return [client.containers.get(i).attrs["State"].get("Health", {}).get("Status", "none")
            for i in ids]


@pytest.mark.timeout(300)
def test_root_compose_file_gives_four_healthy_agreeing_nodes_that_survive_restart(
        node_image, compose_project):
    project = compose_project(ROOT / "docker-compose.yml")
    log.info("docker compose up -d from the repository root")
    project("up", "-d")
    wait_until(lambda: container_health(project) == ["healthy"] * 4, 90,
               "4 healthy containers")
    statuses = wait_for_agreement(ROOT_PORTS, 90, min_height=3)
    assert {s["consensus"] for s in statuses} == {"pow"}
    before = statuses[0]["height"]
    log.info("docker compose restart: the chains are in named volumes")
    project("restart")
    statuses = wait_for_agreement(ROOT_PORTS, 90, min_height=before)
    assert all(s["height"] >= before for s in statuses)
    log.info("Kill node2's container and start it again: it keeps its chain and catches up")
    height = node_status(ROOT_PORTS[2])["height"]
    project("kill", "node2")
    wait_until(lambda: (node_status(ROOT_PORTS[0]) or {}).get("height", 0) >= height + 2, 60,
               "the other nodes to mine on")
    project("start", "node2")
    wait_for_agreement(ROOT_PORTS, 90, min_height=height + 2)
    loaded = re.findall(r"loaded (\d+) stored blocks",
                        project("logs", "--no-color", "node2").stdout)
    assert len(loaded) >= 3 and int(loaded[-1]) >= height, loaded  # up, restart, start


@pytest.mark.timeout(300)
@pytest.mark.parametrize("consensus", ["pos", "hybrid"])
def test_root_compose_file_with_consensus_pos_or_hybrid_finalizes(node_image, compose_project,
                                                                   consensus):
    project = compose_project(ROOT / "docker-compose.yml", env={"CONSENSUS": consensus})
    project("up", "-d")
    statuses = wait_for_agreement(ROOT_PORTS, 90, min_height=1)
    assert {s["consensus"] for s in statuses} == {consensus}
    log.info("Wait until every node reports the same finalized checkpoint past genesis")

    def finalized() -> bool:
        found = [node_status(p) for p in ROOT_PORTS]
        checkpoints = {(s.get("finalized") or {}).get("epoch", -1) if s else -1 for s in found}
        return len(checkpoints) == 1 and min(checkpoints) >= 1
    wait_until(finalized, 120, "all nodes to finalize epoch >= 1")


@pytest.mark.timeout(300)
def test_root_compose_file_with_consensus_dpos_produces_and_advances_the_lib(node_image,
                                                                             compose_project):
    project = compose_project(ROOT / "docker-compose.yml", env={"CONSENSUS": "dpos"})
    project("up", "-d")
    statuses = wait_for_agreement(ROOT_PORTS, 90, min_height=1)
    assert {s["consensus"] for s in statuses} == {"dpos"}
    log.info("Wait until every node's last irreversible block is past genesis and shared")

    def lib_advanced() -> bool:
        found = [node_status(p) for p in ROOT_PORTS]
        libs = {(s.get("finalized") or {}).get("root") if s else None for s in found}
        heights = [(s.get("finalized") or {}).get("height", -1) if s else -1 for s in found]
        return None not in libs and min(heights) >= 5
    wait_until(lib_advanced, 120, "all nodes to report a LIB at height >= 5")


@pytest.mark.timeout(400)
def test_generated_eight_node_pos_file_comes_up(node_image, compose_project, tmp_path):
    base = free_base_port(8)
    big = tmp_path / "big.yml"
    log.info("testnet compose --nodes 8 --consensus pos -o big.yml")
    run_testnet("compose", "--nodes", "8", "--consensus", "pos", "--base-port", str(base),
            "-o", str(big))
    project = compose_project(big)
    project("up", "-d")
    ports = list(range(base, base + 8))
    statuses = wait_for_agreement(ports, 180, min_height=2)
    assert {s["node_id"] for s in statuses} == {f"node{i}" for i in range(8)}
    assert {s["consensus"] for s in statuses} == {"pos"}
