"""Slashing (EIP-1011 `slashable` and `slash`), with the contract's own test cases
(ethereum/casper tests/test_slashing.py): an identical vote is not slashable; two votes of
different validators are not; a slashed validator cannot be slashed again, nor one whose start
dynasty has not come; a double vote and a surround vote (both orders) are, and then the offender
is slashed, logged out at the next dynasty, its deposit counted in total_slashed, and the reporter
(here: the miner who included the evidence) paid deposit / 25."""

from __future__ import annotations

import pytest

from consensus import keys
from consensus.hybrid.casper import FULL_CHECKS, validate_slashing
from consensus.hybrid.errors import InvalidEvidence
from consensus.hybrid.operations import CasperPool
from consensus.hybrid.spec import SLASH_BOUNTY_QUOTIENT
from consensus.hybrid.types import CasperBody, HybridVote, VoteSlashing
from consensus.pos.signing import sign_deposit
from tests.consensus.chain_steps import ALICE_KEY, MINER_B
from tests.consensus.hybrid.hybrid_steps import (
    DEPOSIT,
    EPOCH,
    VALIDATOR_KEYS,
    add,
    add_connected,
    grow,
    mine_body,
    mined_with_pool,
    new_chain,
    vote_in_next_epoch,
)


def signed(index: int, target_epoch: int, source_epoch: int, target: bytes = b"\x11" * 32
           ) -> HybridVote:
    unsigned = HybridVote(index, target, target_epoch, source_epoch)
    return HybridVote(index, target, target_epoch, source_epoch,
                      keys.sign(VALIDATOR_KEYS[index], unsigned.signing_root))


@pytest.fixture
def chain():
    chain = new_chain(3)
    vote_in_next_epoch(chain, [0, 1, 2])
    vote_in_next_epoch(chain, [0, 1, 2])
    return chain


def test_identical_votes_are_not_slashable(chain):
    vote = signed(0, 2, 1)
    with pytest.raises(InvalidEvidence, match="same vote"):
        validate_slashing(chain.state, VoteSlashing(vote, vote), FULL_CHECKS)


def test_votes_of_different_validators_are_not_slashable(chain):
    with pytest.raises(InvalidEvidence, match="different validators"):
        validate_slashing(chain.state, VoteSlashing(signed(0, 2, 1), signed(1, 2, 0)),
                          FULL_CHECKS)


@pytest.mark.parametrize("first, second, kind", [
    ((2, 1), (2, 0), "double vote"),                # same target epoch, another source
    ((2, 1, b"\x22" * 32), (2, 1), "double vote"),  # same epoch, another target hash
    ((3, 0), (2, 1), "surround vote"),              # 0 -> 3 surrounds 1 -> 2
    ((2, 1), (3, 0), "surround vote"),              # and the other way round
])
def test_double_and_surround_votes_are_slashable(chain, first, second, kind):
    evidence = VoteSlashing(signed(0, *first), signed(0, *second))
    validate_slashing(chain.state, evidence, FULL_CHECKS)
    assert evidence.kind == kind


@pytest.mark.parametrize("first, second", [((2, 1), (3, 2)), ((3, 1), (4, 2))])
def test_votes_that_neither_repeat_nor_surround_are_not_slashable(chain, first, second):
    with pytest.raises(InvalidEvidence, match="neither"):
        validate_slashing(chain.state, VoteSlashing(signed(0, *first), signed(0, *second)),
                          FULL_CHECKS)


def test_a_forged_vote_proves_nothing(chain):
    forged = HybridVote(0, b"\x11" * 32, 2, 0, b"\x01" * 64)
    with pytest.raises(InvalidEvidence, match="signature"):
        validate_slashing(chain.state, VoteSlashing(signed(0, 2, 1), forged), FULL_CHECKS)


def test_the_offender_is_slashed_logged_out_and_the_reporter_paid(chain):
    state = chain.state
    deposit = state.validators[1].deposit
    before = chain.ledger.balance(MINER_B)
    evidence = VoteSlashing(signed(1, 2, 1), signed(1, 2, 0))
    update = add_connected(chain, mine_body(chain, CasperBody(slashings=(evidence,)),
                                            miner=MINER_B))
    after = chain.state
    offender = after.validators[1]
    assert offender.slashed and offender.end_dynasty == state.dynasty + 1
    assert after.slashed_at(after.epoch) == deposit
    reward = chain.spec.block_reward
    assert chain.ledger.balance(MINER_B) - before == reward + deposit // SLASH_BOUNTY_QUOTIENT
    assert [(s.validator_index, s.reason) for s in update.slashed] == [(1, "double vote")]
    with pytest.raises(InvalidEvidence, match="already slashed"):   # test_double_slash_fails
        validate_slashing(after, VoteSlashing(signed(1, 3, 0), signed(1, 3, 2)), FULL_CHECKS)


def test_a_block_with_evidence_for_a_slashed_validator_is_invalid(chain):
    evidence = VoteSlashing(signed(1, 2, 1), signed(1, 2, 0))
    add_connected(chain, mine_body(chain, CasperBody(slashings=(evidence,))))
    again = VoteSlashing(signed(1, 3, 1), signed(1, 3, 0))
    update = add(chain, mine_body(chain, CasperBody(slashings=(again,))))
    assert update.results[0].outcome == "invalidated"
    assert "already slashed" in update.results[0].reason


def test_a_validator_before_its_start_dynasty_cannot_be_slashed(chain):
    newcomer = keys.derive_private_key("hybrid-tests", "newcomer")
    deposit = sign_deposit(ALICE_KEY, keys.public_key(newcomer), DEPOSIT, 0)
    add_connected(chain, mine_body(chain, CasperBody(deposits=(deposit,))))
    index = len(chain.state.validators) - 1
    unsigned = [HybridVote(index, b"\x11" * 32, 5, s) for s in (3, 4)]
    votes = [HybridVote(v.validator_index, v.target_hash, 5, v.source_epoch,
                        keys.sign(newcomer, v.signing_root)) for v in unsigned]
    with pytest.raises(InvalidEvidence, match="starts at dynasty"):
        validate_slashing(chain.state, VoteSlashing(*votes), FULL_CHECKS)


def test_a_slashed_offender_withdraws_less_than_its_deposit(chain):
    """Proportional slashing at withdrawal: 1 of 3 equal deposits slashed alone keeps
    1 - 3 * (1/3) = 0 of it (EIP-1011 `withdraw`)."""
    pool = CasperPool()
    evidence = VoteSlashing(signed(2, 3, 2), signed(2, 3, 1))
    pool.evidence.put(evidence.root, evidence)
    add_connected(chain, mined_with_pool(chain, pool))
    assert chain.state.validators[2].slashed
    pubkey = chain.state.validators[2].pubkey
    for _ in range(12):                          # finalize on, so dynasties pass
        vote_in_next_epoch(chain, [0, 1])
        if chain.state.validators[2].withdrawn:
            break
    assert chain.state.validators[2].withdrawn
    assert chain.ledger.balance(pubkey) == 0
    grow(chain, EPOCH)
