"""DPoS wire objects -- the block header and block, the signed operation, double-production
evidence -- with their canonical encoding, roots and signing roots.

Encoding, roots and checked decoding come from the PoS wire bases (`consensus.pos.encoding`):
msgpack arrays in `WIRE` order, SHA-256 roots, domain-separated signing roots, every field checked
on decoding. A block is named by its header's root (slot, producer, parent, body root), which does
not commit to the signature: two signed headers of one producer and slot are then evidence of a
double production (EOSIO's producer signs the header digest the same way,
`block_header_state::sig_digest`).

An operation is one of four kinds (EOSIO system contract actions): `stake` (`delegatebw`: liquid
balance -> stake), `unstake` (`undelegatebw`: stake -> refund after a delay), `register`
(`regproducer`: the account becomes a candidate) and `vote` (`voteproducer`: up to `max_votes`
candidates, replacing the account's previous vote). It carries the account's ledger nonce, so it
cannot be replayed, and shares that nonce sequence with the account's transfers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property

from consensus import keys
from consensus.pos.encoding import (
    PUBKEY,
    ROOT,
    SIGNATURE,
    TRANSACTION,
    UINT,
    Items,
    Nested,
    Signable,
    WireField,
    WireList,
    WireObject,
    encode,
    sha256,
)
from consensus.types import ZERO_HASH, ZERO_SIG, Transaction

DOMAIN_BLOCK = b"p2p-testnet/dpos/block"
DOMAIN_OPERATION = b"p2p-testnet/dpos/operation"

__all__ = ["OpKind", "DposOperation", "sign_operation", "DposBlockHeader", "SignedDposHeader",
           "DoubleProduction", "DposBody", "DposBlock", "ZERO_HASH", "ZERO_SIG", "sha256", "encode"]


class OpKind(IntEnum):
    STAKE = 0
    UNSTAKE = 1
    REGISTER = 2
    VOTE = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class DposOperation(Signable):
    """A signed stake, unstake, candidate registration or vote of `account`. `amount` is used by
    stake and unstake, `candidates` by vote (empty: withdraw the vote)."""
    kind: int
    account: bytes
    nonce: int
    amount: int = 0
    candidates: tuple[bytes, ...] = ()
    signature: bytes = ZERO_SIG

    WIRE = (WireField("kind", UINT), WireField("account", PUBKEY), WireField("nonce", UINT),
            WireField("amount", UINT),
            WireField("candidates", Items(PUBKEY, "candidates", "candidate")),
            WireField("signature", SIGNATURE))
    WHAT = "operation"
    DOMAIN = DOMAIN_OPERATION

    @property
    def kind_label(self) -> str:
        return OpKind(self.kind).label if self.kind in OpKind._value2member_map_ else "unknown"

    def to_json(self) -> dict:
        return {"root": self.root.hex(), "kind": self.kind_label, "account": self.account.hex(),
                "nonce": self.nonce, "amount": self.amount,
                "candidates": [c.hex() for c in self.candidates]}


def sign_operation(private_key: bytes, kind: OpKind, nonce: int, *, amount: int = 0,
                   candidates: tuple[bytes, ...] = ()) -> DposOperation:
    """An operation of the account of `private_key`, signed over its signing root."""
    account = keys.public_key(private_key)
    unsigned = DposOperation(int(kind), account, nonce, amount, tuple(candidates))
    return DposOperation(int(kind), account, nonce, amount, tuple(candidates),
                         keys.sign(private_key, unsigned.signing_root))


@dataclass(frozen=True)
class DposBlockHeader(Signable):
    """Its `root` is the block root; no signature field, so the signing root covers it all."""
    slot: int
    producer: bytes
    parent_root: bytes
    body_root: bytes

    WIRE = (WireField("slot", UINT), WireField("producer", PUBKEY),
            WireField("parent_root", ROOT), WireField("body_root", ROOT))
    WHAT = "header"
    DOMAIN = DOMAIN_BLOCK


@dataclass(frozen=True)
class SignedDposHeader(WireList):
    message: DposBlockHeader
    signature: bytes

    WIRE = (WireField("message", Nested(DposBlockHeader)), WireField("signature", SIGNATURE))
    WHAT = "signed header"


@dataclass(frozen=True)
class DoubleProduction(WireObject):
    """Two headers signed by one producer for one slot, with different roots."""
    header_1: SignedDposHeader
    header_2: SignedDposHeader

    WIRE = (WireField("header_1", Nested(SignedDposHeader)),
            WireField("header_2", Nested(SignedDposHeader)))
    WHAT = "double production"
    kind = "double production"

    @property
    def offender(self) -> bytes:
        return self.header_1.message.producer

    @property
    def slot(self) -> int:
        return self.header_1.message.slot

    def to_json(self) -> dict:
        return {"kind": self.kind, "producer": self.offender.hex(), "slot": self.slot,
                "roots": [self.header_1.message.root.hex(), self.header_2.message.root.hex()]}


@dataclass(frozen=True)
class DposBody(WireList):
    """Processed in this order: evidence, transfers, operations (transfers first, so an account
    funded in a block can stake in it)."""
    transactions: tuple[Transaction, ...] = ()
    operations: tuple[DposOperation, ...] = ()
    evidence: tuple[DoubleProduction, ...] = ()

    WIRE = (WireField("transactions", Items(TRANSACTION, "transactions", "transaction")),
            WireField("operations", Items(Nested(DposOperation), "operations", "operation")),
            WireField("evidence", Items(Nested(DoubleProduction), "evidence", "evidence")))
    WHAT = "block body"


@dataclass(frozen=True)
class DposBlock(WireObject):
    """A block travels whole but is named by its header (`root`)."""
    slot: int
    producer: bytes
    parent_root: bytes
    body: DposBody = field(default_factory=DposBody)
    signature: bytes = ZERO_SIG

    WIRE = (WireField("slot", UINT), WireField("producer", PUBKEY),
            WireField("parent_root", ROOT), WireField("body", Nested(DposBody)),
            WireField("signature", SIGNATURE))
    WHAT = "block"

    @cached_property
    def body_root(self) -> bytes:
        return sha256(encode(self.body.to_list()))

    @cached_property
    def header(self) -> DposBlockHeader:
        return DposBlockHeader(self.slot, self.producer, self.parent_root, self.body_root)

    @property
    def root(self) -> bytes:
        return self.header.root

    @property
    def signed_header(self) -> SignedDposHeader:
        return SignedDposHeader(self.header, self.signature)

    @cached_property
    def size(self) -> int:
        return len(self.serialize())

    def to_json(self) -> dict:
        b = self.body
        return {"root": self.root.hex(), "slot": self.slot, "producer": self.producer.hex(),
                "parent_root": self.parent_root.hex(), "size": self.size,
                "transactions": [tx.to_json() for tx in b.transactions],
                "operations": [op.to_json() for op in b.operations],
                "evidence": [e.to_json() for e in b.evidence]}
