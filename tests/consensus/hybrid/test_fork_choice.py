"""Hybrid fork choice (EIP-1011): score = highest_justified_epoch * 10**40 + total difficulty, and
never a branch that does not contain the finalized checkpoint.

Vectors from the reference page (docs: consensus-families 1a): A justified at 5 with TD 1e22
beats B justified at 4 with TD 9e22; equal justified epochs: more work wins; a reorg across a
finalized checkpoint is refused at any work. Then the same rules on real chains."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consensus.block_tree import BlockEntry
from consensus.hybrid import fork_choice as fc
from consensus.hybrid.builder import make_vote
from consensus.hybrid.state import FinalityPoint, genesis_state
from consensus.hybrid.types import CasperBody
from tests.consensus.chain_steps import MINER_B
from tests.consensus.hybrid.hybrid_steps import (
    EPOCH,
    VALIDATOR_KEYS,
    add,
    grow,
    hybrid_spec,
    mine_body,
    new_chain,
    vote_in_next_epoch,
)

SPEC = hybrid_spec(3)
BASE = genesis_state(SPEC, b"\x00" * 32)
GENESIS = SPEC.genesis_block()


def tip(total_work: int, justified: int, seq: int) -> tuple[BlockEntry, object]:
    entry = BlockEntry(GENESIS, 10, total_work, seq, None)
    state = replace(BASE, fc_justified=FinalityPoint(justified, b"\x01" * 32))
    return entry, state


@pytest.mark.parametrize("a, b, a_wins", [
    ((10 ** 22, 5), (9 * 10 ** 22, 4), True),      # justification first: 5e40 > 4e40 + 9e22
    ((10 ** 22, 4), (9 * 10 ** 22, 4), False),     # equal justified epochs: more work wins
    ((9 * 10 ** 22, 4), (10 ** 22, 4), True),
    ((10 ** 30, 0), (1, 1), False),                 # any justification beats any work
])
def test_score_vectors(a, b, a_wins):
    entry_a, state_a = tip(a[0], a[1], seq=2)
    entry_b, state_b = tip(b[0], b[1], seq=1)
    assert fc.is_better(entry_a, state_a, entry_b, state_b) is a_wins
    assert fc.score(entry_a, state_a) == a[1] * 10 ** 40 + a[0]


def test_equal_scores_keep_the_tip_seen_first():
    first, state = tip(100, 3, seq=1)
    second, _ = tip(100, 3, seq=2)
    assert not fc.is_better(second, state, first, state)
    assert fc.is_better(first, state, second, state)


def test_a_less_worked_branch_with_a_higher_justified_checkpoint_wins():
    """Two branches from genesis: B mines more blocks, A justifies epoch 1 -- A is the head."""
    chain = new_chain(3)
    fork = chain.head
    heavy = [mine_body(chain, parent=fork, miner=MINER_B)]
    add(chain, heavy[0])
    for _ in range(3 * EPOCH):
        block = mine_body(chain, parent=chain.get(heavy[-1].hash), miner=MINER_B)
        add(chain, block)
        heavy.append(block)
    assert chain.head.hash == heavy[-1].hash            # plain most-work so far
    light_root = mine_body(chain, parent=fork)
    update = add(chain, light_root)
    assert update.results[0].outcome == "side"
    light = chain.get(light_root.hash)
    while light.height < EPOCH + 1:                       # to the first block of epoch 1 ...
        block = mine_body(chain, parent=light)
        add(chain, block)
        light = chain.get(block.hash)
    state = chain.state_of(light.hash)
    voting = mine_body(chain, CasperBody(votes=tuple(make_vote(state, i, VALIDATOR_KEYS[i])
                                                     for i in range(3))), parent=light)
    update = add(chain, voting)
    assert chain.head.hash == voting.hash, "justified epoch 1 outranks 3 epochs more work"
    assert chain.head.total_work < chain.get(heavy[-1].hash).total_work
    assert update.reorgs and update.justified_changed == chain.justified


def test_a_reorg_across_a_finalized_checkpoint_is_refused_at_any_work():
    chain = new_chain(3)
    vote_in_next_epoch(chain, [0, 1, 2])
    vote_in_next_epoch(chain, [0, 1, 2])                  # epoch 1 finalized
    assert chain.finalized.epoch == 1
    fork = chain.main_chain_at(EPOCH - 2)                 # below epoch 1's checkpoint
    honest_head = chain.head.hash
    parent, refused = fork, []
    for _ in range(6 * EPOCH):                            # far more work than the honest chain
        block = mine_body(chain, parent=parent, miner=MINER_B)
        update = add(chain, block)
        refused += update.refused
        parent = chain.get(block.hash)
    assert parent.total_work > chain.head.total_work
    assert chain.head.hash == honest_head
    assert refused and refused[0].finalized == chain.finalized
    assert refused[0].fork_height == fork.height
    assert not chain.is_viable(parent)


def test_equal_justification_is_plain_most_work():
    chain = new_chain(3)
    vote_in_next_epoch(chain, [0, 1, 2])
    grow(chain, 1)                                          # both branches below justified 1
    head = chain.head
    side = mine_body(chain, parent=head.parent, miner=MINER_B)
    assert add(chain, side).results[0].outcome == "side"   # equal work: the first seen stays
    on_side = mine_body(chain, parent=chain.get(side.hash), miner=MINER_B)
    update = add(chain, on_side)
    assert chain.head.hash == on_side.hash                  # more work, same justified epoch
    assert update.reorgs[0].depth == 1
    assert chain.justified.epoch == 1


def test_a_heavier_branch_without_the_justifying_votes_loses():
    chain = new_chain(3)
    vote_in_next_epoch(chain, [0, 1, 2])                    # the head's block justified 1
    head = chain.head
    side = mine_body(chain, parent=head.parent, miner=MINER_B)
    add(chain, side)
    on_side = mine_body(chain, parent=chain.get(side.hash), miner=MINER_B)
    assert add(chain, on_side).results[0].outcome == "side"
    assert chain.head is head
