"""Grudges for every partition shape, built by pure functions (Jepsen's nemesis vocabulary)."""

from __future__ import annotations

import random

import pytest

from testnet.faults import grudge as g


def can_talk(grudge, a, b) -> bool:
    return b not in grudge[a] and a not in grudge[b]


def test_complete_groups_cut_exactly_the_cross_links():
    grudge = g.complete(5, g.parse_groups("0,1|2,3,4"))
    assert grudge == {0: {2, 3, 4}, 1: {2, 3, 4}, 2: {0, 1}, 3: {0, 1}, 4: {0, 1}}
    sym, one_way = g.link_blocks(grudge)
    assert one_way == set() and len(sym) == 6


def test_unlisted_nodes_form_their_own_group():
    grudge = g.complete(5, [[0], [1]])
    assert grudge[2] == {0, 1} and can_talk(grudge, 2, 4)


def test_isolate_one_node():
    grudge = g.isolate(4, 3)
    assert grudge[3] == {0, 1, 2}
    assert all(grudge[i] == {3} for i in range(3))


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8])
def test_halves_split_in_two_and_shuffle_with_a_seed(n):
    grudge = g.halves(n)
    sizes = sorted({len(v) for v in grudge.values()})
    assert sizes == sorted({n // 2, n - n // 2})
    assert g.halves(n, random.Random(1)) == g.halves(n, random.Random(1))


@pytest.mark.parametrize("n", [3, 4, 5, 7, 9])
def test_majorities_ring_every_node_sees_a_distinct_majority(n):
    grudge = g.majorities_ring(n, random.Random(n))
    visible = {i: frozenset(set(range(n)) - grudge[i]) for i in range(n)}
    assert all(len(v) > n / 2 for v in visible.values())
    if n >= 5:
        assert len(set(visible.values())) == n
    assert all(can_talk(grudge, a, b) == (b in visible[a]) for a in range(n) for b in range(n))


@pytest.mark.parametrize("n", [3, 5, 6])
def test_bridge_has_one_node_that_talks_to_both_sides(n):
    grudge = g.bridge(n)
    bridges = [i for i in range(n) if not grudge[i]]
    assert len(bridges) == 1
    sides = [i for i in range(n) if grudge[i]]
    for a in sides:
        assert grudge[a], "every side node is cut from the other side"
        assert all(not can_talk(grudge, a, b) for b in grudge[a])


def test_one_way_cut_is_asymmetric():
    grudge = g.one_way(4, g.parse_one_way("0>1"))
    assert grudge[1] == {0} and grudge[0] == set()
    sym, one_way = g.link_blocks(grudge)
    assert sym == set() and one_way == {(0, 1)}


@pytest.mark.parametrize("spec, message", [
    ("0,1|1,2", "appears in two groups"),
    ("0,9", "does not exist"),
    ({"one_way": "0-1"}, "look like 0>1"),
    ({"nonsense": 1}, "unknown partition kind"),
    ("0,1,2,3", "at least two"),
])
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(g.PartitionSpecError, match=message):
        g.from_spec(4, spec)
