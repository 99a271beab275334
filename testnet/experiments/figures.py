"""One row of an experiment's runs table: the figures of one finished run.

`run_row(...)` reads a run's history and its fork metrics (testnet/checks/fork_metrics.py, the
same numbers the run's own report shows) and adds what an experiment compares across
consensuses. Definitions (docs/experiments.md says the same for readers):

- confirm_s_p50/p95: a transfer from submission (`tx_sent`) until it is k-deep on every up node
  (PoW, k = CONFIRM_DEPTH, default 6: the main-chain block k-1 above its block was accepted by
  the last up node) or until a finalized checkpoint / irreversible block covers its block on every
  up node (PoS, hybrid, DPoS). Only transfers seen in the main chain at the end count.
- nakamoto_coefficient: the fewest producers whose weight reaches the threshold -- 1/2 of the
  main-chain blocks for PoW (a majority rewrites history), 1/3 of the stake (PoS, hybrid) or of the
  producers (DPoS): a third can stop finality.
- energy_j_per_block_est: CPU seconds x WATTS_PER_CORE, plus for PoW/hybrid the hashes the
  miners' hashrates imply x JOULES_PER_HASH (an ASIC-era miner), per main-chain block; both
  constants are recorded in the experiment plan and overridable.
- gamma: of the heights where an attacker's block and an honest block competed, the share the
  attacker's branch won. The history does not say when a withheld block was published, so this
  also counts overrides from a lead of 2 or more, which the attacker always wins: an upper bound
  on Eyal-Sirer's gamma (the 1-1 tie races alone), not the gamma itself.
Pure: a function of files a run leaves behind.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from testnet.checks.finality import no_conflicting_finality, no_finalized_block_reverted
from testnet.checks.fork_metrics import percentile
from testnet.checks.irreversibility import no_conflicting_lib, no_irreversible_block_reverted
from testnet.history.chain_index import ChainIndex
from testnet.history.readers import get_roles, host_ts, node_events, observations, up_nodes

CONFIRM_DEPTH = 6
WATTS_PER_CORE = 10.0           # a busy server core, W (order of magnitude)
JOULES_PER_HASH = 1.75e-11      # ~17.5 J/TH: an ASIC-era SHA-256 miner
POW_THRESHOLD = Fraction(1, 2)
BFT_THRESHOLD = Fraction(1, 3)

COLUMNS = ["consensus", "scenario", "point", "run", "seed", "backend", "nodes", "passed",
           "duration_s", "blocks", "main_chain_blocks", "stale_rate", "reorgs",
           "max_reorg_depth", "confirm_s_p50", "confirm_s_p95", "finality_s_p50", "tx_per_s",
           "cpu_s_per_block", "energy_j_per_block_est", "nakamoto_coefficient",
           "safety_violations", "liveness_stall_s", "attacker_revenue_share",
           "double_spend_succeeded", "slashed_stake", "propagation_ms_p50", "gamma",
           "block_interval_s", "epoch_s", "report"]
# Figures summarised per consensus and point (summary.csv, the page); the rest describe the run.
FIGURES = ["duration_s", "blocks", "main_chain_blocks", "stale_rate", "reorgs", "max_reorg_depth",
           "confirm_s_p50", "confirm_s_p95", "finality_s_p50", "tx_per_s", "cpu_s_per_block",
           "energy_j_per_block_est", "nakamoto_coefficient", "safety_violations",
           "liveness_stall_s", "attacker_revenue_share", "double_spend_succeeded",
           "slashed_stake", "propagation_ms_p50", "gamma"]


def nakamoto_coefficient(weights: list[float], threshold: Fraction | float) -> int | None:
    """The fewest holders whose weights reach `threshold` of the total."""
    total = sum(weights)
    if total <= 0:
        return None
    acc = 0.0
    for count, w in enumerate(sorted(weights, reverse=True), start=1):
        acc += w
        if acc >= float(threshold) * total - 1e-12:
            return count
    return len(weights)


def run_window(history: list[dict]) -> tuple[float, float]:
    start = min((e["ts"] for e in observations(history, "run_started")),
                default=min(host_ts(e) for e in history))
    end = max((e["ts"] for e in observations(history, "final_status")),
              default=max(host_ts(e) for e in history))
    return start, end


def main_chain_times(history: list[dict], main: list[str], nodes: list[str]
                     ) -> dict[str, float]:
    """Per main-chain block: when the last of `nodes` accepted it."""
    wanted, seen = set(main), {}
    for e in node_events(history, "block_accepted"):
        if e["hash"] in wanted and e["node"] in nodes:
            seen.setdefault(e["hash"], {})[e["node"]] = min(
                host_ts(e), seen.get(e["hash"], {}).get(e["node"], math.inf))
    return {h: max(by.values()) for h, by in seen.items() if set(by) >= set(nodes)}


def final_at(history: list[dict], chain: ChainIndex, nodes: list[str], event: str
             ) -> dict[str, float]:
    """Per block: when the last of `nodes` saw it covered by a `finalized` / `lib_advanced`
    root."""
    per_node: dict[str, dict[str, float]] = {}
    for e in sorted(node_events(history, event), key=host_ts):
        if e["node"] not in nodes:
            continue
        mine = per_node.setdefault(e["node"], {})
        for h in chain.main_chain(e["root"]):
            if h in mine:
                break
            mine[h] = host_ts(e)
    if len(per_node) < len(nodes):
        return {}
    common = set.intersection(*(set(m) for m in per_node.values())) if per_node else set()
    return {h: max(m[h] for m in per_node.values()) for h in common}


def confirm_times(history: list[dict], chain: ChainIndex, main: list[str], consensus: str,
                  k: int = CONFIRM_DEPTH) -> list[float]:
    nodes = up_nodes(history)
    sent = {e["txid"]: e["ts"] for e in observations(history, "tx_sent")}
    block_of: dict[str, str] = {}
    for e in observations(history, "tx_status"):
        if e.get("in_main_chain") and e.get("block"):
            block_of[e["txid"]] = e["block"]
    order = list(reversed(main))      # genesis first
    index = {h: i for i, h in enumerate(order)}
    if consensus == "pow":
        accepted = main_chain_times(history, main, nodes)
        done = {}
        for h, i in index.items():
            deep = order[i + k - 1] if i + k - 1 < len(order) else None
            if deep in accepted:
                done[h] = accepted[deep]
    else:
        event = "lib_advanced" if consensus == "dpos" else "finalized"
        done = final_at(history, chain, nodes, event)
    return [done[b] - sent[t] for t, b in block_of.items() if t in sent and b in done]


def longest_stall_s(times: list[float], start: float, end: float) -> float | None:
    points = sorted([start, *[t for t in times if start <= t <= end], end])
    return round(max(b - a for a, b in zip(points, points[1:])), 2) if len(points) > 1 else None


def safety_violations(history: list[dict], consensus: str) -> int | None:
    if consensus == "pow":
        return None
    checks = ((no_conflicting_lib, no_irreversible_block_reverted) if consensus == "dpos"
              else (no_conflicting_finality, no_finalized_block_reverted))
    return sum(1 for check in checks if check(history).verdict == "invalid")


def tie_races(history: list[dict], main: set[str], attackers: set[str]) -> float | None:
    """Eyal-Sirer's gamma as measured: of the honest blocks built on a tie -- a height where an
    attacker's block and an honest block both exist -- the share built on the attacker's block,
    i.e. the honest hashrate that mined on the attacker's branch during a race. (Counting the
    races the attacker's branch won would also count its overrides from a lead of 2 or more,
    which it always wins.) `main` is unused: who won does not enter the definition."""
    payout = get_roles(history).get("payout", {})
    name_of = {key: node for node, key in payout.items()}
    miner: dict[str, str | None] = {}
    parent: dict[str, str] = {}
    by_height: dict[int, set[str]] = {}
    for e in node_events(history, "block_accepted"):
        miner[e["hash"]] = name_of.get(e.get("miner"), e.get("miner"))
        if e.get("parent"):
            parent[e["hash"]] = e["parent"]
        if e.get("height") is not None:
            by_height.setdefault(e["height"], set()).add(e["hash"])
    contested = {h for blocks in by_height.values()
                 if {miner[b] in attackers for b in blocks} == {True, False} for h in blocks}
    on_attacker = on_honest = 0
    for block, up in parent.items():
        if up in contested and miner[block] not in attackers:
            if miner[up] in attackers:
                on_attacker += 1
            else:
                on_honest += 1
    races = on_attacker + on_honest
    return on_attacker / races if races else None


def double_spend_outcome(history: list[dict], roles: dict, reversed_checks: list[dict]
                         ) -> float | None:
    """1.0 when the double spend reversed the payment, 0.0 when it did not, None without one.

    After a `race` step: whether the payment is off the main chain of every honest node that
    answered at the end (the attacker's own view does not count); None when the attacker did not
    start the race with exactly one pre-mined block, as Rosenfeld's model has it (a block found
    between the scenario's steps). Otherwise the scenario's `tx_reversed` check says it."""
    started = observations(history, "race_started")
    if started:
        if started[-1].get("premined") != 1:
            return None   # not a trial of Rosenfeld's model (one pre-mined block)
        txid = started[-1].get("txid")
        honest = {n for n, r in (roles.get("roles") or {}).items() if r == "honest"}
        final = {e["node"]: e for e in observations(history, "tx_status")
                 if e.get("txid") == txid and e.get("node") in honest}
        if not final:
            return None
        return float(not any(e.get("in_main_chain") for e in final.values()))
    if reversed_checks:
        return float(reversed_checks[0].get("passed", False))
    return None


def run_row(*, history: list[dict], metrics: dict, manifest: Any, consensus: str, scenario: str,
            point: str, params: dict, run: int, seed: int, backend: str, passed: bool,
            cpu_s: float | None, report: str, checks: list[dict],
            watts_per_core: float = WATTS_PER_CORE,
            joules_per_hash: float = JOULES_PER_HASH) -> dict:
    """The row of one finished run (COLUMNS plus the point's parameters)."""
    chain = ChainIndex(history)
    blocks = metrics.get("blocks") or {}
    head = blocks.get("final_head")
    main = chain.main_chain(head) if head else []
    main_blocks = max(len(main) - 1, 0)          # genesis is no one's block
    start, end = run_window(history)
    duration = max(end - start, 1e-9)
    confirms = confirm_times(history, chain, main, consensus)
    roles = get_roles(history)
    attackers = {n for n, r in (roles.get("roles") or {}).items() if r != "honest"}
    miners = metrics.get("miners") or {}
    hashrate = roles.get("hashrate") or {}
    if consensus == "pow":
        weights = [float(m.get("main_chain_blocks") or 0) for m in miners.values()]
        threshold = POW_THRESHOLD
    elif consensus == "dpos":
        count = manifest.producers or manifest.nodes
        weights, threshold = [1.0] * count, BFT_THRESHOLD
    else:
        weights = [float(manifest.node_validators(i)) for i in range(manifest.nodes)]
        threshold = BFT_THRESHOLD
    in_main = set(main)
    txs = sum(max(e.get("txs", 0) - (1 if manifest.has_mining else 0), 0)
              for e in {e["hash"]: e for e in node_events(history, "block_accepted")}.values()
              if e["hash"] in in_main)
    progress_event = {"pow": "block_accepted", "dpos": "lib_advanced"}.get(consensus,
                                                                          "finalized")
    progress = [host_ts(e) for e in node_events(history, progress_event)
                if consensus != "pow" or e["hash"] in in_main]
    hashes = sum(hashrate.values()) * duration if manifest.has_mining else 0.0
    energy = None
    if cpu_s is not None and main_blocks:
        energy = (cpu_s * watts_per_core + hashes * joules_per_hash) / main_blocks
    slashed = {e.get("validator") for e in node_events(history, "slashed")}
    reversed_checks = [c for c in checks if c.get("name") == "tx_reversed"]
    finality = metrics.get("finality") or {}
    row = {
        "consensus": consensus, "scenario": scenario, "point": point, **params, "run": run,
        "seed": seed, "backend": backend, "nodes": manifest.nodes, "passed": passed,
        "duration_s": round(duration, 2), "blocks": blocks.get("seen"),
        "main_chain_blocks": main_blocks, "stale_rate": blocks.get("stale_rate"),
        "reorgs": (metrics.get("reorgs") or {}).get("total"),
        "max_reorg_depth": (metrics.get("reorgs") or {}).get("max_depth"),
        "confirm_s_p50": _round(percentile(confirms, 50)),
        "confirm_s_p95": _round(percentile(confirms, 95)),
        "finality_s_p50": finality_s_p50(history, chain, consensus, finality),
        "tx_per_s": round(txs / duration, 3),
        "cpu_s_per_block": _round(cpu_s / main_blocks) if cpu_s is not None and main_blocks
        else None,
        "energy_j_per_block_est": _round(energy),
        "nakamoto_coefficient": nakamoto_coefficient(weights, threshold),
        "safety_violations": safety_violations(history, consensus),
        "liveness_stall_s": longest_stall_s(progress, start, end),
        "attacker_revenue_share": _round(sum(miners[a]["revenue_share"] or 0 for a in attackers
                                             if a in miners)) if attackers and miners else None,
        "double_spend_succeeded": double_spend_outcome(history, roles, reversed_checks),
        "slashed_stake": len(slashed) * manifest.stake if slashed else 0,
        "propagation_ms_p50": _round((metrics.get("propagation") or {}).get("p50_ms")),
        "gamma": _round(tie_races(history, in_main, attackers)) if attackers else None,
        "block_interval_s": manifest.block_interval_s, "epoch_s": epoch_seconds(manifest),
        "report": report,
    }
    return row


def finality_s_p50(history: list[dict], chain: ChainIndex, consensus: str, finality: dict
                   ) -> float | None:
    """Block first accepted -> finalized: fork metrics' figure for PoS and hybrid; for DPoS the
    same from the first `lib_advanced` covering the block (on any node); none for PoW."""
    if consensus == "pow":
        return None
    if consensus != "dpos":
        return _round(finality.get("p50_s"))
    born: dict[str, float] = {}
    for e in node_events(history, "block_accepted"):
        born[e["hash"]] = min(host_ts(e), born.get(e["hash"], math.inf))
    final: dict[str, float] = {}
    for e in sorted(node_events(history, "lib_advanced"), key=host_ts):
        for h in chain.main_chain(e["root"]):
            if h in final:
                break
            final[h] = host_ts(e)
    return _round(percentile([final[h] - born[h] for h in born if h in final], 50))


def epoch_seconds(manifest: Any) -> float | None:
    """How long an epoch lasts: slots x slot time (PoS), blocks x block interval (hybrid)."""
    if manifest.has_producers:
        return None
    if not manifest.has_mining:
        return manifest.slots_per_epoch * manifest.slot_duration_ms / 1000
    if manifest.has_validators:
        return float(manifest.epoch_length * manifest.block_interval_s)
    return None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)
