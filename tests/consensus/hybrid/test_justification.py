"""Justification and finalization (EIP-1011 `vote`): a checkpoint is justified when votes from one
justified source carry two thirds of the current and of the previous dynasty's deposits (inclusive:
`votes >= total * 2/3`); two checkpoints justified in a row finalize the first.

Scripts mine real blocks: epochs of 4 blocks, the checkpoint of epoch e is block 4e - 1, votes for
epoch e go in the blocks of epoch e."""

from __future__ import annotations

from consensus.hybrid.state import NO_EPOCH
from tests.consensus.hybrid.hybrid_steps import (
    COIN,
    EPOCH,
    grow,
    new_chain,
    vote_in_next_epoch,
    votes_of,
)


def test_two_thirds_exactly_justifies():
    chain = new_chain(3)                               # equal deposits: 2 of 3 is exactly 2/3
    vote_in_next_epoch(chain, [0, 1])
    state = chain.state
    assert 1 in state.justified
    assert chain.justified.epoch == 1
    assert chain.justified.hash == chain.main_chain_at(EPOCH - 1).hash


def test_just_under_two_thirds_does_not_justify():
    chain = new_chain(3, deposits=[100 * COIN, 100 * COIN, 100 * COIN + 1])   # 200 of 300+1
    vote_in_next_epoch(chain, [0, 1])
    assert 1 not in chain.state.justified
    assert chain.justified.epoch == 0
    grow(chain, 1, votes=votes_of(chain, [2]))         # the third vote, later in the epoch
    assert chain.justified.epoch == 1


def test_two_justified_in_a_row_finalize_the_first():
    chain = new_chain(3)
    vote_in_next_epoch(chain, [0, 1, 2])              # 0 -> 1: justifies 1, finalizes 0 (genesis)
    assert chain.finalized.epoch == 0
    vote_in_next_epoch(chain, [0, 1, 2])              # 1 -> 2: justifies 2, finalizes 1
    assert (chain.justified.epoch, chain.finalized.epoch) == (2, 1)
    assert chain.finalized.hash == chain.main_chain_at(EPOCH - 1).hash


def test_a_skipped_epoch_justifies_but_does_not_finalize():
    chain = new_chain(3)
    vote_in_next_epoch(chain, [0, 1, 2])              # 1 justified
    vote_in_next_epoch(chain, [0])                    # 2 not justified
    vote_in_next_epoch(chain, [0, 1, 2])              # 1 -> 3: justified, nothing finalized
    assert chain.justified.epoch == 3
    assert chain.finalized.epoch == 0
    vote_in_next_epoch(chain, [0, 1, 2])              # 3 -> 4 finalizes 3
    assert chain.finalized.epoch == 3


def test_votes_count_only_with_the_same_source():
    chain = new_chain(3)
    vote_in_next_epoch(chain, [0, 1, 2])              # 1 justified: sources 0 and 1 are both fine
    start = chain.head.height
    grow(chain, EPOCH - (start % EPOCH))              # to the first block of epoch 2
    mixed = votes_of(chain, [0], source_epoch=0) + votes_of(chain, [1, 2], source_epoch=1)
    grow(chain, 1, votes=mixed[:1])
    assert 2 not in chain.state.justified             # 1/3 from source 0
    grow(chain, 1, votes=mixed[1:])
    assert 2 in chain.state.justified                 # 2/3 from source 1


def test_no_validators_is_plain_pow():
    """EIP-1011 test_fork_choice_helpers: with no deposits the fork-choice helpers answer
    highest_justified_epoch = 0 and highest_finalized_epoch = -1, while the contract
    insta-finalizes every epoch."""
    chain = new_chain(0, deposits=[])
    grow(chain, 3 * EPOCH + 1)
    state = chain.state
    assert state.highest_justified_epoch() == 0
    assert state.highest_finalized_epoch() == NO_EPOCH
    assert state.last_finalized_epoch == 2            # insta-finalized, but not counted
    assert chain.finalized is None
