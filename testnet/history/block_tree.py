"""The union block tree of a cluster: every block any node reported, who saw it when, where each
node's head is, and which checkpoints each node justified and finalized.

It is built from node events alone (block_accepted, head_changed, justified, finalized), so it
works the same live (fed by the collector: the dashboard) and after the fact (fed a history: the
report's block-tree picture, `UnionTree.from_history`). Pure: no I/O. The two pictures of one run
therefore agree on which chain is canonical and which lane each branch takes:

- the *canonical* chain is the chain to the head most nodes are on (`choose_head`; ties: greater
  height, then the hash) -- live, every node's latest head; for a finished run, the final heads of
  the nodes that were up at the end (as fork_metrics.final_head reads them). Every block off it is
  *stale*: a losing branch, greyed in both pictures;
- branches get lanes (`assign_lanes`): lane 0 is the canonical chain, and each side branch takes
  the lowest lane free over its height range (longest branches first, nearest the main chain), so
  a partition's two branches sit next to each other and lanes are reused along a long run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class TreeBlock:
    hash: str
    parent: str | None
    height: int
    first_seen: float                       # host-receive or node time of the first report
    seen_by: dict[str, float] = field(default_factory=dict)
    producer: str | None = None             # PoW payout key, PoS proposer index, DPoS producer
    slot: int | None = None

    def to_json(self) -> dict:
        out = {"hash": self.hash, "parent": self.parent, "height": self.height,
               "first_seen": self.first_seen, "seen_by": self.seen_by}
        if self.producer is not None:
            out["producer"] = self.producer
        if self.slot is not None:
            out["slot"] = self.slot
        return out


def choose_head(ends: Mapping[str, tuple[str | None, int | None]]) -> str | None:
    """The head most nodes are on, from each node's (head, height); ties go to the greater height,
    then the greater hash. None when no node has a head."""
    votes: Counter[str] = Counter()
    height: dict[str, int] = {}
    for head, h in ends.values():
        if head is None:
            continue
        votes[head] += 1
        height[head] = max(height.get(head, -1), -1 if h is None else int(h))
    if not votes:
        return None
    return max(votes, key=lambda head: (votes[head], height[head], head))


def assign_lanes(parents: Mapping[str, str | None], heights: Mapping[str, int],
                 children: Mapping[str, list[str]], canonical: set[str]) -> dict[str, int]:
    """Lane per block: 0 for the canonical chain, side branches packed beside it -- each takes the
    lowest lane whose occupied height ranges it does not overlap, longest branches first."""
    lanes = {h: 0 for h in canonical if h in heights}
    occupied: dict[int, list[tuple[int, int]]] = {0: []}
    branches = []
    for tip in (h for h in heights if not children.get(h)):
        chain = []
        h: str | None = tip
        while h is not None and h in heights and h not in lanes:
            chain.append(h)    # walk down only to where the branch leaves the main chain
            h = parents.get(h)
        if chain:
            branches.append(chain)
    branches.sort(key=lambda c: (-len(c), heights[c[-1]]))
    for chain in branches:
        chain = [h for h in chain if h not in lanes]
        if not chain:
            continue
        low, high = heights[chain[-1]], heights[chain[0]]
        lane = 1
        while any(not (high < a or low > b) for a, b in occupied.get(lane, [])):
            lane += 1
        occupied.setdefault(lane, []).append((low, high))
        for h in chain:
            lanes[h] = lane
    return lanes


class UnionTree:
    def __init__(self) -> None:
        self.blocks: dict[str, TreeBlock] = {}
        self.children: dict[str, list[str]] = {}
        self.heads: dict[str, str] = {}
        self.head_heights: dict[str, int] = {}
        self.justified: dict[str, dict] = {}   # node -> {"epoch", "root"}
        self.finalized: dict[str, dict] = {}
        self.reorgs = 0
        self.version = 0                       # bumped on every change (cheap change detection)
        self._lanes: dict[str, int] | None = None
        self._canonical: set[str] | None = None

    @classmethod
    def from_history(cls, history: list[dict]) -> UnionTree:
        """The tree of a finished run: every node event, then each node's head as the run ended
        (the final_status observations of the nodes that were up; without any, the last head
        each node reported)."""
        tree = cls()
        for entry in history:
            if entry.get("source") == "node":
                tree.on_event(entry)
        finals = {e["node"]: e for e in history if e.get("source") == "runner"
                  and e.get("what") == "final_status"}
        if finals:
            tree.heads = {n: e["head"] for n, e in finals.items() if e.get("up") and e.get("head")}
            tree.head_heights = {n: int(e["height"] or 0) for n, e in finals.items()
                                 if e.get("up") and e.get("head")}
            tree._lanes = tree._canonical = None
            tree.version += 1
        return tree

    # ---- feeding -------------------------------------------------------------------------------
    def on_event(self, event: dict) -> bool:
        """Applies one node event; returns whether the tree or a head changed."""
        kind = event.get("type")
        node = event.get("node")
        if kind == "block_accepted":
            self._add_block(event, node)
        elif kind == "node_started" and event.get("head"):
            self._set_head(node, event["head"], event.get("height"))
        elif kind == "head_changed":
            self._set_head(node, event["head"], event.get("height"))
        elif kind == "reorg":
            self.reorgs += 1
        elif kind in ("justified", "finalized"):
            target = self.justified if kind == "justified" else self.finalized
            target[node] = {"epoch": event["epoch"], "root": event["root"]}
        elif kind == "lib_advanced":       # DPoS: the LIB, drawn like a finalized checkpoint
            self.finalized[node] = {"epoch": None, "height": event["height"],
                                    "root": event["root"]}
        else:
            return False
        self.version += 1
        return True

    def _add_block(self, event: dict, node: str | None) -> None:
        block_hash = event["hash"]
        ts = event.get("rx_ts", event["ts"])
        block = self.blocks.get(block_hash)
        if block is None:
            producer = event.get("miner", event.get("proposer", event.get("producer")))
            block = TreeBlock(block_hash, event.get("parent"), int(event["height"]), ts,
                              producer=None if producer is None else str(producer),
                              slot=event.get("slot"))
            self.blocks[block_hash] = block
            if block.parent is not None:
                self.children.setdefault(block.parent, []).append(block_hash)
            self._lanes = self._canonical = None
        block.first_seen = min(block.first_seen, ts)
        if node is not None:
            block.seen_by.setdefault(node, ts)

    def _set_head(self, node: str | None, head: str, height: int | None) -> None:
        if node is None:
            return
        self.heads[node] = head
        if height is not None:
            self.head_heights[node] = int(height)
        self._lanes = self._canonical = None

    # ---- reading -------------------------------------------------------------------------------
    def best_head(self) -> str | None:
        """The head most nodes are on; ties go to the greater height, then the greater hash."""
        return choose_head({node: (head, self._height(head)) for node, head in self.heads.items()})

    def _height(self, block_hash: str) -> int:
        block = self.blocks.get(block_hash)
        if block is not None:
            return block.height
        return max((self.head_heights.get(n, -1) for n, h in self.heads.items()
                    if h == block_hash), default=-1)

    def ancestors(self, block_hash: str | None) -> list[str]:
        """The known chain from `block_hash` down (stops at the first block not in the tree)."""
        out = []
        while block_hash is not None and block_hash in self.blocks:
            out.append(block_hash)
            block_hash = self.blocks[block_hash].parent
        return out

    def canonical(self) -> set[str]:
        """Cached with the lanes: both change only when a block arrives or a head moves."""
        if self._canonical is None:
            self._canonical = set(self.ancestors(self.best_head()))
        return self._canonical

    def tips(self) -> list[str]:
        return [h for h in self.blocks if not self.children.get(h)]

    def lanes(self) -> dict[str, int]:
        """Lane per block: 0 for the canonical chain, side branches packed beside it."""
        if self._lanes is None:
            self._lanes = assign_lanes({h: b.parent for h, b in self.blocks.items()},
                                       {h: b.height for h, b in self.blocks.items()},
                                       self.children, self.canonical())
        return self._lanes

    @property
    def max_height(self) -> int:
        return max((b.height for b in self.blocks.values()), default=0)

    def window(self, top: int | None = None, size: int = 120) -> dict:
        """A JSON view of the blocks with height in (top - size, top] (top: the highest block when
        None): what the dashboard draws. Size is capped so a client cannot ask for the world."""
        size = max(1, min(int(size), 2000))
        highest = self.max_height
        top = highest if top is None else max(0, min(int(top), highest))
        bottom = max(0, top - size + 1)
        canonical = self.canonical()
        lanes = self.lanes()
        blocks = [{**b.to_json(), "canonical": b.hash in canonical, "lane": lanes.get(b.hash, 0)}
                  for b in self.blocks.values() if bottom <= b.height <= top]
        blocks.sort(key=lambda b: (b["height"], b["lane"]))
        return {"top": top, "bottom": bottom, "max_height": highest, "blocks": blocks,
                "total_blocks": len(self.blocks),
                "stale_blocks": len(self.blocks) - len(canonical & self.blocks.keys()),
                "heads": dict(self.heads), "head_heights": dict(self.head_heights),
                "best_head": self.best_head(), "justified": dict(self.justified),
                "finalized": dict(self.finalized), "reorgs": self.reorgs,
                "version": self.version}
