"""Synthetic node events for a big union tree, as the collector receives them from N nodes: a main
chain with a lost side branch every few heights, every block accepted by every node, and a live
fork at the tip. For the dashboard's tests and benchmark, which need thousands of blocks and no
nodes.
"""

from __future__ import annotations

import random

GENESIS = "00" * 32
START_TS = 1_700_000_000.0


class ForkHistory:
    """Builds events for `nodes` nodes; `events` is the history in arrival order."""

    def __init__(self, nodes: int = 16, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.names = [f"node{i}" for i in range(nodes)]
        self.seq = {name: 0 for name in self.names}
        self.events: list[dict] = []
        self.tip = GENESIS
        self.height = 0
        self.ts = START_TS

    def emit(self, node: str, kind: str, ts: float, **data: object) -> dict:
        self.seq[node] += 1
        event = {"source": "node", "node": node, "seq": self.seq[node], "type": kind,
                 "ts": round(ts, 6), "rx_ts": round(ts, 6), **data}
        self.events.append(event)
        return event

    def block(self, parent: str, height: int, seen_by: list[str] | None = None) -> str:
        block_hash = self.rng.getrandbits(256).to_bytes(32, "big").hex()
        miner = self.rng.choice(self.names)
        for k, node in enumerate(seen_by or self.names):
            self.emit(node, "block_accepted", self.ts + (0.002 * k if k else 0.0),
                      hash=block_hash, parent=parent, height=height, miner=miner,
                      peer="local" if node == miner else "peer", main_chain=True)
        return block_hash

    def heads(self, block_hash: str, height: int, nodes: list[str] | None = None) -> None:
        for node in nodes or self.names:
            self.emit(node, "head_changed", self.ts + 0.05, head=block_hash, height=height)

    def extend(self, blocks: int, fork_every: int = 20) -> None:
        """`blocks` more main-chain heights; every `fork_every`th height also gets a losing side
        branch of 1 to 3 blocks that some node followed for a while and then reorged away from."""
        for _ in range(blocks):
            self.ts += 1.0
            parent, self.height = self.tip, self.height + 1
            if self.height % fork_every == 0:
                side, depth = parent, self.rng.choice([1, 1, 2, 3])
                for d in range(depth):
                    side = self.block(side, self.height + d)
                node = self.rng.choice(self.names)
                self.emit(node, "reorg", self.ts + 0.1, depth=depth, old_head=side,
                          new_head="pending", common_ancestor=parent,
                          common_height=self.height - 1, reverted=[], applied=[])
            self.tip = self.block(parent, self.height)
            self.heads(self.tip, self.height)

    def live_fork(self, nodes: int, depth: int = 3) -> None:
        """The last `nodes` nodes move onto a branch of `depth` blocks off the tip's parent."""
        followers = self.names[-nodes:]
        side = self.events[-1]["head"]
        parent = next(e["parent"] for e in reversed(self.events)
                      if e["type"] == "block_accepted" and e["hash"] == side)
        height = self.height
        for d in range(depth):
            self.ts += 0.3
            parent = self.block(parent, height + d, followers)
        self.heads(parent, height + depth - 1, followers)


def fork_history(nodes: int = 16, blocks: int = 3000, fork_every: int = 20, live_fork: int = 4,
                 seed: int = 7) -> list[dict]:
    history = ForkHistory(nodes, seed)
    history.extend(blocks, fork_every)
    if live_fork:
        history.live_fork(live_fork)
    return history.events
