"""Stake, unstake, candidate registration and votes (EOSIO's delegatebw, undelegatebw + refund,
regproducer, voteproducer), in blocks, and the election they feed: a new schedule takes effect
only once the block that proposed it is irreversible."""

from __future__ import annotations

from consensus import keys
from consensus.dpos.errors import Violation
from consensus.dpos.types import OpKind
from tests.consensus.dpos.dpos_steps import (
    PRODUCERS,
    STAKE,
    VOTER_KEYS,
    VOTERS,
    new_chain,
    produce,
    produce_round,
    sign_op,
    vote,
)

P = PRODUCERS


def offer(chain, key, kind, **fields):
    op = sign_op(key, kind, chain.ledger.nonce(keys.public_key(key)), **fields)
    return chain.on_operation(op)


def include(chain):
    """The next scheduled producer packs the pooled operations."""
    return produce(chain, chain.head.slot + 1)


def test_a_vote_names_registered_candidates_and_a_new_vote_replaces_it():
    chain = new_chain()
    vote(chain, 0, [P[0], P[1]])
    include(chain)
    assert chain.state.votes[VOTERS[0]] == (P[0], P[1])
    assert chain.state.vote_totals() == {P[0]: STAKE, P[1]: STAKE}
    vote(chain, 0, [P[2]])
    include(chain)
    assert chain.state.votes[VOTERS[0]] == (P[2],)
    assert chain.state.vote_totals() == {P[2]: STAKE}


def test_vote_rules_refuse_with_the_reason():
    chain = new_chain(candidates=25)              # 32 registered candidates
    cases = [
        (P[:31], "at most 30"),
        ([P[0], P[0]], "named twice"),
        ([keys.public_key(b"\x07" * 32)], "not a registered candidate"),
    ]
    for candidates, reason in cases:
        result = offer(chain, VOTER_KEYS[0], OpKind.VOTE, candidates=candidates)
        assert result.outcome == "reject" and reason in result.reason
    assert offer(chain, VOTER_KEYS[0], OpKind.VOTE, candidates=P[:30]).outcome == "accept"
    unstaked = keys.derive_private_key("dpos-tests", "nobody")
    result = offer(chain, unstaked, OpKind.VOTE, candidates=[P[0]])
    assert result.outcome == "reject" and "without stake" in result.reason


def test_an_operation_with_a_bad_signature_or_a_stale_nonce_is_refused():
    chain = new_chain()
    op = sign_op(VOTER_KEYS[1], OpKind.VOTE, 0, candidates=[P[0]])
    forged = type(op)(op.kind, VOTERS[0], 0, 0, op.candidates, op.signature)
    assert chain.on_operation(forged).violation is Violation.BAD_SIGNATURE
    stale = sign_op(VOTER_KEYS[0], OpKind.VOTE, 5, candidates=[P[0]])
    assert chain.on_operation(stale).violation is Violation.NONCE


def test_registration_makes_a_candidate():
    chain = new_chain()
    newcomer = keys.derive_private_key("dpos-tests", "newcomer")
    assert offer(chain, newcomer, OpKind.REGISTER).outcome == "accept"
    include(chain)
    assert keys.public_key(newcomer) in chain.state.candidates


def test_stake_is_locked_while_voting_and_unstaked_coins_return_after_the_delay():
    chain = new_chain(unstake_delay_slots=10)
    voter, key = VOTERS[0], VOTER_KEYS[0]
    balance = chain.ledger.balance(voter)
    assert offer(chain, key, OpKind.STAKE, amount=5).outcome == "accept"
    include(chain)
    assert chain.state.stakes[voter] == STAKE + 5 and chain.ledger.balance(voter) == balance - 5
    vote(chain, 0, [P[0]])
    include(chain)
    result = offer(chain, key, OpKind.UNSTAKE, amount=5)
    assert result.outcome == "reject" and "locked while the account votes" in result.reason
    vote(chain, 0, [])                              # withdraw the vote
    include(chain)
    assert offer(chain, key, OpKind.UNSTAKE, amount=5).outcome == "accept"
    unstaked_at = include(chain)
    assert chain.state.stakes[voter] == STAKE
    assert chain.ledger.balance(voter) == balance - 5       # not yet back
    slot = chain.head.slot
    assert unstaked_at.results[0].outcome == "connected"
    while chain.head.slot < slot + 10:
        include(chain)
    assert chain.ledger.balance(voter) == balance


def test_new_schedule_takes_effect_only_once_its_proposing_block_is_irreversible():
    chain = new_chain(candidates=1)             # 7 producers x 2; P[7] waits as a candidate
    elected = [*P[:6], P[7]]                    # the voters drop P[6] for P[7]
    vote(chain, 0, elected)
    vote(chain, 1, elected)
    include(chain)
    while chain.head.height % chain.spec.election_interval:
        include(chain)
    proposing = chain.head
    state = chain.state
    assert state.pending_schedule == tuple(sorted(elected))
    assert state.pending_height == proposing.height
    assert P[6] in state.schedule and state.schedule_version == 0
    versions = []
    while chain.lib.height < proposing.height:
        assert chain.state.schedule_version == 0
        update = include(chain)
        versions.append(update.schedule_changed)
    assert versions[-1] == (1, tuple(sorted(elected)))
    assert P[6] not in chain.state.schedule and P[7] in chain.state.schedule
    produce_round(chain)
    assert chain.state.produced.get(P[7], 0) == chain.spec.repetitions


def test_time_weighted_votes_count_a_later_vote_more():
    chain = new_chain(candidates=2, vote_weight_doubling_slots=10)
    vote(chain, 0, [P[7]])                       # cast at slot 1
    include(chain)
    while chain.head.slot < 20:
        include(chain)
    vote(chain, 1, [P[8]])                       # same stake, cast ten or more slots later
    include(chain)
    totals = chain.state.vote_totals(chain.spec.vote_weight_doubling_slots)
    assert totals[P[8]] >= 2 * totals[P[7]] > 0
    assert chain.state.vote_totals() == {P[7]: STAKE, P[8]: STAKE}     # weighting off
    assert offer(chain, VOTER_KEYS[0], OpKind.STAKE, amount=1).outcome == "accept"
    include(chain)                               # staking more weighs the vote anew (EOSIO)
    assert chain.state.vote_slots[VOTERS[0]] == chain.head.slot
