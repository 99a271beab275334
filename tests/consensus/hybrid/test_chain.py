"""Hybrid blocks on the Bitcoin-exact chain: votes ride in a Casper body the coinbase commits to
(outside the transfers' block space), a block with an invalid vote is invalid, and the ledger and
Casper state always equal a replay of the head chain."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consensus.block_builder import solve
from consensus.hybrid.chain import HybridChain
from consensus.hybrid.types import CasperBody, HybridBlock, HybridVote
from consensus.types import Block
from tests.consensus.chain_steps import ALICE_KEY, BOB, MINER_B, pay
from tests.consensus.hybrid.hybrid_steps import (
    EPOCH,
    add,
    add_connected,
    grow,
    grow_to,
    mine_body,
    new_chain,
    vote_in_next_epoch,
    votes_of,
)


@pytest.fixture
def chain() -> HybridChain:
    chain = new_chain(3)
    grow_to(chain, EPOCH)                      # the first block of epoch 1
    return chain


def test_a_block_carries_votes_and_they_count(chain):
    votes = votes_of(chain, [0, 1, 2])
    block = mine_body(chain, CasperBody(votes=votes))
    add_connected(chain, block)
    assert chain.state.voted == {0, 1, 2}
    wire = HybridBlock.deserialize(block.serialize())
    assert wire == block and wire.hash == block.hash


def test_votes_take_no_room_from_transfers(chain):
    votes = votes_of(chain, [0, 1, 2])
    with_votes = mine_body(chain, CasperBody(votes=votes))
    without = mine_body(chain)
    assert with_votes.size == without.size            # the PoW block size rule sees no vote
    assert with_votes.casper_size > 0


@pytest.mark.parametrize("spoil, reason", [
    (lambda v: replace(v, signature=b"\x01" * 64), "bad vote signature"),
    (lambda v: replace(v, target_epoch=v.target_epoch + 1), "not the current epoch"),
    (lambda v: replace(v, target_hash=b"\x07" * 32), "checkpoint"),
    (lambda v: replace(v, source_epoch=v.target_epoch), "not before target"),
    (lambda v: replace(v, validator_index=9), "unknown validator"),
])
def test_a_block_with_an_invalid_vote_is_invalid(chain, spoil, reason):
    vote: HybridVote = spoil(votes_of(chain, [0])[0])
    update = add(chain, mine_body(chain, CasperBody(votes=(vote,))))
    result = update.results[0]
    assert result.outcome == "invalidated" and reason in result.reason


def test_a_second_vote_for_the_same_epoch_makes_a_block_invalid(chain):
    votes = votes_of(chain, [0])
    add_connected(chain, mine_body(chain, CasperBody(votes=votes)))
    again = votes_of(chain, [0], source_epoch=0)
    assert add(chain, mine_body(chain, CasperBody(votes=again))).results[0].outcome == \
        "invalidated"


def test_the_coinbase_must_commit_to_the_casper_body(chain):
    votes = votes_of(chain, [0, 1])
    block = mine_body(chain, CasperBody(votes=votes), commit=False)
    update = add(chain, block)
    assert update.results[0].outcome == "rejected"
    assert "commit" in update.results[0].reason
    honest = mine_body(chain, CasperBody(votes=votes[:1]))
    swapped = replace(honest, casper=CasperBody(votes=votes))   # a relay swaps the votes
    assert swapped.hash == honest.hash
    assert "commit" in add(chain, swapped).results[0].reason
    add_connected(chain, honest)            # the forged copy did not poison the real block


def test_a_plain_pow_block_is_refused(chain):
    block = mine_body(chain)
    plain = solve(Block(block.header, block.transactions))
    update = add(chain, plain)
    assert update.results[0].outcome == "rejected"
    assert "not a hybrid block" in update.results[0].reason


def test_transfers_follow_the_pow_ledger_rules(chain):
    tx = pay(ALICE_KEY, BOB, 1000, 0)
    add_connected(chain, mine_body(chain, txs=(tx,)))
    assert chain.ledger.balance(BOB) == 1000


def test_a_reorg_rebuilds_the_casper_state_of_the_new_branch(chain):
    fork = chain.head
    add_connected(chain, mine_body(chain, CasperBody(votes=votes_of(chain, [0, 1, 2]))))
    assert chain.justified.epoch == 1
    side = mine_body(chain, CasperBody(votes=votes_of(chain, [0])), parent=fork, miner=MINER_B)
    add(chain, side)
    assert chain.state_of(side.hash).voted == {0}
    grow(chain, 1)
    assert chain.justified.epoch == 1 and chain.state.voted == {0, 1, 2}


def test_replaying_the_stored_blocks_gives_the_same_chain():
    chain = new_chain(3)
    blocks = []
    for _ in range(3):
        vote_in_next_epoch(chain, [0, 1, 2])
    node = chain.head
    while node.parent is not None:
        blocks.append(node.block)
        node = node.parent
    replayed = new_chain(3)
    for block in reversed(blocks):
        replayed.on_block(HybridBlock.deserialize(block.serialize()), block.header.time,
                          trusted=True)
    assert replayed.head.hash == chain.head.hash
    assert replayed.finalized == chain.finalized
    assert replayed.ledger.balances == chain.ledger.balances


def test_casper_states_below_the_finalized_checkpoint_are_dropped():
    chain = new_chain(3)
    for _ in range(6):
        vote_in_next_epoch(chain, [0, 1, 2])
    finalized = chain.get(chain.finalized.hash)
    kept = [chain.get(h) for h in chain.states]
    assert all(e is not None and e.height >= finalized.height for e in kept)
    assert len(chain.states) <= chain.head.height - finalized.height + 1
