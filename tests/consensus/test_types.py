"""Canonical encodings of transactions, headers and blocks: round trips, what the txid commits
to, and the DecodeError a malformed encoding must raise."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus import keys, pow
from consensus.errors import ConsensusError, DecodeError
from consensus.types import (
    TX_BYTES,
    ZERO_HASH,
    ZERO_KEY,
    ZERO_SIG,
    Block,
    BlockHeader,
    Transaction,
    make_coinbase,
    sign_transaction,
    verify_transaction_signature,
)

ALICE_KEY = keys.derive_private_key("consensus-tests", "alice")
BOB = keys.public_key(keys.derive_private_key("consensus-tests", "bob"))

u32 = st.integers(min_value=0, max_value=(1 << 32) - 1)
u64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
hash32 = st.binary(min_size=32, max_size=32)

transactions = st.builds(Transaction, sender=hash32, recipient=hash32, amount=u64, fee=u64,
                         nonce=u64, signature=st.binary(min_size=64, max_size=64))
headers = st.builds(BlockHeader, version=st.integers(min_value=-(1 << 31), max_value=(1 << 31) - 1),
                    prev_hash=hash32, merkle_root=hash32, time=u32, bits=u32, nonce=u32)
blocks = st.builds(Block, header=headers,
                   transactions=st.lists(transactions, max_size=5).map(tuple))


@given(transactions)
def test_transaction_round_trip(tx):
    raw = tx.serialize()
    assert len(raw) == TX_BYTES
    assert Transaction.deserialize(raw) == tx


@given(transactions)
def test_a_decoded_transaction_has_the_txid_of_its_encoding(tx):
    decoded = Transaction.deserialize(memoryview(tx.serialize()))
    assert decoded.txid == tx.txid == pow.sha256d(tx.serialize())


@given(headers)
def test_header_round_trip(header):
    raw = header.serialize()
    assert len(raw) == pow.HEADER_BYTES
    assert BlockHeader.deserialize(raw) == header
    assert header.hash == pow.sha256d(raw)


@given(blocks)
def test_block_round_trip(block):
    raw = block.serialize()
    assert len(raw) == block.size
    decoded = Block.deserialize(raw)
    assert decoded == block
    assert decoded.hash == block.header.hash


def test_signed_transaction_verifies_and_any_change_breaks_it():
    tx = sign_transaction(ALICE_KEY, BOB, 10, 1, 0)
    assert tx.sender == keys.public_key(ALICE_KEY)
    assert verify_transaction_signature(tx)
    for field, value in [("amount", 11), ("fee", 2), ("nonce", 1), ("recipient", ZERO_KEY)]:
        assert not verify_transaction_signature(dataclasses.replace(tx, **{field: value})), field


def test_signature_is_domain_separated():
    tx = sign_transaction(ALICE_KEY, BOB, 10, 1, 0)
    # a signature over the bare body (no domain tag) must not verify
    bare = keys.sign(ALICE_KEY, tx.body_bytes())
    assert not verify_transaction_signature(dataclasses.replace(tx, signature=bare))


def test_txid_commits_to_the_signature():
    tx = sign_transaction(ALICE_KEY, BOB, 10, 1, 0)
    flipped = bytes([tx.signature[0] ^ 1]) + tx.signature[1:]
    other = dataclasses.replace(tx, signature=flipped)
    assert other.signing_bytes() == tx.signing_bytes()
    assert other.txid != tx.txid
    assert tx.txid == pow.sha256d(tx.serialize())


def test_coinbase_is_zero_sender_with_the_height_as_nonce():
    coinbase = make_coinbase(BOB, 50, height=7)
    assert coinbase.is_coinbase and coinbase.nonce == 7 and coinbase.signature == ZERO_SIG
    assert make_coinbase(BOB, 50, height=8).txid != coinbase.txid
    assert not sign_transaction(ALICE_KEY, BOB, 1, 0, 0).is_coinbase


@pytest.mark.parametrize("length", [0, TX_BYTES - 1, TX_BYTES + 1])
def test_transaction_of_wrong_length_is_a_decode_error(length):
    with pytest.raises(DecodeError):
        Transaction.deserialize(b"\x01" * length)


@pytest.mark.parametrize("length", [0, pow.HEADER_BYTES - 1, pow.HEADER_BYTES + 1])
def test_header_of_wrong_length_is_a_decode_error(length):
    with pytest.raises(DecodeError):
        BlockHeader.deserialize(b"\x01" * length)


def sample_block(tx_count: int) -> Block:
    txs = tuple(make_coinbase(BOB, 50 + i, i) for i in range(tx_count))
    header = BlockHeader(1, ZERO_HASH, pow.merkle_root([t.txid for t in txs]), 1, 0x207FFFFF, 0)
    return Block(header, txs)


def test_block_shorter_than_header_and_count_is_a_decode_error():
    raw = sample_block(0).serialize()
    assert len(raw) == pow.HEADER_BYTES + 4
    with pytest.raises(DecodeError, match="too short"):
        Block.deserialize(raw[:-1])


@pytest.mark.parametrize("cut, extra", [(TX_BYTES, b""), (1, b""), (0, b"\x00")],
                         ids=["one-tx-missing", "truncated-tx", "trailing-byte"])
def test_block_whose_count_disagrees_with_its_body_is_a_decode_error(cut, extra):
    raw = sample_block(2).serialize()
    raw = raw[:len(raw) - cut] + extra
    with pytest.raises(DecodeError, match="declares 2 transactions"):
        Block.deserialize(raw)


def test_block_max_bytes_is_checked_before_decoding():
    raw = sample_block(2).serialize()
    assert Block.deserialize(raw, max_bytes=len(raw)) == sample_block(2)
    with pytest.raises(DecodeError, match="exceeds"):
        Block.deserialize(raw, max_bytes=len(raw) - 1)
    # the limit applies even to bytes that would not decode at all
    with pytest.raises(DecodeError, match="exceeds"):
        Block.deserialize(b"\xff" * 1000, max_bytes=999)


def test_decode_error_is_a_consensus_error_and_a_value_error():
    with pytest.raises(ConsensusError):
        Transaction.deserialize(b"")
    with pytest.raises(ValueError):
        Transaction.deserialize(b"")


def test_block_merkle_root_and_size_follow_its_transactions():
    block = sample_block(3)
    assert block.computed_merkle_root() == block.header.merkle_root
    assert block.size == pow.HEADER_BYTES + 4 + 3 * TX_BYTES


@pytest.mark.parametrize("pubkey, signature", [(b"\x00" * 31, b"\x00" * 64),
                                               (b"\x00" * 32, b"\x00" * 63),
                                               (b"\xff" * 32, b"\x00" * 64)])
def test_malformed_keys_and_signatures_verify_false(pubkey, signature):
    assert keys.verify(pubkey, signature, b"message") is False
