"""The faults standing at a moment of a run, read from its nemesis actions: the same picture the
nemesis keeps live in the cluster's `faults.json` (testnet/faults/nemesis.py), rebuilt from the
history so that a replay shows the partition and each node's faults as they were.

`apply_fault(state, entry, index_of)` folds one nemesis entry (docs/history.md) into a state of
faults.json's shape, {"grudge", "links", "skew", "roles"}: a partition replaces the grudge and a
heal lifts it, link rules pile up until a `link_clear` of every node, skews and roles are kept per
node. Process verbs (kill, start, pause, ...) leave no standing fault. Pure: no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

NO_FAULTS: dict = {"grudge": None, "links": [], "skew": {}, "roles": {}}


def no_faults() -> dict:
    return copy.deepcopy(NO_FAULTS)


def apply_fault(state: dict, entry: dict, index_of: Mapping[str, int]) -> bool:
    """Folds one nemesis entry into `state` (in place); returns whether a standing fault changed.
    `index_of` maps node names to the cluster's indices (the grudge and skews are by index)."""
    if entry.get("source") != "nemesis":
        return False
    fault, params = entry.get("fault"), entry.get("params") or {}
    indices = [index_of[n] for n in entry.get("nodes") or [] if n in index_of]
    if fault == "partition" and entry.get("type") == "fault_applied":
        state["grudge"] = {str(k): sorted(v) for k, v in (params.get("grudge") or {}).items()}
        state["layer"] = params.get("layer", "p2p")
    elif fault == "heal":
        state["grudge"] = None
        state.pop("layer", None)
    elif fault == "link":
        targets = params.get("targets")
        state["links"].append({"sources": indices, "rule": params.get("rule"),
                               "targets": targets if isinstance(targets, list) else None})
    elif fault == "link_clear":
        if len(indices) >= len(index_of):     # as the nemesis: only clearing every node drops them
            state["links"] = []
    elif fault == "skew" and indices:
        state["skew"][str(indices[0])] = params.get("offset_s", 0)
    elif fault == "role" and indices:
        validator = params.get("validator")
        key = str(indices[0]) if validator is None else f"v{validator}"
        state["roles"][key] = params.get("role", "honest")
    else:
        return False
    return True


def node_faults(state: dict, index: int) -> dict:
    """One node's share of the standing faults, as its `/status` reports them: how many peers it
    drops (the grudge lists whom each node drops), how many link rules it sends through, and its
    clock offset."""
    grudge = state.get("grudge") or {}
    return {"blocked_peers": len(grudge.get(str(index), [])),
            "shaped_links": sum(_rules_at(link, index) for link in state.get("links", [])),
            "clock_offset_s": state.get("skew", {}).get(str(index), 0)}


def _rules_at(link: dict, index: int) -> int:
    """How many per-peer rules a link fault put on node `index`: one for every peer, else one per
    target other than itself."""
    if index not in link["sources"]:
        return 0
    targets = link.get("targets")
    return 1 if targets is None else sum(t != index for t in targets)
