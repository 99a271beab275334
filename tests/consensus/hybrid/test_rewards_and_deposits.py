"""Rewards and penalties (EIP-1011 `initialize_epoch`, `proc_reward`, `collective_reward`),
deposits (join at dynasty + 2), logouts (leave DYNASTY_LOGOUT_DELAY dynasties on) and
withdrawals (WITHDRAWAL_DELAY epochs after the last dynasty), on real chains."""

from __future__ import annotations

import math
from fractions import Fraction

from consensus import keys
from consensus.hybrid.spec import COIN, MINER_VOTE_REWARD_QUOTIENT
from consensus.hybrid.types import CasperBody
from consensus.pos.signing import sign_deposit, sign_exit
from tests.consensus.chain_steps import ALICE, ALICE_KEY, MINER_B
from tests.consensus.hybrid.hybrid_steps import (
    DEPOSIT,
    EPOCH,
    VALIDATOR_KEYS,
    add,
    add_connected,
    grow,
    mine_body,
    new_chain,
    vote_in_next_epoch,
    votes_of,
)


def test_a_non_voter_shrinks_every_epoch_without_finality():
    """test_voting.py::test_non_finalization_loss: one of three validators votes, nothing is
    justified, and the non-voters' deposits shrink strictly every epoch, faster and faster."""
    chain = new_chain(3)
    deposits = [chain.state.validators[1].deposit]
    for _ in range(6):
        vote_in_next_epoch(chain, [0])
        deposits.append(chain.state.validators[1].deposit)
    assert chain.finalized.epoch == 0
    losses = [a - b for a, b in zip(deposits[1:], deposits[2:])]
    assert all(loss > 0 for loss in losses), deposits
    assert losses == sorted(losses), "the penalty grows with the epochs since finality"


def test_voters_gain_and_non_voters_lose_while_finalizing():
    chain = new_chain(4)
    for _ in range(4):
        vote_in_next_epoch(chain, [0, 1, 2])
    grow(chain, EPOCH)                                   # one more epoch boundary: rescaled
    validators = chain.state.validators
    assert validators[0].deposit > DEPOSIT > validators[3].deposit


def test_the_miner_earns_an_eighth_of_each_vote_reward():
    chain = new_chain(3)
    vote_in_next_epoch(chain, [0, 1, 2])                 # epoch 1: reward factor set
    grow(chain, EPOCH - chain.head.height % EPOCH)        # to the first block of epoch 2
    state = chain.next_state()
    votes = votes_of(chain, [0])
    before = chain.ledger.balance(MINER_B)
    add_connected(chain, mine_body(chain, CasperBody(votes=votes), miner=MINER_B))
    rf = state.reward_factor
    assert rf > 0
    reward = state.weights[0] * rf.numerator // rf.denominator
    assert chain.state.validators[0].deposit == state.validators[0].deposit + reward
    assert chain.ledger.balance(MINER_B) - before == (chain.spec.block_reward +
                                                       reward // MINER_VOTE_REWARD_QUOTIENT)


def test_the_reward_factor_follows_eip_1011():
    chain = new_chain(3)
    vote_in_next_epoch(chain, [0, 1, 2])
    vote_in_next_epoch(chain, [0, 1, 2])                  # epoch 2 open, 0 and 1 finalized
    state = chain.state
    spec = chain.spec
    esf = state.epoch - 0                                 # finalized epoch 0 when 2 opened
    deposits = 3 * DEPOSIT // COIN + 1
    expected = spec.base_interest_factor / math.isqrt(deposits) + \
        spec.base_penalty_factor * (esf - 2)
    assert state.reward_factor == max(Fraction(0), expected)


def test_a_deposit_joins_two_dynasties_later_and_pays_from_the_account():
    chain = new_chain(3)
    newcomer = keys.derive_private_key("hybrid-tests", "newcomer")
    balance = chain.ledger.balance(ALICE)
    deposit = sign_deposit(ALICE_KEY, keys.public_key(newcomer), DEPOSIT, 0)
    add_connected(chain, mine_body(chain, CasperBody(deposits=(deposit,))))
    assert chain.ledger.balance(ALICE) == balance - DEPOSIT
    assert chain.ledger.nonce(ALICE) == 1
    state = chain.state
    index = len(state.validators) - 1
    assert state.validators[index].start_dynasty == state.dynasty + 2
    replay = mine_body(chain, CasperBody(deposits=(deposit,)))
    assert add(chain, replay).results[0].outcome == "invalidated"     # the nonce is spent
    while not chain.state.may_vote(index):
        vote_in_next_epoch(chain, [0, 1, 2])
    assert chain.state.dynasty == state.dynasty + 2


def test_a_logout_leaves_after_the_delay_and_withdraws_its_deposit():
    chain = new_chain(4)
    vote_in_next_epoch(chain, [0, 1, 2, 3])
    logout = sign_exit(VALIDATOR_KEYS[3], 3, chain.state.epoch)
    add_connected(chain, mine_body(chain, CasperBody(exits=(logout,))))
    state = chain.state
    assert state.validators[3].end_dynasty == state.dynasty + chain.spec.dynasty_logout_delay
    again = mine_body(chain, CasperBody(exits=(logout,)))
    assert "already logging out" in add(chain, again).results[0].reason
    pubkey = state.validators[3].pubkey
    for _ in range(20):
        vote_in_next_epoch(chain, [0, 1, 2, 3])
        if chain.state.validators[3].withdrawn:
            break
    assert chain.state.validators[3].withdrawn
    assert chain.ledger.balance(pubkey) > DEPOSIT // 2


def test_deposits_and_withdrawals_are_undone_by_a_reorg():
    chain = new_chain(3)
    newcomer = keys.derive_private_key("hybrid-tests", "newcomer")
    deposit = sign_deposit(ALICE_KEY, keys.public_key(newcomer), DEPOSIT, 0)
    fork = chain.head
    add_connected(chain, mine_body(chain, CasperBody(deposits=(deposit,))))
    paid = chain.ledger.balance(ALICE)
    side = mine_body(chain, parent=fork, miner=MINER_B)
    add(chain, side)
    longer = mine_body(chain, parent=chain.get(side.hash), miner=MINER_B)
    update = add(chain, longer)
    assert update.reorgs and chain.head.hash == longer.hash
    assert chain.ledger.balance(ALICE) == paid + DEPOSIT
    assert chain.ledger.nonce(ALICE) == 0
    assert len(chain.state.validators) == 3
