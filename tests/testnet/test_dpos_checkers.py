"""DPoS irreversibility checkers on hand-built histories: LIBs that form one chain or conflict,
an irreversible block reverted, the LIB advancing on the majority side of a partition and stalling
on the minority side, and slots missed after a new schedule took effect."""

from __future__ import annotations

from testnet.checks.irreversibility import (
    lib_during_partition,
    lib_resumed_within,
    missed_after_schedule_change,
    no_conflicting_lib,
    no_irreversible_block_reverted,
)
from tests.testnet.histories import H


def lib(h: H, height: int, root: str, slot_ts: float) -> H:
    return h.event("lib_advanced", height=height, root=root, slot_start_ts=slot_ts)


def two_nodes_on_one_chain() -> H:
    h = H("dpos")
    for name in ("node0", "node1"):
        h.node(name).at(1).chain("a1", "a2", "a3", "a4", "a5")
    return h


def test_libs_on_one_chain_are_consistent_and_a_fork_below_them_is_caught():
    h = two_nodes_on_one_chain()
    lib(h.node("node0").at(6), 2, "a2", 2)
    lib(h.node("node1").at(6), 3, "a3", 3)
    assert no_conflicting_lib(h.build()).verdict == "valid"
    h.node("node1").at(7).block("b3", "a2", main=False)
    lib(h.at(8), 3, "b3", 7)
    result = no_conflicting_lib(h.build())
    assert result.verdict == "invalid" and "conflicting LIBs" in result.message


def test_a_reorg_across_the_lib_is_reported():
    h = two_nodes_on_one_chain()
    lib(h.node("node1").at(6), 3, "a3", 3)
    h.at(7).block("x3", "a2", main=False).block("x4", "x3", main=False).block("x5", "x4")
    h.block("x6", "x5")
    h.reorg("a5", "x6", 3, common="a2", reverted=["a5", "a4", "a3"], applied=["x3", "x4", "x5"])
    history = h.final("node0", "a5").final("node1", "x6").build()
    result = no_irreversible_block_reverted(history)
    assert result.verdict == "invalid" and "node1 reverted irreversible block" in result.message


def test_the_majority_side_advances_and_the_minority_side_stalls_during_a_partition():
    h = two_nodes_on_one_chain()
    h.at(10).partition(["node0"], ["node1"])
    lib(h.node("node0").at(12), 4, "a4", 11)           # made after the split: advanced
    lib(h.node("node1").at(12), 3, "a3", 9)            # made before the split: not new
    h.at(20).heal()
    lib(h.node("node1").at(21), 5, "a5", 13)
    history = h.final("node0", "a5").final("node1", "a5").build()
    assert lib_during_partition(history, ["node0"], expect=True).verdict == "valid"
    assert lib_during_partition(history, ["node1"], expect=False).verdict == "valid"
    assert lib_during_partition(history, ["node0"], expect=False).verdict == "invalid"
    resumed = lib_resumed_within(history, 5)
    assert resumed.verdict == "invalid" and "node0" in resumed.message
    lib(h.node("node0").at(22), 5, "a5", 13)
    assert lib_resumed_within(h.build(), 5).verdict == "valid"


def test_slots_missed_after_the_schedule_change_are_counted():
    h = H("dpos").node("node0").at(1)
    h.event("producer_missed", slot=8, producer="p3" * 32)
    h.event("schedule_changed", version=1, slot=20, producers=[])
    assert missed_after_schedule_change(h.build()).verdict == "valid"
    h.event("producer_missed", slot=22, producer="p1" * 32, t=3)
    assert missed_after_schedule_change(h.build()).verdict == "invalid"
    assert missed_after_schedule_change(h.build(), at_most=1).verdict == "valid"
