"""A running cluster, driven from outside through processes and the nodes' HTTP APIs.

`LocalCluster` is the Python API that tests and scenarios use:

    async with LocalCluster(nodes=4, consensus="pow") as cluster:
        await cluster.converged(timeout=30)
        cluster.kill(2); cluster.start(2)

`Cluster` attaches to an existing cluster folder (what the CLI does for every command).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from consensus.types import sign_transaction
from testnet.backends.base import create_cluster, open_backend
from testnet.client import NodeClient
from testnet.clock import monotonic
from testnet.config.cluster_files import read_cluster
from testnet.config.manifest import ClusterManifest, validate_manifest
from testnet.errors import NodeAPIError, NodeDown, NodeUnreachable, UnknownAccount, UnknownNode
from testnet.waiting import DEFAULT_INTERVAL_S, wait_until

DOWN_GRACE_S = 2.0


T = TypeVar("T")

class Cluster:
    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory).resolve()
        self.info = read_cluster(self.directory)
        self.backend = open_backend(self.directory, self.info)
        self.manifest: ClusterManifest = validate_manifest(self.info["manifest"])
        self._session: aiohttp.ClientSession | None = None

    # ---- plumbing ------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self.info["nodes"])

    @property
    def poll_s(self) -> float:
        """How often waits ask the nodes: DEFAULT_INTERVAL_S, or a fiftieth of a long block
        interval (asking 100 nodes five times a second through a 600 s block is all cost, and on
        a simulated cluster it is most of the run's work)."""
        interval = (self.info.get("manifest") or {}).get("block_interval_s") or 0
        return max(DEFAULT_INTERVAL_S, interval / 50)

    @property
    def session(self) -> aiohttp.ClientSession:
        """The HTTP session to the nodes' APIs: over TCP, or through the connector a backend
        offers (`http_connector()`: the simulation's nodes live in this process)."""
        if self._session is None or self._session.closed:
            offer = getattr(self.backend, "http_connector", None)
            self._session = aiohttp.ClientSession(connector=offer() if offer else None)
        return self._session

    async def backend_call(self, fn: Callable[..., T], *args: Any) -> T:
        """Call a backend method without stalling the event loop: in a thread for backends
        whose calls block (processes, containers); inline for a backend that says it does not
        (`blocking = False`: the simulation's nodes live on this loop, and a thread would let its
        virtual clock run on while the call is in flight)."""
        if getattr(self.backend, "blocking", True):
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def client(self, index: int, timeout: float = 5.0) -> NodeClient:
        node = self.info["nodes"][index]
        return NodeClient(node["api"], self.session, timeout,
                          admin_token=self.info.get("admin_token"), name=node["name"])

    def node_index(self, name: str | int) -> int:
        """Accepts 2, "2" or "node2"."""
        text = str(name).strip()
        for node in self.info["nodes"]:
            if text in (str(node["index"]), node["name"]):
                return node["index"]
        raise UnknownNode(f"no node {name!r} in this cluster (nodes 0..{self.size - 1})")

    def name(self, index: int) -> str:
        return self.info["nodes"][index]["name"]

    def accounts(self) -> list[dict]:
        return json.loads((self.directory / "accounts.json").read_text())

    # ---- processes -----------------------------------------------------------------------------
    def start(self, index: int) -> object:
        return self.backend.start(index)

    def start_all(self) -> None:
        self.backend.start_all()

    def kill(self, index: int) -> bool:
        return self.backend.kill(index)

    def stop(self, index: int) -> bool:
        return self.backend.stop(index)

    def stop_all(self) -> None:
        self.backend.stop_all()

    def restart(self, index: int) -> object:
        self.backend.stop(index)
        return self.backend.start(index)

    def pause(self, index: int) -> bool:
        return self.backend.pause(index)

    def resume(self, index: int) -> bool:
        return self.backend.resume(index)

    # ---- observation ---------------------------------------------------------------------------
    async def status(self, index: int) -> dict | None:
        """The node's /status, or None when it does not answer."""
        if not self.backend.is_running(index):
            return None
        try:
            return await self.client(index, timeout=2.0).status()
        except (NodeUnreachable, NodeAPIError):
            return None

    async def statuses(self, indices: list[int] | None = None) -> list[dict | None]:
        targets = list(range(self.size)) if indices is None else indices
        return list(await asyncio.gather(*(self.status(i) for i in targets)))

    def describe_heads(self, indices: list[int], statuses: list[dict | None]) -> str:
        """`node0 at 12 (a1b2c3d4e5f6), node1 down`: what a failed wait last saw."""
        parts = []
        for i, st in zip(indices, statuses):
            if st is None:
                parts.append(f"{self.name(i)} {self.backend.process_state(i)}, no answer")
            else:
                parts.append(f"{self.name(i)} at {st.get('height')} ({str(st.get('head'))[:12]})")
        return ", ".join(parts)

    async def healthy(self, timeout: float = 30.0, indices: list[int] | None = None) -> None:
        """Every node (or those given) answers /status."""
        targets = list(range(self.size)) if indices is None else indices
        started = monotonic()
        last: list[dict | None] = []

        async def check() -> bool:
            nonlocal last
            last = await self.statuses(targets)
            if all(r is not None for r in last):
                return True
            if monotonic() - started > DOWN_GRACE_S:  # a node that exited will not answer
                down = [self.name(i) for i, r in zip(targets, last)
                        if r is None and self.backend.process_state(i) == "down"]
                if down:
                    raise NodeDown(f"{', '.join(down)} exited before answering /status; see "
                                   f"`testnet logs {down[0]} --dir {self.directory}`")
            return False
        await wait_until(check, timeout, f"nodes {targets} to answer /status",
                         interval=self.poll_s,
                         last=lambda: self.describe_heads(targets, last))

    async def connected(self, timeout: float = 30.0) -> None:
        """Every node has at least as many peers as the topology gives it."""
        degree = {i: 0 for i in range(self.size)}
        for a, b in self.info.get("edges", []):
            degree[a] += 1
            degree[b] += 1

        last: list[dict | None] = []

        async def check() -> bool:
            nonlocal last
            last = await self.statuses()
            return all(r is not None and r["peers"] >= degree[i] for i, r in enumerate(last))

        def peers() -> str:
            return ", ".join(f"{self.name(i)} {'down' if r is None else r['peers']}/{degree[i]}"
                             for i, r in enumerate(last))
        await wait_until(check, timeout, "every node to connect to its topology peers",
                         interval=self.poll_s, last=lambda: f"peers per node {peers()}")

    async def converged(self, timeout: float = 30.0, indices: list[int] | None = None,
                        min_height: int = 0) -> dict:
        """All nodes (or those given) report the same head at or above `min_height`."""
        targets = list(range(self.size)) if indices is None else indices
        last: list[dict | None] = []

        async def check() -> dict | None:
            nonlocal last
            last = await self.statuses(targets)
            if any(r is None for r in last):
                return None
            heads = {r["head"] for r in last if r is not None}
            first = last[0]
            if len(heads) == 1 and first is not None and first["height"] >= min_height:
                return first
            return None
        return await wait_until(check, timeout,
                                f"nodes {targets} to agree on one head (>= {min_height})",
                                interval=self.poll_s,
                         last=lambda: self.describe_heads(targets, last))

    async def wait_for_height(self, height: int, timeout: float = 60.0,
                              indices: list[int] | None = None) -> None:
        targets = list(range(self.size)) if indices is None else indices
        last: list[dict | None] = []

        async def check() -> bool:
            nonlocal last
            last = await self.statuses(targets)
            return all(r is not None and r["height"] >= height for r in last)
        await wait_until(check, timeout, f"nodes {targets} to reach height {height}",
                         interval=self.poll_s,
                         last=lambda: self.describe_heads(targets, last))

    async def admin(self, index: int, method: str, path: str, body: dict | None = None) -> Any:
        """Call a token-protected admin endpoint of node `index`."""
        return await self.client(index).admin(method, path, body)

    async def events(self, index: int, since: int = 0) -> list[dict]:
        """The node's events after `since` that it still holds in memory, up to now."""
        status = await self.client(index).status()
        last = status["events_seq"]
        out: list[dict] = []
        if last <= since:
            return out
        async for event in self.client(index).events(since=since):
            out.append(event)
            if event.get("seq", 0) >= last:
                break
        return out

    # ---- transactions --------------------------------------------------------------------------
    async def send(self, from_account: int, to: str | int, amount: int, fee: int = 1,
                   node: int = 0) -> str:
        """Sign a transfer from a funded genesis account and submit it to `node`; returns txid."""
        sender = self.genesis_account(from_account)
        client = self.client(node)
        nonce = (await client.account(sender["account"]))["pending_nonce"]
        tx = sign_transaction(bytes.fromhex(sender["private_key"]), self.recipient(to), amount,
                              fee, nonce)
        result = await client.post_tx({"raw": tx.serialize().hex()})
        return result["txid"]

    def genesis_account(self, index: int) -> dict:
        """A funded genesis account (accounts.json) by index, with its private key."""
        accounts = self.accounts()
        if isinstance(index, bool) or not isinstance(index, int) or \
                not 0 <= index < len(accounts):
            raise UnknownAccount(f"no genesis account {index!r} (accounts are "
                                 f"0..{len(accounts) - 1})")
        return accounts[index]

    def recipient(self, to: str | int) -> bytes:
        """A recipient given as a genesis account index or as 64 hex digits of a public key."""
        text = str(to)
        if text.isdigit() and len(text) < 6:
            return bytes.fromhex(self.genesis_account(int(text))["account"])
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise UnknownAccount(f"recipient must be an account index or 64 hex digits: {to!r}")
        return key


async def wait_for_tx_everywhere(cluster: Cluster, txid: str, timeout: float) -> int:
    """Height of the block holding `txid` once it is on every node's main chain."""
    async def height() -> int | None:
        found = set()
        for i in range(cluster.size):
            status = await cluster.status(i)
            if status is None:
                return None
            client = cluster.client(i)
            chain = await client.chain(max(0, status["height"] - 50), status["height"])
            hit = None
            for header in chain["headers"]:
                block = await client.block(header["hash"]) if header["txs"] > 1 else None
                if block and any(t["txid"] == txid for t in block["transactions"]):
                    hit = header["height"]
            if hit is None:
                return None
            found.add(hit)
        return found.pop() if len(found) == 1 else None
    return await wait_until(height, timeout, f"transaction {txid[:16]} on every node",
                            interval=0.5)


class LocalCluster(Cluster):
    """Generate a cluster folder, start it on loopback, stop it on exit.

    With no `directory`, a temporary folder is used and removed afterwards. `backend` is local
    (processes), docker (a compose project) or swarm (a stack); `image` names the node image of
    the container backends.
    """

    def __init__(self, nodes: int = 4, consensus: str = "pow", *, directory: Path | str |
                 None = None, keep: bool = False, backend: str = "local",
                 image: str | None = None, **manifest: Any) -> None:
        self._tmp = None if directory else tempfile.mkdtemp(prefix="testnet-")
        self._keep = keep
        self.manifest: ClusterManifest = validate_manifest(
            {"nodes": nodes, "consensus": consensus, **manifest})
        target = Path(directory or self._tmp)
        create_cluster(target, self.manifest, backend=backend,
                       **({"image": image} if image else {}))
        super().__init__(target)

    async def __aenter__(self) -> LocalCluster:
        timeout = 30 if self.backend.name == "local" else 90  # containers: image start, DNS
        try:
            await self.backend_call(self.start_all)
            await self.healthy(timeout=timeout)
            await self.connected(timeout=timeout)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.backend_call(self.stop_all)
        await self.close()
        if self._tmp and not self._keep:
            shutil.rmtree(self._tmp, ignore_errors=True)


__all__ = ["Cluster", "LocalCluster", "wait_for_tx_everywhere"]
