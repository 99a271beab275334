"""The backend protocol: how the orchestrator runs and breaks nodes, one implementation per backend.

Like CometBFT's `infra.Provider`, a backend knows processes or containers and nothing of consensus:
`local` runs each node as a process on this machine (testnet/backends/local.py); `docker` runs
each node as a container of a compose project and `swarm` as a service of a swarm stack
(testnet/backends/containers.py). `cluster.json` records which one a cluster uses, and
`open_backend` picks the class from it, so every command works the same on each.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from testnet.config.cluster_files import write_cluster
from testnet.config.manifest import ClusterManifest
from testnet.errors import BackendError

T = TypeVar("T")
BACKENDS = ("local", "docker", "swarm", "sim")
PROCESS_BACKENDS = ("local", "docker", "swarm")   # clusters that outlive the command starting them
MAX_PROCESS_NODES = 64


class Backend(Protocol):
    name: ClassVar[str]

    def start(self, index: int) -> object: ...          # start (or resume a stopped) node
    def stop(self, index: int, timeout: float = 10.0) -> bool: ...  # clean stop; False if down
    def kill(self, index: int) -> bool: ...             # SIGKILL: no shutdown code runs
    def pause(self, index: int) -> bool: ...            # freeze every process of the node
    def resume(self, index: int) -> bool: ...
    def is_running(self, index: int) -> bool: ...       # running or paused
    def process_state(self, index: int) -> str: ...     # running, paused or down
    def log_path(self, index: int) -> Path: ...         # a file holding the node's log so far
    def follow_log(self, index: int) -> Iterator[bytes]: ...  # new log output as it comes
    def start_all(self) -> None: ...
    def stop_all(self) -> None: ...                     # stop every node; free what it holds


def free_ports(host: str, count: int) -> list[int]:
    """Ports the OS says are free now (bound and released together, so they are distinct)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((host, 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def backend_class(name: str) -> type:
    if name == "local":
        from testnet.backends.local import LocalBackend
        return LocalBackend
    if name == "docker":
        from testnet.backends.containers import DockerBackend
        return DockerBackend
    if name == "swarm":
        from testnet.backends.containers import SwarmBackend
        return SwarmBackend
    if name == "sim":
        from testnet.backends.sim import SimBackend
        return SimBackend
    raise BackendError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})")


def run_on_backend_loop(backend: str, main: Coroutine[Any, Any, T]) -> T | None:
    """Run an orchestrator coroutine on the event loop `backend` needs: asyncio's own for
    processes and containers, a virtual-time loop for the simulation (`run_loop`)."""
    run_loop = getattr(backend_class(backend), "run_loop", None)
    return run_loop(main) if run_loop is not None else asyncio.run(main)


def open_backend(directory: Path, cluster: dict) -> Backend:
    """The backend `cluster.json` names (clusters made before backends existed are local)."""
    return backend_class(cluster.get("backend", "local"))(directory, cluster)


def create_cluster(directory: Path, manifest: ClusterManifest, *, backend: str = "local",
                   base_port: int | None = None, **options: Any) -> dict:
    """Write a cluster folder for `backend`; returns its cluster.json. Nodes listen on
    base_port, base_port + 1, ... or on ports the OS says are free. Container backends adapt the
    folder (addresses, compose file) and take `image` and `build` options."""
    cls = backend_class(backend)
    most = getattr(cls, "max_nodes", MAX_PROCESS_NODES)
    if manifest.nodes > most:
        raise BackendError(f"{manifest.nodes} nodes: the {backend} backend runs at most {most} "
                           "(each node is a process); the simulation backend (--backend sim) "
                           "runs thousands")
    base_port = base_port or getattr(cls, "base_port", None)   # the simulation's are fixed
    ports = (list(range(base_port, base_port + manifest.nodes)) if base_port
             else free_ports(manifest.host, manifest.nodes))
    info = write_cluster(directory, manifest, ports=ports, backend=backend)
    prepare = getattr(cls, "prepare", None)
    return prepare(directory, info, **options) if prepare else info
