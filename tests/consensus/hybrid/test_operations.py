"""Gossip verdicts on votes, evidence, deposits and logouts (consensus-specs' conditions, decided
by type), the slashing detector, and mining templates that pack what applies."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consensus import keys
from consensus.errors import Violation
from consensus.hybrid.builder import make_vote
from consensus.hybrid.operations import Operations
from consensus.pos.signing import sign_deposit, sign_exit
from tests.consensus.chain_steps import ALICE_KEY
from tests.consensus.hybrid.hybrid_steps import (
    DEPOSIT,
    EPOCH,
    VALIDATOR_KEYS,
    add_connected,
    grow_to,
    mined_with_pool,
    new_chain,
    vote_in_next_epoch,
    votes_of,
)


@pytest.fixture
def ops() -> Operations:
    chain = new_chain(3)
    vote_in_next_epoch(chain, [0, 1, 2])
    grow_to(chain, 2 * EPOCH)                  # epoch 2 open: source 1 expected
    return Operations(chain)


def test_an_honest_vote_is_accepted_once(ops):
    (vote,) = votes_of(ops.chain, [0])
    assert ops.on_vote(vote).outcome == "accept"
    again = ops.on_vote(vote)
    assert (again.outcome, again.violation) == ("ignore", Violation.DUPLICATE)
    assert vote.root in ops.pool.votes


@pytest.mark.parametrize("spoil, verdict", [
    (lambda v: replace(v, signature=b"\x02" * 64), "reject"),         # forged
    (lambda v: replace(v, validator_index=7), "reject"),              # no such validator
    (lambda v: replace(v, target_epoch=9, source_epoch=1), "ignore"), # another time
    (lambda v: replace(v, target_hash=b"\x05" * 32), "reject"),       # re-signed below
])
def test_verdicts_by_type(ops, spoil, verdict):
    vote = spoil(votes_of(ops.chain, [1])[0])
    if vote.target_hash == b"\x05" * 32:           # another branch's checkpoint, well signed
        vote = replace(vote, signature=keys.sign(VALIDATOR_KEYS[1], vote.signing_root))
        verdict = "ignore"
    assert ops.on_vote(vote).outcome == verdict


def test_a_double_vote_turns_into_evidence_and_a_block_slashes(ops):
    state = ops.next_state()
    first = make_vote(state, 2, VALIDATOR_KEYS[2])
    twin = make_vote(state, 2, VALIDATOR_KEYS[2], source_epoch=0)
    assert ops.on_vote(first).outcome == "accept"
    result = ops.on_vote(twin)
    assert (result.outcome, result.violation) == ("ignore", Violation.EQUIVOCATION)
    assert result.evidence is not None and result.evidence.kind == "double vote"
    assert twin.root not in ops.pool.votes
    block = mined_with_pool(ops.chain, ops.pool)
    assert block.casper.slashings == (result.evidence,)
    assert [v.validator_index for v in block.casper.votes] == [2]
    update = add_connected(ops.chain, block)
    assert [s.validator_index for s in update.slashed] == [2]


def test_a_surround_vote_turns_into_evidence(ops):
    chain = ops.chain
    vote_in_next_epoch(chain, [0, 1])                # epoch 2 justified: source 2 next
    grow_to(chain, 3 * EPOCH)
    earlier = make_vote(chain.next_state(), 2, VALIDATOR_KEYS[2])          # 2 -> 3
    ops.detector.record(earlier)
    grow_to(chain, 4 * EPOCH)
    surrounding = make_vote(ops.next_state(), 2, VALIDATOR_KEYS[2], source_epoch=0)  # 0 -> 4
    result = ops.on_vote(surrounding)
    assert result.evidence is not None and result.evidence.kind == "surround vote"


def test_templates_pack_votes_deposits_and_logouts_that_apply(ops):
    chain = ops.chain
    for vote in votes_of(chain, [0, 1, 2]):
        ops.on_vote(vote)
    newcomer = keys.public_key(keys.derive_private_key("hybrid-tests", "newcomer"))
    assert ops.on_deposit(sign_deposit(ALICE_KEY, newcomer, DEPOSIT, 0)).outcome == "accept"
    bad = sign_deposit(ALICE_KEY, newcomer, DEPOSIT, 5)
    assert ops.on_deposit(bad).violation is Violation.NONCE
    assert ops.on_exit(sign_exit(VALIDATOR_KEYS[0], 0, 2)).outcome == "accept"
    assert ops.on_exit(sign_exit(VALIDATOR_KEYS[0], 0, 9)).outcome == "reject"   # too early
    block = mined_with_pool(chain, ops.pool)
    assert (len(block.casper.votes), len(block.casper.deposits), len(block.casper.exits)) == \
        (3, 1, 1)
    add_connected(chain, block)
    assert chain.justified.epoch == 2 and chain.finalized.epoch == 1
    ops.on_new_head()
    assert mined_with_pool(chain, ops.pool).casper.votes == ()   # all included already


def test_stale_votes_leave_the_pool(ops):
    for vote in votes_of(ops.chain, [0]):
        ops.on_vote(vote)
    grow_to(ops.chain, 3 * EPOCH)
    ops.on_new_head()
    assert not ops.pool.votes
