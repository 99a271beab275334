"""Transactions, headers and blocks, with the canonical byte encoding used for hashing, signing,
storage and the wire.

Encoding (all integers little-endian):
- transaction, 152 bytes: sender(32) recipient(32) amount(u64) fee(u64) nonce(u64) signature(64).
  The signed message is the domain tag plus the first 88 bytes. The txid is the double SHA-256 of
  all 152 bytes, so it commits to the signature as Bitcoin's txid does.
- coinbase: a transaction whose sender and signature are all zeros and whose nonce is the block
  height (so two coinbases to one miner never share a txid, as BIP34 ensures in Bitcoin).
- block: the 80-byte Bitcoin header, a u32 transaction count, then the transactions.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property

from consensus import keys, pow
from consensus.errors import DecodeError

TX_BYTES = 152
TX_SIGNING_DOMAIN = b"p2p-testnet/tx/v1"
ZERO_HASH = b"\x00" * 32
ZERO_KEY = b"\x00" * 32
ZERO_SIG = b"\x00" * 64
MAX_AMOUNT = (1 << 64) - 1

_TX_BODY = struct.Struct("<32s32sQQQ")
_COUNT = struct.Struct("<I")


@dataclass(frozen=True)
class Transaction:
    sender: bytes
    recipient: bytes
    amount: int
    fee: int
    nonce: int
    signature: bytes = ZERO_SIG

    def body_bytes(self) -> bytes:
        return _TX_BODY.pack(self.sender, self.recipient, self.amount, self.fee, self.nonce)

    def signing_bytes(self) -> bytes:
        return TX_SIGNING_DOMAIN + self.body_bytes()

    def serialize(self) -> bytes:
        return self.body_bytes() + self.signature

    @cached_property
    def txid(self) -> bytes:
        """Cached: a block's transactions are hashed for the merkle root, the duplicate check,
        the signature cache and the mempool, and 152-byte hashes add up at 100 per block."""
        return pow.sha256d(self.serialize())

    @property
    def is_coinbase(self) -> bool:
        return self.sender == ZERO_KEY

    @classmethod
    def deserialize(cls, raw: bytes) -> Transaction:
        if len(raw) != TX_BYTES:
            raise DecodeError(f"a transaction is {TX_BYTES} bytes, got {len(raw)}")
        sender, recipient, amount, fee, nonce = _TX_BODY.unpack_from(raw)
        tx = cls(sender, recipient, amount, fee, nonce, bytes(raw[88:]))
        # Every decoded transaction needs its id (gossip id check, merkle root, mempool): hash the
        # bytes at hand, which are exactly `tx.serialize()` (fixed layout), instead of encoding
        # them again on first use; the cached property then finds it in the instance dict.
        tx.__dict__["txid"] = pow.sha256d(bytes(raw))
        return tx

    def to_json(self) -> dict:
        return {
            "txid": pow.hash_hex(self.txid), "sender": self.sender.hex(),
            "recipient": self.recipient.hex(), "amount": self.amount, "fee": self.fee,
            "nonce": self.nonce, "signature": self.signature.hex(), "coinbase": self.is_coinbase,
        }


def sign_transaction(private_key: bytes, recipient: bytes, amount: int, fee: int,
                     nonce: int) -> Transaction:
    """A transfer from the account of `private_key`, signed over the canonical body."""
    unsigned = Transaction(keys.public_key(private_key), recipient, amount, fee, nonce)
    return Transaction(unsigned.sender, recipient, amount, fee, nonce,
                       keys.sign(private_key, unsigned.signing_bytes()))


def verify_transaction_signature(tx: Transaction) -> bool:
    return keys.verify(tx.sender, tx.signature, tx.signing_bytes())


def make_coinbase(recipient: bytes, amount: int, height: int) -> Transaction:
    return Transaction(ZERO_KEY, recipient, amount, 0, height)


@dataclass(frozen=True, slots=True)
class BlockHeader:
    version: int
    prev_hash: bytes
    merkle_root: bytes
    time: int
    bits: int
    nonce: int

    def serialize(self) -> bytes:
        return pow.serialize_header(self.version, self.prev_hash, self.merkle_root, self.time,
                                    self.bits, self.nonce)

    @property
    def hash(self) -> bytes:
        return pow.header_hash(self.serialize())

    @classmethod
    def deserialize(cls, raw: bytes) -> BlockHeader:
        try:
            return cls(*pow.parse_header(raw))
        except ValueError as exc:
            raise DecodeError(str(exc)) from None

    def to_json(self) -> dict:
        return {
            "hash": pow.hash_hex(self.hash), "version": self.version,
            "prev_hash": pow.hash_hex(self.prev_hash),
            "merkle_root": pow.hash_hex(self.merkle_root),
            "time": self.time, "bits": f"{self.bits:08x}", "nonce": self.nonce,
        }


@dataclass(frozen=True)
class Block:
    header: BlockHeader
    transactions: tuple[Transaction, ...]

    @cached_property
    def hash(self) -> bytes:
        return self.header.hash

    def serialize(self) -> bytes:
        return b"".join([self.header.serialize(), _COUNT.pack(len(self.transactions)),
                         *(tx.serialize() for tx in self.transactions)])

    @property
    def size(self) -> int:
        return pow.HEADER_BYTES + _COUNT.size + TX_BYTES * len(self.transactions)

    def computed_merkle_root(self) -> bytes:
        return pow.merkle_root([tx.txid for tx in self.transactions])

    @classmethod
    def deserialize(cls, raw: bytes, max_bytes: int | None = None) -> Block:
        if max_bytes is not None and len(raw) > max_bytes:
            raise DecodeError(f"block of {len(raw)} bytes exceeds the {max_bytes}-byte limit")
        if len(raw) < pow.HEADER_BYTES + _COUNT.size:
            raise DecodeError(f"block too short: {len(raw)} bytes")
        header = BlockHeader.deserialize(raw[:pow.HEADER_BYTES])
        (count,) = _COUNT.unpack_from(raw, pow.HEADER_BYTES)
        body = raw[pow.HEADER_BYTES + _COUNT.size:]
        if len(body) != count * TX_BYTES:
            raise DecodeError(f"block declares {count} transactions but carries {len(body)} bytes")
        txs = tuple(Transaction.deserialize(body[i:i + TX_BYTES])
                    for i in range(0, len(body), TX_BYTES))
        return cls(header, txs)

    def to_json(self, height: int | None = None) -> dict:
        out = self.header.to_json()
        if height is not None:
            out["height"] = height
        out["size"] = self.size
        out["transactions"] = [tx.to_json() for tx in self.transactions]
        return out
