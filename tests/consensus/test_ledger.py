"""Ledger rules, one test per rule, and the undo property: apply then revert restores everything.

Each rejected block carries a valid transfer *before* the bad part, so a ledger that changed
anything before finishing its checks would be caught by the unchanged-state assertion.
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import keys, pow
from consensus.errors import InvalidBlock, InvalidTransaction
from consensus.ledger import Ledger
from consensus.types import (
    MAX_AMOUNT,
    ZERO_HASH,
    Block,
    BlockHeader,
    Transaction,
    make_coinbase,
    sign_transaction,
)

REWARD = 50
ALICE_KEY = keys.derive_private_key("consensus-tests", "alice")
BOB_KEY = keys.derive_private_key("consensus-tests", "bob")
ALICE = keys.public_key(ALICE_KEY)
BOB = keys.public_key(BOB_KEY)
CAROL = hashlib.sha256(b"carol").digest()        # never sends, so needs no key
MINER = hashlib.sha256(b"miner").digest()


def block_of(*txs: Transaction) -> Block:
    """The ledger reads only transactions; the header just gives the block a hash."""
    root = pow.merkle_root([tx.txid for tx in txs]) if txs else ZERO_HASH
    return Block(BlockHeader(1, ZERO_HASH, root, 0, 0x207FFFFF, 0), txs)


def funded_ledger() -> Ledger:
    ledger = Ledger()
    ledger.balances[ALICE] = 1000
    ledger.balances[BOB] = 10
    return ledger


def state(ledger: Ledger) -> tuple[dict, dict]:
    return dict(ledger.balances), dict(ledger.nonces)


def pay(key: bytes, recipient: bytes, amount: int, nonce: int, fee: int = 1) -> Transaction:
    return sign_transaction(key, recipient, amount, fee, nonce)


def coinbase(height: int = 1, amount: int = REWARD, recipient: bytes = MINER) -> Transaction:
    return make_coinbase(recipient, amount, height)


# ---- the happy path ------------------------------------------------------------------------------

def test_transfers_move_amount_and_fee_and_the_miner_collects_reward_plus_fees():
    ledger = funded_ledger()
    block = block_of(coinbase(amount=REWARD + 3), pay(ALICE_KEY, BOB, 100, 0, fee=2),
                     pay(ALICE_KEY, CAROL, 5, 1, fee=1))
    ledger.apply_block(block, 1, REWARD)
    assert ledger.balance(ALICE) == 1000 - 102 - 6
    assert ledger.balance(BOB) == 110
    assert ledger.balance(CAROL) == 5
    assert ledger.balance(MINER) == REWARD + 3
    assert ledger.nonce(ALICE) == 2 and ledger.nonce(BOB) == 0


def test_coinbase_exactly_reward_plus_fees_is_accepted():
    ledger = funded_ledger()
    ledger.apply_block(block_of(coinbase(amount=REWARD + 7), pay(ALICE_KEY, BOB, 1, 0, fee=7)),
                       1, REWARD)
    assert ledger.balance(MINER) == REWARD + 7


def test_coinbase_may_pay_less_than_allowed():
    ledger = funded_ledger()
    ledger.apply_block(block_of(coinbase(amount=0)), 1, REWARD)
    assert ledger.balance(MINER) == 0


def test_a_transfer_can_spend_coins_received_earlier_in_the_same_block():
    ledger = funded_ledger()
    block = block_of(coinbase(amount=REWARD + 2), pay(ALICE_KEY, BOB, 500, 0),
                     pay(BOB_KEY, CAROL, 505, 0))
    ledger.apply_block(block, 1, REWARD)
    assert ledger.balance(BOB) == 10 + 500 - 506
    assert ledger.balance(CAROL) == 505


def test_paying_yourself_costs_only_the_fee():
    ledger = funded_ledger()
    ledger.apply_block(block_of(coinbase(amount=REWARD + 4), pay(ALICE_KEY, ALICE, 990, 0, fee=4)),
                       1, REWARD)
    assert ledger.balance(ALICE) == 996 and ledger.nonce(ALICE) == 1


# ---- every rejection leaves the ledger as it was -------------------------------------------------

def with_bad_signature(tx: Transaction) -> Transaction:
    return dataclasses.replace(tx, signature=bytes([tx.signature[0] ^ 1]) + tx.signature[1:])


def signed_by_wrong_key() -> Transaction:
    forged = pay(BOB_KEY, CAROL, 5, 1)
    return dataclasses.replace(forged, sender=ALICE)


# Each case: a block whose first transfer (Alice, nonce 0) is valid, then the bad part.
REJECTED_BLOCKS = [
    ("bad signature", lambda: [coinbase(amount=REWARD + 2), pay(ALICE_KEY, BOB, 5, 0),
                               with_bad_signature(pay(ALICE_KEY, CAROL, 5, 1))],
     "transaction 2: bad signature"),
    ("signed by another key", lambda: [coinbase(amount=REWARD + 2), pay(ALICE_KEY, BOB, 5, 0),
                                       signed_by_wrong_key()],
     "transaction 2: bad signature"),
    ("replayed nonce", lambda: [coinbase(amount=REWARD + 2), pay(ALICE_KEY, BOB, 5, 0),
                                pay(ALICE_KEY, CAROL, 5, 0)],
     "transaction 2: replayed nonce 0, expected 1"),
    ("same transfer twice", lambda: [coinbase(amount=REWARD + 2), pay(ALICE_KEY, BOB, 5, 0),
                                     pay(ALICE_KEY, BOB, 5, 0)],
     "transaction 2: replayed nonce 0, expected 1"),
    ("nonce gap", lambda: [coinbase(amount=REWARD + 2), pay(ALICE_KEY, BOB, 5, 0),
                           pay(ALICE_KEY, CAROL, 5, 2)],
     "transaction 2: out-of-order nonce 2, expected 1"),
    ("overdraft", lambda: [coinbase(amount=REWARD + 2), pay(ALICE_KEY, BOB, 5, 0),
                           pay(ALICE_KEY, CAROL, 994, 1)],
     "transaction 2: overdraft: balance 994 < amount 994 + fee 1"),
    ("overdraft by the fee alone", lambda: [coinbase(amount=REWARD + 1), pay(ALICE_KEY, BOB, 5, 0),
                                            pay(BOB_KEY, CAROL, 15, 0, fee=1)],
     "transaction 2: overdraft: balance 15 < amount 15 + fee 1"),
    ("zero amount", lambda: [coinbase(amount=REWARD + 2), pay(ALICE_KEY, BOB, 5, 0),
                             pay(ALICE_KEY, CAROL, 0, 1)],
     "transaction 2: amount must be positive, got 0"),
    ("amount plus fee overflows", lambda: [coinbase(amount=REWARD + 1), pay(ALICE_KEY, BOB, 5, 0),
                                           pay(ALICE_KEY, CAROL, MAX_AMOUNT, 1, fee=1)],
     "transaction 2: amount plus fee overflows 64 bits"),
    ("coinbase not first", lambda: [pay(ALICE_KEY, BOB, 5, 0), coinbase()],
     "first transaction is not a coinbase"),
    ("second coinbase", lambda: [coinbase(amount=REWARD + 1), pay(ALICE_KEY, BOB, 5, 0),
                                 coinbase(height=2, recipient=CAROL)],
     "transaction 2: a coinbase outside the first position"),
    ("coinbase above reward plus fees", lambda: [coinbase(amount=REWARD + 2),
                                                 pay(ALICE_KEY, BOB, 5, 0)],
     "coinbase pays 52, more than reward 50 + fees 1"),
    ("coinbase nonce is not the height", lambda: [coinbase(height=2, amount=REWARD + 1),
                                                  pay(ALICE_KEY, BOB, 5, 0)],
     "coinbase nonce 2 is not the height 1"),
    ("coinbase with a fee", lambda: [dataclasses.replace(coinbase(), fee=1),
                                     pay(ALICE_KEY, BOB, 5, 0)],
     "coinbase carries a fee"),
    ("no transactions", lambda: [], "first transaction is not a coinbase"),
]


@pytest.mark.parametrize("make_txs, reason", [c[1:] for c in REJECTED_BLOCKS],
                         ids=[c[0] for c in REJECTED_BLOCKS])
def test_rejected_block_raises_and_leaves_the_ledger_unchanged(make_txs, reason):
    ledger = funded_ledger()
    ledger.apply_block(block_of(coinbase(height=1, recipient=CAROL)), 1, REWARD)
    before = state(ledger)
    bad = block_of(*make_txs())
    # the bad block is proposed at height 1 on a ledger whose nonces are all still 0
    with pytest.raises(InvalidBlock) as caught:
        ledger.apply_block(bad, 1, REWARD)
    assert str(caught.value) == reason
    assert state(ledger) == before


def test_replaying_a_transaction_from_an_earlier_block_is_rejected():
    ledger = funded_ledger()
    transfer = pay(ALICE_KEY, BOB, 5, 0)
    ledger.apply_block(block_of(coinbase(1, REWARD + 1), transfer), 1, REWARD)
    before = state(ledger)
    with pytest.raises(InvalidBlock, match="replayed nonce 0, expected 1"):
        ledger.apply_block(block_of(coinbase(2), transfer), 2, REWARD)
    assert state(ledger) == before


def test_signature_check_is_the_callers_choice():
    ledger = funded_ledger()
    forged = with_bad_signature(pay(ALICE_KEY, BOB, 5, 0))
    ledger.apply_block(block_of(coinbase(amount=REWARD + 1), forged), 1, REWARD,
                       verify=lambda tx: True)
    assert ledger.balance(BOB) == 15


# ---- mempool admission ---------------------------------------------------------------------------

def test_check_transaction_counts_the_senders_pending_transactions():
    ledger = funded_ledger()
    ledger.check_transaction(pay(ALICE_KEY, BOB, 999, 0))
    with pytest.raises(InvalidTransaction, match="out-of-order nonce 1, expected 0"):
        ledger.check_transaction(pay(ALICE_KEY, BOB, 5, 1))
    ledger.check_transaction(pay(ALICE_KEY, BOB, 5, 1), pending_nonce=1, pending_spend=994)
    with pytest.raises(InvalidTransaction, match="overdraft"):
        ledger.check_transaction(pay(ALICE_KEY, BOB, 5, 1), pending_nonce=1, pending_spend=995)
    assert state(ledger) == state(funded_ledger())


# ---- apply then revert ---------------------------------------------------------------------------

def test_revert_removes_accounts_the_block_created():
    ledger = funded_ledger()
    before = state(ledger)
    undo = ledger.apply_block(block_of(coinbase(amount=REWARD + 1), pay(ALICE_KEY, CAROL, 5, 0)),
                              1, REWARD)
    assert CAROL in ledger.balances and MINER in ledger.balances and ALICE in ledger.nonces
    ledger.revert_block(undo)
    assert state(ledger) == before
    assert CAROL not in ledger.balances and ALICE not in ledger.nonces


SENDER_KEYS = [ALICE_KEY, BOB_KEY, keys.derive_private_key("consensus-tests", "dave")]
ACCOUNTS = [keys.public_key(k) for k in SENDER_KEYS] + [CAROL, MINER]
GENESIS_FUNDS = {ACCOUNTS[0]: 500, ACCOUNTS[1]: 40}

# a proposed transfer: (sender index, recipient index, share of the affordable amount, fee)
transfers = st.tuples(st.integers(0, len(SENDER_KEYS) - 1), st.integers(0, len(ACCOUNTS) - 1),
                      st.floats(0, 1), st.integers(0, 5))
# a proposed block: (transfers, coinbase recipient index, share of reward + fees it claims)
proposed_blocks = st.tuples(st.lists(transfers, max_size=4), st.integers(0, len(ACCOUNTS) - 1),
                            st.floats(0, 1))


def make_valid_block(model: dict, proposal, height: int) -> Block:
    """Turn a proposal into a valid block against `model` (balances and nonces), updating it.

    Transfers the sender cannot afford are dropped, so every block is valid by construction.
    """
    balances, nonces = model["balances"], model["nonces"]
    proposed, coinbase_to, claim = proposal
    txs, fees = [], 0
    for sender_i, recipient_i, share, fee in proposed:
        sender, recipient = ACCOUNTS[sender_i], ACCOUNTS[recipient_i]
        affordable = balances.get(sender, 0) - fee
        if affordable < 1:
            continue
        amount = max(1, int(affordable * share))
        nonce = nonces.get(sender, 0)
        txs.append(pay(SENDER_KEYS[sender_i], recipient, amount, nonce, fee))
        balances[sender] -= amount + fee
        balances[recipient] = balances.get(recipient, 0) + amount
        nonces[sender] = nonce + 1
        fees += fee
    minted = int((REWARD + fees) * claim)
    balances[ACCOUNTS[coinbase_to]] = balances.get(ACCOUNTS[coinbase_to], 0) + minted
    return block_of(coinbase(height, minted, ACCOUNTS[coinbase_to]), *txs)


@settings(max_examples=60, deadline=None)
@given(st.lists(proposed_blocks, min_size=1, max_size=6))
def test_apply_then_revert_in_reverse_restores_every_balance_and_nonce(proposals):
    ledger = Ledger(balances=dict(GENESIS_FUNDS))
    model = {"balances": dict(GENESIS_FUNDS), "nonces": {}}
    snapshots, undos = [], []
    for height, proposal in enumerate(proposals, start=1):
        block = make_valid_block(model, proposal, height)
        snapshots.append(state(ledger))
        undos.append(ledger.apply_block(block, height, REWARD))
        # the ledger agrees with the independent model after every block
        assert ledger.balances == model["balances"]
        assert ledger.nonces == model["nonces"]
    for undo, snapshot in zip(reversed(undos), reversed(snapshots)):
        ledger.revert_block(undo)
        assert state(ledger) == snapshot
    assert state(ledger) == (GENESIS_FUNDS, {})
