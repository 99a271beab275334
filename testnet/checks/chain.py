"""Checkers of the chain: did the nodes converge, how deep did they reorganise, is every node's
chain valid. Pure functions of a history (docs/history.md) answering valid / invalid / unknown."""

from __future__ import annotations

from testnet.checks.result import MAX_EVIDENCE_ITEMS, CheckResult, result
from testnet.history.chain_index import ChainIndex
from testnet.history.readers import (
    event_gaps,
    final_status,
    find_convergence,
    get_roles,
    head_at,
    head_timelines,
    is_honest,
    node_events,
    observations,
    reference_time,
    up_nodes,
)

# ---- convergence -----------------------------------------------------------------------------

def converged_within(history: list[dict], seconds: float,
                     after: str | float = "last_heal") -> CheckResult:
    """Within `seconds` of the reference, all up nodes shared one head that each node's final head
    is (or descends from). Evidence has the convergence time."""
    name = "converged_within"
    ref = reference_time(history, after)
    if ref is None:
        return result(name, "unknown", f"no {after} in the history", after=after)
    finals = final_status(history)
    nodes = up_nodes(history)
    if not nodes:
        return result(name, "unknown", "no final_status for any up node", after=after)
    lines = head_timelines(history)
    silent = [n for n in nodes if not lines.get(n)]
    if silent:
        return result(name, "unknown", f"no head events from {', '.join(silent)}", nodes=silent)
    chain = ChainIndex(history)
    final_heads = {n: finals[n].get("head") for n in nodes}

    def under_all_finals(head: str) -> bool | None:
        answers = [chain.is_ancestor(head, final) for final in final_heads.values()]
        return False if False in answers else (None if None in answers else True)

    deadline = ref + seconds
    t, head, undecided = find_convergence(lines, nodes, ref, deadline, under_all_finals)
    evidence = {"reference": after, "reference_ts": ref, "seconds": seconds, "nodes": nodes,
                "final_heads": final_heads}
    if t is not None:
        return result(name, "valid", f"{len(nodes)} nodes converged {t - ref:.3f}s after "
                       f"{after} on {head}", **evidence, converged_ts=t,
                       convergence_s=t - ref, common_head=head)
    heads = {n: head_at(lines[n], deadline) for n in nodes}
    if undecided:
        return result(name, "unknown", "nodes shared a head, but missing blocks hide whether "
                       "it leads to their final heads", **evidence, undecided_heads=undecided,
                       heads_at_deadline=heads)
    return result(name, "invalid", f"no common head within {seconds}s of {after}",
                   **evidence, heads_at_deadline=heads)


# ---- reorgs ----------------------------------------------------------------------------------

def max_reorg_depth(history: list[dict], k: int, honest_only: bool = True) -> CheckResult:
    """No (honest) node reorganised more than k blocks deep."""
    name = "max_reorg_depth"
    roles = get_roles(history)
    judged = sorted({e["node"] for e in history if e.get("source") == "node"
                     and (not honest_only or is_honest(roles, e["node"]))})
    if not judged:
        return result(name, "unknown", "no events from any judged node", k=k,
                       honest_only=honest_only)
    reorgs = [e for e in node_events(history, "reorg") if e["node"] in judged]
    deepest = sorted(reorgs, key=lambda e: (-e["depth"], e["ts"]))[:MAX_EVIDENCE_ITEMS]
    evidence = {"k": k, "honest_only": honest_only, "nodes": judged,
                "max_depth": deepest[0]["depth"] if deepest else 0,
                "deepest": [{"node": e["node"], "depth": e["depth"], "ts": e["ts"],
                             "old_head": e.get("old_head"), "new_head": e.get("new_head")}
                            for e in deepest]}
    too_deep = [e for e in reorgs if e["depth"] > k]
    if too_deep:
        worst = deepest[0]
        return result(name, "invalid", f"{len(too_deep)} reorg(s) deeper than {k}: "
                       f"{worst['node']} reorged {worst['depth']} deep at ts {worst['ts']}",
                       **evidence)
    gaps = event_gaps(history, judged)
    if gaps:
        return result(name, "unknown", f"no reorg deeper than {k} seen, but event streams "
                       f"lost events ({len(gaps)} gap(s))", **evidence, gaps=gaps)
    return result(name, "valid", f"no reorg deeper than {k} (deepest {evidence['max_depth']})",
                   **evidence)


# ---- chain validity --------------------------------------------------------------------------

def chains_valid(history: list[dict]) -> CheckResult:
    """Every chain_check observation (the runner re-validating a node's chain) passed."""
    name = "chains_valid"
    checks = observations(history, "chain_check")
    if not checks:
        return result(name, "unknown", "no chain_check observations")
    bad = [{"node": e["node"], "reason": e.get("reason"), "height": e.get("height")}
           for e in checks if not e.get("valid")]
    if bad:
        first = bad[0]
        return result(name, "invalid", f"{first['node']}'s chain is invalid: {first['reason']}",
                       failures=bad)
    return result(name, "valid", f"{len(checks)} chain check(s) passed",
                   nodes=sorted({e["node"] for e in checks}))
