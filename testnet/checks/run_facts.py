"""The few facts that tell two runs of one scenario apart at a glance -- where each labelled
transfer ended up, how deep nodes reorganised, how many heavier branches finality refused, what
was finalized -- as plain text by name, for the side-by-side comparison of a scenario's variants
(testnet/report/compare.py). Pure functions of a history and its fork metrics."""

from __future__ import annotations

from testnet.history.readers import node_events, observations, up_nodes


def tx_outcomes(history: list[dict]) -> dict[str, str]:
    """Per labelled transfer: in the main chain of how many up nodes, by their last look."""
    nodes = up_nodes(history)
    last: dict[str, dict[str, bool]] = {}
    for e in sorted(observations(history, "tx_status"), key=lambda e: e["ts"]):
        label = e.get("label") or str(e.get("txid", "?"))[:16]
        last.setdefault(label, {})[e["node"]] = bool(e.get("in_main_chain"))
    out = {}
    for label in sorted(last):
        on = sum(1 for n in nodes if last[label].get(n))
        out[f"tx {label}"] = (f"in the main chain on {on} of {len(nodes)} up nodes"
                              + (" (final)" if on == len(nodes) and nodes else
                                 " (reverted)" if on == 0 else ""))
    return out


def run_facts(history: list[dict], metrics: dict) -> dict[str, str]:
    reorgs = metrics.get("reorgs") or {}
    blocks = metrics.get("blocks") or {}
    finality = metrics.get("finality") or {}
    refused = node_events(history, "reorg_refused")
    finalized = [e["epoch"] for e in node_events(history, "finalized")]
    facts = tx_outcomes(history)
    facts.update({
        "reorgs (deepest)": f"{reorgs.get('total', 0)} ({reorgs.get('max_depth', 0)} blocks)",
        "heavier branches refused (reorg_refused)":
            f"{len(refused)} on {len({e['node'] for e in refused})} node(s)",
        "finalized": (f"up to epoch {max(finalized)}, {finality.get('checkpoints', 0)} "
                      f"checkpoints" if finalized else "nothing (no finality)"),
        "stale blocks": str(blocks.get("stale", "n/a")),
    })
    return facts
