"""Checkers on hand-built histories: for each, a valid, an invalid and an unknown history."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testnet.checks.chain import chains_valid, converged_within, max_reorg_depth
from testnet.checks.events import event_seen
from testnet.checks.finality import finality_resumed_within, no_conflicting_finality
from testnet.checks.result import CheckResult
from testnet.checks.specs import CHECKS, check_from_spec, validate_check_spec
from testnet.checks.transactions import tx_final, tx_reversed
from testnet.history.chain_index import ChainIndex
from tests.testnet.histories import H


def split_and_heal() -> H:
    """node0 and node1 share a1-a2, split at 3 and fork (a3 / b3), heal at 10; node1 reorgs to
    node0's a4 at 12.5; node0 then mines a5 before the end."""
    return (H().node("node0").at(1).chain("a1", "a2")
            .node("node1").block("a1", "g", peer="node0", t=1.1).block("a2", "a1", t=2.1)
            .at(3).partition(["node0"], ["node1"])
            .node("node0").block("a3", "a2", t=4)
            .node("node1").block("b3", "a2", t=4, miner="k1")
            .at(10).heal()
            .node("node0").block("a4", "a3", t=12)
            .node("node1").block("a3", "a2", main=False, t=12.5).block("a4", "a3", t=12.5)
            .reorg("b3", "a4", depth=1, common="a2", t=12.5)
            .node("node0").block("a5", "a4", t=14)
            .at(20).final("node0", "a5").final("node1", "a4"))


def assert_json(result: CheckResult) -> dict:
    out = result.to_json()
    assert json.loads(json.dumps(out)) == out
    return out


# ---- converged_within ------------------------------------------------------------------------

def test_converged_within_valid_reports_time_to_a_head_under_the_final_heads():
    result = converged_within(split_and_heal().build(), 5)
    assert result.verdict == "valid", result.message
    assert result.evidence["common_head"] == "a4"
    assert result.evidence["convergence_s"] == pytest.approx(2.5)
    assert_json(result)


def test_converged_within_invalid_when_too_slow():
    result = converged_within(split_and_heal().build(), 2)
    assert result.verdict == "invalid"
    assert result.evidence["heads_at_deadline"] == {"node0": "a4", "node1": "b3"}


def test_converged_within_skips_a_shared_head_the_nodes_then_left():
    # Both sit on x2 at the heal, then both move to the y chain: x2 is not under y3.
    h = (H().node("node0").at(1).chain("x1", "x2").node("node1").at(1).chain("x1", "x2")
         .at(5).chain("y1", "y2", "y3", parent="g", main=False)
         .node("node0").at(5).chain("y1", "y2", "y3", parent="g", main=False)
         .at(10).heal()
         .node("node0").head("y3", t=11).node("node1").head("y3", t=13)
         .at(20).final("node0", "y3").final("node1", "y3"))
    assert converged_within(h.build(), 5).evidence["convergence_s"] == pytest.approx(3)
    assert converged_within(h.build(), 2).verdict == "invalid"


def test_converged_within_ignores_nodes_down_at_the_end():
    h = split_and_heal().node("node2").block("c1", "g", t=11).final("node2", "c1", up=False)
    assert converged_within(h.build(), 5).verdict == "valid"


def test_converged_within_other_references():
    history = split_and_heal().build()
    assert converged_within(history, 3, after="last_fault").verdict == "valid"
    assert converged_within(history, 1, after=12.0).evidence["convergence_s"] == 0.5


@pytest.mark.parametrize("change", ["no heal", "no final", "silent node", "missing blocks"])
def test_converged_within_unknown(change):
    h = H().node("node0").at(1).chain("a1").node("node1").at(1).chain("a1")
    if change != "no heal":
        h.at(5).heal()
    if change == "silent node":
        h.final("node9", "a1")
    if change == "missing blocks":
        # Both report head m, but nobody reported how m relates to the final head z.
        h.node("node0").event("head_changed", t=6, head="m", height=5)
        h.node("node1").event("head_changed", t=6, head="m", height=5)
        h.final("node0", "z").final("node1", "z")
    if change in ("no heal", "silent node"):
        h.final("node0", "a1").final("node1", "a1")
    result = converged_within(h.build(), 5)
    assert result.verdict == "unknown", result.message


# ---- max_reorg_depth -------------------------------------------------------------------------

def reorgs(attacker_depth: int = 0, honest_depth: int = 1) -> H:
    h = (H().roles(roles={"node0": "honest", "node2": "selfish"})
         .node("node0").at(1).chain("a1", "a2").node("node1").at(2).chain("a1"))
    h.node("node1").reorg("x", "y", depth=honest_depth, t=5)
    if attacker_depth:
        h.node("node2").reorg("p", "q", depth=attacker_depth, t=6)
    return h


def test_max_reorg_depth_valid():
    result = max_reorg_depth(reorgs().build(), 2)
    assert result.verdict == "valid" and result.evidence["max_depth"] == 1


def test_max_reorg_depth_invalid_lists_deepest():
    result = max_reorg_depth(reorgs(honest_depth=3).build(), 2)
    assert result.verdict == "invalid"
    assert result.evidence["deepest"][0] == {"node": "node1", "depth": 3, "ts": 5.0,
                                             "old_head": "x", "new_head": "y"}
    assert "node1" in result.message


def test_max_reorg_depth_judges_attackers_only_when_asked():
    history = reorgs(attacker_depth=5).build()
    assert max_reorg_depth(history, 2).verdict == "valid"
    result = max_reorg_depth(history, 2, honest_only=False)
    assert result.verdict == "invalid" and result.evidence["deepest"][0]["node"] == "node2"


def test_max_reorg_depth_unknown_without_honest_events():
    h = H().roles(roles={"node2": "selfish"}).node("node2").reorg("p", "q", depth=9, t=1)
    assert max_reorg_depth(h.build(), 2).verdict == "unknown"


def test_max_reorg_depth_unknown_when_events_were_lost():
    history = reorgs().build()
    for e in history:
        if e.get("node") == "node1" and e["type"] == "reorg":
            e["seq"] += 10  # ten events never reached the collector
    result = max_reorg_depth(history, 2)
    assert result.verdict == "unknown"
    assert result.evidence["gaps"] == [{"node": "node1", "ts": 5.0, "missed": 10}]


# ---- no_conflicting_finality -----------------------------------------------------------------

def pos_chain() -> H:
    return (H().node("node0").at(1).chain("a1", "a2", "a3", "a4")
            .node("node1").at(1).chain("b1", "b2", "b3", main=False))


def test_no_conflicting_finality_valid():
    h = (pos_chain().node("node0").finalized(1, "a2", t=10).finalized(2, "a4", t=20)
         .node("node1").finalized(1, "a2", t=11))
    result = no_conflicting_finality(h.build())
    assert result.verdict == "valid", result.message
    assert result.evidence["checkpoints"] == 2 and result.evidence["slashed"] == []


def test_no_conflicting_finality_invalid_same_epoch_with_explanations():
    h = (pos_chain().node("node0").finalized(1, "a2", t=10).node("node1").finalized(1, "b2", t=10)
         .slashed(7, t=12).event("inactivity_leak", t=13, epoch=1))
    result = no_conflicting_finality(h.build())
    assert result.verdict == "invalid" and result.evidence["kind"] == "same epoch"
    assert result.evidence["conflict"] == [{"epoch": 1, "root": "a2", "nodes": ["node0"]},
                                           {"epoch": 1, "root": "b2", "nodes": ["node1"]}]
    assert [e["type"] for e in result.evidence["slashed"]] == ["slashed"]
    assert [e["type"] for e in result.evidence["leaks"]] == ["inactivity_leak"]


def test_no_conflicting_finality_invalid_across_epochs():
    h = pos_chain().node("node0").finalized(1, "a2", t=10).node("node1").finalized(2, "b3", t=20)
    result = no_conflicting_finality(h.build())
    assert result.verdict == "invalid" and result.evidence["kind"] == "not an ancestor"


@pytest.mark.parametrize("root", [None, "zz"])
def test_no_conflicting_finality_unknown(root):
    h = pos_chain()
    if root:  # zz's ancestry was never reported
        h.node("node0").finalized(1, "a2", t=10).event("finalized", t=20, epoch=2, root=root)
    result = no_conflicting_finality(h.build())
    assert result.verdict == "unknown"
    assert ("no finalized checkpoints" in result.message) is (root is None)


def test_ancestry_is_decided_from_heights_when_links_run_out():
    chain = ChainIndex(pos_chain().event("head_changed", head="c9", height=9).build())
    assert chain.is_ancestor("a2", "a4") is True
    assert chain.is_ancestor("a4", "a2") is False
    assert chain.is_ancestor("b2", "a4") is False
    assert chain.is_ancestor("a2", "c9") is None


# ---- finality_resumed_within -----------------------------------------------------------------

def finality_outage(resumed_epoch: int = 4) -> H:
    return (pos_chain().node("node0").finalized(3, "a2", t=5).node("node1").finalized(3, "a2", t=5)
            .at(8).partition(["node0"], ["node1"]).at(10).heal()
            .node("node0").finalized(resumed_epoch, "a4", t=20)
            .node("node1").finalized(resumed_epoch, "a4", t=22)
            .at(30).final("node0", "a4").final("node1", "a4"))


def test_finality_resumed_within_valid():
    result = finality_resumed_within(finality_outage().build(), 15)
    assert result.verdict == "valid"
    assert result.evidence["resumed_after_s"] == {"node0": 10.0, "node1": 12.0}


@pytest.mark.parametrize("seconds, epoch, missing", [(11, 4, ["node1"]),
                                                      (15, 3, ["node0", "node1"])])
def test_finality_resumed_within_invalid(seconds, epoch, missing):
    result = finality_resumed_within(finality_outage(epoch).build(), seconds)
    assert result.verdict == "invalid" and result.evidence["missing"] == missing


def test_finality_resumed_within_unknown_for_pow():
    assert finality_resumed_within(split_and_heal().build(), 15).verdict == "unknown"


# ---- tx_final / tx_reversed ------------------------------------------------------------------

def payments(node1_in_main: bool = True, confirmations: int = 2) -> H:
    return (H().tx_sent("pay1", "t1", t=1)
            .tx_status("t1", "node0", True, 1, t=5).tx_status("t1", "node1", False, t=5)
            .tx_status("t1", "node0", True, 3, t=20)
            .tx_status("t1", "node1", node1_in_main, confirmations, t=20)
            .final("node0", "g", t=21).final("node1", "g", t=21))


def test_tx_final_valid_by_label_and_txid():
    assert tx_final(payments().build(), "pay1", 2).verdict == "valid"
    assert tx_final(payments().build(), "t1").evidence["txid"] == "t1"


@pytest.mark.parametrize("in_main, confirmations, minimum", [(False, 0, 1), (True, 2, 3)])
def test_tx_final_invalid(in_main, confirmations, minimum):
    result = tx_final(payments(in_main, confirmations).build(), "pay1", minimum)
    assert result.verdict == "invalid" and result.evidence["not_final"] == ["node1"]


def test_tx_final_unknown_without_an_observation_per_up_node():
    h = payments().final("node2", "g", t=21)
    result = tx_final(h.build(), "pay1")
    assert result.verdict == "unknown" and result.evidence["nodes"] == ["node2"]
    assert tx_final(H().build(), "pay1").verdict == "unknown"


def double_spend(final_in_main: bool = False) -> H:
    return (H().tx_sent("pay1", "t1", t=1)
            .tx_status("t1", "node0", True, 1, t=5).tx_status("t1", "node1", False, t=5)
            .tx_status("t1", "node0", False, t=20).tx_status("t1", "node1", final_in_main, t=20)
            .final("node0", "g", t=21).final("node1", "g", t=21))


def test_tx_reversed_valid_when_confirmed_then_dropped_everywhere():
    result = tx_reversed(double_spend().build(), "pay1")
    assert result.verdict == "valid"
    assert result.evidence["confirmed"][0]["node"] == "node0"


def test_tx_reversed_invalid_when_still_in_or_never_in():
    assert tx_reversed(double_spend(True).build(), "pay1").evidence["still_in"] == ["node1"]
    never = (H().tx_sent("pay1", "t1").tx_status("t1", "node0", False, t=5)
             .final("node0", "g", t=6))
    assert tx_reversed(never.build(), "pay1").verdict == "invalid"


def test_tx_reversed_unknown_without_observations():
    assert tx_reversed(double_spend().final("node2", "g", t=21).build(), "pay1").verdict \
        == "unknown"


# ---- chains_valid ----------------------------------------------------------------------------

def test_chains_valid_three_answers():
    assert chains_valid(H().chain_check("node0").chain_check("node1").build()).verdict == "valid"
    bad = chains_valid(H().chain_check("node0").chain_check("node1", False, "bad pow at 7")
                       .build())
    assert bad.verdict == "invalid" and "node1" in bad.message and "bad pow at 7" in bad.message
    assert chains_valid(H().build()).verdict == "unknown"


# ---- event_seen ------------------------------------------------------------------------------

def skewed_rejects() -> H:
    return (H().node("node0").at(1).chain("a1")
            .node("node1").event("block_rejected", t=2, hash="f1", peer="p",
                                 reason="timestamp 40s in the future"))


def test_event_seen_three_answers():
    history = skewed_rejects().build()
    found = event_seen(history, "block_rejected", contains="in the future")
    assert found.verdict == "valid" and found.evidence["matches"][0]["node"] == "node1"
    assert event_seen(history, "block_rejected", contains="bad pow").verdict == "invalid"
    assert event_seen(history, "block_rejected", node="node0").verdict == "invalid"
    assert event_seen(history, "block_rejected", node="node7").verdict == "unknown"
    assert event_seen([], "block_rejected").verdict == "unknown"


# ---- scenario specs --------------------------------------------------------------------------

def test_every_check_has_a_spec_form():
    history = split_and_heal().build()
    specs = [{"converged_within": 30}, {"converged_within": {"seconds": 3, "after": "last_fault"}},
             {"max_reorg_depth": 3}, {"max_reorg_depth": {"k": 0, "honest_only": False}},
             {"no_conflicting_finality": True}, {"no_finalized_block_reverted": True},
             {"finality_resumed_within": 40},
             {"tx_final": "pay1"}, {"tx_final": {"tx": "pay1", "confirmations": 2}},
             {"tx_reversed": "pay1"}, {"chains_valid": True},
             {"event_seen": {"type": "block_rejected", "contains": "in the future"}},
             {"finality_during_partition": [0, 1]}, {"no_finality_during_partition": True},
             {"slashed_everywhere": {"validator": 5, "within": 20}},
             {"stored_blocks_kept": True}, {"no_honest_slashing": True},
             {"no_conflicting_lib": True}, {"no_irreversible_block_reverted": True},
             {"lib_advanced_during_partition": [0]}, {"lib_stalled_during_partition": True},
             {"lib_resumed_within": 30}, {"missed_after_schedule_change": 2}]
    assert {next(iter(s)) for s in specs} == set(CHECKS)
    for spec in specs:
        validate_check_spec(spec)
        result = check_from_spec(history, spec)
        assert result.name == next(iter(spec))
        assert_json(result)


def test_check_from_spec_with_expect():
    history = reorgs(honest_depth=3).build()
    result = check_from_spec(history, {"max_reorg_depth": 2, "expect": "invalid"})
    assert (result.verdict, result.expected, result.passed) == ("invalid", "invalid", True)
    assert assert_json(result)["expected"] == "invalid"
    assert not check_from_spec(history, {"max_reorg_depth": 5, "expect": "invalid"}).passed
    plain = check_from_spec(history, {"max_reorg_depth": 2})
    assert plain.expected is None and not plain.passed and "expected" not in plain.to_json()


def test_check_from_spec_passes_arguments():
    spec = {"tx_final": {"tx": "pay1", "confirmations": 3}}
    assert check_from_spec(payments().build(), spec).evidence["min_confirmations"] == 3
    result = check_from_spec(split_and_heal().build(), {"max_reorg_depth": {"k": 0}})
    assert result.verdict == "invalid"


@pytest.mark.parametrize("spec, field", [
    ([("converged_within", 3)], "mapping"),
    ({"converge_within": 30}, "converge_within"),
    ({}, "exactly one"),
    ({"converged_within": 3, "chains_valid": True}, "exactly one"),
    ({"chains_valid": True, "expect": "pass"}, "expect"),
    ({"converged_within": -1}, "converged_within"),
    ({"converged_within": "30"}, "converged_within"),
    ({"converged_within": True}, "converged_within"),
    ({"converged_within": {"seconds": 5, "after": "later"}}, "converged_within.after"),
    ({"converged_within": {"after": "last_heal"}}, "'seconds'"),
    ({"finality_resumed_within": {"seconds": 5, "until": 3}}, "'until'"),
    ({"max_reorg_depth": 1.5}, "max_reorg_depth"),
    ({"max_reorg_depth": -1}, "max_reorg_depth"),
    ({"max_reorg_depth": {"k": 1, "honest_only": "yes"}}, "max_reorg_depth.honest_only"),
    ({"tx_final": {"tx": "pay1", "confirmations": 0}}, "tx_final.confirmations"),
    ({"tx_final": {"confirmations": 2}}, "'tx'"),
    ({"tx_final": ""}, "tx_final"),
    ({"tx_reversed": {"tx": "pay1", "confirmations": 2}}, "'confirmations'"),
    ({"no_conflicting_finality": False}, "no_conflicting_finality"),
    ({"chains_valid": "yes"}, "chains_valid"),
    ({"event_seen": "block_rejected"}, "event_seen"),
    ({"event_seen": {"contains": "x"}}, "'type'"),
    ({"event_seen": {"type": "reorg", "contains": 3}}, "event_seen.contains"),
])
def test_validate_check_spec_names_the_bad_field(spec, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        validate_check_spec(spec)
    with pytest.raises(ValueError):
        check_from_spec([], spec)


# ---- properties ------------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(depths=st.lists(st.tuples(st.sampled_from(["node0", "node1", "node2"]),
                                 st.integers(1, 8)), max_size=12),
       k=st.integers(0, 8))
def test_max_reorg_depth_judges_exactly_the_honest_depths(depths, k):
    h = H().roles(roles={"node2": "selfish"}).node("node0").node("node1").node("node2")
    for t, (node, depth) in enumerate(depths, start=1):
        h.node(node).reorg("x", "y", depth, t=t)
    honest = [d for n, d in depths if n != "node2"]
    result = max_reorg_depth(h.build(), k)
    assert result.verdict == ("invalid" if max(honest, default=0) > k else "valid")
    assert result.evidence["max_depth"] == max(honest, default=0)
