"""Checkers of finality (PoS and hybrid): no conflicting finalized checkpoints, no finalized block
reverted, finality that resumes after a fault, finality during a partition (or not, on a side
without 2/3), slashing that reaches every node. Pure functions of a history answering valid /
invalid / unknown."""

from __future__ import annotations

import math

from testnet.checks.result import MAX_EVIDENCE_ITEMS, CheckResult, result
from testnet.history.chain_index import ChainIndex
from testnet.history.readers import (
    final_status,
    heal_times,
    host_ts,
    node_events,
    reference_time,
    up_nodes,
)


def _checkpoints(history: list[dict]) -> dict[tuple[int, str], list[str]]:
    found: dict[tuple[int, str], list[str]] = {}
    for e in node_events(history, "finalized"):
        nodes = found.setdefault((e["epoch"], e["root"]), [])
        if e["node"] not in nodes:
            nodes.append(e["node"])
    return found


def _conflict(chain: ChainIndex, a: tuple[int, str], b: tuple[int, str]) -> bool | None:
    """Do two finalized checkpoints conflict? (a has the lower or equal epoch.)"""
    if a[0] == b[0]:
        return a[1] != b[1]
    ok = chain.is_ancestor(a[1], b[1])
    return None if ok is None else not ok


def no_conflicting_finality(history: list[dict]) -> CheckResult:
    """No two finalized checkpoints conflict: one epoch has one root, and every finalized root is
    an ancestor (or equal) of every later-epoch finalized root."""
    name = "no_conflicting_finality"
    explain = {"slashed": [e for e in history if "slashed" in str(e.get("type", ""))],
               "leaks": [e for e in history if "leak" in str(e.get("type", ""))]}
    checkpoints = _checkpoints(history)
    if not checkpoints:
        return result(name, "unknown", "no finalized checkpoints", **explain)
    chain = ChainIndex(history)
    ordered = sorted(checkpoints)
    undecided = []
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            conflict = _conflict(chain, a, b)
            if conflict:
                pair = [{"epoch": c[0], "root": c[1], "nodes": checkpoints[c]} for c in (a, b)]
                kind = "same epoch" if a[0] == b[0] else "not an ancestor"
                return result(name, "invalid", f"conflicting finality ({kind}): epoch {a[0]} "
                               f"root {a[1]} on {checkpoints[a]} vs epoch {b[0]} root "
                               f"{b[1]} on {checkpoints[b]}", conflict=pair, kind=kind, **explain)
            if conflict is None:
                undecided.append([{"epoch": c[0], "root": c[1]} for c in (a, b)])
    summary = {"checkpoints": len(ordered), "highest_epoch": ordered[-1][0]}
    if undecided:
        return result(name, "unknown", f"{len(undecided)} pair(s) of finalized checkpoints "
                       "can't be ordered: blocks between them were never reported",
                       undecided=undecided[:MAX_EVIDENCE_ITEMS], **summary, **explain)
    return result(name, "valid", f"{len(ordered)} finalized checkpoints form one chain",
                   **summary, **explain)


def no_finalized_block_reverted(history: list[dict]) -> CheckResult:
    """No node reverted a block it had finalized: none of its reorgs, after it finalized a
    checkpoint, reverted that checkpoint's block or an ancestor of it, and every up node's final
    head descends from the last checkpoint it finalized. (A heavier branch that would have
    crossed finality is refused: `reorg_refused` events, counted in the evidence.)"""
    name = "no_finalized_block_reverted"
    finals: dict[str, list[dict]] = {}
    for e in node_events(history, "finalized"):
        finals.setdefault(e["node"], []).append(e)
    if not finals:
        return result(name, "unknown", "no finalized checkpoints")
    chain = ChainIndex(history)
    refused = len(node_events(history, "reorg_refused"))
    reverted, undecided = [], 0

    def last_finalized(node: str, before_seq: int | None) -> dict | None:
        done = [f for f in finals.get(node, []) if before_seq is None or f["seq"] < before_seq]
        return max(done, key=lambda f: f["epoch"], default=None)
    for reorg in node_events(history, "reorg"):
        point = last_finalized(reorg["node"], reorg.get("seq"))
        if point is None:
            continue
        for block in reorg.get("reverted") or []:
            answer = chain.is_ancestor(block, point["root"])
            if answer:
                reverted.append({"node": reorg["node"], "block": block, "ts": reorg["ts"],
                                 "finalized_epoch": point["epoch"], "root": point["root"]})
            elif answer is None:
                undecided += 1
    for node, end in final_status(history).items():
        point = last_finalized(node, None)
        if not end.get("up") or point is None or not end.get("head"):
            continue
        answer = chain.is_ancestor(point["root"], end["head"])
        if answer is False:
            reverted.append({"node": node, "block": point["root"], "final_head": end["head"],
                             "finalized_epoch": point["epoch"]})
        elif answer is None:
            undecided += 1
    evidence = {"nodes": sorted(finals), "refused_reorgs": refused}
    if reverted:
        first = reverted[0]
        return result(name, "invalid", f"{first['node']} reverted block {first['block']} after "
                       f"finalizing epoch {first['finalized_epoch']}",
                       reverted=reverted[:MAX_EVIDENCE_ITEMS], **evidence)
    if undecided:
        return result(name, "unknown", f"{undecided} reverted block(s) or final head(s) can't be "
                       "placed against the finalized checkpoints: blocks were never reported",
                       **evidence)
    return result(name, "valid", f"no node reverted a finalized block ({len(finals)} nodes "
                   f"finalized; {refused} heavier branch(es) refused)", **evidence)


def finality_resumed_within(history: list[dict], seconds: float,
                            after: str | float = "last_heal") -> CheckResult:
    """Within `seconds` of the reference, every up node finalized an epoch higher than any
    finalized (anywhere) before it."""
    name = "finality_resumed_within"
    ref = reference_time(history, after)
    if ref is None:
        return result(name, "unknown", f"no {after} in the history", after=after)
    finals = node_events(history, "finalized")
    before = [e["epoch"] for e in finals if host_ts(e) <= ref]
    if not before:
        return result(name, "unknown", f"no finality before {after}", reference_ts=ref)
    nodes = up_nodes(history)
    if not nodes:
        return result(name, "unknown", "no final_status for any up node", reference_ts=ref)
    floor, deadline = max(before), ref + seconds
    resumed: dict[str, float] = {}
    for e in sorted(finals, key=host_ts):
        t = host_ts(e)
        if e["node"] in nodes and e["epoch"] > floor and ref < t <= deadline:
            resumed.setdefault(e["node"], t - ref)
    missing = [n for n in nodes if n not in resumed]
    evidence = {"reference": after, "reference_ts": ref, "seconds": seconds,
                "finalized_epoch_before": floor, "resumed_after_s": resumed}
    if missing:
        return result(name, "invalid", f"no finality past epoch {floor} within {seconds}s on "
                       f"{', '.join(missing)}", **evidence, missing=missing)
    return result(name, "valid", f"all {len(nodes)} up nodes finalized past epoch {floor} "
                   f"within {max(resumed.values()):.3f}s", **evidence)


def _partition_window(history: list[dict]) -> tuple[float, float] | None:
    """(start, end) of the last partition that was healed (end = inf when still standing)."""
    starts = [host_ts(e) for e in history if e.get("source") == "nemesis"
              and e.get("type") == "fault_applied" and e.get("fault") == "partition"]
    if not starts:
        return None
    start = max(starts)
    ends = [t for t in heal_times(history) if t > start]
    return start, (min(ends) if ends else math.inf)


def _new_finality(history: list[dict], nodes: list[str], window: tuple[float, float]
                  ) -> dict[str, list[dict]]:
    """Per node, `finalized` events inside the window for epochs that began after it opened."""
    start, end = window
    out: dict[str, list[dict]] = {n: [] for n in nodes}
    for e in node_events(history, "finalized"):
        if e["node"] in out and start < host_ts(e) < end and e.get("epoch_start_ts", 0) >= start:
            out[e["node"]].append(e)
    return out


def finality_during_partition(history: list[dict], nodes: list[str] | None = None,
                              expect: bool = True) -> CheckResult:
    """Did these nodes finalize a checkpoint of an epoch that began after the last partition
    started, before it healed? `expect` False asks that they did not (a side without 2/3)."""
    name = "finality_during_partition" if expect else "no_finality_during_partition"
    window = _partition_window(history)
    if window is None:
        return result(name, "unknown", "no partition in this history")
    judged = nodes or sorted({e["node"] for e in history if e.get("source") == "node"})
    if expect:
        # Keeps finalizing: finalizes epochs beyond what it had finalized when the split began
        # (the first may have started just before the split: its votes came after).
        before = {n: -1 for n in judged}
        found = {n: [] for n in judged}
        for e in node_events(history, "finalized"):
            if e["node"] not in before:
                continue
            t = host_ts(e)
            if t <= window[0]:
                before[e["node"]] = max(before[e["node"]], e["epoch"])
            elif t < window[1] and e["epoch"] > before[e["node"]]:
                found[e["node"]].append(e)
    else:
        found = _new_finality(history, judged, window)
    finalized = {n: [e["epoch"] for e in evs] for n, evs in found.items() if evs}
    if expect:
        missing = [n for n in judged if n not in finalized]
        if missing:
            return result(name, "invalid", f"{', '.join(missing)} finalized nothing new during "
                           "the partition", finalized=finalized)
        return result(name, "valid", f"{', '.join(judged)} kept finalizing during the partition "
                       f"(epochs {finalized})", finalized=finalized)
    if finalized:
        return result(name, "invalid", f"finality during the partition on "
                       f"{', '.join(finalized)}: epochs {finalized}", finalized=finalized)
    return result(name, "valid", f"no new checkpoint finalized on {', '.join(judged)} while "
                   "partitioned")


def slashed_everywhere(history: list[dict], validator: int, within_s: float) -> CheckResult:
    """Every up node reports `validator` slashed within `within_s` of the role fault that made
    it misbehave (or of the run start when there is none)."""
    name = "slashed_everywhere"
    faults = [host_ts(e) for e in history if e.get("source") == "nemesis" and e.get("fault") ==
              "role" and e.get("params", {}).get("validator") == validator]
    start = min(faults) if faults else min((host_ts(e) for e in history), default=0.0)
    nodes = up_nodes(history)
    if not nodes:
        return result(name, "unknown", "no final status of the nodes")
    first: dict[str, float] = {}
    for e in node_events(history, "slashed"):
        if e.get("validator") == validator and e["node"] in nodes:
            first.setdefault(e["node"], host_ts(e) - start)
    late = {n: round(t, 1) for n, t in first.items() if t > within_s}
    missing = [n for n in nodes if n not in first]
    if missing or late:
        return result(name, "invalid", f"validator {validator} not slashed within {within_s} s "
                       f"on {', '.join(missing + list(late))}", seconds=first)
    return result(name, "valid", f"validator {validator} slashed on all {len(nodes)} nodes "
                   f"within {max(first.values()):.1f} s", seconds=first)
