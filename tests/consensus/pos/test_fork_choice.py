"""LMD-GHOST: step scripts of (tick, add block, add vote, check head).

The tree used by most tests, all in epoch 0, votes cast in epoch 1 (every validator has a duty
slot in 8..15, after every block):

    genesis ── A1 (slot 1)
           └── B1 (slot 2) ── B2 (slot 3) ── B3 (slot 4)
"""

from __future__ import annotations

from consensus.pos.chain import PosChain
from consensus.pos.committees import get_attestation_slot
from consensus.pos.fork_choice import LatestMessage, get_head, get_weight
from consensus.pos.types import AttesterSlashing
from tests.consensus.pos.pos_steps import (
    STAKE,
    VALIDATOR_KEYS,
    add_block,
    duty_slots,
    make_spec,
    propose,
    slot_time,
)

VOTE_SLOT = 15                  # last slot of epoch 1: every epoch-1 duty has come


def forked_chain() -> tuple[PosChain, dict[str, bytes]]:
    chain = PosChain(make_spec(16))
    genesis = chain.genesis_root
    roots = {}
    for name, slot, parent in [("A1", 1, genesis), ("B1", 2, genesis), ("B2", 3, "B1"),
                               ("B3", 4, "B2")]:
        block = propose(chain, slot, parent_root=roots.get(parent, genesis))
        assert add_block(chain, block).results[0].outcome in ("connected", "side")
        roots[name] = block.root
    chain.on_tick(slot_time(chain.spec, VOTE_SLOT))
    return chain, roots


def vote(chain: PosChain, validator: int, head_root: bytes, epoch: int = 1, *,
         now_slot: int = VOTE_SLOT):
    """The validator's vote for `head_root` at its duty slot of `epoch` on that branch."""
    state = chain.checkpoint_state(epoch, head_root)
    slot = get_attestation_slot(state, epoch, validator)
    att = chain.make_attestation(slot, validator, VALIDATOR_KEYS[validator], head_root=head_root)
    result = chain.on_attestation(att, slot_time(chain.spec, now_slot))
    return att, result


def head_after_tick(chain: PosChain, slot: int = VOTE_SLOT) -> bytes:
    chain.on_tick(slot_time(chain.spec, slot, 0.5))
    return chain.head.root


def test_without_votes_ties_go_to_the_higher_root():
    chain, roots = forked_chain()
    winner = max(roots["A1"], roots["B1"])
    head = chain.get(head_after_tick(chain))
    while head.parent is not None and head.parent.root != chain.genesis_root:
        head = head.parent
    assert head.root == winner


def test_equal_votes_tie_goes_to_the_higher_root():
    chain, roots = forked_chain()
    for v in (0, 1):
        assert vote(chain, v, roots["A1"])[1].accepted
    for v in (2, 3):
        assert vote(chain, v, roots["B3"])[1].accepted
    assert chain.get_weight(roots["A1"]) == chain.get_weight(roots["B1"]) == 2 * STAKE
    expected = roots["A1"] if roots["A1"] > roots["B1"] else roots["B3"]
    assert head_after_tick(chain) == expected


def test_heavier_shorter_branch_beats_longer_lighter_one():
    chain, roots = forked_chain()
    for v in (0, 1, 2):
        vote(chain, v, roots["A1"])
    vote(chain, 3, roots["B3"])
    assert head_after_tick(chain) == roots["A1"]
    assert chain.get_weight(roots["A1"]) == 3 * STAKE
    assert chain.get_weight(roots["B1"]) == STAKE
    # ... and the longer one wins once it is heavier
    for v in (4, 5, 6):
        vote(chain, v, roots["B2"])
    assert head_after_tick(chain) == roots["B3"]


def test_votes_for_an_ancestor_count_for_the_whole_branch():
    chain, roots = forked_chain()
    vote(chain, 0, roots["A1"])
    vote(chain, 1, roots["B1"])
    vote(chain, 2, roots["B1"])
    assert head_after_tick(chain) == roots["B3"]       # B1's weight carries down to B3


def test_equivocating_validators_votes_are_discarded():
    chain, roots = forked_chain()
    for v in (0, 1, 2):
        vote(chain, v, roots["A1"])
    for v in (3, 4):
        vote(chain, v, roots["B3"])
    assert head_after_tick(chain) == roots["A1"]
    for v in (0, 1):                       # a second, different vote for the same target epoch
        _att, result = vote(chain, v, roots["B2"])
        assert result.outcome == "ignore" and result.evidence is not None
        assert result.evidence.kind == "double vote"
    assert chain.store.equivocating_indices == {0, 1}
    assert 0 not in chain.store.latest_messages and 1 not in chain.store.latest_messages
    assert chain.get_weight(roots["A1"]) == STAKE
    assert chain.get_weight(roots["B1"]) == 2 * STAKE
    assert head_after_tick(chain) == roots["B3"]
    _att, result = vote(chain, 0, roots["A1"], epoch=2, now_slot=VOTE_SLOT + 8)
    assert 0 not in chain.store.latest_messages        # an equivocator's later votes never count
    assert chain.get_weight(roots["A1"]) == STAKE


def test_get_weight_skips_equivocators_whatever_the_store_holds():
    """The rule itself (phase0 `get_weight`), on a hand-set store: a latest message of a validator
    in `equivocating_indices` carries no weight."""
    chain, roots = forked_chain()
    store = chain.store
    store.latest_messages[0] = LatestMessage(1, roots["A1"])
    store.latest_messages[1] = LatestMessage(1, roots["A1"])
    assert get_weight(store, roots["A1"]) == 2 * STAKE
    store.equivocating_indices.add(1)
    assert get_weight(store, roots["A1"]) == STAKE
    assert get_head(store).root == roots["A1"]


def test_slashed_validators_votes_stop_counting_once_evidence_is_processed():
    chain, roots = forked_chain()
    for v in (0, 1, 2):
        vote(chain, v, roots["A1"])
    for v in (3, 4):
        vote(chain, v, roots["B3"])
    assert head_after_tick(chain) == roots["A1"]
    # Evidence arrives inside a block (built by another node that saw the double votes).
    other = PosChain(chain.spec)
    for root in (roots["A1"], roots["B1"], roots["B2"], roots["B3"]):
        other.on_block(chain.get(root).block, slot_time(chain.spec, VOTE_SLOT))
    other.on_tick(slot_time(chain.spec, VOTE_SLOT))
    evidence = []
    for v in (0, 1):
        first, _ = vote(other, v, roots["A1"])
        _second, result = vote(other, v, roots["B2"])
        evidence.append(result.evidence)
    assert all(isinstance(e, AttesterSlashing) for e in evidence)
    block = propose(other, VOTE_SLOT + 1, parent_root=roots["B3"])
    assert len(block.body.attester_slashings) == 2
    update = chain.on_block(block, slot_time(chain.spec, VOTE_SLOT + 1))
    assert update.results[0].outcome == "connected"
    assert {s.validator_index for s in update.slashed} == {0, 1}
    assert chain.store.equivocating_indices >= {0, 1}
    assert chain.head.root == block.root
    assert chain.get_weight(roots["A1"]) == STAKE


def test_latest_message_replaces_the_older_one():
    chain, roots = forked_chain()
    vote(chain, 0, roots["A1"])
    vote(chain, 1, roots["A1"])
    vote(chain, 2, roots["B3"])
    assert head_after_tick(chain) == roots["A1"]
    later = VOTE_SLOT + 8                              # end of epoch 2
    chain.on_tick(slot_time(chain.spec, later))
    for v in (0, 1):
        _att, result = vote(chain, v, roots["B3"], epoch=2, now_slot=later)
        assert result.accepted, result
    assert chain.store.latest_messages[0].root == roots["B3"]
    assert chain.get_weight(roots["A1"]) == 0
    assert chain.get_weight(roots["B1"]) == 3 * STAKE
    assert head_after_tick(chain, later) == roots["B3"]


def test_an_older_vote_does_not_replace_a_newer_one():
    chain, roots = forked_chain()
    later = VOTE_SLOT + 8
    chain.on_tick(slot_time(chain.spec, later))
    new_vote, result = vote(chain, 0, roots["B3"], epoch=2, now_slot=later)
    assert result.accepted
    old_vote, result = vote(chain, 0, roots["A1"], epoch=1, now_slot=later)
    assert result.accepted                             # valid, but older by target epoch
    assert chain.store.latest_messages[0].root == roots["B3"]
    assert chain.get_weight(roots["A1"]) == 0


def test_all_validators_on_one_chain_follow_it():
    chain, roots = forked_chain()
    for v, _slot in duty_slots(chain, 1).items():
        vote(chain, v, roots["B3"])
    assert head_after_tick(chain) == roots["B3"]
    assert chain.get_weight(chain.genesis_root) == 16 * STAKE
