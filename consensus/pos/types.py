"""PoS objects — checkpoints, attestations, blocks, slashing evidence, deposits, exits — with their
canonical encoding, roots and signing roots.

Encoding: the canonical bytes of an object are the msgpack encoding of a fixed-order array of its
fields (nested objects as nested arrays, transactions as their 152-byte PoW encoding). The root of
an object is the SHA-256 of those bytes. Signed objects are signed over a *signing root*:
SHA-256 of a domain tag followed by the canonical bytes without the signature, so a signature made
for one kind of object can never be replayed as another.

A block's root is the root of its header (slot, proposer, parent, state root, body root), not of
the whole block: two signed headers are then enough to prove a double proposal. The body root
commits to the randao reveal and to every operation.

`deserialize` is a trust boundary: it caps the size, turns msgpack failures into `DecodeError`, and
checks every field's type and length, so the rules never see a malformed object.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import msgpack

from consensus.errors import DecodeError
from consensus.types import TX_BYTES, ZERO_HASH, ZERO_SIG, Transaction

DOMAIN_ATTESTATION = b"p2p-testnet/attestation"
DOMAIN_BLOCK = b"p2p-testnet/block"
DOMAIN_RANDAO = b"p2p-testnet/randao"
DOMAIN_DEPOSIT = b"p2p-testnet/deposit"
DOMAIN_EXIT = b"p2p-testnet/exit"

MAX_UINT64 = (1 << 64) - 1
ROOT_BYTES = 32
PUBKEY_BYTES = 32
SIGNATURE_BYTES = 64
MAX_OBJECT_BYTES = 4 * 1024 * 1024    # no single gossip object (attestation, evidence) is larger

__all__ = ["Checkpoint", "Attestation", "PosBlockHeader", "SignedBlockHeader", "BlockBody",
           "PosBlock", "ProposerSlashing", "AttesterSlashing", "Deposit", "Exit", "Evidence",
           "ZERO_HASH", "ZERO_SIG", "sha256", "encode", "decode"]


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def encode(value: Any) -> bytes:
    """Canonical msgpack bytes of a fixed-order array (bin type for bytes, never str)."""
    return msgpack.packb(value, use_bin_type=True)


def decode(raw: bytes, what: str, max_bytes: int = MAX_OBJECT_BYTES) -> Any:
    """msgpack bytes -> Python value; every failure becomes DecodeError."""
    # [REJECT] the encoding fits the size cap; checked before msgpack allocates anything
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise DecodeError(f"{what}: expected bytes, got {type(raw).__name__}")
    if len(raw) > max_bytes:
        raise DecodeError(f"{what} of {len(raw)} bytes exceeds the {max_bytes}-byte limit")
    try:
        return msgpack.unpackb(raw, raw=False, strict_map_key=True, use_list=True)
    except (msgpack.UnpackException, ValueError, TypeError) as exc:
        raise DecodeError(f"{what} is not valid msgpack: {type(exc).__name__}: {exc}") from None


# ---- field checks used by every `from_list` ----------------------------------------------------
def _uint(value: Any, what: str) -> int:
    # bool is an int subclass in Python, but msgpack keeps them apart and so do we
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_UINT64:
        raise DecodeError(f"{what} must be a 64-bit unsigned integer")
    return value


def _bytes(value: Any, length: int, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != length:
        raise DecodeError(f"{what} must be {length} bytes")
    return value


def _array(value: Any, length: int, what: str) -> list:
    if not isinstance(value, list) or len(value) != length:
        raise DecodeError(f"{what} must be an array of {length} fields")
    return value


def _items(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise DecodeError(f"{what} must be an array")
    return value


# ---- checkpoints and attestations ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Checkpoint:
    epoch: int
    root: bytes

    def to_list(self) -> list:
        return [self.epoch, self.root]

    @classmethod
    def from_list(cls, value: Any, what: str = "checkpoint") -> Checkpoint:
        epoch, root = _array(value, 2, what)
        return cls(_uint(epoch, f"{what} epoch"), _bytes(root, ROOT_BYTES, f"{what} root"))

    def to_json(self) -> dict:
        return {"epoch": self.epoch, "root": self.root.hex()}


@dataclass(frozen=True)
class Attestation:
    """One validator's vote: `head_root` for LMD-GHOST, `source -> target` for Casper FFG."""
    slot: int
    validator_index: int
    head_root: bytes
    source: Checkpoint
    target: Checkpoint
    signature: bytes = ZERO_SIG

    @property
    def data(self) -> tuple[int, bytes, Checkpoint, Checkpoint]:
        """What the validator votes for; two different `data` for one target epoch = double vote."""
        return (self.slot, self.head_root, self.source, self.target)

    def message_list(self) -> list:
        return [self.slot, self.validator_index, self.head_root, self.source.to_list(),
                self.target.to_list()]

    def to_list(self) -> list:
        return [*self.message_list(), self.signature]

    @cached_property
    def signing_root(self) -> bytes:
        return sha256(DOMAIN_ATTESTATION + encode(self.message_list()))

    def serialize(self) -> bytes:
        return encode(self.to_list())

    @cached_property
    def root(self) -> bytes:
        """Commits to the signature too: the key of the verified-signature cache."""
        return sha256(self.serialize())

    @classmethod
    def from_list(cls, value: Any, what: str = "attestation") -> Attestation:
        slot, index, head, source, target, sig = _array(value, 6, what)
        return cls(_uint(slot, f"{what} slot"), _uint(index, f"{what} validator index"),
                   _bytes(head, ROOT_BYTES, f"{what} head root"),
                   Checkpoint.from_list(source, f"{what} source"),
                   Checkpoint.from_list(target, f"{what} target"),
                   _bytes(sig, SIGNATURE_BYTES, f"{what} signature"))

    @classmethod
    def deserialize(cls, raw: bytes) -> Attestation:
        return cls.from_list(decode(raw, "attestation"))

    def to_json(self) -> dict:
        return {"root": self.root.hex(), "slot": self.slot, "validator_index": self.validator_index,
                "head_root": self.head_root.hex(), "source": self.source.to_json(),
                "target": self.target.to_json(), "signature": self.signature.hex()}


# ---- block headers ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PosBlockHeader:
    slot: int
    proposer_index: int
    parent_root: bytes
    state_root: bytes
    body_root: bytes

    def to_list(self) -> list:
        return [self.slot, self.proposer_index, self.parent_root, self.state_root, self.body_root]

    @cached_property
    def root(self) -> bytes:
        """The block root (what children, votes and checkpoints name)."""
        return sha256(encode(self.to_list()))

    @cached_property
    def signing_root(self) -> bytes:
        return sha256(DOMAIN_BLOCK + encode(self.to_list()))

    @classmethod
    def from_list(cls, value: Any, what: str = "header") -> PosBlockHeader:
        slot, proposer, parent, state_root, body_root = _array(value, 5, what)
        return cls(_uint(slot, f"{what} slot"), _uint(proposer, f"{what} proposer index"),
                   _bytes(parent, ROOT_BYTES, f"{what} parent root"),
                   _bytes(state_root, ROOT_BYTES, f"{what} state root"),
                   _bytes(body_root, ROOT_BYTES, f"{what} body root"))


@dataclass(frozen=True)
class SignedBlockHeader:
    message: PosBlockHeader
    signature: bytes

    def to_list(self) -> list:
        return [self.message.to_list(), self.signature]

    @classmethod
    def from_list(cls, value: Any, what: str = "signed header") -> SignedBlockHeader:
        message, sig = _array(value, 2, what)
        return cls(PosBlockHeader.from_list(message, f"{what} message"),
                   _bytes(sig, SIGNATURE_BYTES, f"{what} signature"))


# ---- slashing evidence, deposits, exits ---------------------------------------------------------
@dataclass(frozen=True)
class ProposerSlashing:
    """Two signed headers, same proposer and slot, different roots: a double proposal."""
    header_1: SignedBlockHeader
    header_2: SignedBlockHeader

    kind = "double proposal"

    @property
    def offender(self) -> int:
        return self.header_1.message.proposer_index

    def to_list(self) -> list:
        return [self.header_1.to_list(), self.header_2.to_list()]

    def serialize(self) -> bytes:
        return encode(self.to_list())

    @cached_property
    def root(self) -> bytes:
        return sha256(self.serialize())

    @classmethod
    def from_list(cls, value: Any, what: str = "proposer slashing") -> ProposerSlashing:
        h1, h2 = _array(value, 2, what)
        return cls(SignedBlockHeader.from_list(h1, f"{what} header 1"),
                   SignedBlockHeader.from_list(h2, f"{what} header 2"))

    @classmethod
    def deserialize(cls, raw: bytes) -> ProposerSlashing:
        return cls.from_list(decode(raw, "proposer slashing"))

    def to_json(self) -> dict:
        return {"kind": self.kind, "validator": self.offender,
                "slot": self.header_1.message.slot,
                "roots": [self.header_1.message.root.hex(), self.header_2.message.root.hex()]}


@dataclass(frozen=True)
class AttesterSlashing:
    """Two signed attestations of one validator that form a double or a surround vote."""
    att_1: Attestation
    att_2: Attestation

    @property
    def offender(self) -> int:
        return self.att_1.validator_index

    @property
    def kind(self) -> str:
        if self.att_1.target.epoch == self.att_2.target.epoch:
            return "double vote"
        return "surround vote"

    def to_list(self) -> list:
        return [self.att_1.to_list(), self.att_2.to_list()]

    def serialize(self) -> bytes:
        return encode(self.to_list())

    @cached_property
    def root(self) -> bytes:
        return sha256(self.serialize())

    @classmethod
    def from_list(cls, value: Any, what: str = "attester slashing") -> AttesterSlashing:
        a1, a2 = _array(value, 2, what)
        return cls(Attestation.from_list(a1, f"{what} attestation 1"),
                   Attestation.from_list(a2, f"{what} attestation 2"))

    @classmethod
    def deserialize(cls, raw: bytes) -> AttesterSlashing:
        return cls.from_list(decode(raw, "attester slashing"))

    def to_json(self) -> dict:
        return {"kind": self.kind, "validator": self.offender,
                "attestations": [self.att_1.to_json(), self.att_2.to_json()]}


Evidence = ProposerSlashing | AttesterSlashing


@dataclass(frozen=True)
class Deposit:
    """Moves `amount` from `from_account`'s balance into the stake of validator `pubkey` (a new
    validator, or a top-up). Signed by `from_account`; `nonce` is that account's ledger nonce, so a
    deposit cannot be replayed (added to the design's fields, after `signature`, for that)."""
    pubkey: bytes
    amount: int
    from_account: bytes
    signature: bytes = ZERO_SIG
    nonce: int = 0

    def message_list(self) -> list:
        return [self.pubkey, self.amount, self.from_account, self.nonce]

    def to_list(self) -> list:
        return [*self.message_list(), self.signature]

    @cached_property
    def signing_root(self) -> bytes:
        return sha256(DOMAIN_DEPOSIT + encode(self.message_list()))

    def serialize(self) -> bytes:
        return encode(self.to_list())

    @cached_property
    def root(self) -> bytes:
        return sha256(self.serialize())

    @classmethod
    def from_list(cls, value: Any, what: str = "deposit") -> Deposit:
        pubkey, amount, account, nonce, sig = _array(value, 5, what)
        return cls(_bytes(pubkey, PUBKEY_BYTES, f"{what} pubkey"), _uint(amount, f"{what} amount"),
                   _bytes(account, PUBKEY_BYTES, f"{what} account"),
                   _bytes(sig, SIGNATURE_BYTES, f"{what} signature"), _uint(nonce, f"{what} nonce"))

    @classmethod
    def deserialize(cls, raw: bytes) -> Deposit:
        return cls.from_list(decode(raw, "deposit"))


@dataclass(frozen=True)
class Exit:
    """A validator's signed request to stop validating, valid from `epoch` on."""
    validator_index: int
    epoch: int
    signature: bytes = ZERO_SIG

    def message_list(self) -> list:
        return [self.validator_index, self.epoch]

    def to_list(self) -> list:
        return [*self.message_list(), self.signature]

    @cached_property
    def signing_root(self) -> bytes:
        return sha256(DOMAIN_EXIT + encode(self.message_list()))

    def serialize(self) -> bytes:
        return encode(self.to_list())

    @cached_property
    def root(self) -> bytes:
        return sha256(self.serialize())

    @classmethod
    def from_list(cls, value: Any, what: str = "exit") -> Exit:
        index, epoch, sig = _array(value, 3, what)
        return cls(_uint(index, f"{what} validator index"), _uint(epoch, f"{what} epoch"),
                   _bytes(sig, SIGNATURE_BYTES, f"{what} signature"))

    @classmethod
    def deserialize(cls, raw: bytes) -> Exit:
        return cls.from_list(decode(raw, "exit"))


# ---- blocks -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BlockBody:
    """Operations, processed in this order: slashings, attestations, transactions, deposits, exits
    (transactions before deposits, so an account funded in a block can deposit in it)."""
    transactions: tuple[Transaction, ...] = ()
    attestations: tuple[Attestation, ...] = ()
    proposer_slashings: tuple[ProposerSlashing, ...] = ()
    attester_slashings: tuple[AttesterSlashing, ...] = ()
    deposits: tuple[Deposit, ...] = ()
    exits: tuple[Exit, ...] = ()

    def to_list(self) -> list:
        return [[tx.serialize() for tx in self.transactions],
                [a.to_list() for a in self.attestations],
                [s.to_list() for s in self.proposer_slashings],
                [s.to_list() for s in self.attester_slashings],
                [d.to_list() for d in self.deposits],
                [e.to_list() for e in self.exits]]

    @classmethod
    def from_list(cls, value: Any) -> BlockBody:
        txs, atts, pss, ass, deps, exits = _array(value, 6, "block body")
        transactions = []
        for i, raw in enumerate(_items(txs, "transactions")):
            transactions.append(Transaction.deserialize(_bytes(raw, TX_BYTES, f"transaction {i}")))
        return cls(
            tuple(transactions),
            tuple(Attestation.from_list(a, f"attestation {i}")
                  for i, a in enumerate(_items(atts, "attestations"))),
            tuple(ProposerSlashing.from_list(s, f"proposer slashing {i}")
                  for i, s in enumerate(_items(pss, "proposer slashings"))),
            tuple(AttesterSlashing.from_list(s, f"attester slashing {i}")
                  for i, s in enumerate(_items(ass, "attester slashings"))),
            tuple(Deposit.from_list(d, f"deposit {i}") for i, d in
                  enumerate(_items(deps, "deposits"))),
            tuple(Exit.from_list(e, f"exit {i}") for i, e in enumerate(_items(exits, "exits"))))


@dataclass(frozen=True)
class PosBlock:
    slot: int
    proposer_index: int
    parent_root: bytes
    state_root: bytes
    randao_reveal: bytes
    body: BlockBody = field(default_factory=BlockBody)
    signature: bytes = ZERO_SIG

    @cached_property
    def body_root(self) -> bytes:
        return sha256(encode([self.randao_reveal, self.body.to_list()]))

    @cached_property
    def header(self) -> PosBlockHeader:
        return PosBlockHeader(self.slot, self.proposer_index, self.parent_root, self.state_root,
                              self.body_root)

    @property
    def root(self) -> bytes:
        return self.header.root

    @property
    def signed_header(self) -> SignedBlockHeader:
        return SignedBlockHeader(self.header, self.signature)

    def to_list(self) -> list:
        return [self.slot, self.proposer_index, self.parent_root, self.state_root,
                self.randao_reveal, self.body.to_list(), self.signature]

    def serialize(self) -> bytes:
        return encode(self.to_list())

    @cached_property
    def size(self) -> int:
        return len(self.serialize())

    @classmethod
    def deserialize(cls, raw: bytes, max_bytes: int | None = None) -> PosBlock:
        value = decode(raw, "block", MAX_OBJECT_BYTES if max_bytes is None else max_bytes)
        slot, proposer, parent, state_root, reveal, body, sig = _array(value, 7, "block")
        return cls(_uint(slot, "block slot"), _uint(proposer, "block proposer index"),
                   _bytes(parent, ROOT_BYTES, "block parent root"),
                   _bytes(state_root, ROOT_BYTES, "block state root"),
                   _bytes(reveal, SIGNATURE_BYTES, "block randao reveal"),
                   BlockBody.from_list(body), _bytes(sig, SIGNATURE_BYTES, "block signature"))

    def to_json(self) -> dict:
        b = self.body
        return {"root": self.root.hex(), "slot": self.slot, "proposer_index": self.proposer_index,
                "parent_root": self.parent_root.hex(), "state_root": self.state_root.hex(),
                "size": self.size, "transactions": [tx.to_json() for tx in b.transactions],
                "attestations": len(b.attestations),
                "proposer_slashings": [s.to_json() for s in b.proposer_slashings],
                "attester_slashings": [s.to_json() for s in b.attester_slashings],
                "deposits": len(b.deposits), "exits": len(b.exits)}
