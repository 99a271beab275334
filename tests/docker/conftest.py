"""Docker end-to-end fixtures: the engine, the node image built from this checkout, and helpers that
read as the scenario (`wait_for_agreement`, `compose_up`, `stack_deploy`).

Every test here is marked `docker`. Without a reachable engine they are skipped with the reason;
with TESTNET_REQUIRE_DOCKER=1 (what .ci/run sets) a missing engine fails them instead. Each test
removes the containers, networks, volumes and stacks it made.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testnet.waiting import wait_until_sync
from tests.functional.cli_driver import TestnetCLI

log = logging.getLogger("test")

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("TESTNET_TEST_IMAGE", "p2p-testnet:latest")
CLI_ENV = {"COLUMNS": "200", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "HOME": os.environ.get("HOME", "/root")}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.docker)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def docker_engine():
    """The docker SDK client; skips (or fails, in CI) when no engine answers."""
    from testnet.backends.containers import DockerUnavailable, docker_client
    try:
        return docker_client()
    except DockerUnavailable as exc:
        if os.environ.get("TESTNET_REQUIRE_DOCKER") == "1":
            pytest.fail(f"TESTNET_REQUIRE_DOCKER=1 but {exc}")
        pytest.skip(f"no Docker engine reachable: {exc} (start dockerd, or run .ci/run, which "
                    "installs and starts one)")


@pytest.fixture(scope="session")
def node_image(docker_engine) -> str:
    """The node image, rebuilt from this checkout once per session (cached layers make it quick)."""
    from testnet.backends.containers import ensure_image
    started = time.monotonic()
    ensure_image(IMAGE, build=True)
    log.info("image %s built in %.1f s", IMAGE, time.monotonic() - started)
    return IMAGE


# ---- waiting ------------------------------------------------------------------------------------
def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.5) -> Any:
    return wait_until_sync(predicate, timeout, what, interval=interval)


def node_status(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=3) as resp:
            return json.load(resp)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def wait_for_agreement(ports: list[int], timeout: float, min_height: int = 1,
                       peers: int | None = None) -> list[dict]:
    """Every node answers, has `peers` peers (all others by default) and reports one head."""
    want_peers = len(ports) - 1 if peers is None else peers

    def agree() -> list[dict] | None:
        statuses = [node_status(p) for p in ports]
        if any(s is None for s in statuses):
            return None
        if any(s["peers"] < want_peers for s in statuses):
            return None
        if len({s["head"] for s in statuses}) != 1 or statuses[0]["height"] < min_height:
            return None
        return statuses  # type: ignore[return-value]
    return wait_until(agree, timeout, f"nodes on ports {ports} to connect and agree on a head "
                                      f"at height >= {min_height}")


def free_base_port(count: int) -> int:
    """A port P with P..P+count-1 all free now (generated files publish consecutive ports)."""
    for base in range(24000, 60000, 97):
        socks = []
        try:
            for port in range(base, base + count):
                socks.append(socket.socket())
                socks[-1].bind(("0.0.0.0", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports")


def unique_name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


# ---- commands -----------------------------------------------------------------------------------
def run(cmd: list[str], *, timeout: float = 300, check: bool = True,
        env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                            env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout[-3000:]}"
                             f"\n{result.stderr[-3000:]}")
    return result


def run_testnet(*args: str, timeout: float = 300,
                check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "testnet.cli", *args], timeout=timeout, check=check,
               env=CLI_ENV)


class ContainerCLI(TestnetCLI):
    """TestnetCLI with the caller's PATH and HOME: the docker and compose clients live there."""

    __test__ = False

    def __call__(self, *args: str, check: bool = True, timeout: float = 180
                 ) -> subprocess.CompletedProcess:
        result = run([sys.executable, "-m", "testnet.cli", *args, "--dir", str(self.directory)],
                     timeout=timeout, check=False, env=CLI_ENV)
        if check and result.returncode != 0:
            raise AssertionError(f"testnet {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result


class ComposeProject:
    """A compose file brought up under its own project name; `down` removes its volumes too."""

    def __init__(self, file: Path, env: dict | None = None) -> None:
        from testnet.backends.containers import compose_command
        self.file = file
        self.name = unique_name("citest")
        self.env = {"TESTNET_IMAGE": IMAGE, **(env or {})}
        self.base = [*compose_command(), "-p", self.name, "-f", str(file)]

    def __call__(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return run([*self.base, *args], timeout=timeout, env=self.env)

    def logs(self) -> str:
        return run([*self.base, "logs", "--no-color", "--tail", "20"], check=False,
                   env=self.env).stdout

    def down(self) -> None:
        run([*self.base, "down", "-v", "--remove-orphans", "--timeout", "5"], check=False,
            env=self.env)


@pytest.fixture
def compose_project() -> Iterator[Callable[..., ComposeProject]]:
    made: list[ComposeProject] = []

    def make(file: Path, env: dict | None = None) -> ComposeProject:
        project = ComposeProject(file, env)
        made.append(project)
        return project
    yield make
    for project in made:
        print(f"---- {project.name} (last log lines) ----\n{project.logs()}")
        project.down()
