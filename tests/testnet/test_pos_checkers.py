"""PoS checkers on hand-built histories: finality while partitioned, slashing everywhere."""

from __future__ import annotations

from testnet.checks.finality import finality_during_partition, slashed_everywhere
from tests.testnet.histories import H


def split_history(majority_finalizes: bool) -> list[dict]:
    h = H()
    for name in ("node0", "node1", "node2", "node3"):
        h.node(name).at(1).finalized(1, "c1")
    h.at(10).partition(["node0", "node1", "node2"], ["node3"])
    if majority_finalizes:
        for name in ("node0", "node1", "node2"):
            h.node(name).event("finalized", 20, epoch=2, root="c2", epoch_start_ts=12.0)
    h.at(40).heal()
    for name in ("node0", "node1", "node2", "node3"):
        h.final(name, "g")
    return h.build()


def test_majority_keeps_finalizing_and_minority_does_not():
    history = split_history(majority_finalizes=True)
    assert finality_during_partition(history, ["node0", "node1", "node2"]).verdict == "valid"
    assert finality_during_partition(history, ["node3"], expect=False).verdict == "valid"
    both = finality_during_partition(history, None, expect=False)
    assert both.verdict == "invalid" and "node0" in both.message


def test_a_stalled_majority_is_reported():
    history = split_history(majority_finalizes=False)
    result = finality_during_partition(history, ["node0"])
    assert result.verdict == "invalid" and "finalized nothing new" in result.message


def test_finality_of_an_epoch_that_began_before_the_split_is_not_new_for_the_no_finality_check():
    h = H().node("node0").at(1).finalized(1, "c1").at(10).partition(["node0"], ["node1"])
    h.node("node0").event("finalized", 15, epoch=2, root="c2", epoch_start_ts=8.0)
    h.at(30).heal().final("node0", "g").final("node1", "g")
    assert finality_during_partition(h.build(), ["node0"], expect=False).verdict == "valid"


def test_no_partition_is_unknown():
    history = H().node("node0").at(1).finalized(1, "c1").final("node0", "g").build()
    assert finality_during_partition(history).verdict == "unknown"


def test_slashed_everywhere_in_time_late_and_missing():
    def history(delays: dict[str, float | None]) -> list[dict]:
        h = H()
        for name in delays:
            h.node(name).at(0)
        h.nemesis("fault_applied", "role", ["node1"], 5.0, role="double-vote", validator=5)
        for name, delay in delays.items():
            if delay is not None:
                h.node(name).slashed(5, t=5.0 + delay)
            h.final(name, "g", t=60)
        return h.build()
    assert slashed_everywhere(history({"node0": 3, "node1": 4}), 5, 16).verdict == "valid"
    late = slashed_everywhere(history({"node0": 3, "node1": 30}), 5, 16)
    assert late.verdict == "invalid" and "node1" in late.message
    missing = slashed_everywhere(history({"node0": 3, "node1": None}), 5, 16)
    assert missing.verdict == "invalid" and "node1" in missing.message
