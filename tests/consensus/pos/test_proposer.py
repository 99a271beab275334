"""Stake-weighted proposer selection and attestation duties.

Frequencies are checked over 20_000 synthetic seeds against stake shares: each validator's count
must be within 5 standard deviations of its binomial expectation, and the whole distribution must
pass a chi-square test at p = 0.001. Seeds are fixed, so the test is deterministic.
"""

from __future__ import annotations

import math

import pytest

from consensus.pos.committees import get_attester_slots, get_attesters
from consensus.pos.proposer import compute_proposer_index, get_beacon_proposer_index
from consensus.pos.spec import initialize_genesis
from consensus.pos.transition import process_slots
from consensus.pos.types import sha256
from tests.consensus.pos.pos_steps import STAKE, make_spec

DRAWS = 20_000
CHI2_P001 = {4: 18.467, 7: 24.322}     # chi-square critical values at p = 0.001, by dof


def frequencies(indices, stakes, draws=DRAWS, salt=b""):
    counts = dict.fromkeys(indices, 0)
    for k in range(draws):
        counts[compute_proposer_index(indices, stakes, sha256(salt + b"seed %d" % k))] += 1
    return counts


@pytest.mark.parametrize("stakes", [
    [1, 2, 3, 4, 10],                                   # skewed
    [32, 32, 32, 32, 1],                                # one tiny stake
    [7, 1, 1, 1, 1, 1, 1, 50],                          # one whale
])
def test_empirical_frequencies_match_stake_shares(stakes):
    indices = list(range(len(stakes)))
    counts = frequencies(indices, [s * STAKE for s in stakes])
    total = sum(stakes)
    chi2 = 0.0
    for i, stake in zip(indices, stakes):
        p = stake / total
        expected = DRAWS * p
        sigma = math.sqrt(DRAWS * p * (1 - p))
        assert abs(counts[i] - expected) <= 5 * sigma, (i, counts[i], expected)
        chi2 += (counts[i] - expected) ** 2 / expected
    assert chi2 < CHI2_P001[len(stakes) - 1], chi2


def test_uniform_choice_would_fail_the_frequency_check():
    """The check has teeth: ignoring stake (all equal) is far from the skewed shares."""
    counts = frequencies(list(range(5)), [STAKE] * 5)
    shares = [1 / 20, 2 / 20, 3 / 20, 4 / 20, 10 / 20]
    chi2 = sum((counts[i] - DRAWS * p) ** 2 / (DRAWS * p) for i, p in enumerate(shares))
    assert chi2 > CHI2_P001[4]


def test_selection_is_deterministic_for_a_seed():
    indices, stakes = [3, 5, 8, 13], [STAKE, 2 * STAKE, STAKE, 4 * STAKE]
    first = [compute_proposer_index(indices, stakes, sha256(b"%d" % k)) for k in range(200)]
    again = [compute_proposer_index(indices, stakes, sha256(b"%d" % k)) for k in range(200)]
    assert first == again
    assert set(first) <= set(indices) and len(set(first)) > 1


def test_zero_stake_is_never_chosen_and_no_stake_is_an_error():
    counts = frequencies([0, 1, 2], [STAKE, 0, STAKE], draws=2000)
    assert counts[1] == 0
    with pytest.raises(ValueError):
        compute_proposer_index([0, 1], [0, 0], sha256(b"x"))
    with pytest.raises(ValueError):
        compute_proposer_index([], [], sha256(b"x"))


def test_state_proposer_is_deterministic_and_active():
    spec = make_spec(8, [STAKE * (i + 1) for i in range(8)])
    state, _ = initialize_genesis(spec)
    process_slots(state, spec.slots_per_epoch)                # epoch 1
    again, _ = initialize_genesis(spec)
    process_slots(again, spec.slots_per_epoch)
    for slot in range(spec.slots_per_epoch, 2 * spec.slots_per_epoch):
        assert get_beacon_proposer_index(state, slot) == get_beacon_proposer_index(again, slot)
    with pytest.raises(ValueError):
        get_beacon_proposer_index(state, 0)                   # another epoch


def test_every_active_validator_attests_once_per_epoch_spread_over_slots():
    spec = make_spec(20)
    state, _ = initialize_genesis(spec)
    duties = get_attester_slots(state, 0)
    assert sorted(duties) == list(range(20))
    per_slot = [len(get_attesters(state, s)) for s in range(spec.slots_per_epoch)]
    assert sum(per_slot) == 20 and max(per_slot) - min(per_slot) <= 1
    process_slots(state, 3 * spec.slots_per_epoch)
    assert dict(get_attester_slots(state, 3)) != {v: s + 24 for v, s in duties.items()}
