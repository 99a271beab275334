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
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from consensus.types import sign_transaction
from testnet.client import NodeAPIError, NodeClient
from testnet.backend import create_cluster, open_backend
from testnet.cluster_files import read_cluster
from testnet.manifest import ClusterManifest, validate_manifest


class ClusterTimeout(TimeoutError):
    """A condition did not hold in time; the message names the condition and the last state."""


class NodeDown(ClusterTimeout):
    """A node being waited for is not running (it exited or crashed at start)."""


DOWN_GRACE_S = 2.0


class Cluster:
    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory).resolve()
        self.info = read_cluster(self.directory)
        self.backend = open_backend(self.directory, self.info)
        self._session: aiohttp.ClientSession | None = None

    # ---- plumbing ------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self.info["nodes"])

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def client(self, index: int, timeout: float = 5.0) -> NodeClient:
        return NodeClient(self.info["nodes"][index]["api"], self.session, timeout)

    def node_index(self, name: str | int) -> int:
        """Accepts 2, "2" or "node2"."""
        text = str(name)
        for node in self.info["nodes"]:
            if text in (str(node["index"]), node["name"]):
                return node["index"]
        raise KeyError(f"no node {name!r} in this cluster (nodes 0..{self.size - 1})")

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
        except (aiohttp.ClientError, asyncio.TimeoutError, NodeAPIError):
            return None

    async def statuses(self) -> list[dict | None]:
        return list(await asyncio.gather(*(self.status(i) for i in range(self.size))))

    async def wait_until(self, predicate: Callable[[], Awaitable[Any]], timeout: float,
                         description: str, interval: float = 0.2) -> Any:
        """Poll `predicate` until it returns something truthy; raise ClusterTimeout naming it."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            last = await predicate()
            if last:
                return last
            if time.monotonic() >= deadline:
                raise ClusterTimeout(f"timed out after {timeout:.0f} s waiting for {description}")
            await asyncio.sleep(interval)

    async def healthy(self, timeout: float = 30.0, indices: list[int] | None = None) -> None:
        """Every node (or those given) answers /status."""
        targets = list(range(self.size)) if indices is None else indices
        started = time.monotonic()

        async def check() -> bool:
            results = await asyncio.gather(*(self.status(i) for i in targets))
            if all(r is not None for r in results):
                return True
            if time.monotonic() - started > DOWN_GRACE_S:  # a node that exited will not answer
                down = [self.info["nodes"][i]["name"] for i, r in zip(targets, results)
                        if r is None and self.backend.process_state(i) == "down"]
                if down:
                    raise NodeDown(f"{', '.join(down)} exited before answering /status; see "
                                   f"`testnet logs {down[0]} --dir {self.directory}`")
            return False
        await self.wait_until(check, timeout, f"nodes {targets} to answer /status")

    async def connected(self, timeout: float = 30.0) -> None:
        """Every node has at least as many peers as the topology gives it."""
        degree = {i: 0 for i in range(self.size)}
        for a, b in self.info.get("edges", []):
            degree[a] += 1
            degree[b] += 1

        async def check() -> bool:
            results = await self.statuses()
            return all(r is not None and r["peers"] >= degree[i] for i, r in enumerate(results))
        await self.wait_until(check, timeout, "every node to connect to its topology peers")

    async def converged(self, timeout: float = 30.0, indices: list[int] | None = None,
                        min_height: int = 0) -> dict:
        """All nodes (or those given) report the same head at or above `min_height`."""
        targets = list(range(self.size)) if indices is None else indices

        async def check() -> dict | None:
            results = await asyncio.gather(*(self.status(i) for i in targets))
            if any(r is None for r in results):
                return None
            heads = {r["head"] for r in results}
            if len(heads) == 1 and results[0]["height"] >= min_height:
                return results[0]
            return None
        return await self.wait_until(check, timeout,
                                     f"nodes {targets} to agree on one head (>= {min_height})")

    async def wait_for_height(self, height: int, timeout: float = 60.0,
                              indices: list[int] | None = None) -> None:
        targets = list(range(self.size)) if indices is None else indices

        async def check() -> bool:
            results = await asyncio.gather(*(self.status(i) for i in targets))
            return all(r is not None and r["height"] >= height for r in results)
        await self.wait_until(check, timeout, f"nodes {targets} to reach height {height}")

    async def admin(self, index: int, method: str, path: str, body: dict | None = None) -> Any:
        """Call a token-protected admin endpoint of node `index`."""
        headers = {"Authorization": f"Bearer {self.info['admin_token']}"}
        url = self.info["nodes"][index]["api"] + path
        async with self.session.request(method, url, json=body, headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=10)) as resp:
            data = await resp.json(content_type=None)
            if resp.status >= 400:
                raise NodeAPIError(resp.status, str(data.get("error", data)))
            return data

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
        accounts = self.accounts()
        if not 0 <= from_account < len(accounts):
            raise ValueError(f"no genesis account {from_account} (0..{len(accounts) - 1})")
        sender = accounts[from_account]
        recipient = accounts[int(to)]["account"] if str(to).isdigit() and len(str(to)) < 6 \
            else str(to)
        recipient_bytes = bytes.fromhex(recipient)
        if len(recipient_bytes) != 32:
            raise ValueError(f"recipient must be an account index or 64 hex digits: {to!r}")
        client = self.client(node)
        nonce = (await client.account(sender["account"]))["pending_nonce"]
        tx = sign_transaction(bytes.fromhex(sender["private_key"]), recipient_bytes, amount, fee,
                              nonce)
        result = await client.post_tx({"raw": tx.serialize().hex()})
        return result["txid"]


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
        create_cluster(target, self.manifest, backend=backend, **({"image": image} if image else {}))
        super().__init__(target)

    async def __aenter__(self) -> LocalCluster:
        timeout = 30 if self.backend.name == "local" else 90  # containers: image start, DNS
        try:
            await asyncio.to_thread(self.start_all)
            await self.healthy(timeout=timeout)
            await self.connected(timeout=timeout)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop_all)
        await self.close()
        if self._tmp and not self._keep:
            shutil.rmtree(self._tmp, ignore_errors=True)


__all__ = ["Cluster", "ClusterTimeout", "LocalCluster", "NodeAPIError"]
