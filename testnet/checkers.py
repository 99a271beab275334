"""Checkers: pure functions of a run history that answer valid / invalid / unknown.

The history is the list of dicts described in docs/history.md (node events, nemesis actions and
runner observations on one timeline). A checker never talks to a node: it judges what was recorded,
and answers `unknown` when the record does not hold enough to decide (Jepsen's third answer).
Scenario files name checks as small dicts (`{"converged_within": 30}`); `validate_check_spec`
rejects a bad one before anything starts and `check_from_spec` runs it.

Times compared with nemesis actions use the host clock: an entry's `rx_ts` when the collector
recorded one, else its `ts` (a node's own `ts` includes any clock-skew fault).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

Verdict = Literal["valid", "invalid", "unknown"]
VERDICTS: tuple[str, ...] = ("valid", "invalid", "unknown")
# Nemesis verbs that end a fault even when logged as `fault_applied`.
RECOVERY_FAULTS = frozenset({"heal", "link_clear", "start", "resume"})
REFERENCES = ("last_heal", "last_fault")
MAX_EVIDENCE_ITEMS = 10


@dataclass(frozen=True)
class CheckResult:
    name: str
    verdict: Verdict
    message: str
    evidence: dict
    expected: Verdict | None = None

    @property
    def passed(self) -> bool:
        """The verdict is the one the scenario expected ("valid" when it named none)."""
        return self.verdict == (self.expected or "valid")

    def to_json(self) -> dict:
        out = asdict(self)
        if self.expected is None:
            del out["expected"]
        out["passed"] = self.passed
        return out


# ---- reading the history ---------------------------------------------------------------------

def host_ts(entry: dict) -> float:
    """When the host saw the entry: immune to a node's clock skew."""
    return float(entry.get("rx_ts", entry["ts"]))


def node_events(history: Iterable[dict], *types: str) -> list[dict]:
    return [e for e in history if e.get("source") == "node" and e.get("type") in types]


def observations(history: Iterable[dict], what: str) -> list[dict]:
    return [e for e in history
            if e.get("source") == "runner" and e.get("type") == "observation"
            and e.get("what") == what]


def final_status(history: list[dict]) -> dict[str, dict]:
    """The last `final_status` observation per node."""
    return {e["node"]: e for e in observations(history, "final_status")}


def up_nodes(history: list[dict]) -> list[str]:
    return sorted(n for n, e in final_status(history).items() if e.get("up"))


def get_roles(history: list[dict]) -> dict:
    """The last `roles` observation ({} when there is none)."""
    found = observations(history, "roles")
    return found[-1] if found else {}


def is_honest(roles: dict, node: str) -> bool:
    return roles.get("roles", {}).get(node, "honest") == "honest"


def nemesis_actions(history: Iterable[dict]) -> list[dict]:
    """The orchestrator's fault actions (each node also echoes what it applied; those are not
    separate faults)."""
    return [e for e in history if e.get("source") == "nemesis"]


def heal_times(history: list[dict]) -> list[float]:
    return sorted(host_ts(e) for e in nemesis_actions(history)
                  if e.get("type") == "fault_cleared" and e.get("fault") == "heal")


def reference_time(history: list[dict], after: str | float) -> float | None:
    """The time a checker measures from: the last heal, the last cleared fault, or a given ts."""
    if isinstance(after, (int, float)) and not isinstance(after, bool):
        return float(after)
    if after == "last_heal":
        times = heal_times(history)
    elif after == "last_fault":
        times = [host_ts(e) for e in nemesis_actions(history)
                 if e.get("type") == "fault_cleared"
                 or (e.get("type") == "fault_applied" and e.get("fault") in RECOVERY_FAULTS)]
    else:
        raise ValueError(f"bad reference: {after!r} (want one of {REFERENCES} or a timestamp)")
    return max(times) if times else None


def head_timelines(history: list[dict]) -> dict[str, list[tuple[float, str]]]:
    """Per node, (host time, head) at each head change, in time order."""
    lines: dict[str, list[tuple[float, str]]] = {}
    for e in node_events(history, "node_started", "head_changed"):
        lines.setdefault(e["node"], []).append((host_ts(e), e["head"]))
    for line in lines.values():
        line.sort(key=lambda item: item[0])
    return lines


def head_at(line: list[tuple[float, str]], t: float) -> str | None:
    """The node's head at time t: the last head it reported at or before t."""
    i = bisect_right(line, t, key=lambda item: item[0])
    return line[i - 1][1] if i else None


def event_gaps(history: list[dict], nodes: Iterable[str]) -> list[dict]:
    """Where a node's event stream lost events: seq gaps and `events_missed` notices."""
    wanted = set(nodes)
    last: dict[str, int] = {}
    gaps = []
    for e in history:
        node = e.get("node")
        if e.get("source") != "node" or node not in wanted:
            continue
        if e.get("type") == "events_missed":
            gaps.append({"node": node, "ts": e["ts"], "missed": e.get("count")})
            continue
        seq = e.get("seq")
        if not isinstance(seq, int):
            continue
        if node in last and seq > last[node] + 1:
            gaps.append({"node": node, "ts": e["ts"], "missed": seq - last[node] - 1})
        last[node] = max(seq, last.get(node, seq))
    return gaps


class ChainIndex:
    """Parent links and heights gathered from every node's events: enough to decide ancestry
    when the blocks in between were reported by someone, and to say "can't tell" otherwise."""

    def __init__(self, history: list[dict]) -> None:
        self.parents: dict[str, str] = {}
        self.heights: dict[str, int] = {}
        for e in history:
            kind = e.get("type")
            if kind in ("block_accepted", "block_orphaned") and e.get("parent"):
                self.parents[e["hash"]] = e["parent"]
            if kind == "reorg":
                self._link(e.get("common_ancestor"), list(e.get("applied") or []))
                self._link(e.get("common_ancestor"), list(reversed(e.get("reverted") or [])))
            if kind != "block_rejected" and isinstance(e.get("height"), int):
                named = e.get("hash") or e.get("head")
                if named:
                    self.heights[named] = e["height"]
        self._lineage: dict[str, tuple[set[str], int | None]] = {}

    def _link(self, ancestor: str | None, chain: list[str]) -> None:
        previous = ancestor
        for h in chain:
            if previous:
                self.parents.setdefault(h, previous)
            previous = h

    def lineage(self, tip: str) -> tuple[set[str], int | None]:
        """The known ancestors of tip (itself included) and the height where the walk stopped."""
        if tip not in self._lineage:
            seen: set[str] = set()
            h, height = tip, self.heights.get(tip)
            while h not in seen:
                seen.add(h)
                if h not in self.parents:
                    break
                h = self.parents[h]
                height = self.heights.get(h, None if height is None else height - 1)
            self._lineage[tip] = (seen, height)
        return self._lineage[tip]

    def is_ancestor(self, a: str, b: str) -> bool | None:
        """Is a an ancestor of b or b itself? None when the recorded links can't tell."""
        seen, bottom = self.lineage(b)
        if a in seen:
            return True
        height_a, height_b = self.heights.get(a), self.heights.get(b)
        if height_a is not None and height_b is not None and height_a >= height_b:
            return False
        if height_a is not None and bottom is not None and bottom <= height_a:
            return False
        return None

    def main_chain(self, tip: str) -> list[str]:
        """tip and its known ancestors, tip first."""
        chain, seen, h = [], set(), tip
        while h not in seen:
            seen.add(h)
            chain.append(h)
            if h not in self.parents:
                break
            h = self.parents[h]
        return chain


def find_convergence(lines: dict[str, list[tuple[float, str]]], nodes: list[str], start: float,
                     end: float, accept: Callable[[str], bool | None] = lambda _h: True
                     ) -> tuple[float | None, str | None, list[str]]:
    """The first time in [start, end] when all nodes share one head that `accept` takes.

    Returns (time, head, undecided heads): heads that were shared but `accept` could not judge.
    """
    times = sorted({start} | {t for n in nodes for t, _ in lines.get(n, ()) if start < t <= end})
    undecided: list[str] = []
    for t in times:
        heads = {head_at(lines.get(n, []), t) for n in nodes}
        if len(heads) != 1 or None in heads:
            continue
        head = heads.pop()
        verdict = accept(head)
        if verdict:
            return t, head, undecided
        if verdict is None and head not in undecided:
            undecided.append(head)
    return None, None, undecided


def _result(name: str, verdict: Verdict, message: str, **evidence: Any) -> CheckResult:
    return CheckResult(name, verdict, message, evidence)


# ---- convergence -----------------------------------------------------------------------------

def converged_within(history: list[dict], seconds: float,
                     after: str | float = "last_heal") -> CheckResult:
    """Within `seconds` of the reference, all up nodes shared one head that each node's final head
    is (or descends from). Evidence has the convergence time."""
    name = "converged_within"
    ref = reference_time(history, after)
    if ref is None:
        return _result(name, "unknown", f"no {after} in the history", after=after)
    finals = final_status(history)
    nodes = up_nodes(history)
    if not nodes:
        return _result(name, "unknown", "no final_status for any up node", after=after)
    lines = head_timelines(history)
    silent = [n for n in nodes if not lines.get(n)]
    if silent:
        return _result(name, "unknown", f"no head events from {', '.join(silent)}", nodes=silent)
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
        return _result(name, "valid", f"{len(nodes)} nodes converged {t - ref:.3f}s after "
                       f"{after} on {head}", **evidence, converged_ts=t,
                       convergence_s=t - ref, common_head=head)
    heads = {n: head_at(lines[n], deadline) for n in nodes}
    if undecided:
        return _result(name, "unknown", "nodes shared a head, but missing blocks hide whether "
                       "it leads to their final heads", **evidence, undecided_heads=undecided,
                       heads_at_deadline=heads)
    return _result(name, "invalid", f"no common head within {seconds}s of {after}",
                   **evidence, heads_at_deadline=heads)


# ---- reorgs ----------------------------------------------------------------------------------

def max_reorg_depth(history: list[dict], k: int, honest_only: bool = True) -> CheckResult:
    """No (honest) node reorganised more than k blocks deep."""
    name = "max_reorg_depth"
    roles = get_roles(history)
    judged = sorted({e["node"] for e in history if e.get("source") == "node"
                     and (not honest_only or is_honest(roles, e["node"]))})
    if not judged:
        return _result(name, "unknown", "no events from any judged node", k=k,
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
        return _result(name, "invalid", f"{len(too_deep)} reorg(s) deeper than {k}: "
                       f"{worst['node']} reorged {worst['depth']} deep at ts {worst['ts']}",
                       **evidence)
    gaps = event_gaps(history, judged)
    if gaps:
        return _result(name, "unknown", f"no reorg deeper than {k} seen, but event streams "
                       f"lost events ({len(gaps)} gap(s))", **evidence, gaps=gaps)
    return _result(name, "valid", f"no reorg deeper than {k} (deepest {evidence['max_depth']})",
                   **evidence)


# ---- finality --------------------------------------------------------------------------------

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
        return _result(name, "unknown", "no finalized checkpoints", **explain)
    chain = ChainIndex(history)
    ordered = sorted(checkpoints)
    undecided = []
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            conflict = _conflict(chain, a, b)
            if conflict:
                pair = [{"epoch": c[0], "root": c[1], "nodes": checkpoints[c]} for c in (a, b)]
                kind = "same epoch" if a[0] == b[0] else "not an ancestor"
                return _result(name, "invalid", f"conflicting finality ({kind}): epoch {a[0]} "
                               f"root {a[1]} on {checkpoints[a]} vs epoch {b[0]} root "
                               f"{b[1]} on {checkpoints[b]}", conflict=pair, kind=kind, **explain)
            if conflict is None:
                undecided.append([{"epoch": c[0], "root": c[1]} for c in (a, b)])
    summary = {"checkpoints": len(ordered), "highest_epoch": ordered[-1][0]}
    if undecided:
        return _result(name, "unknown", f"{len(undecided)} pair(s) of finalized checkpoints "
                       "can't be ordered: blocks between them were never reported",
                       undecided=undecided[:MAX_EVIDENCE_ITEMS], **summary, **explain)
    return _result(name, "valid", f"{len(ordered)} finalized checkpoints form one chain",
                   **summary, **explain)


def finality_resumed_within(history: list[dict], seconds: float,
                            after: str | float = "last_heal") -> CheckResult:
    """Within `seconds` of the reference, every up node finalized an epoch higher than any
    finalized (anywhere) before it."""
    name = "finality_resumed_within"
    ref = reference_time(history, after)
    if ref is None:
        return _result(name, "unknown", f"no {after} in the history", after=after)
    finals = node_events(history, "finalized")
    before = [e["epoch"] for e in finals if host_ts(e) <= ref]
    if not before:
        return _result(name, "unknown", f"no finality before {after}", reference_ts=ref)
    nodes = up_nodes(history)
    if not nodes:
        return _result(name, "unknown", "no final_status for any up node", reference_ts=ref)
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
        return _result(name, "invalid", f"no finality past epoch {floor} within {seconds}s on "
                       f"{', '.join(missing)}", **evidence, missing=missing)
    return _result(name, "valid", f"all {len(nodes)} up nodes finalized past epoch {floor} "
                   f"within {max(resumed.values()):.3f}s", **evidence)


# ---- transactions ----------------------------------------------------------------------------

def resolve_txid(history: list[dict], txid_or_label: str) -> str:
    """A scenario label's txid (the last tx_sent with that label); otherwise the string itself."""
    sent = [e for e in observations(history, "tx_sent") if e.get("label") == txid_or_label]
    return sent[-1]["txid"] if sent else txid_or_label


def _tx_statuses(history: list[dict], txid: str) -> dict[str, list[dict]]:
    per_node: dict[str, list[dict]] = {}
    for e in sorted(observations(history, "tx_status"), key=lambda e: e["ts"]):
        if e.get("txid") == txid:
            per_node.setdefault(e["node"], []).append(e)
    return per_node


def _status_view(e: dict) -> dict:
    return {k: e.get(k) for k in ("ts", "in_main_chain", "height", "confirmations")}


def tx_final(history: list[dict], txid_or_label: str, min_confirmations: int = 1) -> CheckResult:
    """The tx is in the main chain of every up node with at least `min_confirmations`, by each
    node's last tx_status observation."""
    name = "tx_final"
    txid = resolve_txid(history, txid_or_label)
    statuses = _tx_statuses(history, txid)
    nodes = up_nodes(history)
    unseen = [n for n in nodes if n not in statuses]
    evidence = {"tx": txid_or_label, "txid": txid, "min_confirmations": min_confirmations}
    if not nodes or unseen:
        return _result(name, "unknown", f"no tx_status for {txid_or_label} on "
                       f"{', '.join(unseen) or 'any up node'}", **evidence, nodes=unseen)
    last = {n: _status_view(statuses[n][-1]) for n in nodes}
    short = [n for n, s in last.items()
             if not s["in_main_chain"] or (s["confirmations"] or 0) < min_confirmations]
    if short:
        return _result(name, "invalid", f"{txid_or_label} not final on {', '.join(short)}",
                       **evidence, status=last, not_final=short)
    return _result(name, "valid", f"{txid_or_label} final on all {len(nodes)} up nodes",
                   **evidence, status=last)


def tx_reversed(history: list[dict], txid_or_label: str) -> CheckResult:
    """The tx was in some node's main chain at some point, and every up node's last observation
    has it out of the main chain. valid means "it was reversed" (a double spend succeeded)."""
    name = "tx_reversed"
    txid = resolve_txid(history, txid_or_label)
    statuses = _tx_statuses(history, txid)
    nodes = up_nodes(history)
    unseen = [n for n in nodes if n not in statuses]
    evidence = {"tx": txid_or_label, "txid": txid}
    if not nodes or unseen:
        return _result(name, "unknown", f"no tx_status for {txid_or_label} on "
                       f"{', '.join(unseen) or 'any up node'}", **evidence, nodes=unseen)
    last = {n: statuses[n][-1] for n in nodes}
    still_in = [n for n in nodes if last[n].get("in_main_chain")]
    # Every up node's last observation is out (checked next), so any in-chain one came earlier.
    confirmed = [{"node": e["node"], **_status_view(e)} for obs in statuses.values()
                 for e in obs if e.get("in_main_chain")]
    evidence["final_status"] = {n: _status_view(e) for n, e in last.items()}
    if still_in:
        return _result(name, "invalid", f"{txid_or_label} still in the main chain on "
                       f"{', '.join(still_in)}", **evidence, still_in=still_in)
    if not confirmed:
        return _result(name, "invalid", f"{txid_or_label} was never seen in a main chain, so "
                       "nothing was reversed", **evidence)
    return _result(name, "valid", f"{txid_or_label} was in the main chain on "
                   f"{confirmed[0]['node']} at ts {confirmed[0]['ts']} and is now out on all "
                   f"{len(nodes)} up nodes", **evidence,
                   confirmed=confirmed[:MAX_EVIDENCE_ITEMS])


# ---- chain validity --------------------------------------------------------------------------

def chains_valid(history: list[dict]) -> CheckResult:
    """Every chain_check observation (the runner re-validating a node's chain) passed."""
    name = "chains_valid"
    checks = observations(history, "chain_check")
    if not checks:
        return _result(name, "unknown", "no chain_check observations")
    bad = [{"node": e["node"], "reason": e.get("reason"), "height": e.get("height")}
           for e in checks if not e.get("valid")]
    if bad:
        first = bad[0]
        return _result(name, "invalid", f"{first['node']}'s chain is invalid: {first['reason']}",
                       failures=bad)
    return _result(name, "valid", f"{len(checks)} chain check(s) passed",
                   nodes=sorted({e["node"] for e in checks}))


# ---- events ----------------------------------------------------------------------------------

def event_matches(event: dict, type: str, contains: str | None = None) -> bool:
    """A node event of this type with `contains` in one of its text fields (when given)."""
    return event.get("source") == "node" and event.get("type") == type and (
        contains is None or any(isinstance(v, str) and contains in v for v in event.values()))


def event_seen(history: list[dict], type: str, contains: str | None = None,
               node: str | None = None) -> CheckResult:
    """Some node (or the named one) logged an event of this type, with `contains` in one of its
    text fields when given (e.g. a block_rejected whose reason says "in the future")."""
    name = "event_seen"
    judged = sorted({e["node"] for e in history if e.get("source") == "node"
                     and (node is None or e.get("node") == node)})
    evidence = {"type": type, "contains": contains, "node": node}
    if not judged:
        return _result(name, "unknown", f"no events from {node or 'any node'}", **evidence)
    matches = [e for e in history if event_matches(e, type, contains) and e["node"] in judged]
    if matches:
        first = matches[0]
        return _result(name, "valid", f"{len(matches)} {type} event(s), first on {first['node']} "
                       f"at ts {first['ts']}", **evidence, count=len(matches),
                       matches=matches[:MAX_EVIDENCE_ITEMS])
    gaps = event_gaps(history, judged)
    what = type + (f" containing {contains!r}" if contains else "")
    if gaps:
        return _result(name, "unknown", f"no {what} seen, but event streams lost events",
                       **evidence, gaps=gaps)
    return _result(name, "invalid", f"no {what} on {', '.join(judged)}", **evidence)


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
        return _result(name, "unknown", "no partition in this history")
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
            return _result(name, "invalid", f"{', '.join(missing)} finalized nothing new during "
                           "the partition", finalized=finalized)
        return _result(name, "valid", f"{', '.join(judged)} kept finalizing during the partition "
                       f"(epochs {finalized})", finalized=finalized)
    if finalized:
        return _result(name, "invalid", f"finality during the partition on "
                       f"{', '.join(finalized)}: epochs {finalized}", finalized=finalized)
    return _result(name, "valid", f"no new checkpoint finalized on {', '.join(judged)} while "
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
        return _result(name, "unknown", "no final status of the nodes")
    first: dict[str, float] = {}
    for e in node_events(history, "slashed"):
        if e.get("validator") == validator and e["node"] in nodes:
            first.setdefault(e["node"], host_ts(e) - start)
    late = {n: round(t, 1) for n, t in first.items() if t > within_s}
    missing = [n for n in nodes if n not in first]
    if missing or late:
        return _result(name, "invalid", f"validator {validator} not slashed within {within_s} s "
                       f"on {', '.join(missing + list(late))}", seconds=first)
    return _result(name, "valid", f"validator {validator} slashed on all {len(nodes)} nodes "
                   f"within {max(first.values()):.1f} s", seconds=first)


# ---- scenario specs --------------------------------------------------------------------------

def _positive_number(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{field} must be a positive number of seconds, got {value!r}")
    return value


def _int_at_least(field: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{field} must be an integer >= {low}, got {value!r}")
    return value


def _only_keys(field: str, value: dict, allowed: set[str], required: set[str]) -> None:
    extra = sorted(set(value) - allowed)
    if extra:
        raise ValueError(f"{field}: unknown field {extra[0]!r} (allowed: {sorted(allowed)})")
    missing = sorted(required - set(value))
    if missing:
        raise ValueError(f"{field}: missing field {missing[0]!r}")


def _after(field: str, value: Any) -> str | float:
    if value in REFERENCES:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"{field} must be one of {list(REFERENCES)} or a timestamp, got {value!r}")


def _timed_args(name: str, value: Any) -> dict:
    if isinstance(value, dict):
        _only_keys(name, value, {"seconds", "after"}, {"seconds"})
        return {"seconds": _positive_number(f"{name}.seconds", value["seconds"]),
                "after": _after(f"{name}.after", value.get("after", "last_heal"))}
    return {"seconds": _positive_number(name, value)}


def _reorg_args(value: Any) -> dict:
    if isinstance(value, dict):
        _only_keys("max_reorg_depth", value, {"k", "honest_only"}, {"k"})
        honest = value.get("honest_only", True)
        if not isinstance(honest, bool):
            raise ValueError(f"max_reorg_depth.honest_only must be true or false, got {honest!r}")
        return {"k": _int_at_least("max_reorg_depth.k", value["k"], 0), "honest_only": honest}
    return {"k": _int_at_least("max_reorg_depth", value, 0)}


def _event_args(value: Any) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"event_seen takes {{type: ..., contains: ..., node: ...}}, got {value!r}")
    _only_keys("event_seen", value, {"type", "contains", "node"}, {"type"})
    for key in value:
        if not isinstance(value[key], str) or not value[key]:
            raise ValueError(f"event_seen.{key} must be a non-empty string, got {value[key]!r}")
    return dict(value)


def _flag_args(name: str, value: Any) -> dict:
    if value is not True:
        raise ValueError(f"{name} takes true, got {value!r}")
    return {}


def _tx_args(name: str, value: Any, confirmations: bool) -> dict:
    if isinstance(value, dict):
        _only_keys(name, value, {"tx", "confirmations"} if confirmations else {"tx"}, {"tx"})
        args = {"txid_or_label": _tx_name(f"{name}.tx", value["tx"])}
        if "confirmations" in value:
            args["min_confirmations"] = _int_at_least(f"{name}.confirmations",
                                                      value["confirmations"], 1)
        return args
    return {"txid_or_label": _tx_name(name, value)}


def _tx_name(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} must be a tx label or txid, got {value!r}")
    return value


CHECKS: dict[str, Callable[..., CheckResult]] = {
    "finality_during_partition": lambda h, **kw: finality_during_partition(h, expect=True, **kw),
    "no_finality_during_partition": lambda h, **kw: finality_during_partition(h, expect=False,
                                                                            **kw),
    "slashed_everywhere": slashed_everywhere,
    "converged_within": converged_within,
    "max_reorg_depth": max_reorg_depth,
    "no_conflicting_finality": no_conflicting_finality,
    "finality_resumed_within": finality_resumed_within,
    "tx_final": tx_final,
    "tx_reversed": tx_reversed,
    "chains_valid": chains_valid,
    "event_seen": event_seen,
}

def _nodes_args(name: str, value: Any) -> dict:
    if value is True:
        return {}
    if isinstance(value, list) and all(isinstance(v, (int, str)) for v in value):
        return {"nodes": [v if isinstance(v, str) else f"node{v}" for v in value]}
    raise ValueError(f"{name} takes true or a list of nodes, got {value!r}")


def _slashed_args(value: Any) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"slashed_everywhere takes {{validator: N, within: seconds}}, got "
                         f"{value!r}")
    _only_keys("slashed_everywhere", value, {"validator", "within"}, {"validator", "within"})
    return {"validator": _int_at_least("slashed_everywhere.validator", value["validator"], 0),
            "within_s": _positive_number("slashed_everywhere.within", value["within"])}


_SPEC_ARGS: dict[str, Callable[[Any], dict]] = {
    "finality_during_partition": lambda v: _nodes_args("finality_during_partition", v),
    "no_finality_during_partition": lambda v: _nodes_args("no_finality_during_partition", v),
    "slashed_everywhere": _slashed_args,
    "converged_within": lambda v: _timed_args("converged_within", v),
    "max_reorg_depth": _reorg_args,
    "no_conflicting_finality": lambda v: _flag_args("no_conflicting_finality", v),
    "finality_resumed_within": lambda v: _timed_args("finality_resumed_within", v),
    "tx_final": lambda v: _tx_args("tx_final", v, confirmations=True),
    "tx_reversed": lambda v: _tx_args("tx_reversed", v, confirmations=False),
    "chains_valid": lambda v: _flag_args("chains_valid", v),
    "event_seen": _event_args,
}


def _parse_spec(spec: Any) -> tuple[str, dict, Verdict | None]:
    if not isinstance(spec, dict):
        raise ValueError(f"a check must be a mapping like {{'converged_within': 30}}, "
                         f"got {spec!r}")
    unknown = sorted(k for k in spec if k != "expect" and k not in CHECKS)
    if unknown:
        raise ValueError(f"unknown check {unknown[0]!r} (known: {', '.join(CHECKS)})")
    names = [k for k in spec if k in CHECKS]
    if len(names) != 1:
        raise ValueError(f"a check names exactly one of {', '.join(CHECKS)}; got "
                         f"{names or 'none'}")
    expect = spec.get("expect")
    if expect is not None and expect not in VERDICTS:
        raise ValueError(f"expect must be one of {list(VERDICTS)}, got {expect!r}")
    return names[0], _SPEC_ARGS[names[0]](spec[names[0]]), expect


def validate_check_spec(spec: Any) -> None:
    """Raise ValueError naming the bad key or field of a scenario's check."""
    _parse_spec(spec)


def check_from_spec(history: list[dict], spec: dict) -> CheckResult:
    """Run the check a scenario names; with `expect`, the result says whether that verdict came."""
    name, args, expect = _parse_spec(spec)
    result = CHECKS[name](history, **args)
    return replace(result, expected=expect) if expect else result

