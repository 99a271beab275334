"""Finality checkers and the side-by-side comparison on hand-built histories: a node never reverts
a block it finalized (a deeper reorg is refused, `reorg_refused`); the facts that tell a hybrid run
from a PoW run of the same 51% attack."""

from __future__ import annotations

from testnet.checks.finality import no_finalized_block_reverted
from testnet.checks.run_facts import run_facts
from testnet.report.compare import RunColumn, comparison_html, comparison_markdown
from tests.testnet.histories import H


def finalized_chain() -> H:
    """node0 mines a1..a5 and finalizes a3; node1 follows."""
    h = H()
    h.node("node0").at(1).chain("a1", "a2", "a3", "a4", "a5")
    h.node("node1").at(1).chain("a1", "a2", "a3", "a4", "a5", peer="node0")
    h.node("node0").at(7).finalized(1, "a3")
    h.node("node1").at(7).finalized(1, "a3")
    return h


def test_reorgs_above_the_finalized_checkpoint_are_fine():
    h = finalized_chain()
    h.node("node0").at(8).block("b5", "a4", main=False).block("b6", "b5")
    h.reorg("a5", "b6", 1, common="a4", reverted=["a5"], applied=["b5", "b6"])
    history = h.final("node0", "b6").final("node1", "a5").build()
    result = no_finalized_block_reverted(history)
    assert result.verdict == "valid", result.message


def test_a_reorg_across_the_finalized_checkpoint_is_reported():
    h = finalized_chain()
    h.node("node1").at(9).block("x3", "a2", main=False).block("x4", "x3", main=False)
    h.block("x5", "x4", main=False).block("x6", "x5")
    h.reorg("a5", "x6", 3, common="a2", reverted=["a5", "a4", "a3"], applied=["x3", "x4", "x5"])
    history = h.final("node0", "a5").final("node1", "x6").build()
    result = no_finalized_block_reverted(history)
    assert result.verdict == "invalid"
    assert "node1 reverted block a3 after finalizing epoch 1" in result.message


def test_refused_reorgs_are_counted_and_the_heads_keep_finality():
    h = finalized_chain()
    h.node("node0").at(9).block("x3", "a2", main=False).event(
        "reorg_refused", tip="x3", height=3, total_work="99", head_work="5", fork_height=2,
        finalized_epoch=1, finalized_root="a3", finalized_height=3, reason="...")
    history = h.final("node0", "a5").final("node1", "a5").build()
    result = no_finalized_block_reverted(history)
    assert result.verdict == "valid" and result.evidence["refused_reorgs"] == 1


def test_a_final_head_off_the_finalized_chain_is_reported():
    h = finalized_chain()
    h.node("node1").at(9).block("x3", "a2")
    history = h.final("node0", "a5").final("node1", "x3").build()
    assert no_finalized_block_reverted(history).verdict == "invalid"


def test_no_finality_is_unknown():
    history = H().node("node0").at(1).chain("a1").final("node0", "a1").build()
    assert no_finalized_block_reverted(history).verdict == "unknown"


def test_the_comparison_shows_each_run_in_its_column():
    h = finalized_chain()
    h.tx_sent("payment", "t1").tx_status("t1", "node0", True).tx_status("t1", "node1", True)
    history = h.final("node0", "a5").final("node1", "a5").build()
    for e in history:
        if e.get("what") == "tx_status":
            e["label"] = "payment"
    facts = run_facts(history, {"reorgs": {"total": 0, "max_depth": 0},
                                "finality": {"checkpoints": 1}, "blocks": {"stale": 0}})
    assert facts["tx payment"] == "in the main chain on 2 of 2 up nodes (final)"
    assert facts["finalized"].startswith("up to epoch 1")
    pow_facts = {"tx payment": "in the main chain on 0 of 2 up nodes (reverted)"}
    columns = [RunColumn("hybrid", "hybrid", True, "index.html",
                         [{"name": "tx_final", "verdict": "valid", "passed": True,
                           "message": "final"}], facts),
               RunColumn("pow", "pow", True, "variants/pow/index.html",
                         [{"name": "tx_reversed", "verdict": "valid", "passed": True,
                           "message": "reversed <b>"}], pow_facts)]
    text = comparison_markdown("attack", "same attack", columns)
    assert "| tx payment | in the main chain on 2 of 2 up nodes (final) | in the main chain on " \
           "0 of 2 up nodes (reverted) |" in text
    page = comparison_html("attack", "same attack", columns)
    assert "&lt;b&gt;" in page and "variants/pow/index.html" in page
