"""The collector: one merged, gap-free timeline of a running cluster, and its union block tree.

It follows every node's `/events` websocket and the nemesis log (`DIR/nemesis.jsonl`, the faults
the orchestrator applied), and polls `/status` and `/peers` for the node cards and the partition
picture. The invariant it keeps: for every node, the timeline holds each event sequence number
from the first one it saw to the last, exactly once. A node that restarts, a stream that drops, or
an `events_missed` notice (we were too slow) all leave a gap, which is filled from the node's
own log through `GET /events/log` before later events are taken in.

Observers (the dashboard, tests) `listen()` for updates through bounded queues: a listener that
stops reading loses updates, is told how many, and never grows the collector's memory.

    async with Collector(cluster) as collector:
        await collector.wait_for(lambda c: c.tree.reorgs > 0, timeout=60)

What the dashboard draws lives in `TimelineState`, which the Collector extends with the live
sources: `ingest(entry)` is the one intake, so a replay of a recorded history
(testnet/observe/replay.py) builds the very same tree, timeline and partition picture.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testnet.clock import wall_time
from testnet.cluster import Cluster
from testnet.errors import NodeAPIError, NodeUnreachable
from testnet.faults.nemesis import FAULT_LOG, FAULT_STATE
from testnet.history.block_tree import UnionTree
from testnet.waiting import wait_for_change

log = logging.getLogger(__name__)

LISTENER_QUEUE = 1_000
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.2, 2.0
FILL_PAGE = 2_000


@dataclass
class NodeView:
    """What the dashboard's node card shows, refreshed by polling."""
    name: str
    index: int
    api: str
    up: bool = False
    streaming: bool = False
    status: dict = field(default_factory=dict)
    peers: list[str] = field(default_factory=list)     # names of connected nodes
    last_seq: int = 0
    gaps_filled: int = 0
    events_filled: int = 0

    def to_json(self) -> dict:
        st = self.status
        return {"name": self.name, "index": self.index, "api": self.api, "up": self.up,
                "streaming": self.streaming, "height": st.get("height"), "head": st.get("head"),
                "peers": self.peers, "peer_count": st.get("peers"),
                "role": st.get("role"), "faults": st.get("faults"),
                "mempool": st.get("mempool"), "reorgs": st.get("reorgs"),
                "consensus": st.get("consensus"),
                "justified": st.get("justified"), "finalized": st.get("finalized"),
                "hashrate": (st.get("miner") or {}).get("hashrate"),
                "last_seq": self.last_seq, "gaps_filled": self.gaps_filled}


class Listener:
    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[dict] = asyncio.Queue(maxsize)
        self.missed = 0

    def offer(self, update: dict) -> None:
        if self.queue.full():
            self.missed += 1
            return
        if self.missed:
            if self.queue.qsize() >= self.queue.maxsize - 1:
                self.missed += 1
                return
            self.queue.put_nowait({"kind": "missed", "count": self.missed})
            self.missed = 0
        self.queue.put_nowait(update)


class TimelineState:
    """What a dashboard draws, whatever feeds it: the timeline, the union block tree, the node
    cards and the standing faults, with listeners told of every change. `ingest(entry)` takes one
    history entry (docs/history.md) in; the live Collector below and the replay of a report
    (testnet/observe/replay.py) both feed it only through there."""

    def __init__(self, name: str, consensus: str, nodes: list[NodeView]) -> None:
        self.name = name
        self.consensus = consensus
        self.timeline: list[dict] = []
        self.tree = UnionTree()
        self.nodes = nodes
        self._listeners: set[Listener] = set()
        self._changed = asyncio.Event()

    def ingest(self, entry: dict) -> None:
        """Takes one entry of the merged timeline: a node event (with `source` and `node`), a
        nemesis action or a runner observation."""
        self.timeline.append(entry)
        if entry.get("source") == "node":
            self.tree.on_event(entry)
        self._publish({"kind": "event", "event": entry})

    def now(self) -> float:
        """The time the picture shows (wall time of the cluster's clock)."""
        return wall_time()

    def faults(self) -> dict:
        """The standing faults the nemesis keeps (partition grudge, link rules, skews, roles)."""
        return {"grudge": None, "links": [], "skew": {}, "roles": {}}

    # ---- observers -----------------------------------------------------------------------------
    def listen(self, maxsize: int = LISTENER_QUEUE) -> Listener:
        listener = Listener(maxsize)
        self._listeners.add(listener)
        return listener

    def unlisten(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    def _publish(self, update: dict) -> None:
        for listener in self._listeners:
            listener.offer(update)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[Any], Any], timeout: float,
                       description: str = "collector condition") -> Any:
        """Waits until `predicate(self)` is truthy, re-checking on every change."""
        return await wait_for_change(lambda: predicate(self), self._changed, timeout,
                                     description)

    def merged(self) -> list[dict]:
        """The timeline in time order (host receive time where known, else the event's own)."""
        return sorted(self.timeline, key=lambda e: e.get("rx_ts", e["ts"]))

    def node_events(self, node: str, kind: str | None = None) -> list[dict]:
        return [e for e in self.timeline if e.get("node") == node and e.get("source") == "node"
                and (kind is None or e["type"] == kind)]

    def connectivity(self) -> dict[str, list[str]]:
        """Who can talk to whom now: node name -> the nodes it has a live connection with."""
        return {v.name: list(v.peers) for v in self.nodes}

    def partition(self) -> dict:
        """The partition picture: `groups` (nodes that can all reach each other, through the
        standing grudge), `cuts` (both ways) and `one_way` ([a, b]: b drops what a sends), by name.
        A grudge is the nemesis's intent; `connectivity()` is what the nodes report."""
        names = [v.name for v in self.nodes]
        grudge = {int(b): set(a) for b, a in (self.faults().get("grudge") or {}).items()}
        cuts, one_way = [], []
        for b, dropped in grudge.items():
            for a in sorted(dropped):
                if a >= len(names) or b >= len(names):
                    continue
                if b in grudge.get(a, set()):
                    if a < b:
                        cuts.append([names[a], names[b]])
                else:
                    one_way.append([names[a], names[b]])
        parent = list(range(len(names)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i
        for a in range(len(names)):
            for b in range(a + 1, len(names)):
                if a not in grudge.get(b, set()) and b not in grudge.get(a, set()):
                    parent[root(a)] = root(b)
        groups: dict[int, list[str]] = {}
        for i, name in enumerate(names):
            groups.setdefault(root(i), []).append(name)
        return {"groups": sorted(groups.values()), "cuts": cuts, "one_way": one_way,
                "partitioned": bool(cuts or one_way)}

    def snapshot(self, top: int | None = None, size: int = 120, timeline_tail: int = 200
                 ) -> dict:
        """Everything a dashboard needs to draw one frame."""
        return {"cluster": self.name, "time": self.now(), "consensus": self.consensus,
                "nodes": [v.to_json() for v in self.nodes], "connectivity": self.connectivity(),
                "partition": self.partition(), "faults": self.faults(),
                "tree": self.tree.window(top, size),
                "timeline": self.timeline[-timeline_tail:] if timeline_tail > 0 else []}


class Collector(TimelineState):
    def __init__(self, cluster: Cluster, *, poll_interval: float = 1.0,
                 record_path: Path | None = None) -> None:
        super().__init__(cluster.directory.name, cluster.info.get("consensus", "pow"),
                         [NodeView(n["name"], n["index"], n["api"])
                          for n in cluster.info["nodes"]])
        self.cluster = cluster
        self.poll_interval = poll_interval
        self._by_name = {v.name: v for v in self.nodes}
        self._peer_names: dict[str, str] = {}          # peer id -> node name
        self._tasks: list[asyncio.Task] = []
        self._nemesis_offset = 0
        self._record = open(record_path, "a", buffering=1) if record_path else None

    # ---- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._follow(v), name=f"follow-{v.name}")
                       for v in self.nodes]
        self._tasks.append(asyncio.create_task(self._poll(), name="poll"))
        self._tasks.append(asyncio.create_task(self._follow_nemesis(), name="nemesis"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._record is not None:
            self._record.close()
            self._record = None

    async def catch_up(self) -> None:
        """Takes in everything emitted so far, from each answering node's log and from the
        nemesis log: called before a run ends (or a test looks) so the timeline holds the last
        events and fault actions too."""
        self._read_nemesis()
        async def one(view: NodeView) -> None:
            try:
                status = await self.cluster.client(view.index, timeout=5.0).status()
                await self._fill(view, status["events_seq"])
            except (NodeUnreachable, NodeAPIError):
                pass   # down at the end: the runner reads its log from disk
        await asyncio.gather(*(one(v) for v in self.nodes))

    async def __aenter__(self) -> Collector:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def faults(self) -> dict:
        try:
            return json.loads((self.cluster.directory / FAULT_STATE).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return super().faults()

    # ---- intake --------------------------------------------------------------------------------
    def ingest(self, entry: dict) -> None:
        if self._record is not None:
            self._record.write(json.dumps(entry, separators=(",", ":")) + "\n")
        super().ingest(entry)

    def _take_node_event(self, view: NodeView, event: dict, *, filled: bool = False) -> bool:
        """Takes one event if it is newer than the last taken; False for a duplicate. Live events
        get `rx_ts` (host time, immune to clock skew); ones filled from the log are marked
        `filled` instead, their receive time saying nothing about when they happened."""
        seq = event.get("seq")
        if not isinstance(seq, int) or seq <= view.last_seq:
            return False
        view.last_seq = seq
        extra = {"filled": True} if filled else {"rx_ts": wall_time()}
        self.ingest({**event, "source": "node", "node": view.name, **extra})
        return True

    async def _fill(self, view: NodeView, up_to: int | None) -> None:
        """Fills from the node's log everything after view.last_seq (up to `up_to` when given)."""
        client = self.cluster.client(view.index, timeout=10.0)
        while up_to is None or view.last_seq < up_to:
            page = await client.event_log(view.last_seq, FILL_PAGE)
            events = [e for e in page["events"] if up_to is None or e["seq"] <= up_to]
            if not events:
                break
            before = view.last_seq
            for event in events:
                if event["seq"] > view.last_seq + 1:
                    log.warning("%s: events %d..%d are in no log (lost to a crash?)",
                                view.name, view.last_seq + 1, event["seq"] - 1)
                if self._take_node_event(view, event, filled=True):
                    view.events_filled += 1
            if view.last_seq == before:
                break
        view.gaps_filled += 1

    async def _follow(self, view: NodeView) -> None:
        backoff = RECONNECT_MIN_S
        while True:
            try:
                await self._stream(view)
                backoff = RECONNECT_MIN_S
            except (NodeUnreachable, NodeAPIError) as exc:
                log.debug("%s: event stream: %s", view.name, exc)
            except Exception:  # noqa: BLE001  a bug here must not end the following for good
                log.exception("%s: following the event stream failed; reconnecting", view.name)
            view.streaming = False
            await asyncio.sleep(backoff)
            backoff = min(RECONNECT_MAX_S, backoff * 2)

    async def _stream(self, view: NodeView) -> None:
        client = self.cluster.client(view.index)
        async with client.event_stream(since=view.last_seq, heartbeat=10) as events:
            view.streaming = True
            # The websocket replays from memory; what only the log still holds (a restart
            # cleared the node's memory) comes from there, before anything newer is taken.
            await self._fill(view, None)
            async for event in events:
                if event.get("type") == "events_missed":
                    await self._fill(view, event["seq"])
                    continue
                if event.get("seq", 0) > view.last_seq + 1:
                    await self._fill(view, event["seq"] - 1)
                self._take_node_event(view, event)

    async def _follow_nemesis(self) -> None:
        while True:
            self._read_nemesis()
            await asyncio.sleep(0.25)

    def _read_nemesis(self) -> None:
        """Takes in the complete lines the nemesis appended since the last read (a line still
        being written waits for the next read)."""
        try:
            with open(self.cluster.directory / FAULT_LOG, "rb") as fh:
                fh.seek(self._nemesis_offset)
                data = fh.read()
        except FileNotFoundError:
            return
        complete = data[: data.rfind(b"\n") + 1]
        self._nemesis_offset += len(complete)
        for line in complete.splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            self.ingest(entry)

    async def _poll(self) -> None:
        while True:
            await asyncio.gather(*(self._poll_node(v) for v in self.nodes))
            self._publish({"kind": "nodes", "nodes": [v.to_json() for v in self.nodes],
                           "connectivity": self.connectivity(), "partition": self.partition()})
            await asyncio.sleep(self.poll_interval)

    async def _poll_node(self, view: NodeView) -> None:
        client = self.cluster.client(view.index, timeout=2.0)
        try:
            status = await client.status()
            peers = await client.peers()
        except (NodeUnreachable, NodeAPIError):
            view.up = False
            view.peers = []
            return
        view.up = True
        view.status = status
        self._peer_names[status["peer_id"]] = view.name
        view.peers = sorted(self._peer_names.get(p.get("peer_id"), p.get("peer_id", "?")[:8])
                            for p in peers)
