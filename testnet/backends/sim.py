"""Simulation backend: every node is a `node.app.Node` in this process, on a virtual-time loop.

The same node code as the other backends -- consensus rules, fork choice, validation, gossip
decisions, miner strategies, validator duties, the HTTP API -- runs above two seams
(node/runtime.py): the wall clock is the loop's virtual clock (testnet/sim/loop.py,
testnet/clock.py) and the p2p transport is an in-memory network with per-link latency and
bandwidth (p2p/memory_transport.py, testnet/sim/network_model.py). Mining is sampled: each miner
finds its next block after an exponential time at its hashrate (node/sampled_miner.py), so the
chain spec says `proof_of_work: sampled`. The orchestrator reaches each node's API through the
same aiohttp handlers over in-memory connections (testnet/sim/memory_http.py), so the runner,
faults, collector, checks and reports work unchanged.

This is the one place where testnet/ imports node/: the simulation hosts its nodes instead of
starting processes. A node's "process" is a task: `start` creates it (in a context that routes
its logs to its own file, testnet/sim/node_logs.py), `kill` and `stop` cancel it -- the node
loses its memory and reloads its store when started again. `pause` has no meaning without a
scheduler of processes and is refused with a reason.

Determinism: node keys, ports, peer lists and genesis come from the manifest seed and the virtual
clock; every node draws its randomness from its config seed (NodeRuntime.rng); the loop runs
same-time callbacks in scheduling order. Same seed and commit, same history.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml

from node.app import Node
from node.config import ConfigError, load_config
from node.runtime import NodeRuntime
from p2p.memory_transport import LinkProfile, MemoryNetwork, UniformLinks, url_of
from testnet.clock import wall_time
from testnet.errors import BackendError
from testnet.sim.loop import run as run_virtual
from testnet.sim.memory_http import MemoryConnector, ServerFactory
from testnet.sim.network_model import RegionLinks, assign_regions
from testnet.sim.node_logs import CURRENT_NODE, NodeLogRouter, OutsideNodes

log = logging.getLogger(__name__)
T = TypeVar("T")

BASE_PORT = 20_000        # the API "ports" of simulated nodes: fixed, so a run repeats exactly
VIRTUAL_EPOCH = 1_767_225_600.0   # 2026-01-01T00:00:00Z: where every simulated run's clock starts
# One-way latency of every link of the "uniform" network: a LAN-like hop. Validation and other
# CPU work take no virtual time in a simulation, so hop latency is the only propagation delay.
UNIFORM_LATENCY_S = 0.005
PAUSE_REFUSED = ("a simulated node is not a process that can be frozen; partition it "
                 "(`partition: \"0|1,2,3\"`), stop its miner (`miner: {node: N, enabled: false}`) "
                 "or stop and start it")
_router: NodeLogRouter | None = None


def log_router() -> NodeLogRouter:
    """The one handler that files simulated nodes' records (installed on first use); the
    console handlers already there are told to skip records from inside a node."""
    global _router
    if _router is None:
        _router = NodeLogRouter()
        root = logging.getLogger()
        for handler in root.handlers:
            handler.addFilter(OutsideNodes())
        root.addHandler(_router)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
    return _router


class SimBackend:
    """Implements testnet.backends.base.Backend with nodes hosted on this process's loop."""

    name = "sim"
    blocking = False          # calls return at once; a thread would leave the virtual clock
    base_port = BASE_PORT
    max_nodes = 2000
    refuses = {verb: PAUSE_REFUSED for verb in ("pause", "resume")}

    def __init__(self, directory: Path, cluster: dict) -> None:
        self.directory = directory
        self.cluster = cluster
        manifest = cluster.get("manifest") or {}
        names = [n["name"] for n in cluster["nodes"]]
        seed = int(manifest.get("seed", 0))
        if manifest.get("network", "uniform") == "regions":
            links: Any = RegionLinks(assign_regions(names, seed), seed=seed)
        else:
            links = UniformLinks(LinkProfile(latency_s=UNIFORM_LATENCY_S))
        self.network = MemoryNetwork(links, seed=seed)
        self.servers: dict[tuple[str, int], ServerFactory] = {}
        self.nodes: dict[int, Node] = {}
        self._tasks: dict[int, asyncio.Task] = {}

    @classmethod
    def prepare(cls, directory: Path, info: dict) -> dict:
        """Adapt a fresh cluster folder: peers dial in-memory names, blocks are sampled."""
        by_index = {n["index"]: n["name"] for n in info["nodes"]}
        for node in info["nodes"]:
            path = directory / node["config"]
            config = yaml.safe_load(path.read_text())
            config["peers"] = [url_of(by_index[b]) for a, b in info["edges"]
                               if a == node["index"]]
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            node["p2p"] = url_of(node["name"])
        genesis_path = directory / "genesis.json"
        genesis = json.loads(genesis_path.read_text())
        if info["manifest"].get("consensus") in ("pow", "hybrid"):
            genesis["proof_of_work"] = "sampled"
        genesis_path.write_text(json.dumps(genesis, indent=2) + "\n")
        (directory / "cluster.json").write_text(json.dumps(info, indent=2) + "\n")
        return info

    @staticmethod
    def run_loop(main: Coroutine[Any, Any, T]) -> T | None:
        """Run the orchestrator's coroutine (a scenario run) with its nodes on a virtual-time
        loop starting at VIRTUAL_EPOCH."""
        return run_virtual(main, virtual_epoch=VIRTUAL_EPOCH)

    # ---- the orchestrator's view -------------------------------------------------------------
    def http_connector(self) -> MemoryConnector:
        return MemoryConnector(self.servers)

    def _node(self, index: int) -> dict:
        return self.cluster["nodes"][index]

    def log_path(self, index: int) -> Path:
        return self.directory / self._node(index)["name"] / "node.log"

    def follow_log(self, index: int) -> Iterator[bytes]:
        """A simulated cluster lives only as long as its run: the log so far."""
        path = self.log_path(index)
        if path.exists():
            yield path.read_bytes()

    def is_running(self, index: int) -> bool:
        task = self._tasks.get(index)
        return task is not None and not task.done()

    def process_state(self, index: int) -> str:
        return "running" if self.is_running(index) else "down"

    # ---- starting and stopping ---------------------------------------------------------------
    def start(self, index: int) -> str:
        previous = self._tasks.get(index)
        if previous is not None and not previous.done() and not previous.cancelling():
            return "running"
        name = self._node(index)["name"]
        log_router().attach(name, self.log_path(index))
        context = contextvars.copy_context()
        context.run(CURRENT_NODE.set, name)
        loop = asyncio.get_running_loop()
        self._tasks[index] = loop.create_task(self._serve(index, previous), name=f"sim-{name}",
                                              context=context)
        return "started"

    async def _serve(self, index: int, previous: asyncio.Task | None) -> None:
        """One node's life: build it from its config, serve its API in memory, run it (after
        its previous life has ended, when a restart comes while that one is being cancelled)."""
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        info = self._node(index)
        try:
            config = load_config(self.directory / info["config"])
        except ConfigError as exc:
            log.error("%s cannot start: %s", info["name"], exc)
            return
        runtime = NodeRuntime(time_source=wall_time, seed=config.seed,
                              transport=self.network.transport(info["name"]),
                              serve_http=False, miner="sampled")
        node = Node(config, runtime)
        self.nodes[index] = node
        runner = node.make_runner()
        await runner.setup()
        address = (info["host"], info["port"])
        self.servers[address] = runner.server
        try:
            await node.run()
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in the node: logged in its own log, the simulation goes on
            logging.getLogger("node").exception("%s failed", info["name"])
        finally:
            self.servers.pop(address, None)
            self.nodes.pop(index, None)
            await runner.cleanup()

    def kill(self, index: int) -> bool:
        """Drop the node as a crash would: its links are severed (peers see 1006, no goodbye),
        then its task is cancelled; what it held in memory is gone, its store stays for the next
        start."""
        if not self.is_running(index):
            return False
        self.network.transport(self._node(index)["name"]).sever()
        return self.stop(index)

    def stop(self, index: int, timeout: float = 10.0) -> bool:
        """A clean stop: the node's task is cancelled and its shutdown closes each link with a
        goodbye, as SIGTERM does to a node process."""
        if not self.is_running(index):
            return False
        self._tasks[index].cancel()
        return True

    def pause(self, index: int) -> bool:
        raise BackendError(f"pause: {PAUSE_REFUSED}")

    def resume(self, index: int) -> bool:
        return self.pause(index)

    def start_all(self) -> None:
        for index in range(len(self.cluster["nodes"])):
            self.start(index)

    def stop_all(self) -> None:
        for index in list(self._tasks):
            self.kill(index)
        for node in self.cluster["nodes"]:
            log_router().detach(node["name"])
