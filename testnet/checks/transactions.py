"""Checkers of transactions: a transfer is final on every node, or was reversed (a double spend
that succeeded). They read the runner's tx_status observations."""

from __future__ import annotations

from testnet.checks.result import MAX_EVIDENCE_ITEMS, CheckResult, result
from testnet.history.readers import observations, up_nodes


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
        return result(name, "unknown", f"no tx_status for {txid_or_label} on "
                       f"{', '.join(unseen) or 'any up node'}", **evidence, nodes=unseen)
    last = {n: _status_view(statuses[n][-1]) for n in nodes}
    short = [n for n, s in last.items()
             if not s["in_main_chain"] or (s["confirmations"] or 0) < min_confirmations]
    if short:
        return result(name, "invalid", f"{txid_or_label} not final on {', '.join(short)}",
                       **evidence, status=last, not_final=short)
    return result(name, "valid", f"{txid_or_label} final on all {len(nodes)} up nodes",
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
        return result(name, "unknown", f"no tx_status for {txid_or_label} on "
                       f"{', '.join(unseen) or 'any up node'}", **evidence, nodes=unseen)
    last = {n: statuses[n][-1] for n in nodes}
    still_in = [n for n in nodes if last[n].get("in_main_chain")]
    # Every up node's last observation is out (checked next), so any in-chain one came earlier.
    confirmed = [{"node": e["node"], **_status_view(e)} for obs in statuses.values()
                 for e in obs if e.get("in_main_chain")]
    evidence["final_status"] = {n: _status_view(e) for n, e in last.items()}
    if still_in:
        return result(name, "invalid", f"{txid_or_label} still in the main chain on "
                       f"{', '.join(still_in)}", **evidence, still_in=still_in)
    if not confirmed:
        return result(name, "invalid", f"{txid_or_label} was never seen in a main chain, so "
                       "nothing was reversed", **evidence)
    return result(name, "valid", f"{txid_or_label} was in the main chain on "
                   f"{confirmed[0]['node']} at ts {confirmed[0]['ts']} and is now out on all "
                   f"{len(nodes)} up nodes", **evidence,
                   confirmed=confirmed[:MAX_EVIDENCE_ITEMS])
