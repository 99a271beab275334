"""Vectors for the pure schedule rules: slot -> producer (EOSIO), missed slots, the LIB threshold
(Graphene's rule at "more than 2/3"), the election's ranking and tie-break."""

from __future__ import annotations

import pytest

from consensus.dpos.schedule import (
    compute_lib_height,
    count_missed_slots,
    elect_producers,
    get_irreversible_threshold,
    get_scheduled_producer,
    tally_votes,
)
from consensus.dpos.spec import PRESETS, DposSpec, spec_for_preset
from tests.consensus.dpos.dpos_steps import PRODUCERS, VOTERS

P = PRODUCERS


@pytest.mark.parametrize("producers, repetitions, slot, expected", [
    # default preset: 7 producers x 2 blocks
    (7, 2, 0, 0), (7, 2, 1, 0), (7, 2, 2, 1), (7, 2, 3, 1), (7, 2, 13, 6), (7, 2, 14, 0),
    (7, 2, 29, 0),
    # EOSIO: 21 producers x 12 blocks; a round is 252 slots
    (21, 12, 11, 0), (21, 12, 12, 1), (21, 12, 251, 20), (21, 12, 252, 0), (21, 12, 500, 20),
    # Graphene: one block each
    (21, 1, 20, 20), (21, 1, 21, 0),
])
def test_slot_to_producer(producers, repetitions, slot, expected):
    assert get_scheduled_producer(P[:producers], slot, repetitions) == P[expected]


@pytest.mark.parametrize("producers, threshold", [(1, 1), (3, 3), (4, 3), (7, 5), (21, 15),
                                                  (27, 19)])
def test_irreversible_threshold_is_more_than_two_thirds(producers, threshold):
    assert get_irreversible_threshold(producers) == threshold
    assert threshold * 3 > producers * 2 >= (threshold - 1) * 3


def test_lib_advances_with_15_of_21_producers_and_not_with_14():
    schedule = P[:21]
    fifteen = {p: 100 + i for i, p in enumerate(schedule[:15])}
    assert compute_lib_height(schedule, fifteen) == 100
    fourteen = {p: 100 + i for i, p in enumerate(schedule[:14])}
    fourteen[schedule[14]] = 40                      # the 15th last built on block 40
    assert compute_lib_height(schedule, fourteen) == 40


def test_lib_of_three_producers_with_one_down_stays_at_what_the_third_built_on():
    schedule = P[:3]
    assert compute_lib_height(schedule, {P[0]: 50, P[1]: 51}) == 0
    assert compute_lib_height(schedule, {P[0]: 50, P[1]: 51, P[2]: 9}) == 9


def test_missed_slots_are_charged_to_their_producers_whole_rounds_at_once():
    schedule = P[:3]
    assert count_missed_slots(schedule, 2, 1, 5) == {P[0]: 1, P[1]: 2, P[2]: 1}
    # three and a bit rounds of 6 slots: 3 * 2 each, then slots 19, 20 (P[0], P[1])
    assert count_missed_slots(schedule, 2, 1, 21) == {P[0]: 7, P[1]: 7, P[2]: 6}
    assert count_missed_slots(schedule, 2, 5, 5) == {}


def test_every_candidate_gets_the_voters_whole_stake():
    totals = tally_votes({VOTERS[0]: (P[0], P[1]), VOTERS[1]: (P[1],)},
                         {VOTERS[0]: 30, VOTERS[1]: 5})
    assert totals == {P[0]: 30, P[1]: 35}


def test_election_takes_the_top_by_votes_sorted_by_key():
    candidates = P[:6]
    totals = {P[5]: 50, P[4]: 40, P[0]: 30, P[1]: 1}
    assert elect_producers(candidates, totals, P[:3], 3) == tuple(sorted((P[5], P[4], P[0])))


def test_election_tie_keeps_a_sitting_producer_then_the_lower_key():
    newcomers = sorted(P[3:6])
    totals = dict.fromkeys(P[:6], 10)
    # all tied: the three sitting producers keep their seats
    assert set(elect_producers(P[:6], totals, P[:3], 3)) == set(P[:3])
    # one seat more than the sitting ones: the lowest-key newcomer takes it
    assert set(elect_producers(P[:6], totals, P[:3], 4)) == {*P[:3], newcomers[0]}


def test_election_never_ranks_a_slashed_candidate_nor_empties_the_schedule():
    assert P[0] not in elect_producers(P[:4], {P[0]: 99}, P[:3], 3, excluded=[P[0]])
    assert elect_producers([], {}, P[:3], 3) == tuple(P[:3])


def test_presets_are_genesis_parameters():
    assert PRESETS["eosio"] == {"producers": 21, "repetitions": 12, "slot_duration_ms": 500}
    spec = spec_for_preset("eosio", schedule=tuple(P[:21]))
    assert spec.round_slots == 252 and spec.election_interval == 252
    assert DposSpec.from_json(spec.to_json()) == spec
    other = spec_for_preset("default", schedule=tuple(P[:7]))
    assert other.genesis_block().root != spec.genesis_block().root
    with pytest.raises(ValueError, match="genesis names 7 producers"):
        spec_for_preset("eosio", schedule=tuple(P[:7]))
