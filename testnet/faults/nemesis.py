"""The nemesis: applies faults to a running cluster and records each one in the cluster's history.

Plans are values (a grudge from testnet/faults/grudge.py, a link rule, an offset); this module is
the one mechanism that applies them, through the nodes' admin API and the backend's process
control. Every action is appended to `DIR/nemesis.jsonl` (the fault half of the merged timeline)
and the standing faults are kept in `DIR/faults.json`, so a node restarted under a partition gets
it back.

Every verb is a coroutine. Process control blocks (spawning, waiting for an exit, Docker calls), so
it runs in a thread here: a collector or dashboard in the same process keeps following the other
nodes meanwhile, and no caller has to know which verbs block. Which verbs exist, with what
arguments, is declared once in testnet/faults/actions.py; this class is what they call.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from testnet.clock import wall_time
from testnet.cluster import Cluster
from testnet.errors import BackendError, NemesisError, NodeAPIError, NodeUnreachable
from testnet.faults.grudge import Grudge, link_blocks

FAULT_LOG = "nemesis.jsonl"
FAULT_STATE = "faults.json"
LAYERS = ("p2p", "net")  # where a partition is applied: the nodes' link shaper, or the network


class Nemesis:
    def __init__(self, cluster: Cluster, *, step: int | None = None) -> None:
        self.cluster = cluster
        self.step = step
        self.log_path = cluster.directory / FAULT_LOG
        self.state_path = cluster.directory / FAULT_STATE

    # ---- bookkeeping ---------------------------------------------------------------------------
    def record(self, kind: str, fault: str, nodes: list[int], *, result: dict | None = None,
               **params: Any) -> dict:
        """Log one action: `params` are what was asked (the schedule), `result` what happened."""
        entry = {"ts": wall_time(), "source": "nemesis", "type": kind, "fault": fault,
                 "nodes": [self.cluster.info["nodes"][i]["name"] for i in nodes],
                 "params": params}
        if result:
            entry["result"] = result
        if self.step is not None:
            entry["step"] = self.step
        with open(self.log_path, "a") as fh:
            fh.write(json.dumps(entry, separators=(",", ":")) + "\n")
        return entry

    def state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {"grudge": None, "links": [], "skew": {}, "roles": {}}

    def _save(self, state: dict) -> None:
        self.state_path.write_text(json.dumps(state, indent=2) + "\n")

    def history(self) -> list[dict]:
        try:
            return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]
        except FileNotFoundError:
            return []

    def _peer_id(self, index: int) -> str:
        return self.cluster.info["nodes"][index]["peer_id"]

    async def _admin(self, index: int, method: str, path: str, body: dict | None = None,
                     *, required: bool = True) -> Any:
        try:
            return await self.cluster.admin(index, method, path, body)
        except (NodeUnreachable, NodeAPIError) as exc:
            if required:
                raise NemesisError(f"node{index} did not take {method} {path}: {exc}") from None
            return None

    # ---- partitions ----------------------------------------------------------------------------
    async def partition(self, grudge: Grudge, layer: str = "p2p") -> dict:
        """Replace any standing partition by `grudge`, applied in the nodes' p2p layer (the link
        shaper) or, with layer="net", in the network under them (container backends: iptables)."""
        if layer not in LAYERS:
            raise NemesisError(f"unknown partition layer {layer!r} (use {' or '.join(LAYERS)})")
        if layer == "net" and not hasattr(self.cluster.backend, "cut"):
            raise NemesisError(f"the {self.cluster.backend.name} backend has no network layer to "
                               "cut; partition in the p2p layer (--layer p2p), or run the "
                               "cluster in containers (testnet up --backend docker)")
        await self._clear_blocks()
        await self._cut_network({})
        symmetric, one_way = link_blocks(grudge)
        if layer == "net":
            await self._cut_network(grudge)
            return self._partitioned(grudge, layer, sorted(grudge), symmetric, one_way)
        per_node: dict[int, dict[str, list[str]]] = {}
        for a, b in symmetric:
            per_node.setdefault(a, {}).setdefault("both", []).append(self._peer_id(b))
            per_node.setdefault(b, {}).setdefault("both", []).append(self._peer_id(a))
        for a, b in one_way:  # b stops hearing a
            per_node.setdefault(b, {}).setdefault("in", []).append(self._peer_id(a))
        await asyncio.gather(*(
            self._admin(node, "POST", "/admin/partition", {"peers": peers, "direction": d},
                        required=False)
            for node, by_dir in per_node.items() for d, peers in by_dir.items()
            if self.cluster.backend.is_running(node)))
        return self._partitioned(grudge, layer, sorted(per_node), symmetric, one_way)

    def _partitioned(self, grudge: Grudge, layer: str, nodes: list[int], symmetric: set,
                     one_way: set) -> dict:
        state = self.state()
        state["grudge"] = {str(k): sorted(v) for k, v in grudge.items()}
        state["layer"] = layer
        self._save(state)
        extra = {"layer": layer} if layer != "p2p" else {}
        return self.record("fault_applied", "partition", nodes,
                           grudge={str(k): sorted(v) for k, v in grudge.items() if v},
                           symmetric=[list(p) for p in sorted(symmetric)],
                           one_way=[list(p) for p in sorted(one_way)], **extra)

    async def heal(self) -> dict:
        await self._clear_blocks()
        await self._cut_network({})
        state = self.state()
        state["grudge"] = None
        state.pop("layer", None)
        self._save(state)
        return self.record("fault_cleared", "heal", list(range(self.cluster.size)))

    async def _cut_network(self, grudge: Grudge) -> None:
        """Apply `grudge` in the network layer; an empty grudge lifts a standing network cut."""
        cut = getattr(self.cluster.backend, "cut", None)
        if cut is None or (not grudge and self.state().get("layer") != "net"):
            return  # no network layer, or nothing standing in it
        try:
            await self.cluster.backend_call(cut, grudge)
        except BackendError as exc:
            raise NemesisError(str(exc)) from None

    async def _clear_blocks(self) -> None:
        await asyncio.gather(*(self._admin(i, "DELETE", "/admin/partition", required=False)
                               for i in range(self.cluster.size)
                               if self.cluster.backend.is_running(i)))

    # ---- link shaping --------------------------------------------------------------------------
    async def link(self, rule: dict, sources: list[int] | None = None,
                   targets: list[int] | None = None) -> dict:
        """Shape what `sources` send to `targets` (all nodes when omitted)."""
        sources = list(range(self.cluster.size)) if sources is None else sources
        calls = []
        for s in sources:
            if targets is None:
                calls.append(self._admin(s, "POST", "/admin/link",
                                         {"peer": "*", "direction": "out", "rule": rule}))
            else:
                calls.extend(self._admin(s, "POST", "/admin/link",
                                         {"peer": self._peer_id(t), "direction": "out",
                                          "rule": rule}) for t in targets if t != s)
        await asyncio.gather(*calls)
        state = self.state()
        state["links"].append({"sources": sources, "targets": targets, "rule": rule})
        self._save(state)
        return self.record("fault_applied", "link", sources, rule=rule,
                           targets=targets if targets is not None else "all")

    async def link_clear(self, nodes: list[int] | None = None) -> dict:
        nodes = list(range(self.cluster.size)) if nodes is None else nodes
        await asyncio.gather(*(self._admin(i, "DELETE", "/admin/link", required=False)
                               for i in nodes if self.cluster.backend.is_running(i)))
        state = self.state()
        state["links"] = [] if len(nodes) == self.cluster.size else state["links"]
        self._save(state)
        return self.record("fault_cleared", "link_clear", nodes)

    # ---- processes -----------------------------------------------------------------------------
    async def _signal(self, index: int, act: Any) -> None:
        """Runs a blocking process action in a thread; a node that is not up is refused."""
        try:
            done = await self.cluster.backend_call(act, index)
        except BackendError as exc:
            raise NemesisError(str(exc)) from None
        if not done:
            raise NemesisError(f"node{index} is not running")

    async def kill(self, index: int) -> dict:
        await self._signal(index, self.cluster.kill)
        return self.record("fault_applied", "kill", [index], signal="SIGKILL")

    async def stop(self, index: int) -> dict:
        await self._signal(index, self.cluster.stop)
        return self.record("fault_applied", "stop", [index], signal="SIGTERM")

    async def start(self, index: int, timeout: float = 30.0) -> dict:
        await self.cluster.backend_call(self.cluster.start, index)
        await self.cluster.healthy(timeout, indices=[index])
        await self.reapply(index)
        return self.record("fault_cleared", "start", [index])

    async def restart(self, index: int, timeout: float = 30.0) -> dict:
        await self.cluster.backend_call(self.cluster.stop, index)
        await self.cluster.backend_call(self.cluster.start, index)
        await self.cluster.healthy(timeout, indices=[index])
        await self.reapply(index)
        return self.record("fault_applied", "restart", [index])

    async def pause(self, index: int) -> dict:
        await self._signal(index, self.cluster.pause)
        return self.record("fault_applied", "pause", [index], signal="SIGSTOP")

    async def resume(self, index: int) -> dict:
        await self._signal(index, self.cluster.resume)
        return self.record("fault_cleared", "resume", [index], signal="SIGCONT")

    async def reapply(self, index: int) -> None:
        """Give a (re)started node the standing faults it lost with its memory."""
        state = self.state()
        grudge = state.get("grudge")
        if grudge:
            await self.partition({int(k): set(v) for k, v in grudge.items()},
                                 state.get("layer", "p2p"))
        for link in state.get("links", []):
            if index in link["sources"]:
                targets = link["targets"]
                await self.link(link["rule"], [index], targets)
        offset = state.get("skew", {}).get(str(index))
        if offset:
            await self._admin(index, "POST", "/admin/clock", {"offset_s": offset})
        for key, role in state.get("roles", {}).items():
            if role == "honest":
                continue
            if key == str(index):
                await self._admin(index, "POST", "/admin/role", {"role": role})
            elif key.startswith("v") and self.validator_node(int(key[1:])) == index:
                await self._admin(index, "POST", "/admin/role",
                                  {"role": role, "validator": int(key[1:])})

    # ---- clocks and roles ----------------------------------------------------------------------
    async def skew(self, index: int, offset_s: float) -> dict:
        result = await self._admin(index, "POST", "/admin/clock", {"offset_s": offset_s})
        state = self.state()
        state["skew"][str(index)] = offset_s
        self._save(state)
        kind = "fault_applied" if offset_s else "fault_cleared"
        return self.record(kind, "skew", [index], offset_s=offset_s,
                           result={"previous_s": result["previous_s"]})

    async def role(self, index: int, role: str, validator: int | None = None) -> dict:
        body: dict[str, Any] = {"role": role}
        if validator is not None:
            body["validator"] = validator
        result = await self._admin(index, "POST", "/admin/role", body)
        state = self.state()
        key = str(index) if validator is None else f"v{validator}"
        state["roles"][key] = role
        self._save(state)
        kind = "fault_cleared" if role == "honest" else "fault_applied"
        params: dict[str, Any] = {"role": role}
        if validator is not None:
            params["validator"] = validator
        return self.record(kind, "role", [index], **params, result=result)

    def validator_node(self, validator: int) -> int:
        """The index of the node that runs PoS validator `validator`."""
        for node in self.cluster.info["nodes"]:
            if validator in node.get("validators", []):
                return node["index"]
        raise NemesisError(f"no node runs validator {validator}")

    async def miner(self, index: int, *, enabled: bool | None = None,
                    hashrate: float | None = None) -> dict:
        body: dict[str, Any] = {}
        if enabled is not None:
            body["enabled"] = enabled
        if hashrate is not None:
            body["hashrate"] = hashrate
        result = await self._admin(index, "POST", "/admin/miner", body)
        return self.record("fault_applied", "miner", [index], **body, result=result)

