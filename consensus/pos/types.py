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

Each type lists its fields in wire order in a `WIRE` table; `consensus.pos.encoding` derives the
array, the bytes, the roots and the checked decoding from it, once for all types. `deserialize` is
a trust boundary: it caps the size, turns msgpack failures into `DecodeError`, and checks every
field's type and length, so the rules never see a malformed object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from consensus.pos.encoding import (
    MAX_OBJECT_BYTES,
    MAX_UINT64,
    PUBKEY,
    PUBKEY_BYTES,
    ROOT,
    ROOT_BYTES,
    SIGNATURE,
    SIGNATURE_BYTES,
    TRANSACTION,
    UINT,
    Items,
    Nested,
    Signable,
    WireField,
    WireList,
    WireObject,
    decode,
    encode,
    sha256,
)
from consensus.types import ZERO_HASH, ZERO_SIG, Transaction

DOMAIN_ATTESTATION = b"p2p-testnet/attestation"
DOMAIN_BLOCK = b"p2p-testnet/block"
DOMAIN_RANDAO = b"p2p-testnet/randao"
DOMAIN_DEPOSIT = b"p2p-testnet/deposit"
DOMAIN_EXIT = b"p2p-testnet/exit"

__all__ = ["Checkpoint", "Attestation", "PosBlockHeader", "SignedBlockHeader", "BlockBody",
           "PosBlock", "ProposerSlashing", "AttesterSlashing", "Deposit", "Exit", "Evidence",
           "ZERO_HASH", "ZERO_SIG", "sha256", "encode", "decode", "MAX_UINT64", "ROOT_BYTES",
           "PUBKEY_BYTES", "SIGNATURE_BYTES", "MAX_OBJECT_BYTES"]


# ---- checkpoints and attestations ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Checkpoint(WireList):
    epoch: int
    root: bytes

    WIRE = (WireField("epoch", UINT), WireField("root", ROOT))
    WHAT = "checkpoint"

    def to_json(self) -> dict:
        return {"epoch": self.epoch, "root": self.root.hex()}


@dataclass(frozen=True)
class Attestation(Signable):
    """One validator's vote: `head_root` for LMD-GHOST, `source -> target` for Casper FFG.
    Its `root` commits to the signature too: the key of the verified-signature cache."""
    slot: int
    validator_index: int
    head_root: bytes
    source: Checkpoint
    target: Checkpoint
    signature: bytes = ZERO_SIG

    WIRE = (WireField("slot", UINT), WireField("validator_index", UINT),
            WireField("head_root", ROOT), WireField("source", Nested(Checkpoint)),
            WireField("target", Nested(Checkpoint)), WireField("signature", SIGNATURE))
    WHAT = "attestation"
    DOMAIN = DOMAIN_ATTESTATION

    @property
    def data(self) -> tuple[int, bytes, Checkpoint, Checkpoint]:
        """What the validator votes for; two different `data` for one target epoch = double vote."""
        return (self.slot, self.head_root, self.source, self.target)

    @property
    def source_epoch(self) -> int:
        """The FFG link's ends, as `consensus.ffg` reads every kind of vote."""
        return self.source.epoch

    @property
    def target_epoch(self) -> int:
        return self.target.epoch

    def to_json(self) -> dict:
        return {"root": self.root.hex(), "slot": self.slot, "validator_index": self.validator_index,
                "head_root": self.head_root.hex(), "source": self.source.to_json(),
                "target": self.target.to_json(), "signature": self.signature.hex()}


# ---- block headers ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PosBlockHeader(Signable):
    """Its `root` is the block root (what children, votes and checkpoints name); it has no
    signature field, so its signing root covers every field."""
    slot: int
    proposer_index: int
    parent_root: bytes
    state_root: bytes
    body_root: bytes

    WIRE = (WireField("slot", UINT), WireField("proposer_index", UINT),
            WireField("parent_root", ROOT), WireField("state_root", ROOT),
            WireField("body_root", ROOT))
    WHAT = "header"
    DOMAIN = DOMAIN_BLOCK


@dataclass(frozen=True)
class SignedBlockHeader(WireList):
    message: PosBlockHeader
    signature: bytes

    WIRE = (WireField("message", Nested(PosBlockHeader)), WireField("signature", SIGNATURE))
    WHAT = "signed header"


# ---- slashing evidence, deposits, exits ---------------------------------------------------------
@dataclass(frozen=True)
class ProposerSlashing(WireObject):
    """Two signed headers, same proposer and slot, different roots: a double proposal."""
    header_1: SignedBlockHeader
    header_2: SignedBlockHeader

    WIRE = (WireField("header_1", Nested(SignedBlockHeader)),
            WireField("header_2", Nested(SignedBlockHeader)))
    WHAT = "proposer slashing"
    kind = "double proposal"

    @property
    def offender(self) -> int:
        return self.header_1.message.proposer_index

    def to_json(self) -> dict:
        return {"kind": self.kind, "validator": self.offender,
                "slot": self.header_1.message.slot,
                "roots": [self.header_1.message.root.hex(), self.header_2.message.root.hex()]}


@dataclass(frozen=True)
class AttesterSlashing(WireObject):
    """Two signed attestations of one validator that form a double or a surround vote."""
    att_1: Attestation
    att_2: Attestation

    WIRE = (WireField("att_1", Nested(Attestation), "attestation 1"),
            WireField("att_2", Nested(Attestation), "attestation 2"))
    WHAT = "attester slashing"

    @property
    def offender(self) -> int:
        return self.att_1.validator_index

    @property
    def kind(self) -> str:
        if self.att_1.target.epoch == self.att_2.target.epoch:
            return "double vote"
        return "surround vote"

    def to_json(self) -> dict:
        return {"kind": self.kind, "validator": self.offender,
                "attestations": [self.att_1.to_json(), self.att_2.to_json()]}


Evidence = ProposerSlashing | AttesterSlashing


@dataclass(frozen=True)
class Deposit(Signable):
    """Moves `amount` from `from_account`'s balance into the stake of validator `pubkey` (a new
    validator, or a top-up). Signed by `from_account`; `nonce` is that account's ledger nonce, so a
    deposit cannot be replayed (added to the design's fields, after `signature`, for that; on the
    wire it comes before the signature, so the signing root covers it)."""
    pubkey: bytes
    amount: int
    from_account: bytes
    signature: bytes = ZERO_SIG
    nonce: int = 0

    WIRE = (WireField("pubkey", PUBKEY), WireField("amount", UINT),
            WireField("from_account", PUBKEY, "account"), WireField("nonce", UINT),
            WireField("signature", SIGNATURE))
    WHAT = "deposit"
    DOMAIN = DOMAIN_DEPOSIT


@dataclass(frozen=True)
class Exit(Signable):
    """A validator's signed request to stop validating, valid from `epoch` on."""
    validator_index: int
    epoch: int
    signature: bytes = ZERO_SIG

    WIRE = (WireField("validator_index", UINT), WireField("epoch", UINT),
            WireField("signature", SIGNATURE))
    WHAT = "exit"
    DOMAIN = DOMAIN_EXIT


# ---- blocks -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BlockBody(WireList):
    """Operations, processed in this order: slashings, attestations, transactions, deposits, exits
    (transactions before deposits, so an account funded in a block can deposit in it)."""
    transactions: tuple[Transaction, ...] = ()
    attestations: tuple[Attestation, ...] = ()
    proposer_slashings: tuple[ProposerSlashing, ...] = ()
    attester_slashings: tuple[AttesterSlashing, ...] = ()
    deposits: tuple[Deposit, ...] = ()
    exits: tuple[Exit, ...] = ()

    WIRE = (WireField("transactions", Items(TRANSACTION, "transactions", "transaction")),
            WireField("attestations", Items(Nested(Attestation), "attestations", "attestation")),
            WireField("proposer_slashings", Items(Nested(ProposerSlashing), "proposer slashings",
                                                  "proposer slashing")),
            WireField("attester_slashings", Items(Nested(AttesterSlashing), "attester slashings",
                                                  "attester slashing")),
            WireField("deposits", Items(Nested(Deposit), "deposits", "deposit")),
            WireField("exits", Items(Nested(Exit), "exits", "exit")))
    WHAT = "block body"

    @property
    def evidence(self) -> tuple[Evidence, ...]:
        """The slashing evidence in the block, proposer slashings first."""
        return (*self.proposer_slashings, *self.attester_slashings)


@dataclass(frozen=True)
class PosBlock(WireObject):
    """A block travels whole, but is named by its header: `root` is the header's root, which
    commits to the body through `body_root` but not to the signature."""
    slot: int
    proposer_index: int
    parent_root: bytes
    state_root: bytes
    randao_reveal: bytes
    body: BlockBody = field(default_factory=BlockBody)
    signature: bytes = ZERO_SIG

    WIRE = (WireField("slot", UINT), WireField("proposer_index", UINT),
            WireField("parent_root", ROOT), WireField("state_root", ROOT),
            WireField("randao_reveal", SIGNATURE), WireField("body", Nested(BlockBody)),
            WireField("signature", SIGNATURE))
    WHAT = "block"

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

    @cached_property
    def size(self) -> int:
        return len(self.serialize())

    def to_json(self) -> dict:
        b = self.body
        return {"root": self.root.hex(), "slot": self.slot, "proposer_index": self.proposer_index,
                "parent_root": self.parent_root.hex(), "state_root": self.state_root.hex(),
                "size": self.size, "transactions": [tx.to_json() for tx in b.transactions],
                "attestations": len(b.attestations),
                "proposer_slashings": [s.to_json() for s in b.proposer_slashings],
                "attester_slashings": [s.to_json() for s in b.attester_slashings],
                "deposits": len(b.deposits), "exits": len(b.exits)}
