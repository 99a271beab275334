"""A running node holds a node's libraries only (issue 11: idle node memory <= 60 MB VmRSS).

Read from outside, as the kernel sees the process: /proc/PID/maps lists every shared library a
process has loaded, so a compiled orchestrator library (pydantic's core, numpy under plotting)
shows there once anything imported it. Checked for a local node (`python -m node`) and for a node
started the way a container starts one (`python -m testnet.backends.node_env` from environment
variables), which writes the node's files with the orchestrator's code and then becomes the node.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from testnet import LocalCluster
from testnet.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
ORCHESTRATOR_LIBRARIES = ("pydantic_core", "numpy", "matplotlib", "kiwisolver", "PIL")


def orchestrator_libraries(pid: int) -> list[str]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    paths = {line.split()[-1] for line in maps.splitlines() if line.endswith(".so")
             or ".so." in line or ".cpython-" in line}
    return sorted(p for p in paths if any(name in p for name in ORCHESTRATOR_LIBRARIES))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_local_node_loads_no_orchestrator_library(cluster_dir):
    async with LocalCluster(nodes=1, directory=cluster_dir, overrides={0: {"mine": False}},
                            block_interval_s=1, hashrate=1_000) as cluster:
        pid = cluster.backend.pid(0)
        assert pid is not None
        assert orchestrator_libraries(pid) == []


async def test_a_node_started_from_the_environment_becomes_a_plain_node(tmp_path):
    port = free_port()
    env = {**os.environ, "NODES": "1", "NODE_INDEX": "0", "PORT": str(port),
           "DATA_DIR": str(tmp_path / "data"), "GENESIS_DIR": str(tmp_path / "genesis"),
           "HASHRATE": "1000", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "testnet.backends.node_env"], env=env,
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as session:
            async def answers() -> bool:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/status") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False
            await wait_until(answers, 30, "the node to answer /status", interval=0.2)
        command = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert command[1:3] == [b"-m", b"node"], command   # the same pid, now the node itself
        assert orchestrator_libraries(proc.pid) == []
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
