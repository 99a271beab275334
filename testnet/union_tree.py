"""The union block tree of a cluster: every block any node reported, who saw it when, where each
node's head is, and which checkpoints each node justified and finalized.

It is built from node events alone (block_accepted, head_changed, justified, finalized), so it
works the same live (fed by the collector) and after the fact (fed a history). Pure: no I/O.

The *canonical* chain is the chain to the head most nodes are on (ties: greater height, then the
hash); every block off it is *stale* — a losing branch, greyed in the dashboard. Branches get
lanes for drawing side by side: lane 0 is the canonical chain, and each side branch takes the
lowest lane free over its height range, so a partition's two branches sit next to each other.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class TreeBlock:
    hash: str
    parent: str | None
    height: int
    first_seen: float                       # host-receive or node time of the first report
    seen_by: dict[str, float] = field(default_factory=dict)
    producer: str | None = None             # PoW payout key or PoS proposer index
    slot: int | None = None

    def to_json(self) -> dict:
        out = {"hash": self.hash, "parent": self.parent, "height": self.height,
               "first_seen": self.first_seen, "seen_by": self.seen_by}
        if self.producer is not None:
            out["producer"] = self.producer
        if self.slot is not None:
            out["slot"] = self.slot
        return out


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
        else:
            return False
        self.version += 1
        return True

    def _add_block(self, event: dict, node: str | None) -> None:
        block_hash = event["hash"]
        ts = event.get("rx_ts", event["ts"])
        block = self.blocks.get(block_hash)
        if block is None:
            producer = event.get("miner", event.get("proposer"))
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
        if not self.heads:
            return None
        votes = Counter(self.heads.values())
        return max(votes, key=lambda h: (votes[h], self._height(h), h))

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
        if self._lanes is not None:
            return self._lanes
        canonical = self.canonical()
        lanes = {h: 0 for h in canonical}
        occupied: dict[int, list[tuple[int, int]]] = {0: []}
        # Longest side branches first, so the deep forks get the lanes nearest the main chain.
        branches = []
        for tip in self.tips():
            chain = []
            h: str | None = tip
            while h is not None and h in self.blocks and h not in lanes:
                chain.append(h)    # walk down only to where the branch leaves the main chain
                h = self.blocks[h].parent
            if chain:
                branches.append(chain)
        branches.sort(key=lambda c: (-len(c), self.blocks[c[-1]].height if c else 0))
        for chain in branches:
            chain = [h for h in chain if h not in lanes]
            if not chain:
                continue
            low = self.blocks[chain[-1]].height
            high = self.blocks[chain[0]].height
            lane = 1
            while any(not (high < a or low > b) for a, b in occupied.get(lane, [])):
                lane += 1
            occupied.setdefault(lane, []).append((low, high))
            for h in chain:
                lanes[h] = lane
        self._lanes = lanes
        return lanes

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
