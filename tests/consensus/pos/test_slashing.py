"""Slashable offences: the predicates, evidence found by a node, evidence processed in a block."""

from __future__ import annotations

from fractions import Fraction

import pytest

from consensus.pos.chain import PosChain
from consensus.pos.signing import sign_attestation
from consensus.pos.slashing import (
    SlashingProtection,
    is_double_vote,
    is_proposer_equivocation,
    is_slashable_attestation_pair,
    is_surround_vote,
    surrounds,
)
from consensus.pos.state import get_current_epoch, is_active_validator
from consensus.pos.types import (
    Attestation,
    AttesterSlashing,
    Checkpoint,
    PosBlockHeader,
    ProposerSlashing,
    sha256,
)
from tests.consensus.pos.pos_steps import (
    VALIDATOR_KEYS,
    Network,
    add_block,
    make_spec,
    propose,
    slot_time,
)


def cp(epoch: int) -> Checkpoint:
    return Checkpoint(epoch, sha256(b"checkpoint %d" % epoch))


def vote(source: int, target: int, head: bytes = b"\x01" * 32, validator: int = 7,
         slot: int | None = None) -> Attestation:
    slot = target * 8 if slot is None else slot
    return Attestation(slot, validator, head, cp(source), cp(target))


# ---- predicates ---------------------------------------------------------------------------------
def test_double_vote_is_two_different_votes_for_one_target_epoch():
    assert is_double_vote(vote(1, 3, b"\x01" * 32), vote(1, 3, b"\x02" * 32))
    assert is_double_vote(vote(1, 3), vote(2, 3))                    # different source
    assert is_slashable_attestation_pair(vote(1, 3, b"\x01" * 32), vote(1, 3, b"\x02" * 32))


def test_surround_vote_is_an_offence_whichever_way_round():
    outer, inner = vote(1, 4), vote(2, 3)
    assert surrounds(outer, inner) and not surrounds(inner, outer)
    assert is_surround_vote(outer, inner)          # 1 surrounds 2
    assert is_surround_vote(inner, outer)          # 2 surrounds 1
    assert is_slashable_attestation_pair(outer, inner)
    assert is_slashable_attestation_pair(inner, outer)


@pytest.mark.parametrize("a, b", [
    (vote(1, 3), vote(1, 3)),                      # the same vote twice
    (vote(1, 3), vote(2, 4)),                      # later source and target: no surround
    (vote(1, 3), vote(1, 4)),                      # same source: not strictly surrounded
    (vote(1, 4), vote(2, 4, b"\x01" * 32, validator=8)),   # different validators
    (vote(2, 4), vote(2, 3)),                      # same source
    (vote(1, 3), vote(3, 5)),                      # adjacent spans
])
def test_non_slashable_pairs(a, b):
    assert not is_slashable_attestation_pair(a, b)
    assert not is_slashable_attestation_pair(b, a)


def test_proposer_equivocation_needs_two_different_headers_same_slot_and_proposer():
    h = PosBlockHeader(5, 3, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32)
    other = PosBlockHeader(5, 3, b"\x01" * 32, b"\x02" * 32, b"\x04" * 32)
    assert is_proposer_equivocation(h, other)
    assert not is_proposer_equivocation(h, h)
    assert not is_proposer_equivocation(h, PosBlockHeader(6, 3, *h.to_list()[2:]))
    assert not is_proposer_equivocation(h, PosBlockHeader(5, 4, *other.to_list()[2:]))


def test_slashing_protection_refuses_offences_but_allows_re_signing():
    protection = SlashingProtection()
    first = vote(1, 3)
    assert protection.may_attest(first)
    protection.record_attestation(first)
    assert protection.may_attest(first)                       # the same vote again is harmless
    assert not protection.may_attest(vote(1, 3, b"\x02" * 32))
    assert not protection.may_attest(vote(0, 4))               # would surround
    assert protection.may_attest(vote(3, 4))
    assert protection.may_propose(7, 10)
    protection.record_proposal(7, 10)
    assert not protection.may_propose(7, 10)


# ---- evidence on a live chain -----------------------------------------------------------------
def running_chain(epochs: int = 4, **spec_overrides) -> Network:
    """One node running all 16 validators for a few epochs (so checkpoints are justified)."""
    net = Network(make_spec(16, **spec_overrides), [list(range(16))])
    net.run_epochs(epochs)
    return net


def next_proposal(net: Network, chain: PosChain):
    slot = net.slot + 1
    chain.on_tick(slot_time(chain.spec, slot))
    block = propose(chain, slot)
    net.slot = slot
    return block


def assert_slashed(chain: PosChain, before_stakes, offender: int, whistleblower: int, block):
    state = chain.get(block.root).state
    v = state.validators[offender]
    spec = chain.spec
    epoch = get_current_epoch(state)
    assert v.slashed and v.exit_epoch == epoch + 1
    penalty = v.effective_stake * spec.slash_fraction.numerator // spec.slash_fraction.denominator
    reward = v.effective_stake // spec.whistleblower_reward_quotient
    assert state.stakes[offender] == before_stakes[offender] - penalty
    if whistleblower != offender:
        assert state.stakes[whistleblower] == before_stakes[whistleblower] + reward
    assert not is_active_validator(v, epoch + 1)               # ejected


def test_double_proposal_is_detected_and_slashed():
    net = running_chain(3)
    chain = net.nodes[0].chain
    parent = chain.head.root
    block_1 = next_proposal(net, chain)
    proposer = block_1.proposer_index
    block_2 = propose(chain, block_1.slot, parent_root=chain.head.parent.root)   # another parent
    assert block_2.proposer_index == proposer and block_2.root != block_1.root
    add_block(chain, block_1)
    update = add_block(chain, block_2)
    assert update.results[0].outcome == "side"
    [evidence] = update.evidence
    assert isinstance(evidence, ProposerSlashing) and evidence.offender == proposer
    assert evidence.kind == "double proposal"
    assert proposer in chain.store.equivocating_indices
    before = list(chain.state.stakes)
    block = next_proposal(net, chain)
    if block.proposer_index == proposer:                       # a slashed-to-be may still propose
        block = next_proposal(net, chain)
    assert block.body.proposer_slashings == (evidence,)
    update = add_block(chain, block)
    assert update.results[0].outcome == "connected"
    assert [(s.validator_index, s.reason) for s in update.slashed] == \
        [(proposer, "double proposal")]
    assert_slashed(chain, before, proposer, block.proposer_index, block)
    assert parent in chain.store.blocks


def test_double_vote_seen_on_gossip_is_slashed():
    net = running_chain(3)
    chain = net.nodes[0].chain
    slot = net.slot + 1
    chain.on_tick(slot_time(chain.spec, slot, 0.5))
    offender = chain.get_attesters(slot)[0]
    honest = chain.make_attestation(slot, offender, VALIDATOR_KEYS[offender])
    assert chain.on_attestation(honest, slot_time(chain.spec, slot, 0.5)).accepted
    double = chain.make_attestation(slot, offender, VALIDATOR_KEYS[offender],
                                    head_root=chain.head.parent.root)
    result = chain.on_attestation(double, slot_time(chain.spec, slot, 0.6))
    assert result.outcome == "ignore"
    assert isinstance(result.evidence, AttesterSlashing) and result.evidence.kind == "double vote"
    net.slot = slot
    before = list(chain.state.stakes)
    block = next_proposal(net, chain)
    assert block.body.attester_slashings == (result.evidence,)
    update = add_block(chain, block)
    assert [s.validator_index for s in update.slashed] == [offender]
    assert_slashed(chain, before, offender, block.proposer_index, block)
    # Ejected: never proposes or attests again.
    net.run_epochs(2)
    later = chain.get_attesters(net.slot + 1) + [chain.get_proposer(s) for s in
                                                 range(net.slot + 1, net.slot + 9)]
    assert offender not in later


@pytest.mark.parametrize("order", ["outer first", "inner first"])
def test_surround_vote_evidence_is_slashable_in_either_order(order):
    net = running_chain(4)
    chain = net.nodes[0].chain
    offender = 5
    key = VALIDATOR_KEYS[offender]
    head = chain.head.root
    outer = sign_attestation(key, 4 * 8, offender, head, cp(1), cp(4))
    inner = sign_attestation(key, 3 * 8, offender, head, cp(2), cp(3))
    evidence = AttesterSlashing(outer, inner) if order == "outer first" else \
        AttesterSlashing(inner, outer)
    assert evidence.kind == "surround vote"
    assert chain.on_slashing_evidence(evidence).outcome == "accept"
    assert offender in chain.store.equivocating_indices
    before = list(chain.state.stakes)
    block = next_proposal(net, chain)
    assert block.body.attester_slashings == (evidence,)
    add_block(chain, block)
    assert_slashed(chain, before, offender, block.proposer_index, block)
    assert chain.on_slashing_evidence(evidence).outcome == "ignore"     # already known


def test_surround_vote_seen_on_gossip_yields_evidence():
    net = running_chain(4)
    chain = net.nodes[0].chain
    slot = net.slot + 1
    now = slot_time(chain.spec, slot, 0.5)
    chain.on_tick(now)
    offender = chain.get_attesters(slot)[0]
    old = net.nodes[0].protection.signed_votes(offender)
    previous = old[max(old)]                               # its honest vote of the last epoch
    honest_source = previous.source
    surrounding = chain.make_attestation(
        slot, offender, VALIDATOR_KEYS[offender],
        source=Checkpoint(honest_source.epoch - 1, chain.genesis_root))
    assert surrounding.source.epoch < previous.source.epoch
    assert surrounding.target.epoch > previous.target.epoch
    result = chain.on_attestation(surrounding, now)
    assert result.outcome == "ignore", result
    assert result.evidence.kind == "surround vote"
    assert {result.evidence.att_1, result.evidence.att_2} == {previous, surrounding}


@pytest.mark.parametrize("pair, reason", [
    ("same", "neither a double vote nor a surround vote"),
    ("later", "neither a double vote nor a surround vote"),
    ("bad signature", "bad attestation signature"),
    ("two validators", "different validators"),
])
def test_evidence_that_proves_nothing_is_rejected(pair, reason):
    net = running_chain(3)
    chain = net.nodes[0].chain
    head = chain.head.root
    a = sign_attestation(VALIDATOR_KEYS[5], 16, 5, head, cp(1), cp(2))
    b = {"same": a,
         "later": sign_attestation(VALIDATOR_KEYS[5], 24, 5, head, cp(2), cp(3)),
         "bad signature": Attestation(16, 5, b"\x09" * 32, cp(1), cp(2), b"\x00" * 64),
         "two validators": sign_attestation(VALIDATOR_KEYS[6], 16, 6, b"\x09" * 32, cp(1), cp(2)),
         }[pair]
    result = chain.on_slashing_evidence(AttesterSlashing(a, b))
    assert result.outcome == "reject" and reason in result.reason
    assert not chain.pool.evidence and not chain.store.equivocating_indices


def test_slash_fraction_and_whistleblower_reward_follow_the_spec():
    net = running_chain(3, slash_fraction=Fraction(1, 4), whistleblower_reward_quotient=16)
    chain = net.nodes[0].chain
    offender = 9 if chain.get_proposer(net.slot + 1) != 9 else 10
    key = VALIDATOR_KEYS[offender]
    head = chain.head.root
    evidence = AttesterSlashing(sign_attestation(key, 16, offender, head, cp(1), cp(2)),
                                sign_attestation(key, 16, offender, b"\x05" * 32, cp(1), cp(2)))
    assert chain.on_slashing_evidence(evidence).outcome == "accept"
    before = list(chain.state.stakes)
    block = next_proposal(net, chain)
    add_block(chain, block)
    state = chain.state
    eff = state.validators[offender].effective_stake
    assert state.stakes[offender] == before[offender] - eff // 4
    assert state.stakes[block.proposer_index] == before[block.proposer_index] + eff // 16
