"""Docker Swarm on one machine: a generated compose file deployed with `docker stack deploy`, and
`testnet up --backend swarm` with faults. The swarm is made here (and left again) unless the engine
was already part of one."""

from __future__ import annotations

import json
import logging

import pytest

from testnet.backends.containers import project_name
from tests.docker.conftest import (
    ContainerCLI,
    free_base_port,
    node_status,
    run,
    run_testnet,
    unique_name,
    wait_for_agreement,
    wait_until,
)

log = logging.getLogger("test")


@pytest.fixture(scope="module")
def swarm(docker_engine):
    state = docker_engine.info()["Swarm"]["LocalNodeState"]
    made = state != "active"
    networks = {n.id for n in docker_engine.networks.list()}
    if made:
        log.info("docker swarm init (one-machine swarm)")
        run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"])
    yield docker_engine
    if made:
        run(["docker", "swarm", "leave", "--force"], check=False)
        for network in docker_engine.networks.list():  # docker_gwbridge outlives the swarm
            if network.id not in networks:
                network.remove()


def remove_stack(client, stack: str) -> None:  # type: ignore[no-untyped-def]
    """docker stack rm, then wait for its containers and networks, then remove its volumes."""
    run(["docker", "stack", "rm", stack], check=False)
    label = f"com.docker.stack.namespace={stack}"
    wait_until(lambda: not client.containers.list(all=True, filters={"label": label}) and
               not client.networks.list(filters={"label": label}), 90,
               f"stack {stack} to be gone")
    for volume in client.volumes.list(filters={"label": label}):
        volume.remove(force=True)


@pytest.mark.timeout(400)
def test_stack_deploy_of_a_generated_file_gives_connected_agreeing_nodes(swarm, node_image,
                                                                           tmp_path):
    base = free_base_port(4)
    stack_file = tmp_path / "stack.yml"
    run_testnet("compose", "--nodes", "4", "--base-port", str(base), "--image", node_image,
            "-o", str(stack_file))
    stack = unique_name("cistack")
    log.info("docker stack deploy -c stack.yml %s", stack)
    try:
        run(["docker", "stack", "deploy", "-c", str(stack_file), stack])
        services = swarm.services.list(filters={"label": f"com.docker.stack.namespace={stack}"})
        assert len(services) == 4
        assert {s.attrs["Spec"]["Mode"]["Replicated"]["Replicas"] for s in services} == {1}
        networks = swarm.networks.list(filters={"label": f"com.docker.stack.namespace={stack}"})
        assert [n.attrs["Driver"] for n in networks] == ["overlay"]
        statuses = wait_for_agreement(list(range(base, base + 4)), 180, min_height=2)
        assert all(s["peers"] == 3 for s in statuses)
    finally:
        remove_stack(swarm, stack)


@pytest.mark.timeout(400)
def test_up_backend_swarm_runs_faults_and_comes_down_clean(swarm, node_image, tmp_path):
    cli = ContainerCLI(tmp_path / "cluster")
    try:
        cli("up", "--backend", "swarm", "--image", node_image, "--nodes", "3",
            "--block-interval", "1", timeout=240)
        info = json.loads((cli.directory / "cluster.json").read_text())
        assert info["backend"] == "swarm"
        cli.wait_until(lambda: cli.status()["agree"] and cli.node("node0")["height"] >= 2, 90,
                       "the stack's nodes to agree")
        height = cli.node("node1")["height"]
        cli("kill", "1")
        assert cli.node("node1")["process"] == "down"
        cli("start", "1")
        cli.wait_until(lambda: cli.status()["agree"] and cli.node("node1")["height"] >= height,
                       90, "node1 to come back with its chain and catch up")
        cli("pause", "2")
        assert cli.node("node2")["process"] == "paused"
        cli("resume", "2")
        cli.wait_until(lambda: cli.status()["agree"], 60, "agreement after resume")
    finally:
        cli("down", check=False)
    label = f"com.docker.stack.namespace={project_name(cli.directory)}"
    assert not swarm.containers.list(all=True, filters={"label": label})


@pytest.mark.timeout(400)
def test_up_backend_swarm_with_hybrid_agrees_and_finalizes(swarm, node_image, tmp_path):
    cli = ContainerCLI(tmp_path / "cluster")
    base = free_base_port(4)
    ports = list(range(base, base + 4))
    try:
        cli("up", "--backend", "swarm", "--image", node_image, "--consensus", "hybrid",
            "--nodes", "4", "--base-port", str(base), timeout=240)
        statuses = wait_for_agreement(ports, 120, min_height=1)
        assert {s["consensus"] for s in statuses} == {"hybrid"}
        log.info("Wait until every node reports the same FFG checkpoint finalized past genesis")

        def finalized() -> bool:
            found = [node_status(p) for p in ports]
            checkpoints = {((s.get("finalized") or {}).get("epoch", -1),
                            (s.get("finalized") or {}).get("root")) if s else (-1, None)
                           for s in found}
            return len(checkpoints) == 1 and min(epoch for epoch, _ in checkpoints) >= 1
        wait_until(finalized, 180, "all four nodes to finalize the same epoch >= 1")
    finally:
        cli("down", check=False)
    label = f"com.docker.stack.namespace={project_name(cli.directory)}"
    assert not swarm.containers.list(all=True, filters={"label": label})
