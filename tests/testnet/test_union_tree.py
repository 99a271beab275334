"""The union block tree from node events: branches, lanes, the canonical chain, heads and
checkpoints."""

from __future__ import annotations

from testnet.history.block_tree import UnionTree

GENESIS = "g" * 64


def accepted(node: str, block: str, parent: str, height: int, ts: float = 0.0) -> dict:
    return {"source": "node", "type": "block_accepted", "node": node, "hash": block,
            "parent": parent, "height": height, "ts": ts, "miner": "aa"}


def head(node: str, block: str, height: int) -> dict:
    return {"source": "node", "type": "head_changed", "node": node, "head": block,
            "height": height, "ts": 0.0}


def split_tree() -> UnionTree:
    """node0/node1 mine a1..a3, node2 mines b1..b2 on the same genesis; then node2 reorgs."""
    tree = UnionTree()
    prev = GENESIS
    for i in (1, 2, 3):
        for node in ("node0", "node1"):
            tree.on_event(accepted(node, f"a{i}", prev, i, ts=i))
            tree.on_event(head(node, f"a{i}", i))
        prev = f"a{i}"
    prev = GENESIS
    for i in (1, 2):
        tree.on_event(accepted("node2", f"b{i}", prev, i, ts=i + 0.5))
        tree.on_event(head("node2", f"b{i}", i))
        prev = f"b{i}"
    return tree


def test_two_branches_sit_on_two_lanes_until_one_wins():
    tree = split_tree()
    assert tree.best_head() == "a3", "two of three nodes are on a3"
    assert tree.canonical() == {"a1", "a2", "a3"}
    lanes = tree.lanes()
    assert {lanes[h] for h in ("a1", "a2", "a3")} == {0}
    assert lanes["b1"] == lanes["b2"] == 1
    tree.on_event({"source": "node", "type": "reorg", "node": "node2", "depth": 2, "ts": 4})
    for i in (1, 2, 3):
        tree.on_event(accepted("node2", f"a{i}", GENESIS if i == 1 else f"a{i - 1}", i, ts=4))
    tree.on_event(head("node2", "a3", 3))
    window = tree.window()
    stale = sorted(b["hash"] for b in window["blocks"] if not b["canonical"])
    assert stale == ["b1", "b2"]
    assert window["heads"] == {"node0": "a3", "node1": "a3", "node2": "a3"}
    assert window["reorgs"] == 1 and window["stale_blocks"] == 2
    a1 = next(b for b in window["blocks"] if b["hash"] == "a1")
    assert a1["seen_by"] == {"node0": 1, "node1": 1, "node2": 4}
    assert a1["first_seen"] == 1


def test_a_fork_of_a_fork_gets_its_own_lane():
    tree = split_tree()
    tree.on_event(accepted("node3", "c2", "b1", 2))
    lanes = tree.lanes()
    assert lanes["b1"] == 1
    assert lanes["c2"] not in (0, lanes["b2"])


def test_the_window_holds_only_its_heights():
    tree = UnionTree()
    prev = GENESIS
    for i in range(1, 501):
        tree.on_event(accepted("node0", f"{i:064x}", prev, i))
        prev = f"{i:064x}"
    tree.on_event(head("node0", prev, 500))
    latest = tree.window(size=50)
    assert (latest["bottom"], latest["top"]) == (451, 500)
    assert len(latest["blocks"]) == 50
    back = tree.window(top=100, size=50)
    assert [b["height"] for b in back["blocks"]] == list(range(51, 101))
    assert tree.window(size=10**9)["blocks"].__len__() == 500, "size is capped at 2000, not more"
    assert tree.window(top=-5, size=1)["top"] == 0


def test_checkpoints_and_unknown_events():
    tree = UnionTree()
    assert not tree.on_event({"type": "peer_connected", "node": "node0", "ts": 0})
    tree.on_event({"source": "node", "type": "finalized", "node": "node0", "epoch": 3,
                   "root": "r", "ts": 0})
    tree.on_event({"source": "node", "type": "justified", "node": "node0", "epoch": 4,
                   "root": "s", "ts": 0})
    window = tree.window()
    assert window["finalized"] == {"node0": {"epoch": 3, "root": "r"}}
    assert window["justified"] == {"node0": {"epoch": 4, "root": "s"}}
    assert window["blocks"] == [] and window["best_head"] is None
