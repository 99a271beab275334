"""The crash campaign's kill plan: a value drawn from a seed, the same every time."""

from __future__ import annotations

import pytest

from testnet.errors import CampaignError
from testnet.faults.kill_schedule import kill_schedule, largest_minority


def test_the_same_seed_gives_the_same_plan_and_another_seed_another():
    assert kill_schedule(7, 50, 5) == kill_schedule(7, 50, 5)
    assert kill_schedule(7, 50, 5) != kill_schedule(8, 50, 5)


def test_rounds_kill_one_node_or_the_largest_minority():
    rounds = kill_schedule(3, 400, 5, minority_share=0.2)
    assert [r.index for r in rounds] == list(range(1, 401))
    for r in rounds:
        assert len(r.nodes) == (2 if r.minority else 1)
        assert len(set(r.nodes)) == len(r.nodes) and all(0 <= n < 5 for n in r.nodes)
        assert 0 <= r.lead_blocks <= 1 and 0 <= r.down_blocks <= 2 and 0 <= r.delay_s <= 1.0
    share = sum(r.minority for r in rounds) / len(rounds)
    assert 0.1 < share < 0.3
    assert {n for r in rounds for n in r.nodes} == set(range(5))


def test_no_minority_rounds_when_the_share_is_zero():
    assert not any(r.minority for r in kill_schedule(1, 100, 7, minority_share=0))


@pytest.mark.parametrize(("nodes", "minority"), [(2, 0), (3, 1), (4, 1), (5, 2), (8, 3), (9, 4)])
def test_largest_minority_is_fewer_than_half(nodes, minority):
    assert largest_minority(nodes) == minority


@pytest.mark.parametrize("nodes", [2, 3, 4])
def test_below_five_nodes_a_minority_round_is_a_single_kill(nodes):
    rounds = kill_schedule(2, 50, nodes, minority_share=1.0)
    assert all(len(r.nodes) == 1 and not r.minority for r in rounds)


def test_plans_that_cannot_run_are_refused_naming_the_option():
    with pytest.raises(CampaignError, match="nodes"):
        kill_schedule(1, 10, 1)
    with pytest.raises(CampaignError, match="kills"):
        kill_schedule(1, 0, 4)
    with pytest.raises(CampaignError, match="minority_share"):
        kill_schedule(1, 10, 4, minority_share=1.5)


def test_a_round_is_plain_json():
    round_ = kill_schedule(1, 1, 4)[0]
    assert set(round_.to_json()) == {"round", "nodes", "minority", "lead_blocks", "delay_s",
                                     "down_blocks"}
