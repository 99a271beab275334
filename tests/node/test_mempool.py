"""Mempool admission and re-validation on a new head."""

from __future__ import annotations

import pytest

from consensus.errors import InvalidTransaction
from consensus.keys import derive_private_key, public_key
from consensus.ledger import Ledger
from consensus.types import Transaction, sign_transaction
from node.mempool import Mempool, MempoolFull

ALICE = derive_private_key("t", "alice")
BOB = public_key(derive_private_key("t", "bob"))


def funded(amount=1_000) -> Ledger:
    return Ledger(balances={public_key(ALICE): amount})


def test_chain_of_nonces_is_admitted_in_order_and_gaps_are_refused():
    ledger, pool = funded(), Mempool()
    pool.add(sign_transaction(ALICE, BOB, 10, 1, 0), ledger)
    pool.add(sign_transaction(ALICE, BOB, 10, 1, 1), ledger)
    with pytest.raises(InvalidTransaction, match="out-of-order nonce 3, expected 2"):
        pool.add(sign_transaction(ALICE, BOB, 10, 1, 3), ledger)
    assert [t.nonce for t in pool.candidates()] == [0, 1]
    assert pool.pending_nonce(ledger, public_key(ALICE)) == 2


def test_pending_spend_counts_against_the_balance():
    ledger, pool = funded(100), Mempool()
    pool.add(sign_transaction(ALICE, BOB, 60, 1, 0), ledger)
    with pytest.raises(InvalidTransaction, match="overdraft"):
        pool.add(sign_transaction(ALICE, BOB, 60, 1, 1), ledger)


def test_bad_signature_is_refused_and_good_one_is_cached():
    ledger, pool = funded(), Mempool()
    good = sign_transaction(ALICE, BOB, 10, 1, 0)
    forged = Transaction(good.sender, good.recipient, 11, 1, 0, good.signature)
    with pytest.raises(InvalidTransaction, match="bad signature"):
        pool.add(forged, ledger)
    pool.add(good, ledger)
    assert good.txid in pool.verified and forged.txid not in pool.verified


def test_new_head_drops_confirmed_and_takes_back_reverted():
    ledger, pool = funded(), Mempool()
    first, second = (sign_transaction(ALICE, BOB, 10, 1, n) for n in (0, 1))
    pool.add(first, ledger)
    pool.add(second, ledger)
    ledger.nonces[public_key(ALICE)] = 1          # a block confirmed `first`
    ledger.balances[public_key(ALICE)] -= 11
    pool.on_new_head(ledger, reverted=[])
    assert [t.nonce for t in pool.candidates()] == [1]
    ledger.nonces[public_key(ALICE)] = 0          # ...and was then reorged away
    ledger.balances[public_key(ALICE)] += 11
    pool.on_new_head(ledger, reverted=[first])
    assert [t.nonce for t in pool.candidates()] == [0, 1]


def test_full_pool_says_so():
    ledger, pool = funded(), Mempool(max_txs=1)
    pool.add(sign_transaction(ALICE, BOB, 10, 1, 0), ledger)
    with pytest.raises(MempoolFull):
        pool.add(sign_transaction(ALICE, BOB, 10, 1, 1), ledger)
