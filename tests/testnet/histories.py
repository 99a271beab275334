"""A tiny builder for hand-built run histories (docs/history.md), read as the scenario:

    H().node("node0").at(1).block("a1", "g").node("node1").block("a1", "g", peer="node0")
       .at(5).heal().final("node0", "a1").build()

`node(name)` picks the node later events belong to (its first mention emits `node_started` on
genesis "g"); `at(t)` sets the clock; each method also takes `t=` for one entry.
"""

from __future__ import annotations

GENESIS = "g"


class H:
    def __init__(self, consensus: str = "pow") -> None:
        self.consensus = consensus
        self.entries: list[dict] = []
        self.now = 0.0
        self.current: str | None = None
        self.seq: dict[str, int] = {}
        self.heights: dict[str, int] = {GENESIS: 0}
        self.heads: dict[str, str] = {}

    # ---- plumbing ----
    def at(self, t: float) -> H:
        self.now = float(t)
        return self

    def _ts(self, t: float | None) -> float:
        return self.now if t is None else float(t)

    def event(self, type_: str, t: float | None = None, node: str | None = None,
              **fields) -> H:
        node = node or self.current
        assert node, "pick a node first: .node(name)"
        self.seq[node] = self.seq.get(node, 0) + 1
        self.entries.append({"source": "node", "seq": self.seq[node], "type": type_,
                             "node": node, "ts": self._ts(t), **fields})
        return self

    def observe(self, what: str, t: float | None = None, **fields) -> H:
        self.entries.append({"source": "runner", "type": "observation", "what": what,
                             "ts": self._ts(t), **fields})
        return self

    def nemesis(self, type_: str, fault: str, nodes: list[str] | None = None,
                t: float | None = None, **params) -> H:
        self.entries.append({"source": "nemesis", "type": type_, "fault": fault,
                             "nodes": nodes or [], "params": params, "step": 0,
                             "ts": self._ts(t)})
        return self

    def build(self) -> list[dict]:
        return sorted(self.entries, key=lambda e: e["ts"])

    # ---- node events ----
    def node(self, name: str) -> H:
        self.current = name
        if name not in self.seq:
            self.heads[name] = GENESIS
            self.event("node_started", height=0, head=GENESIS, blocks_loaded=0,
                       consensus=self.consensus)
        return self

    def restarted(self, blocks_loaded: int, t: float | None = None) -> H:
        """The current node starts again (after a kill) with `blocks_loaded` stored blocks."""
        head = self.heads.get(self.current, GENESIS)
        return self.event("node_started", t, height=self.heights.get(head, 0), head=head,
                          blocks_loaded=blocks_loaded, consensus=self.consensus)

    def block(self, hash_: str, parent: str, *, miner: str = "k0", main: bool = True,
              peer: str = "local", t: float | None = None) -> H:
        """block_accepted (and head_changed when it became the head)."""
        height = self.heights[parent] + 1
        self.heights[hash_] = height
        self.event("block_accepted", t, hash=hash_, height=height, parent=parent, peer=peer,
                   main_chain=main, txs=1, delay_ms=0.0, miner=miner)
        return self.head(hash_, t=t) if main else self

    def chain(self, *hashes: str, parent: str = GENESIS, step: float = 1.0, **kw) -> H:
        """A run of blocks, each on the previous, `step` seconds apart starting now."""
        for h in hashes:
            self.block(h, parent, **kw)
            parent = h
            self.now += step
        return self

    def head(self, hash_: str, t: float | None = None) -> H:
        previous = self.heads.get(self.current, GENESIS)
        self.heads[self.current] = hash_
        return self.event("head_changed", t, head=hash_, height=self.heights[hash_],
                          total_work=str(self.heights[hash_]), previous=previous)

    def reorg(self, old: str, new: str, depth: int, t: float | None = None,
              common: str = GENESIS, reverted: list[str] | None = None,
              applied: list[str] | None = None) -> H:
        return self.event("reorg", t, depth=depth, old_head=old, new_head=new,
                          common_ancestor=common, common_height=self.heights.get(common, 0),
                          reverted=reverted or [], applied=applied or [])

    def finalized(self, epoch: int, root: str, t: float | None = None) -> H:
        return self.event("finalized", t, epoch=epoch, root=root)

    def justified(self, epoch: int, root: str, t: float | None = None) -> H:
        return self.event("justified", t, epoch=epoch, root=root)

    def slashed(self, validator: int, t: float | None = None) -> H:
        return self.event("slashed", t, validator=validator, reason="double vote", evidence={})

    # ---- nemesis ----
    def partition(self, *groups: list[str], t: float | None = None) -> H:
        """The nodes of each group talk only among themselves; the entry carries the grudge (by
        node index, as the nemesis records it) of nodes named `nodeN`."""
        nodes = [n for g in groups for n in g]
        index = {n: int(n.removeprefix("node")) for n in nodes if n.removeprefix("node").isdigit()}
        grudge = {str(index[a]): sorted(index[b] for g2 in groups if g2 is not g for b in g2
                                        if b in index)
                  for g in groups for a in g if a in index}
        return self.nemesis("fault_applied", "partition", nodes, t, groups=list(groups),
                            grudge={k: v for k, v in grudge.items() if v})

    def heal(self, t: float | None = None) -> H:
        return self.nemesis("fault_cleared", "heal", [], t)

    def echo(self, type_: str, fault: str, t: float | None = None) -> H:
        """What the current node itself logs when the nemesis acts on it (e.g. its `heal`)."""
        return self.event(type_, t, fault=fault)

    # ---- runner observations ----
    def started(self, seed: int = 0, name: str = "test", t: float | None = None) -> H:
        return self.observe("run_started", t, seed=seed, name=name)

    def final(self, node: str, head: str, up: bool = True, t: float | None = None) -> H:
        height = self.heights.get(head)
        return self.observe("final_status", t, node=node, head=head, height=height,
                            total_work=str(height), up=up)

    def roles(self, roles: dict | None = None, hashrate: dict | None = None,
              payout: dict | None = None, t: float | None = None) -> H:
        return self.observe("roles", t, roles=roles or {}, hashrate=hashrate or {},
                            payout=payout or {})

    def tx_sent(self, label: str, txid: str, node: str = "node0", t: float | None = None) -> H:
        return self.observe("tx_sent", t, txid=txid, node=node, label=label)

    def tx_status(self, txid: str, node: str, in_main: bool, confirmations: int = 0,
                  t: float | None = None) -> H:
        return self.observe("tx_status", t, txid=txid, node=node, in_main_chain=in_main,
                            height=1 if in_main else None, confirmations=confirmations)

    def chain_check(self, node: str, valid: bool = True, reason: str = "",
                    t: float | None = None) -> H:
        return self.observe("chain_check", t, node=node, valid=valid, reason=reason, height=0)
