"""Fork metrics: how much a run forked, how fast it healed, and who the main chain paid.

`fork_metrics(history)` is a pure function of a run history (docs/history.md) and returns a
JSON-serialisable dict: reorgs per node and by depth, stale blocks against the final main chain,
time to converge after each heal, block propagation delay, time to finality (PoS), and each
miner's main-chain share against its hashrate share. It reads the history the same way the
checkers do (testnet/history/readers.py), so a metric and a verdict never disagree about a head.
"""

from __future__ import annotations

import math
from collections import Counter

from testnet.history.block_tree import choose_head
from testnet.history.chain_index import ChainIndex
from testnet.history.readers import (
    final_status,
    find_convergence,
    get_roles,
    head_timelines,
    heal_times,
    host_ts,
    node_events,
    up_nodes,
)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p% of values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _histogram(depths: list[int]) -> dict[str, int]:
    return {str(d): n for d, n in sorted(Counter(depths).items())}


def reorg_stats(history: list[dict], nodes: list[str]) -> dict:
    reorgs = node_events(history, "reorg")
    per_node = {n: [e["depth"] for e in reorgs if e["node"] == n] for n in nodes}
    depths = [e["depth"] for e in reorgs]
    return {"total": len(depths), "max_depth": max(depths, default=0),
            "depth_distribution": _histogram(depths),
            "per_node": {n: {"count": len(d), "depth_histogram": _histogram(d)}
                         for n, d in per_node.items()}}


def final_head(history: list[dict]) -> tuple[str | None, list[str]]:
    """The head most up nodes end on (ties: greater height, then hash) and the nodes on it.

    Without final_status observations, each node's last reported head stands in."""
    finals = final_status(history)
    if finals:
        ends = {n: (e.get("head"), e.get("height") or 0) for n, e in finals.items() if e.get("up")}
    else:
        ends = {n: (line[-1][1], 0) for n, line in head_timelines(history).items() if line}
    head = choose_head(ends)
    return head, sorted(n for n, (h, _) in ends.items() if h == head)


def _first_main_ancestor(chain: ChainIndex, block: str, main: set[str]) -> str | None:
    """Where `block`'s branch joins the main chain (None if its ancestry is not known that far):
    a walk of the branch's length only."""
    h: str | None = block
    for _ in range(len(chain.parents) + 1):     # bounded: reported links could loop
        if h is None or h in main:
            return h
        h = chain.parents.get(h)
    return None


def block_stats(history: list[dict], chain: ChainIndex) -> tuple[dict, set[str]]:
    """Blocks seen anywhere against blocks on the final main chain; returns the stats and the
    main chain's hashes.

    Nodes keep mining until they are stopped, so blocks built on the final head after the last
    observation are neither main chain nor stale: they are counted apart (`after_final_head`) and
    left out of the stale rate. A block on any other branch is stale, whatever its height."""
    seen = {e["hash"] for e in node_events(history, "block_accepted")}
    head, on_head = final_head(history)
    walk = chain.main_chain(head) if head else []
    main = set(walk)
    bottom = walk[-1] if walk else None
    after = {h for h in seen - main if _first_main_ancestor(chain, h, main) == head}
    stale = sorted(seen - main - after, key=lambda h: (chain.heights.get(h, -1), h))
    decided = len(seen) - len(after)
    return {"seen": len(seen), "main_chain": len(seen & main), "stale": len(stale),
            "stale_rate": len(stale) / decided if decided else None,
            "stale_hashes": stale, "after_final_head": len(after), "final_head": head,
            "final_height": chain.heights.get(head) if head else None, "final_head_nodes": on_head,
            "main_chain_walk_complete": bottom is not None and chain.heights.get(bottom) == 0}, main


def convergence_after_heals(history: list[dict]) -> list[dict]:
    """Per heal: seconds until all up nodes first shared one head, before the next fault (None
    when they did not)."""
    lines = head_timelines(history)
    nodes = up_nodes(history) or sorted(lines)
    applied = sorted(host_ts(e) for e in history if e.get("source") == "nemesis"
                     and e.get("type") == "fault_applied")
    out = []
    for heal in heal_times(history):
        end = min((t for t in applied if t > heal), default=math.inf)
        t, head, _ = find_convergence(lines, nodes, heal, end)
        out.append({"heal_ts": heal, "convergence_s": None if t is None else t - heal,
                    "head": head})
    return out


def skewed_nodes(history: list[dict]) -> set[str]:
    return {n for e in history if e.get("type") == "fault_applied" and e.get("fault") == "skew"
            for n in e.get("nodes") or [e.get("node")] if n}


def propagation(history: list[dict]) -> dict:
    """Per block accepted by every up node: first acceptance to last, on the nodes' own clocks
    (precise on one host); nodes that ever had a skewed clock are left out."""
    skewed = skewed_nodes(history)
    nodes = set(up_nodes(history) or {e["node"] for e in node_events(history, "block_accepted")})
    nodes -= skewed
    first: dict[str, dict[str, float]] = {}
    for e in node_events(history, "block_accepted"):
        if e["node"] in nodes:
            first.setdefault(e["hash"], {}).setdefault(e["node"], e["ts"])
    delays_ms = [(max(t.values()) - min(t.values())) * 1000
                 for t in first.values() if nodes and len(t) == len(nodes)]
    return {"blocks": len(delays_ms), "p50_ms": percentile(delays_ms, 50),
            "p95_ms": percentile(delays_ms, 95), "max_ms": max(delays_ms, default=None),
            "excluded_skewed_nodes": sorted(skewed)}


def time_to_finality(history: list[dict], chain: ChainIndex) -> dict:
    """Per block: first acceptance anywhere to the first finalized checkpoint whose root is the
    block or descends from it (PoS). Empty numbers when nothing was finalized."""
    finals = sorted(node_events(history, "finalized"), key=host_ts)
    born: dict[str, float] = {}
    for e in node_events(history, "block_accepted"):
        born[e["hash"]] = min(host_ts(e), born.get(e["hash"], math.inf))
    finalized_at: dict[str, float] = {}
    for e in finals:
        for h in chain.main_chain(e["root"]):
            if h in finalized_at:
                break  # its ancestors were finalized by then too
            finalized_at[h] = host_ts(e)
    delays = [finalized_at[h] - born[h] for h in born if h in finalized_at]
    return {"checkpoints": len({(e["epoch"], e["root"]) for e in finals}),
            "finalized_blocks": len(delays), "p50_s": percentile(delays, 50),
            "p95_s": percentile(delays, 95), "max_s": max(delays, default=None)}


def miner_shares(history: list[dict], main: set[str], stale: set[str]) -> dict:
    """Per miner (node name via the roles' payout keys): main-chain blocks, block share (= revenue
    share, rewards being equal), stale blocks, and configured hashrate share."""
    roles = get_roles(history)
    name_of = {key: node for node, key in roles.get("payout", {}).items()}
    hashrate = roles.get("hashrate", {})
    total_rate = sum(hashrate.values())
    miner_of = {e["hash"]: name_of.get(e.get("miner"), e.get("miner") or "unknown")
                for e in node_events(history, "block_accepted")}
    won = Counter(m for h, m in miner_of.items() if h in main)
    lost = Counter(m for h, m in miner_of.items() if h in stale)
    total = sum(won.values())
    out = {}
    for m in sorted(set(name_of.values()) | set(hashrate) | set(miner_of.values())):
        share = won[m] / total if total else None
        out[m] = {"main_chain_blocks": won[m], "stale_blocks": lost[m], "block_share": share,
                  "revenue_share": share,
                  "hashrate_share": hashrate[m] / total_rate if m in hashrate and total_rate
                  else None}
    return out


def fork_metrics(history: list[dict]) -> dict:
    chain = ChainIndex(history)
    nodes = sorted({e["node"] for e in history if e.get("source") == "node" and e.get("node")})
    blocks, main = block_stats(history, chain)
    return {"nodes": nodes, "up_nodes": up_nodes(history),
            "reorgs": reorg_stats(history, nodes), "blocks": blocks,
            "convergence": convergence_after_heals(history),
            "propagation": propagation(history),
            "finality": time_to_finality(history, chain),
            "miners": miner_shares(history, main, set(blocks["stale_hashes"]))}
