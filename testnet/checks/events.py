"""Checker of events: some node logged an event of a type (with a text in it)."""

from __future__ import annotations

from testnet.checks.result import MAX_EVIDENCE_ITEMS, CheckResult, result
from testnet.history.readers import event_gaps


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
        return result(name, "unknown", f"no events from {node or 'any node'}", **evidence)
    matches = [e for e in history if event_matches(e, type, contains) and e["node"] in judged]
    if matches:
        first = matches[0]
        return result(name, "valid", f"{len(matches)} {type} event(s), first on {first['node']} "
                       f"at ts {first['ts']}", **evidence, count=len(matches),
                       matches=matches[:MAX_EVIDENCE_ITEMS])
    gaps = event_gaps(history, judged)
    what = type + (f" containing {contains!r}" if contains else "")
    if gaps:
        return result(name, "unknown", f"no {what} seen, but event streams lost events",
                       **evidence, gaps=gaps)
    return result(name, "invalid", f"no {what} on {', '.join(judged)}", **evidence)
