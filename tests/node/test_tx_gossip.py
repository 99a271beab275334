"""The tx gossip verdict is decided by the kind of rule a transaction breaks, never by the text of
the reason: races between honest peers are IGNORE, forgeries REJECT (issue 11, defect 6: an
overdraft -- a balance race -- was rejected because its reason mentions "amount")."""

from __future__ import annotations

import pytest

from consensus.keys import derive_private_key, public_key
from consensus.ledger import Ledger
from consensus.types import Transaction, make_coinbase, sign_transaction
from node.mempool import Mempool
from node.tx_gossip import TX_TOPIC, validate_transaction_message
from p2p import GossipMessage

ALICE = derive_private_key("tx-gossip", "alice")
BOB = public_key(derive_private_key("tx-gossip", "bob"))
FUNDS = 1_000


def gossip(
    tx: Transaction, msg_id: bytes | None = None, payload: bytes | None = None
) -> GossipMessage:
    return GossipMessage(
        TX_TOPIC,
        tx.txid if msg_id is None else msg_id,
        tx.serialize() if payload is None else payload,
        "peer",
    )


@pytest.fixture
def admit():
    ledger = Ledger(balances={public_key(ALICE): FUNDS})
    mempool = Mempool(max_txs=3)
    return lambda tx: mempool.add(tx, ledger)


def pay(amount: int, nonce: int = 0, fee: int = 1) -> Transaction:
    return sign_transaction(ALICE, BOB, amount, fee, nonce)


def forged() -> Transaction:
    good = pay(5)
    return Transaction(good.sender, good.recipient, 6, good.fee, good.nonce, good.signature)


@pytest.mark.parametrize(
    ("make", "category"),
    [
        (lambda: pay(FUNDS), "overdraft"),  # balance race: the sender's funds moved elsewhere
        (lambda: pay(FUNDS * 10), "overdraft"),
        (lambda: pay(5, nonce=3), "nonce"),  # a block we have not seen yet
    ],
    ids=["overdraft by the fee", "overdraft", "nonce gap"],
)
def test_races_between_honest_peers_are_ignored(admit, make, category):
    verdict = validate_transaction_message(gossip(make()), admit)
    assert (verdict.kind, verdict.category) == ("ignore", category)


def test_a_replayed_nonce_and_a_duplicate_are_ignored(admit):
    first = pay(5)
    assert validate_transaction_message(gossip(first), admit).kind == "accept"
    again = validate_transaction_message(gossip(first), admit)
    assert (again.kind, again.category) == ("ignore", "duplicate")
    assert (
        validate_transaction_message(gossip(pay(6)), admit).category == "nonce"
    )  # replays nonce 0


def test_a_full_pool_is_ignored(admit):
    for nonce in range(3):
        assert validate_transaction_message(gossip(pay(5, nonce)), admit).kind == "accept"
    verdict = validate_transaction_message(gossip(pay(5, 3)), admit)
    assert (verdict.kind, verdict.category) == ("ignore", "pool full")


@pytest.mark.parametrize(
    ("message", "category"),
    [
        (lambda: gossip(forged()), "bad signature"),
        (lambda: gossip(pay(0)), "bad amount"),
        (lambda: gossip(pay(2**63, fee=2**63)), "bad amount"),
        (lambda: gossip(make_coinbase(BOB, 50, 1)), "coinbase"),
        (lambda: gossip(pay(5), payload=b"\x00" * 10), "malformed"),
        (lambda: gossip(pay(5), msg_id=b"\x01" * 32), "wrong id"),
    ],
    ids=["forged signature", "zero amount", "overflow", "coinbase", "malformed", "wrong id"],
)
def test_what_no_honest_node_relays_is_rejected(admit, message, category):
    verdict = validate_transaction_message(message(), admit)
    assert (verdict.kind, verdict.category) == ("reject", category)
