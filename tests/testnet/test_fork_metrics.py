"""Fork metrics on a hand-built history whose numbers are worked out by hand."""

from __future__ import annotations

import json

import pytest

from testnet.checks.fork_metrics import final_head, fork_metrics, percentile
from tests.testnet.histories import H


def selfish_run() -> H:
    """Three nodes; node2 is "selfish". a1 (node0) and a2 (node1) reach everyone; b3 (node0) and
    c3 (node2) race at 3; a split at 4 lets node0 build b4 and node2 c4; after the heal at 6
    node2's c5 makes node0 and node1 reorg 2 deep; node0's c6 ends the run everywhere."""
    h = H().roles(roles={"node0": "honest", "node1": "honest", "node2": "selfish"},
                  hashrate={"node0": 5, "node1": 3, "node2": 2},
                  payout={"node0": "k0", "node1": "k1", "node2": "k2"}, t=0)
    h.node("node0").node("node1").node("node2")
    h.node("node0").block("a1", "g", miner="k0", t=1.0)
    h.node("node1").block("a1", "g", miner="k0", peer="p", t=1.2)
    h.node("node2").block("a1", "g", miner="k0", peer="p", t=1.5)
    h.node("node1").block("a2", "a1", miner="k1", t=2.0)
    h.node("node0").block("a2", "a1", miner="k1", peer="p", t=2.1)
    h.node("node2").block("a2", "a1", miner="k1", peer="p", t=2.4)
    h.node("node0").block("b3", "a2", miner="k0", t=3.0)
    h.node("node2").block("c3", "a2", miner="k2", t=3.0)
    h.node("node1").block("b3", "a2", miner="k0", peer="p", t=3.2)
    h.node("node0").block("c3", "a2", miner="k2", peer="p", main=False, t=3.3)
    h.node("node2").block("b3", "a2", miner="k0", peer="p", main=False, t=3.3)
    h.node("node1").block("c3", "a2", miner="k2", peer="p", main=False, t=3.4)
    h.partition(["node0", "node1"], ["node2"], t=4)
    h.node("node2").block("c4", "c3", miner="k2", t=5.0)
    h.node("node0").block("b4", "b3", miner="k0", t=5.0)
    h.node("node1").block("b4", "b3", miner="k0", peer="p", t=5.2)
    h.heal(t=6)
    h.node("node2").block("c5", "c4", miner="k2", t=7.0)
    for node, t in (("node0", 7.5), ("node1", 7.8)):
        (h.node(node).block("c4", "c3", miner="k2", peer="p", main=False, t=t)
         .block("c5", "c4", miner="k2", peer="p", t=t).reorg("b4", "c5", 2, t=t, common="a2"))
    h.node("node0").block("c6", "c5", miner="k0", t=9.0)
    h.node("node1").block("c6", "c5", miner="k0", peer="p", t=9.1)
    h.node("node2").block("c6", "c5", miner="k0", peer="p", t=9.3)
    return h.at(10).final("node0", "c6").final("node1", "c6").final("node2", "c6")


@pytest.fixture(scope="module")
def metrics() -> dict:
    return fork_metrics(selfish_run().build())


def test_metrics_are_json(metrics):
    assert json.loads(json.dumps(metrics)) == metrics


def test_reorgs(metrics):
    assert metrics["reorgs"] == {
        "total": 2, "max_depth": 2, "depth_distribution": {"2": 2},
        "per_node": {"node0": {"count": 1, "depth_histogram": {"2": 1}},
                     "node1": {"count": 1, "depth_histogram": {"2": 1}},
                     "node2": {"count": 0, "depth_histogram": {}}}}


def test_blocks_against_the_final_main_chain(metrics):
    blocks = metrics["blocks"]
    assert (blocks["seen"], blocks["main_chain"], blocks["stale"]) == (8, 6, 2)
    assert blocks["stale_rate"] == 0.25
    assert blocks["stale_hashes"] == ["b3", "b4"]
    assert (blocks["final_head"], blocks["final_height"]) == ("c6", 6)
    assert blocks["final_head_nodes"] == ["node0", "node1", "node2"]
    assert blocks["main_chain_walk_complete"] is True


def test_convergence_after_each_heal(metrics):
    [after_heal] = metrics["convergence"]
    assert after_heal["heal_ts"] == 6.0 and after_heal["head"] == "c5"
    assert after_heal["convergence_s"] == pytest.approx(1.8)


def test_convergence_after_each_heal_until_the_next_fault():
    """Three heals: the first converges in 0.7 s; after the second a new partition comes before
    the nodes agree (None); after the third they agree 0.25 s later."""
    h = H().node("node0").node("node1")
    h.node("node0").block("a1", "g", t=1.0).node("node1").block("a1", "g", peer="p", t=1.2)
    h.partition(["node0"], ["node1"], t=2)
    h.node("node0").block("b2", "a1", t=2.5)
    h.node("node1").block("c2", "a1", t=2.6).block("c3", "c2", t=3.0)
    h.heal(t=4)
    (h.node("node0").block("c2", "a1", peer="p", main=False, t=4.7)
     .block("c3", "c2", peer="p", t=4.7).reorg("b2", "c3", 1, t=4.7, common="a1"))
    h.partition(["node0"], ["node1"], t=5)
    h.node("node0").block("d4", "c3", t=5.5).node("node1").block("e4", "c3", t=5.6)
    h.heal(t=6).partition(["node0"], ["node1"], t=6.5).heal(t=7)
    h.node("node0").block("d5", "d4", t=7.1)
    (h.node("node1").block("d4", "c3", peer="p", main=False, t=7.25)
     .block("d5", "d4", peer="p", t=7.25).reorg("e4", "d5", 1, t=7.25, common="c3"))
    h.at(8).final("node0", "d5").final("node1", "d5")
    heals = fork_metrics(h.build())["convergence"]
    assert [(c["heal_ts"], c["head"]) for c in heals] == [(4.0, "c3"), (6.0, None), (7.0, "d5")]
    assert heals[0]["convergence_s"] == pytest.approx(0.7)
    assert heals[1]["convergence_s"] is None
    assert heals[2]["convergence_s"] == pytest.approx(0.25)


def test_a_heal_the_nodes_echo_is_still_one_heal():
    h = selfish_run()
    for node in ("node0", "node1", "node2"):
        h.node(node).echo("fault_cleared", "heal", t=6.0)
    [after_heal] = fork_metrics(h.build())["convergence"]
    assert after_heal["convergence_s"] == pytest.approx(1.8)


def test_reorg_depth_distribution_per_node():
    h = (H().node("node0").reorg("x", "y", 1, t=1).reorg("y", "z", 3, t=2)
         .node("node1").reorg("x", "y", 1, t=3).node("node2"))
    assert fork_metrics(h.build())["reorgs"] == {
        "total": 3, "max_depth": 3, "depth_distribution": {"1": 2, "3": 1},
        "per_node": {"node0": {"count": 2, "depth_histogram": {"1": 1, "3": 1}},
                     "node1": {"count": 1, "depth_histogram": {"1": 1}},
                     "node2": {"count": 0, "depth_histogram": {}}}}


def test_propagation_over_blocks_every_up_node_accepted(metrics):
    # a1 500, a2 400, b3 300, c3 400, c4 2800, c5 800, c6 300 ms; b4 never reached node2.
    prop = metrics["propagation"]
    assert prop["blocks"] == 7
    assert prop["p50_ms"] == pytest.approx(400)
    assert prop["p95_ms"] == pytest.approx(2800)
    assert prop["max_ms"] == pytest.approx(2800)
    assert prop["excluded_skewed_nodes"] == []


def test_propagation_leaves_out_skewed_nodes():
    h = selfish_run().nemesis("fault_applied", "skew", ["node2"], t=0.5, offset_s=30)
    prop = fork_metrics(h.build())["propagation"]
    # Over node0 and node1 only: a1 200, a2 100, b3 200, c3 100, b4 200, c4 300, c5 300, c6 100.
    assert prop["blocks"] == 8 and prop["excluded_skewed_nodes"] == ["node2"]
    assert prop["p50_ms"] == pytest.approx(200) and prop["p95_ms"] == pytest.approx(300)


def test_miner_shares_against_hashrate(metrics):
    miners = metrics["miners"]
    assert set(miners) == {"node0", "node1", "node2"}
    # Main chain: a1 node0, a2 node1, c3 c4 c5 node2, c6 node0.
    expected = {"node0": (2, 2, 0.5), "node1": (1, 0, 0.3), "node2": (3, 0, 0.2)}
    for node, (won, lost, rate) in expected.items():
        m = miners[node]
        assert (m["main_chain_blocks"], m["stale_blocks"]) == (won, lost)
        assert m["block_share"] == m["revenue_share"] == pytest.approx(won / 6)
        assert m["hashrate_share"] == pytest.approx(rate)


def test_finality_is_skipped_cleanly_on_pow(metrics):
    assert metrics["finality"] == {"checkpoints": 0, "finalized_blocks": 0, "p50_s": None,
                                   "p95_s": None, "max_s": None}


def test_time_to_finality():
    h = (H().node("node0").at(1).chain("a1", "a2", "a3", "a4")
         .node("node1").block("a1", "g", peer="p", t=1.5)
         .node("node0").finalized(1, "a2", t=10).finalized(2, "a4", t=20)
         .node("node1").finalized(1, "a2", t=12))
    # a1 10-1, a2 10-2, a3 20-3, a4 20-4 (first acceptance anywhere, first finalization).
    assert fork_metrics(h.build())["finality"] == {
        "checkpoints": 2, "finalized_blocks": 4, "p50_s": 9.0, "p95_s": 17.0, "max_s": 17.0}


def test_final_head_is_the_majority_of_up_nodes():
    h = (H().node("node0").at(1).chain("a1", "a2").node("node1").at(1).chain("a1", "a2")
         .node("node2").at(1).chain("b1", "b2", "b3")
         .final("node0", "a2").final("node1", "a2").final("node2", "b3")
         .final("node3", "b3", up=False))
    assert final_head(h.build()) == ("a2", ["node0", "node1"])
    metrics = fork_metrics(h.build())
    assert metrics["blocks"]["stale"] == 3 and metrics["up_nodes"] == ["node0", "node1", "node2"]
    # Unmapped payout keys and no roles: miners are named by key, with no hashrate share.
    assert metrics["miners"]["k0"]["hashrate_share"] is None
    assert metrics["miners"]["k0"]["main_chain_blocks"] == 2


def test_blocks_mined_on_the_final_head_after_the_last_look_are_not_stale():
    """Nodes mine until stopped: d7 (on the final head c6) and d8 on it arrive after the final
    status; they are counted apart, while x7, on a branch that lost, stays stale."""
    h = selfish_run()
    h.node("node0").block("d7", "c6", miner="k0", t=10.5).block("d8", "d7", miner="k0", t=10.8)
    h.node("node2").block("x7", "c4", miner="k2", t=10.6)
    metrics = fork_metrics(h.build())
    blocks = metrics["blocks"]
    assert (blocks["seen"], blocks["main_chain"], blocks["stale"]) == (11, 6, 3)
    assert blocks["after_final_head"] == 2
    assert blocks["stale_hashes"] == ["b3", "b4", "x7"]
    assert blocks["stale_rate"] == 3 / 9
    assert metrics["miners"]["node0"]["stale_blocks"] == 2          # b3, b4; not d7, d8
    assert metrics["miners"]["node2"]["stale_blocks"] == 1          # x7


def test_empty_history():
    metrics = fork_metrics([])
    assert json.loads(json.dumps(metrics)) == metrics
    assert metrics["blocks"]["stale_rate"] is None and metrics["propagation"]["blocks"] == 0


@pytest.mark.parametrize("p, expected", [(0, 1), (50, 2), (51, 3), (95, 4), (100, 4)])
def test_percentile_is_nearest_rank(p, expected):
    assert percentile([4, 1, 3, 2], p) == expected
    assert percentile([], p) is None
