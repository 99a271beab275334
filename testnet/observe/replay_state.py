"""A recorded run as the dashboard saw it at any moment: the collector's state rebuilt from the
run's history up to a time t, fast enough to scrub.

`ReplayState` is a `TimelineState` (testnet/observe/collector.py) fed through the same `ingest`
as the live collector, so the block tree, the heads, finality and the timeline are the live
pictures. What the live collector polls from `/status` (is a node up, whom it is connected to,
its faults, its role) is folded from the history instead: node events, nemesis actions
(testnet/history/standing_faults.py) and runner observations.

`Replay` keeps the state at `checkpoint_every` entries apart (pickled, taken in one pass when it
is built), so `seek(t)` restores the nearest checkpoint at or before t and ingests at most that
many entries. A short step forward (playing) ingests the new entries one by one instead, and the
dashboard's listeners get them as live updates; anything else tells them to `reset` (redraw from
a snapshot). Times are the history's own (`host_ts`: the collector's receive time, else the
entry's ts), virtual in a simulated run: they are only ever compared with each other.
"""

from __future__ import annotations

import math
import pickle
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass

from testnet.errors import DashboardError
from testnet.history.readers import host_ts
from testnet.history.standing_faults import apply_fault, no_faults, node_faults
from testnet.observe.collector import NodeView, TimelineState

CHECKPOINT_EVERY = 1_000           # entries between two stored states
STREAM_MAX_ENTRIES = 300           # a step forward sent as updates; more: a fresh snapshot
DOWN_FAULTS = frozenset({"kill", "stop", "pause"})
UP_FAULTS = frozenset({"start", "restart", "resume"})
LIVE_SOURCES = frozenset({"node", "nemesis"})    # what a live collector's timeline holds


@dataclass(frozen=True)
class RecordedNode:
    """A node of the recorded cluster: its name, index (the grudge's key) and peer id."""
    name: str
    index: int
    peer_id: str | None = None


class ReplayState(TimelineState):
    """The dashboard's state after the first `position` entries of a history, at time `t`."""

    FROZEN = ("tree", "nodes", "standing", "peer_ids", "reorgs", "roles", "position")

    def __init__(self, name: str, consensus: str, nodes: list[RecordedNode]) -> None:
        super().__init__(name, consensus, [NodeView(n.name, n.index, "") for n in nodes])
        self.index_of = {n.name: n.index for n in nodes}
        self.peer_names = {n.peer_id: n.name for n in nodes if n.peer_id}
        self.position = 0
        self.t = 0.0
        self.span = {"start": 0.0, "end": 0.0, "entries": 0, "checkpoint_every": 0}
        self.quiet = False
        self.standing = no_faults()
        self.peer_ids: dict[str, set[str]] = {n.name: set() for n in nodes}
        self.reorgs: Counter[str] = Counter()
        self.roles: dict[str, str] = {}
        self._by_name = {v.name: v for v in self.nodes}

    # ---- intake --------------------------------------------------------------------------------
    def ingest(self, entry: dict) -> None:
        """Takes the next history entry: node events and nemesis actions through the collector's
        intake; runner observations (which a live collector never sees) only into the cards."""
        self.position += 1
        source = entry.get("source")
        if source in LIVE_SOURCES:
            super().ingest(entry)
        if source == "node":
            self._node_entry(entry)
        elif source == "nemesis":
            self._nemesis_entry(entry)
        elif source == "runner" and entry.get("type") == "observation":
            self._observation(entry)

    def _node_entry(self, event: dict) -> None:
        view = self._by_name.get(event.get("node", ""))
        if view is None:
            return
        if isinstance(event.get("seq"), int):
            view.last_seq = max(view.last_seq, event["seq"])
        kind, peers = event.get("type"), self.peer_ids[view.name]
        if kind == "node_started":              # a fresh process: no connections yet
            view.up = True
            peers.clear()
        elif kind == "peer_connected" and event.get("peer"):
            peers.add(event["peer"])
        elif kind == "peer_disconnected":
            peers.discard(event.get("peer"))
        elif kind == "reorg":
            self.reorgs[view.name] += 1

    def _nemesis_entry(self, entry: dict) -> None:
        apply_fault(self.standing, entry, self.index_of)
        fault = entry.get("fault")
        for name in entry.get("nodes") or []:
            view = self._by_name.get(name)
            if view is None:
                continue
            if fault in DOWN_FAULTS:
                view.up = False
                self.peer_ids[name].clear()
            elif fault in UP_FAULTS:
                view.up = True
            elif fault == "role" and (entry.get("params") or {}).get("validator") is None:
                self.roles[name] = (entry.get("params") or {}).get("role", "honest")

    def _observation(self, entry: dict) -> None:
        what = entry.get("what")
        if what == "roles":
            self.roles.update(entry.get("roles") or {})
        elif what == "final_status" and entry.get("node") in self._by_name:
            self._by_name[entry["node"]].up = bool(entry.get("up"))

    def _publish(self, update: dict) -> None:
        if not self.quiet:
            super()._publish(update)

    def announce(self, update: dict) -> None:
        """Tells the listeners (the dashboard's clients) something besides an entry: `reset`
        (redraw from a snapshot), `nodes` (the cards), `replay` (the new position)."""
        self._publish(update)

    # ---- reading -------------------------------------------------------------------------------
    def now(self) -> float:
        return self.t

    def faults(self) -> dict:
        return self.standing

    def replay_position(self) -> dict:
        """Where the replay stands, for the page's scrubber: the time shown, the run's first and
        last timestamp, how many entries are in of how many."""
        return {"t": self.t, "index": self.position, **self.span}

    def snapshot(self, top: int | None = None, size: int = 120, timeline_tail: int = 200
                 ) -> dict:
        return {**super().snapshot(top, size, timeline_tail), "replay": self.replay_position()}

    def refresh_cards(self) -> None:
        """Fills each node card's status as `/status` would have reported it at time t."""
        tree = self.tree
        for view in self.nodes:
            ids = self.peer_ids[view.name] if view.up else set()
            view.streaming = view.up
            view.peers = sorted(self.peer_names.get(p, p[:8]) for p in ids)
            view.status = {"height": tree.head_heights.get(view.name),
                           "head": tree.heads.get(view.name), "peers": len(ids),
                           "role": self.roles.get(view.name, "honest"),
                           "faults": node_faults(self.standing, view.index),
                           "reorgs": self.reorgs[view.name], "consensus": self.consensus,
                           "justified": _checkpoint(tree.justified.get(view.name)),
                           "finalized": _checkpoint(tree.finalized.get(view.name))}

    # ---- checkpoints ---------------------------------------------------------------------------
    def freeze(self) -> bytes:
        return pickle.dumps({k: getattr(self, k) for k in self.FROZEN},
                            protocol=pickle.HIGHEST_PROTOCOL)

    def thaw(self, frozen: bytes, history: list[dict]) -> None:
        """Becomes the frozen state (of this same history), keeping its listeners."""
        for key, value in pickle.loads(frozen).items():   # noqa: S301  our own bytes
            setattr(self, key, value)
        self._by_name = {v.name: v for v in self.nodes}
        self.timeline = [e for e in history[: self.position] if e.get("source") in LIVE_SOURCES]


def _checkpoint(point: dict | None) -> dict | None:
    """A checkpoint as a node's status shows it: a DPoS LIB has a height and no epoch."""
    return None if point is None else {k: v for k, v in point.items() if v is not None}


class Replay:
    """A history (docs/history.md) and the state it had at a chosen time."""

    def __init__(self, history: list[dict], *, name: str, consensus: str,
                 nodes: list[RecordedNode], checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        if not history:
            raise DashboardError("an empty history has nothing to replay")
        if checkpoint_every < 1:
            raise DashboardError(f"bad checkpoint_every: {checkpoint_every!r} (entries, >= 1)")
        self.history = sorted(history, key=host_ts)   # stable: a finished run's file is sorted
        self.times = [host_ts(e) for e in self.history]
        self.start, self.end = self.times[0], self.times[-1]
        self.checkpoint_every = checkpoint_every
        self.state = ReplayState(name, consensus, nodes)
        self.state.span = {"start": self.start, "end": self.end, "entries": len(self.history),
                           "checkpoint_every": checkpoint_every}
        self.checkpoints: list[bytes] = []
        self._build_checkpoints()

    def _build_checkpoints(self) -> None:
        """One pass over the history, freezing the state every `checkpoint_every` entries; the
        state then stands at the end of the run."""
        state = self.state
        state.quiet = True
        for i, entry in enumerate(self.history):
            if i % self.checkpoint_every == 0:
                self.checkpoints.append(state.freeze())
            state.ingest(entry)
        state.quiet = False
        state.t = self.end
        state.refresh_cards()

    def position(self) -> dict:
        return self.state.replay_position()

    def parse_time(self, raw: object) -> float:
        """Validates a requested time: a number of seconds (the history's clock) in the run."""
        span = f"a time in the run: {self.start!r} .. {self.end!r}"
        try:
            t = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            shown = repr(raw) if len(str(raw)) <= 40 else repr(str(raw)[:40] + "...")
            raise DashboardError(f"bad t: {shown} ({span})") from None
        if isinstance(raw, bool) or not math.isfinite(t) or not self.start <= t <= self.end:
            raise DashboardError(f"bad t: {raw!r} ({span})")
        return t

    def seek(self, t: float) -> dict:
        """Puts the state at time t (validated by the caller: inside the run): everything
        recorded at or before t is in. Returns the new position."""
        state = self.state
        target = bisect_right(self.times, t)
        checkpoint = min(target // self.checkpoint_every, len(self.checkpoints) - 1)
        stream = state.position <= target <= state.position + STREAM_MAX_ENTRIES
        if not stream:
            # Back in time, or a checkpoint ahead of us: start from the checkpoint; else go on.
            if target < state.position or checkpoint * self.checkpoint_every > state.position:
                state.thaw(self.checkpoints[checkpoint], self.history)
            state.quiet = True
        try:
            for entry in self.history[state.position: target]:
                state.ingest(entry)
        finally:
            state.quiet = False
        state.t = t
        state.refresh_cards()
        if not stream:
            state.announce({"kind": "reset"})
        state.announce({"kind": "nodes", "nodes": [v.to_json() for v in state.nodes],
                        "connectivity": state.connectivity(), "partition": state.partition()})
        position = self.position()
        state.announce({"kind": "replay", "position": position})
        return position
