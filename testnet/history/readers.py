"""Reading a run's history: the accessors every checker, metric, plot and report shares.

The history is the list of dicts described in docs/history.md: node events, nemesis actions and
runner observations on one timeline. Everything here is a pure function of it, so a verdict, a
metric and a picture never disagree about a head, a fault or a node's state.

Times compared with nemesis actions use the host clock: an entry's `rx_ts` when the collector
recorded one, else its `ts` (a node's own `ts` includes any clock-skew fault).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable

# Nemesis verbs that end a fault even when logged as `fault_applied`.
RECOVERY_FAULTS = frozenset({"heal", "link_clear", "start", "resume"})
REFERENCES = ("last_heal", "last_fault")


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
