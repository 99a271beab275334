"""Container backends: each node is a container, driven through the `docker` Python SDK.

`DockerBackend` runs the cluster as a compose project on this engine; `SwarmBackend` as a stack
on a swarm (`docker swarm init` makes a one-machine swarm). Both run the nodes from the cluster
folder: each container mounts its node folder at /node (config, chain, event log) and genesis.json,
so the scenario runner reads events from DIR/node*/data/events.jsonl exactly as with processes.
Containers run as the image's non-root user; when the orchestrator runs as root the node folders
are handed to that user, otherwise the containers run as the calling user so the files stay theirs.

Faults map onto the engine: kill = SIGKILL to the container, stop/start, pause/resume =
`docker pause` (the cgroup freezer), and `cut(grudge)` = iptables DROP rules inside each container
(run as root through `docker exec`; the compose project grants NET_ADMIN), a network-level
partition beside the p2p layer's link shaper.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import docker
from docker.errors import APIError, BuildError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container

from testnet.backends.compose_file import DEFAULT_IMAGE, IMAGE_UID, NETWORK, cluster_compose, render
from testnet.backends.container_config import containerize_cluster, service_name
from testnet.errors import BackendError, DockerUnavailable, WaitTimeout
from testnet.waiting import wait_until_sync

REPO_ROOT = Path(__file__).resolve().parents[2]   # testnet/backends/ -> the repository
OFFLINE_BASE_IMAGE = "p2p-testnet-base:bookworm"  # what scripts/docker-offline-inputs.sh makes
STATE_TIMEOUT_S = 60.0
CUT_CHAIN = "TESTNET"


@functools.cache
def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        raise DockerUnavailable(f"no Docker engine answers ({exc}); start dockerd, or set "
                                "DOCKER_HOST") from None
    return client


@functools.cache
def compose_command() -> tuple[str, ...]:
    """`docker compose` (v2) where the plugin exists, else `docker-compose` (v1)."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"],
                                                 capture_output=True).returncode == 0:
        return ("docker", "compose")
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    raise BackendError("needs Docker Compose: the `docker compose` plugin or `docker-compose` "
                       "(apt-get install docker-compose)")


def run_command(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise BackendError(f"{what} failed ({' '.join(cmd)}):\n{tail}")
    return result.stdout


def project_name(directory: Path) -> str:
    """A compose project / stack name unique to the cluster folder."""
    slug = re.sub(r"[^a-z0-9]+", "-", directory.name.lower()).strip("-")[:20] or "cluster"
    digest = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:8]
    return f"testnet-{slug}-{digest}"


def ensure_image(image: str, *, build: bool = False) -> None:
    """Build `image` from this repository's Dockerfile when asked or when it does not exist.

    Offline, the base is the one scripts/docker-offline-inputs.sh made (or $TESTNET_BASE_IMAGE),
    and pip installs from build/wheelhouse when the script filled it.
    """
    client = docker_client()
    if not build:
        try:
            client.images.get(image)
            return
        except ImageNotFound:
            pass
    if not (REPO_ROOT / "Dockerfile").exists():
        raise BackendError(f"image {image} not found and no Dockerfile in {REPO_ROOT} to build it")
    args = {}
    base = os.environ.get("TESTNET_BASE_IMAGE")
    if not base:
        try:
            client.images.get(OFFLINE_BASE_IMAGE)
            base = OFFLINE_BASE_IMAGE
        except ImageNotFound:
            base = None
    if base:
        args["BASE_IMAGE"] = base
    try:
        client.images.build(path=str(REPO_ROOT), tag=image, buildargs=args, rm=True)
    except BuildError as exc:
        lines = [str(chunk.get("stream", chunk.get("error", ""))).rstrip()
                 for chunk in exc.build_log]
        raise BackendError(f"building {image} failed: {exc.msg}\n" +
                           "\n".join(line for line in lines if line)[-2000:]) from None
    except APIError as exc:
        raise BackendError(f"building {image} failed: {exc.explanation}") from None


class ContainerBackend:
    """What the compose and swarm backends share: everything done to one running container."""

    name: ClassVar[str]
    swarm: ClassVar[bool]
    compose_file: ClassVar[str]

    def __init__(self, directory: Path, cluster: dict) -> None:
        self.directory = directory
        self.cluster = cluster
        self.project = cluster["project"]
        self.client = docker_client()

    # ---- setup -----------------------------------------------------------------------------------
    @classmethod
    def prepare(cls, directory: Path, info: dict, *, image: str = DEFAULT_IMAGE,
                build: bool = False) -> dict:
        """Adapt a fresh cluster folder to containers and write its compose file."""
        ensure_image(image, build=build)
        info = containerize_cluster(directory)
        user = None
        if os.getuid() == 0:  # root on the host: hand the node folders to the image's user
            for node in info["nodes"]:
                os.chown(directory / node["name"], IMAGE_UID, IMAGE_UID)
        else:  # the containers write as the caller, so the caller keeps their files
            user = f"{os.getuid()}:{os.getgid()}"
        info.update(project=project_name(directory), image=image, compose_file=cls.compose_file)
        (directory / cls.compose_file).write_text(render(
            cluster_compose(info, directory.resolve(), image=image, swarm=cls.swarm, user=user),
            f"# {cls.name} backend of the cluster in {directory} (written by testnet up)\n"))
        (directory / "cluster.json").write_text(json.dumps(info, indent=2) + "\n")
        return info

    # ---- one container ---------------------------------------------------------------------------
    def container(self, index: int) -> Container | None:
        raise NotImplementedError

    def _node_dir(self, index: int) -> Path:
        return self.directory / self.cluster["nodes"][index]["name"]

    def process_state(self, index: int) -> str:
        """running, paused or down."""
        c = self.container(index)
        if c is None:
            return "down"
        return c.status if c.status in ("running", "paused") else "down"

    def is_running(self, index: int) -> bool:
        return self.process_state(index) != "down"

    def kill(self, index: int) -> bool:
        c = self.container(index)
        if c is None or c.status not in ("running", "paused"):
            return False
        try:
            c.kill()  # a paused container takes SIGKILL too
        except APIError as exc:
            raise BackendError(f"node{index}: kill failed: {exc.explanation}") from None
        self._wait_state(index, ("down",))
        return True

    def pause(self, index: int) -> bool:
        c = self.container(index)
        if c is None or c.status != "running":
            return False
        c.pause()
        return True

    def resume(self, index: int) -> bool:
        c = self.container(index)
        if c is None or c.status != "paused":
            return False
        c.unpause()
        return True

    def _wait_state(self, index: int, states: tuple[str, ...],
                    timeout: float = STATE_TIMEOUT_S) -> None:
        try:
            wait_until_sync(lambda: self.process_state(index) in states, timeout,
                            f"node{index} to be {'/'.join(states)}",
                            last=lambda: f"node{index} is {self.process_state(index)}")
        except WaitTimeout as exc:
            raise BackendError(str(exc)) from None

    # ---- logs ------------------------------------------------------------------------------------
    def log_path(self, index: int) -> Path:
        """node<i>/node.log, refreshed from the container's log (kept after the container goes)."""
        path = self._node_dir(index) / "node.log"
        c = self.container(index)
        if c is not None:
            path.write_bytes(c.logs())
        return path

    def follow_log(self, index: int) -> Iterator[bytes]:
        c = self.container(index)
        if c is None:
            return
        yield from c.logs(stream=True, follow=True, since=int(time.time()))

    def _save_logs(self) -> None:
        for i in range(len(self.cluster["nodes"])):
            self.log_path(i)

    # ---- network-level partitions ----------------------------------------------------------------
    def ip(self, index: int) -> str | None:
        c = self.container(index)
        if c is None:
            return None
        for name, net in c.attrs["NetworkSettings"]["Networks"].items():
            if name.endswith(f"_{NETWORK}") and net.get("IPAddress"):
                return net["IPAddress"]
        return None

    def cut(self, grudge: dict[int, set[int]]) -> dict[int, list[str]]:
        """Make each running node b drop every packet from the nodes in grudge[b] (iptables in b's
        network namespace). An empty grudge heals. Returns the addresses each node now drops.

        TCP needs packets both ways, so at this layer a one-way grudge cuts a link both ways.
        """
        ips = {i: self.ip(i) for i in range(len(self.cluster["nodes"]))}
        applied: dict[int, list[str]] = {}
        for b, ip_b in ips.items():
            if ip_b is None:
                continue  # down: a restarted node gets the standing grudge again (nemesis)
            drops = sorted(ips[a] for a in grudge.get(b, set()) if ips.get(a))
            commands = [f"(iptables -w -C INPUT -j {CUT_CHAIN} 2>/dev/null || "
                        f"iptables -w -I INPUT -j {CUT_CHAIN})", f"iptables -w -F {CUT_CHAIN}"]
            commands += [f"iptables -w -A {CUT_CHAIN} -s {ip} -j DROP" for ip in drops]
            self._exec_root(b, f"iptables -w -N {CUT_CHAIN} 2>/dev/null; " + " && ".join(commands))
            applied[b] = drops
        return applied

    def _exec_root(self, index: int, script: str) -> None:
        """Run `script` as root in the node's container. A paused node is thawed for the few
        milliseconds this takes (docker cannot exec into a frozen container)."""
        c = self.container(index)
        if c is None:
            raise BackendError(f"node{index} is down")
        paused = c.status == "paused"
        if paused:
            c.unpause()
        try:
            code, output = c.exec_run(["sh", "-c", script], user="root")
        finally:
            if paused:
                c.pause()
        if code != 0:
            raise BackendError(
                f"node{index}: iptables failed: {output.decode(errors='replace').strip()} -- "
                "network-level partitions need iptables in the image and the NET_ADMIN "
                "capability (the docker backend grants it; swarm services cannot)")

    # ---- whole cluster ---------------------------------------------------------------------------
    @property
    def compose_path(self) -> Path:
        return self.directory / self.cluster.get("compose_file", self.compose_file)


class DockerBackend(ContainerBackend):
    """The cluster as a compose project on this Docker engine."""

    name = "docker"
    swarm = False
    compose_file = "docker-compose.yml"

    def container(self, index: int) -> Container | None:
        try:
            name = self.cluster["nodes"][index]["name"]
            return self.client.containers.get(f"{self.project}-{name}")
        except NotFound:
            return None

    def _compose(self, *args: str) -> str:
        return run_command([*compose_command(), "-p", self.project, "-f", str(self.compose_path),
                            *args], "docker compose", cwd=self.directory)

    def start(self, index: int) -> str:
        c = self.container(index)
        if c is None:
            self._compose("up", "-d", "--no-deps", service_name(index))
        elif c.status not in ("running", "paused"):
            c.start()
        self._wait_state(index, ("running", "paused"))
        return self.container(index).short_id  # type: ignore[union-attr]

    def stop(self, index: int, timeout: float = 10.0) -> bool:
        c = self.container(index)
        if c is None or c.status not in ("running", "paused"):
            return False
        if c.status == "paused":
            c.unpause()  # a frozen node cannot handle SIGTERM
        c.stop(timeout=int(timeout))
        self._wait_state(index, ("down",))
        return True

    def start_all(self) -> None:
        self._compose("up", "-d", "--remove-orphans")

    def stop_all(self) -> None:
        """Stop and remove the containers and the network; chains stay in the cluster folder."""
        self._save_logs()
        self._compose("down", "--remove-orphans", "--timeout", "10")


class SwarmBackend(ContainerBackend):
    """The cluster as a stack on a swarm: one service with one replica per node."""

    name = "swarm"
    swarm = True
    compose_file = "docker-stack.yml"

    @classmethod
    def prepare(cls, directory: Path, info: dict, **options) -> dict:  # type: ignore[override]
        state = docker_client().info().get("Swarm", {}).get("LocalNodeState")
        if state != "active":
            raise BackendError("this Docker engine is not part of a swarm: run `docker swarm init` "
                               "(a one-machine swarm is enough)")
        return super().prepare(directory, info, **options)

    def _service_name(self, index: int) -> str:
        return f"{self.project}_{service_name(index)}"

    def container(self, index: int) -> Container | None:
        """The service's live task container, else its newest one.

        Swarm replaces and prunes task containers on its own, so a container may vanish between
        being listed and being inspected: the list is sparse (no inspect per row) and only the
        chosen one is inspected, again from the start if it went away meanwhile.
        """
        label = f"com.docker.swarm.service.name={self._service_name(index)}"
        for _ in range(5):
            found = self.client.containers.list(all=True, sparse=True, filters={"label": label})
            live = [c for c in found if c.status in ("running", "paused")]
            chosen = live[0] if live else max(found, key=lambda c: c.attrs["Created"], default=None)
            if chosen is None:
                return None
            try:
                return self.client.containers.get(chosen.id)
            except NotFound:
                continue
        return None

    def _service(self, index: int):  # type: ignore[no-untyped-def]
        try:
            return self.client.services.get(self._service_name(index))
        except NotFound:
            return None

    def start(self, index: int) -> str:
        service = self._service(index)
        if service is None:
            self.start_all()
        elif self.process_state(index) == "down":
            replicas = service.attrs["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 1)
            if replicas == 0:
                service.scale(1)
            else:  # the task died (kill) and the restart policy leaves it: schedule a new one
                service.force_update()
        self._wait_state(index, ("running", "paused"))
        return self.container(index).short_id  # type: ignore[union-attr]

    def stop(self, index: int, timeout: float = 10.0) -> bool:
        service = self._service(index)
        if service is None or self.process_state(index) == "down":
            return False
        c = self.container(index)
        if c is not None and c.status == "paused":
            c.unpause()
        service.scale(0)
        self._wait_state(index, ("down",), timeout=timeout + STATE_TIMEOUT_S)
        return True

    def start_all(self) -> None:
        run_command(["docker", "stack", "deploy", "-c", str(self.compose_path), self.project],
                    "docker stack deploy", cwd=self.directory)

    def stop_all(self) -> None:
        """Remove the stack and wait until its containers and network are gone."""
        self._save_logs()
        run_command(["docker", "stack", "rm", self.project], "docker stack rm")
        label = f"com.docker.stack.namespace={self.project}"

        def leftovers() -> list:
            return (self.client.containers.list(all=True, sparse=True, filters={"label": label}) +
                    self.client.networks.list(filters={"label": label}))
        try:
            wait_until_sync(lambda: not leftovers(), STATE_TIMEOUT_S,
                            f"stack {self.project} to be gone", interval=0.5,
                            last=lambda: f"{len(leftovers())} containers or networks left")
        except WaitTimeout as exc:
            raise BackendError(str(exc)) from None
