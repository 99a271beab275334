"""What must survive a crash, judged from events: blocks a node reported accepted before a kill,
and the honesty of validators. For each checker a valid, an invalid and an unknown case."""

from __future__ import annotations

from testnet.checks.durability import (
    accepted_blocks,
    events_of_last_start,
    lost_blocks,
    no_honest_slashing,
    stored_blocks_kept,
)
from tests.testnet.histories import H


def accepted(hash_: str, seq: int, height: int = 1, main: bool = True) -> dict:
    return {"seq": seq, "type": "block_accepted", "hash": hash_, "height": height,
            "peer": "local", "main_chain": main}


def started(seq: int, loaded: int) -> dict:
    return {"seq": seq, "type": "node_started", "blocks_loaded": loaded}


# ---- the campaign's comparison ---------------------------------------------------------------

def test_accepted_blocks_keeps_the_first_event_per_hash_in_order():
    events = [started(1, 0), accepted("a", 2), accepted("b", 3, main=False), accepted("a", 4)]
    found = accepted_blocks(events)
    assert list(found) == ["a", "b"] and found["a"]["seq"] == 2


def test_nothing_lost_when_the_restarted_node_serves_every_block():
    before = accepted_blocks([accepted("a", 1), accepted("b", 2, height=2)])
    assert lost_blocks(before, {"g", "a", "b", "c"}, [started(3, 2), accepted("c", 4)]) == []


def test_a_block_the_restarted_node_does_not_know_is_lost():
    before = accepted_blocks([accepted("a", 1), accepted("b", 2, height=2)])
    lost = lost_blocks(before, {"a"})
    assert lost == [{"hash": "b", "height": 2, "seq": 2, "peer": "local", "main_chain": True,
                     "why": "absent"}]


def test_a_block_accepted_again_after_the_restart_was_lost_even_if_served_now():
    # The store lost "b"; a peer handed it back before the campaign asked: the node's own
    # second block_accepted for it gives the loss away.
    before = accepted_blocks([accepted("a", 1), accepted("b", 2, height=2)])
    since = [started(3, 1), accepted("b", 4, height=2)]
    lost = lost_blocks(before, {"a", "b"}, since)
    assert [(b["hash"], b["why"]) for b in lost] == [("b", "accepted again")]


def test_events_of_last_start_are_the_current_run():
    events = [started(1, 0), accepted("a", 2), started(3, 1), accepted("b", 4)]
    assert [e["seq"] for e in events_of_last_start(events)] == [3, 4]
    assert events_of_last_start([accepted("a", 1)]) == [accepted("a", 1)]


# ---- stored_blocks_kept ----------------------------------------------------------------------

def test_stored_blocks_kept_valid_when_each_restart_loads_what_was_announced():
    history = (H().node("node0").chain("a1", "a2").restarted(blocks_loaded=2)
               .block("a3", "a2").restarted(blocks_loaded=3).build())
    result = stored_blocks_kept(history)
    assert result.verdict == "valid" and result.evidence["restarts"] == 2


def test_stored_blocks_kept_invalid_when_a_restart_loads_fewer():
    history = H().node("node0").chain("a1", "a2", "a3").restarted(blocks_loaded=2).build()
    result = stored_blocks_kept(history)
    assert result.verdict == "invalid"
    assert result.evidence["short"][0] == {"node": "node0", "seq": 8, "ts": 3.0,
                                           "announced": 3, "blocks_loaded": 2}


def test_stored_blocks_kept_unknown_without_a_restart():
    assert stored_blocks_kept(H().node("node0").chain("a1").build()).verdict == "unknown"
    assert stored_blocks_kept([]).verdict == "unknown"


# ---- no_honest_slashing ----------------------------------------------------------------------

def test_no_honest_slashing_valid_when_only_the_told_validator_is_slashed():
    history = (H("pos").nemesis("fault_applied", "role", ["node1"], role="double-vote",
                                validator=5)
               .node("node0").slashed(5).node("node1").slashed(5).build())
    result = no_honest_slashing(history)
    assert result.verdict == "valid", result.message
    assert result.evidence["dishonest_validators"] == [5]


def test_no_honest_slashing_invalid_for_a_validator_no_fault_named():
    history = H("pos").node("node0").chain("a1").slashed(3).node("node1").slashed(3).build()
    result = no_honest_slashing(history)
    assert result.verdict == "invalid"
    assert result.evidence["slashed"] == [{"validator": 3, "reason": "double vote",
                                           "seen_by": ["node0", "node1"]}]


def test_no_honest_slashing_unknown_when_it_cannot_tell():
    assert no_honest_slashing([]).verdict == "unknown"
    assert no_honest_slashing(H("pow").node("node0").build()).verdict == "unknown"
    node_wide = (H("pos").nemesis("fault_applied", "role", ["node1"], role="double-vote")
                 .node("node0").slashed(9).build())
    assert no_honest_slashing(node_wide).verdict == "unknown"
    gap = H("pos").node("node0").build()
    gap.append({"source": "node", "seq": 5, "type": "head_changed", "node": "node0", "ts": 9.0})
    assert no_honest_slashing(gap).verdict == "unknown"


def test_no_honest_slashing_counts_a_dpos_double_production():
    told = (H("dpos").nemesis("fault_applied", "role", ["node1"], role="double-produce",
                              validator=2)
            .node("node0").event("double_production", validator=2, slot=9).build())
    assert no_honest_slashing(told).verdict == "valid"
    honest = H("dpos").node("node0").event("double_production", validator=4, slot=9).build()
    result = no_honest_slashing(honest)
    assert result.verdict == "invalid" and "honest validator 4" in result.message
    assert result.evidence["slashed"][0]["reason"] == "double_production"
