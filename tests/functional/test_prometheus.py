"""A real Prometheus server (Debian's prometheus package) scraping a local PoW cluster.

`testnet prometheus` writes the scrape config and, with --run, becomes the server (on a free
loopback port, its TSDB in the test's tmp folder). The network is split 2|2 and healed so one side
reorganises; then Prometheus's query API must return the same reorg counters and head heights as
the nodes' /status. Skipped without the prometheus binary, unless TESTNET_REQUIRE_PROMETHEUS=1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from testnet import LocalCluster
from testnet.backends.base import free_ports
from testnet.errors import WaitTimeout
from testnet.faults import grudge as grudges
from testnet.faults.nemesis import Nemesis
from testnet.waiting import wait_until
from tests.functional.cli_driver import TestnetCLI
from tests.functional.system_tools import require_binary

log = logging.getLogger("test")

pytestmark = [pytest.mark.slow, pytest.mark.prometheus]

FAST = {"block_interval_s": 1, "hashrate": 20_000}


@pytest.fixture
def prometheus_bin() -> str:
    return require_binary("prometheus", "TESTNET_REQUIRE_PROMETHEUS", "prometheus")


@contextlib.contextmanager
def running_prometheus(cluster_dir: Path, out: Path, binary: str, log_path: Path) -> Iterator[str]:
    """`testnet prometheus --run` on a free port; yields its base URL; always terminated."""
    listen = f"127.0.0.1:{free_ports('127.0.0.1', 1)[0]}"
    with open(log_path, "w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "testnet.cli", "prometheus", "--dir", str(cluster_dir),
             "-o", str(out), "--run", "--prometheus-bin", binary, "--listen", listen],
            stdout=output, stderr=subprocess.STDOUT)
    try:
        yield f"http://{listen}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        tail = log_path.read_text(errors="replace").splitlines()[-20:]
        print(f"---- prometheus (last {len(tail)} log lines) ----\n" + "\n".join(tail))


async def query(http: aiohttp.ClientSession, prometheus: str, expr: str) -> dict[str, float]:
    """An instant query through the HTTP API: value per `node` label."""
    async with http.get(f"{prometheus}/api/v1/query", params={"query": expr}) as resp:
        body = await resp.json()
    assert body["status"] == "success", body
    return {sample["metric"]["node"]: float(sample["value"][1])
            for sample in body["data"]["result"]}


async def targets_up(http: aiohttp.ClientSession, prometheus: str) -> dict[str, str]:
    """Health of each active target of the testnet job, by `node` label."""
    async with http.get(f"{prometheus}/api/v1/targets") as resp:
        body = await resp.json()
    return {t["labels"]["node"]: t["health"] for t in body["data"]["activeTargets"]
            if t["labels"].get("job") == "testnet"}


async def is_ready(http: aiohttp.ClientSession, prometheus: str) -> bool:
    try:
        async with http.get(f"{prometheus}/-/ready") as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


async def on_main_chain(cluster: LocalCluster, index: int, status: dict) -> bool:
    """Whether the head `status` reports is on node `index`'s main chain."""
    headers = (await cluster.client(index).chain(status["height"], status["height"]))["headers"]
    return bool(headers) and headers[0]["hash"] == status["head"]


async def split_and_rejoin(cluster: LocalCluster, nemesis: Nemesis) -> int:
    """Partition 0,1 | 2,3 until neither side's head is on the other's chain (a real fork, not
    one side behind), heal, and wait for the losing side's reorg; returns the highest counter."""
    await nemesis.partition(grudges.complete(cluster.size, [[0, 1], [2, 3]]))

    async def forked() -> bool:
        left, right = await cluster.status(0), await cluster.status(2)
        return (left is not None and right is not None
                and not await on_main_chain(cluster, 2, left)
                and not await on_main_chain(cluster, 0, right))
    await wait_until(forked, 60, "node0 and node2 to mine branches of their own")
    log.info("Heal; the side with less work must reorganise")
    await nemesis.heal()

    async def reorged() -> int:
        st = await cluster.statuses()
        return max((s["reorgs"] for s in st if s), default=0)
    return await wait_until(reorged, 60, "a node to report reorgs > 0")


async def stop_mining(cluster: LocalCluster, nemesis: Nemesis) -> None:
    """Stop every miner and wait for one head. node0 stops last: two tips of equal work found at
    the same moment would otherwise never be decided; its next block decides them."""
    await asyncio.gather(*(nemesis.miner(i, enabled=False) for i in range(1, cluster.size)))
    await cluster.converged(timeout=60)
    await nemesis.miner(0, enabled=False)  # a disabled miner drops the block it was working on
    await cluster.converged(timeout=30)


async def test_prometheus_returns_reorgs_and_head_heights(cluster_dir, tmp_path, prometheus_bin):
    async with LocalCluster(nodes=4, directory=cluster_dir, **FAST) as cluster:
        names = [n["name"] for n in cluster.info["nodes"]]
        out = tmp_path / "prometheus"
        log.info("Write the scrape config with `testnet prometheus`")
        written = json.loads(TestnetCLI(cluster_dir)("prometheus", "-o", str(out), "--json").stdout)
        assert written["job"] == "testnet" and [t["node"] for t in written["targets"]] == names

        with running_prometheus(cluster_dir, out, prometheus_bin, tmp_path / "prom.log") as prom:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
                await wait_until(lambda: is_ready(http, prom), 30, "Prometheus ready")

                async def all_up() -> bool:
                    return await targets_up(http, prom) == {name: "up" for name in names}
                await wait_until(all_up, 30, f"targets {names} up in Prometheus")

                log.info("Split the network 2|2, build two chains, heal")
                nemesis = Nemesis(cluster)
                reorgs = await split_and_rejoin(cluster, nemesis)
                log.info("Reorgs so far: %d; stop the miners so heights hold still", reorgs)
                await stop_mining(cluster, nemesis)

                last: dict = {}

                async def prometheus_agrees() -> dict | None:
                    heights = await query(http, prom, "testnet_head_height")
                    counters = await query(http, prom, "testnet_reorgs_total")
                    st = await cluster.statuses()
                    if None in st:
                        return None
                    said = {name: (s["height"], s["reorgs"]) for name, s in zip(names, st)}
                    seen = {n: (heights.get(n), counters.get(n)) for n in names}
                    last.update(prometheus=seen, nodes=said)
                    return said if seen == said else None
                try:
                    said = await wait_until(
                        prometheus_agrees, 30,
                        "Prometheus's testnet_head_height and testnet_reorgs_total to equal "
                        "/status")
                except WaitTimeout as exc:
                    raise AssertionError(f"{exc}; last (height, reorgs): {last}") from None
                log.info("Prometheus agrees with the nodes: %s", said)
                assert max(r for _, r in said.values()) > 0
                assert await targets_up(http, prom) == {name: "up" for name in names}
