"""Checkers of what must survive a crash: the blocks a node reported accepted, and the honesty of
its validators. Pure functions of events and of what a restarted node answered.

The promise under test (node/store.py): a block is committed to the node's store before the node
announces it, so every `block_accepted` a node wrote to its events.jsonl before a SIGKILL names a
block the restarted node still has. `lost_blocks` compares what the crash campaign collects
(testnet/scenarios/crash_campaign.py): the blocks of the victim's log before the kill, what the
restarted node serves, and what it announced again after the restart. `stored_blocks_kept` is
the same promise as far as a run history alone can judge it (the restarted node's
`node_started.blocks_loaded` against the distinct blocks it had announced), so a scenario or a
soak can check it too.

The slashing promise (node/signing_history.py): an honest validator never signs twice, even when
killed right after signing, because its signing record is on disk first. `no_honest_slashing`
says whether any validator no role fault told to misbehave was slashed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from testnet.checks.result import MAX_EVIDENCE_ITEMS, CheckResult, result
from testnet.history.readers import event_gaps, nemesis_actions, node_events


def accepted_blocks(events: Iterable[dict]) -> dict[str, dict]:
    """Block hash -> the first `block_accepted` event naming it, in the order given."""
    accepted: dict[str, dict] = {}
    for event in events:
        if event.get("type") == "block_accepted" and isinstance(event.get("hash"), str):
            accepted.setdefault(event["hash"], event)
    return accepted


def events_of_last_start(events: list[dict]) -> list[dict]:
    """The events from the last `node_started` on: what the node's current run has said."""
    starts = [i for i, e in enumerate(events) if e.get("type") == "node_started"]
    return events[starts[-1]:] if starts else list(events)


def lost_blocks(accepted: Mapping[str, dict], present: Collection[str],
                since_restart: Iterable[dict] = ()) -> list[dict]:
    """The blocks accepted before a kill that the restarted node lost, in acceptance order, each
    with what its event said (hash, height, seq, peer) and why it counts as lost:

    - `absent`: the restarted node does not know it (`present`: what it answered);
    - `accepted again`: the node announced it accepted once more after the restart
      (`since_restart`: its events from the new `node_started` on). A node never accepts a
      block it has, so the store had lost it -- and the network had already handed it back,
      which is why asking the node alone could miss the loss.
    """
    again = {e["hash"] for e in since_restart
             if e.get("type") == "block_accepted" and isinstance(e.get("hash"), str)}
    lost = []
    for block_hash, event in accepted.items():
        why = ("absent" if block_hash not in present else
               "accepted again" if block_hash in again else None)
        if why is not None:
            lost.append({"hash": block_hash, "height": event.get("height"),
                         "seq": event.get("seq"), "peer": event.get("peer"),
                         "main_chain": event.get("main_chain"), "why": why})
    return lost


def stored_blocks_kept(history: list[dict]) -> CheckResult:
    """Each restart loaded at least as many stored blocks as the node had announced accepted
    before it (`node_started.blocks_loaded` >= distinct `block_accepted` hashes so far)."""
    name = "stored_blocks_kept"
    seen: dict[str, set[str]] = {}
    restarts, short = 0, []
    for e in node_events(history, "block_accepted", "node_started"):
        node = e["node"]
        if e["type"] == "block_accepted":
            seen.setdefault(node, set()).add(e["hash"])
            continue
        announced = len(seen.get(node, ()))
        if node not in seen:
            continue   # a first start: nothing announced yet to keep
        restarts += 1
        loaded = e.get("blocks_loaded")
        if not isinstance(loaded, int) or loaded < announced:
            short.append({"node": node, "seq": e.get("seq"), "ts": e.get("ts"),
                          "announced": announced, "blocks_loaded": loaded})
    if short:
        first = short[0]
        return result(name, "invalid", f"{first['node']} restarted with {first['blocks_loaded']}"
                       f" stored blocks after announcing {first['announced']} accepted",
                       restarts=restarts, short=short[:MAX_EVIDENCE_ITEMS])
    if not restarts:
        return result(name, "unknown", "no node restarted after accepting a block")
    return result(name, "valid", f"{restarts} restart(s) each loaded every block announced "
                   "before them", restarts=restarts)


def no_honest_slashing(history: list[dict]) -> CheckResult:
    """No validator was slashed unless a role fault had told it (or its node) to misbehave. On
    DPoS a `double_production` (evidence of an offence, slashed or not) counts the same."""
    name = "no_honest_slashing"
    started = node_events(history, "node_started")
    if not started:
        return result(name, "unknown", "no node events in this history")
    # the consensuses with validators or producers (testnet/config/manifest.py CAPABILITIES,
    # which this pure room does not import): PoS, hybrid, DPoS
    if not any(e.get("consensus") in ("pos", "hybrid", "dpos") for e in started):
        return result(name, "unknown", "no PoS or hybrid node in this history: nothing can be "
                      "slashed")
    told, whole_nodes = set(), set()
    for e in nemesis_actions(history):
        params = e.get("params", {})
        if e.get("fault") != "role" or params.get("role", "honest") == "honest":
            continue
        if params.get("validator") is not None:
            told.add(params["validator"])
        else:
            whole_nodes.update(e.get("nodes", []))
    slashed: dict[int, dict] = {}
    for e in node_events(history, "slashed", "double_production"):
        if e.get("validator") not in told:
            slashed.setdefault(e.get("validator"), {"validator": e.get("validator"),
                                                    "reason": e.get("reason", e["type"]),
                                                    "seen_by": set()})["seen_by"].add(e["node"])
    evidence = {"dishonest_validators": sorted(told), "dishonest_nodes": sorted(whole_nodes)}
    if slashed:
        found = [{**s, "seen_by": sorted(s["seen_by"])} for s in slashed.values()]
        if whole_nodes:
            return result(name, "unknown", f"{len(found)} validator(s) slashed, but a node-wide "
                           "role hides which validators were told to misbehave", **evidence,
                           slashed=found[:MAX_EVIDENCE_ITEMS])
        first = found[0]
        return result(name, "invalid", f"honest validator {first['validator']} was slashed "
                       f"({first['reason']}; seen by {', '.join(first['seen_by'])})",
                       **evidence, slashed=found[:MAX_EVIDENCE_ITEMS])
    nodes = sorted({e["node"] for e in started})
    gaps = event_gaps(history, nodes)
    if gaps:
        return result(name, "unknown", "no honest validator slashed in what was seen, but event "
                       f"streams lost events ({len(gaps)} gap(s))", **evidence,
                       gaps=gaps[:MAX_EVIDENCE_ITEMS])
    return result(name, "valid", f"no honest validator slashed (events of {len(nodes)} node(s))",
                   **evidence, nodes=nodes)
