"""Checkers of DPoS irreversibility, from the nodes' `lib_advanced` events (height, root, the
LIB block's slot start): no two nodes' LIBs conflict, no node reverts an irreversible block, the
LIB advances (or stalls, on a side without more than 2/3 of the producers) during a partition,
and resumes after a heal. Pure functions of a history answering valid / invalid / unknown, like
the finality checkers (testnet/checks/finality.py) whose window and ancestry they share. And
one of production: after a new schedule took effect, (almost) no slot stays empty."""

from __future__ import annotations

from testnet.checks.finality import _partition_window
from testnet.checks.result import MAX_EVIDENCE_ITEMS, CheckResult, result
from testnet.history.chain_index import ChainIndex
from testnet.history.readers import final_status, host_ts, node_events, reference_time, up_nodes


def _libs(history: list[dict]) -> dict[tuple[int, str], list[str]]:
    found: dict[tuple[int, str], list[str]] = {}
    for e in node_events(history, "lib_advanced"):
        nodes = found.setdefault((e["height"], e["root"]), [])
        if e["node"] not in nodes:
            nodes.append(e["node"])
    return found


def no_conflicting_lib(history: list[dict]) -> CheckResult:
    """One root per LIB height, and every LIB an ancestor (or equal) of every higher one."""
    name = "no_conflicting_lib"
    libs = _libs(history)
    if not libs:
        return result(name, "unknown", "no lib_advanced events")
    chain = ChainIndex(history)
    ordered = sorted(libs)
    undecided = 0
    for i, a in enumerate(ordered):
        # neighbours suffice: ancestry is transitive along the sorted LIBs
        for b in ordered[i + 1:i + 2]:
            conflict = a[1] != b[1] if a[0] == b[0] else (
                None if chain.is_ancestor(a[1], b[1]) is None
                else not chain.is_ancestor(a[1], b[1]))
            if conflict:
                pair = [{"height": c[0], "root": c[1], "nodes": libs[c]} for c in (a, b)]
                return result(name, "invalid", f"conflicting LIBs: height {a[0]} root {a[1]} on "
                               f"{libs[a]} vs height {b[0]} root {b[1]} on {libs[b]}",
                               conflict=pair)
            if conflict is None:
                undecided += 1
    summary = {"libs": len(ordered), "highest": ordered[-1][0]}
    if undecided:
        return result(name, "unknown", f"{undecided} pair(s) of LIBs can't be ordered: blocks "
                       "between them were never reported", **summary)
    return result(name, "valid", f"{len(ordered)} LIBs form one chain", **summary)


def no_irreversible_block_reverted(history: list[dict]) -> CheckResult:
    """No reorg of a node reverted its LIB block or an ancestor of it, and every up node's final
    head descends from its last LIB."""
    name = "no_irreversible_block_reverted"
    libs: dict[str, list[dict]] = {}
    for e in node_events(history, "lib_advanced"):
        libs.setdefault(e["node"], []).append(e)
    if not libs:
        return result(name, "unknown", "no lib_advanced events")
    chain = ChainIndex(history)
    reverted, undecided = [], 0

    def last_lib(node: str, before_seq: int | None) -> dict | None:
        done = [x for x in libs.get(node, []) if before_seq is None or x["seq"] < before_seq]
        return max(done, key=lambda x: x["height"], default=None)
    for reorg in node_events(history, "reorg"):
        point = last_lib(reorg["node"], reorg.get("seq"))
        for block in (reorg.get("reverted") or []) if point else []:
            answer = chain.is_ancestor(block, point["root"])
            if answer:
                reverted.append({"node": reorg["node"], "block": block, "lib": point["height"]})
            undecided += answer is None
    for node, end in final_status(history).items():
        point = last_lib(node, None)
        if end.get("up") and point is not None and end.get("head"):
            answer = chain.is_ancestor(point["root"], end["head"])
            if answer is False:
                reverted.append({"node": node, "block": point["root"], "final_head": end["head"]})
            undecided += answer is None
    if reverted:
        first = reverted[0]
        return result(name, "invalid", f"{first['node']} reverted irreversible block "
                       f"{first['block']}", reverted=reverted[:MAX_EVIDENCE_ITEMS])
    if undecided:
        return result(name, "unknown", f"{undecided} reverted block(s) or final head(s) can't be "
                       "placed against the LIBs: blocks were never reported")
    return result(name, "valid", f"no node reverted an irreversible block ({len(libs)} nodes)")


def lib_during_partition(history: list[dict], nodes: list[str] | None = None,
                         expect: bool = True) -> CheckResult:
    """Did these nodes make a block irreversible that was produced after the last partition
    began, before it healed? `expect` False asks that they did not (a side without > 2/3)."""
    name = "lib_advanced_during_partition" if expect else "lib_stalled_during_partition"
    window = _partition_window(history)
    if window is None:
        return result(name, "unknown", "no partition in this history")
    start, end = window
    judged = nodes or sorted({e["node"] for e in history if e.get("source") == "node"})
    found: dict[str, list[int]] = {n: [] for n in judged}
    for e in node_events(history, "lib_advanced"):
        if e["node"] in found and start < host_ts(e) < end and e.get("slot_start_ts", 0) > start:
            found[e["node"]].append(e["height"])
    advanced = {n: [min(h), max(h)] for n, h in found.items() if h}
    if expect:
        missing = [n for n in judged if n not in advanced]
        if missing:
            return result(name, "invalid", f"{', '.join(missing)}: no block produced during the "
                           "partition became irreversible", advanced=advanced)
        return result(name, "valid", f"{', '.join(judged)} kept advancing the LIB during the "
                       f"partition (heights {advanced})", advanced=advanced)
    if advanced:
        return result(name, "invalid", f"LIB advanced during the partition on "
                       f"{', '.join(advanced)}: heights {advanced}", advanced=advanced)
    return result(name, "valid", f"no block produced during the partition became irreversible "
                   f"on {', '.join(judged)}")


def lib_resumed_within(history: list[dict], seconds: float,
                       after: str | float = "last_heal") -> CheckResult:
    """Within `seconds` of the reference, every up node's LIB passed the highest LIB any node
    had before it."""
    name = "lib_resumed_within"
    ref = reference_time(history, after)
    if ref is None:
        return result(name, "unknown", f"no {after} in the history", after=after)
    libs = node_events(history, "lib_advanced")
    before = [e["height"] for e in libs if host_ts(e) <= ref]
    nodes = up_nodes(history)
    if not before or not nodes:
        return result(name, "unknown", "no LIB before the reference, or no up node",
                      reference_ts=ref)
    floor, deadline = max(before), ref + seconds
    resumed: dict[str, float] = {}
    for e in sorted(libs, key=host_ts):
        t = host_ts(e)
        if e["node"] in nodes and e["height"] > floor and ref < t <= deadline:
            resumed.setdefault(e["node"], round(t - ref, 3))
    missing = [n for n in nodes if n not in resumed]
    evidence = {"reference": after, "lib_before": floor, "resumed_after_s": resumed}
    if missing:
        return result(name, "invalid", f"LIB not past {floor} within {seconds}s on "
                       f"{', '.join(missing)}", missing=missing, **evidence)
    return result(name, "valid", f"all {len(nodes)} up nodes passed LIB {floor} within "
                   f"{max(resumed.values()):.3f}s", **evidence)


def missed_after_schedule_change(history: list[dict], at_most: int = 0) -> CheckResult:
    """After the last schedule change took effect (the highest `slot` of `schedule_changed`),
    at most `at_most` slots were reported missed (`producer_missed`, any node): production is
    back to a block every slot once the offline producer is voted out."""
    name = "missed_after_schedule_change"
    changes = node_events(history, "schedule_changed")
    if not changes:
        return result(name, "unknown", "no schedule_changed event")
    since = max(e.get("slot", 0) for e in changes)
    missed = sorted({(e["slot"], e["producer"]) for e in node_events(history, "producer_missed")
                     if e["slot"] > since})
    before = len({(e["slot"], e["producer"]) for e in node_events(history, "producer_missed")
                  if e["slot"] <= since})
    evidence = {"since_slot": since, "missed_before": before,
                "missed_after": [{"slot": s, "producer": p[:16]} for s, p in missed][:20]}
    if len(missed) > at_most:
        return result(name, "invalid", f"{len(missed)} slot(s) missed after the schedule change "
                       f"at slot {since} (at most {at_most})", **evidence)
    return result(name, "valid", f"{len(missed)} slot(s) missed after the schedule change at "
                   f"slot {since} ({before} before)", **evidence)
