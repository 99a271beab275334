"""Hybrid wire types: the FFG vote, the slashing evidence of two votes, the Casper body a mined
block carries, and the block itself (a Bitcoin-exact PoW block plus that body).

EIP-1011 sends votes as zero-gas transactions from NULL_SENDER at the end of a block, outside the
block gas limit. Here the same place is a *Casper body* after the transfers, the way segwit puts
witness data outside the legacy block: the body is not counted in `max_block_bytes` (so votes take
no room from transfers) but has its own bound (`max_casper_bytes`), and the coinbase commits to it
(its unused signature field holds the body's root, as a segwit coinbase holds the witness
commitment), so the header's merkle root -- and the proof of work -- cover every vote: a relay
cannot strip or swap one.

Encoding reuses the PoS wire bases (`consensus.pos.encoding`: msgpack arrays, checked decoding,
domain-separated signing roots); deposits and exits are the PoS types themselves
(`consensus.pos.types.Deposit`, `Exit`), so `testnet stake` signs the same objects for both.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import cached_property

from consensus import ffg, pow
from consensus.errors import DecodeError
from consensus.pos.encoding import (
    ROOT,
    SIGNATURE,
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
from consensus.pos.types import Deposit, Exit
from consensus.types import TX_BYTES, ZERO_SIG, Block, BlockHeader, Transaction

DOMAIN_VOTE = b"p2p-testnet/hybrid-vote"
_COUNT = struct.Struct("<I")

__all__ = ["HybridVote", "VoteSlashing", "CasperBody", "HybridBlock", "Deposit", "Exit",
           "EMPTY_BODY", "DOMAIN_VOTE", "coinbase_commitment"]


@dataclass(frozen=True)
class HybridVote(Signable):
    """EIP-1011's vote: `[validator_index, target_hash, target_epoch, source_epoch, sig]` (its
    RLP list, in that order). The signature covers the rest under a domain of its own.
    `target_hash` is in the PoW chain's internal byte order, as block hashes are stored."""
    validator_index: int
    target_hash: bytes
    target_epoch: int
    source_epoch: int
    signature: bytes = ZERO_SIG

    WIRE = (WireField("validator_index", UINT), WireField("target_hash", ROOT),
            WireField("target_epoch", UINT), WireField("source_epoch", UINT),
            WireField("signature", SIGNATURE))
    WHAT = "vote"
    DOMAIN = DOMAIN_VOTE

    @property
    def data(self) -> tuple[bytes, int, int]:
        """The message without the signature (the contract's `msg_hash`): equal data, one vote."""
        return (self.target_hash, self.target_epoch, self.source_epoch)

    def to_json(self) -> dict:
        return {"root": self.root.hex(), "validator_index": self.validator_index,
                "target_hash": pow.hash_hex(self.target_hash), "target_epoch": self.target_epoch,
                "source_epoch": self.source_epoch}


@dataclass(frozen=True)
class VoteSlashing(WireObject):
    """Two signed votes of one validator that break a commandment (EIP-1011's `slash(vote_msg_1,
    vote_msg_2)`)."""
    vote_1: HybridVote
    vote_2: HybridVote

    WIRE = (WireField("vote_1", Nested(HybridVote), "vote 1"),
            WireField("vote_2", Nested(HybridVote), "vote 2"))
    WHAT = "vote slashing"

    @property
    def offender(self) -> int:
        return self.vote_1.validator_index

    @property
    def kind(self) -> str:
        return ffg.offence_kind(self.vote_1, self.vote_2)

    def to_json(self) -> dict:
        return {"kind": self.kind, "validator": self.offender,
                "votes": [self.vote_1.to_json(), self.vote_2.to_json()]}


@dataclass(frozen=True)
class CasperBody(WireList):
    """What a block brings the Casper state, processed after the transfers in this order:
    deposits, exits (logouts), slashings, votes (EIP-1011 puts vote transactions last)."""
    deposits: tuple[Deposit, ...] = ()
    exits: tuple[Exit, ...] = ()
    slashings: tuple[VoteSlashing, ...] = ()
    votes: tuple[HybridVote, ...] = ()

    WIRE = (WireField("deposits", Items(Nested(Deposit), "deposits", "deposit")),
            WireField("exits", Items(Nested(Exit), "exits", "exit")),
            WireField("slashings", Items(Nested(VoteSlashing), "slashings", "slashing")),
            WireField("votes", Items(Nested(HybridVote), "votes", "vote")))
    WHAT = "casper body"

    @cached_property
    def encoded(self) -> bytes:
        return encode(self.to_list())

    @property
    def commitment(self) -> bytes:
        """The root the coinbase commits to."""
        return sha256(self.encoded)

    def __bool__(self) -> bool:
        return bool(self.deposits or self.exits or self.slashings or self.votes)


EMPTY_BODY = CasperBody()


def coinbase_commitment(body: CasperBody) -> bytes:
    """The coinbase signature field of a hybrid block: the body's root, then zeros."""
    return body.commitment + bytes(32)


@dataclass(frozen=True)
class HybridBlock(Block):
    """A PoW block (header, transactions: Bitcoin's rules, unchanged) and its Casper body. Its
    hash is the header's; `size` is the PoW block's, so `max_block_bytes` limits transfers only.
    Wire form: the PoW block's bytes, then the body as msgpack."""
    casper: CasperBody = field(default=EMPTY_BODY)

    def serialize(self) -> bytes:
        return super().serialize() + self.casper.encoded

    @property
    def casper_size(self) -> int:
        return len(self.casper.encoded)

    @classmethod
    def deserialize(cls, raw: bytes, max_bytes: int | None = None,
                    max_casper_bytes: int | None = None) -> HybridBlock:
        # [REJECT] the whole block fits both bounds before anything is decoded
        limit = None if max_bytes is None else max_bytes + (max_casper_bytes or 0)
        if limit is not None and len(raw) > limit:
            raise DecodeError(f"block of {len(raw)} bytes exceeds the {limit}-byte limit")
        head = pow.HEADER_BYTES + _COUNT.size
        if len(raw) < head:
            raise DecodeError(f"block too short: {len(raw)} bytes")
        header = BlockHeader.deserialize(raw[:pow.HEADER_BYTES])
        (count,) = _COUNT.unpack_from(raw, pow.HEADER_BYTES)
        end = head + count * TX_BYTES
        if len(raw) < end:
            raise DecodeError(f"block declares {count} transactions but carries "
                              f"{len(raw) - head} bytes")
        txs = tuple(Transaction.deserialize(raw[i:i + TX_BYTES]) for i in range(head, end,
                                                                                 TX_BYTES))
        rest = raw[end:]
        if not rest:
            raise DecodeError("hybrid block has no casper body")
        body = CasperBody.from_list(decode(rest, "casper body", len(rest)))
        return cls(header, txs, body)

    def to_json(self, height: int | None = None) -> dict:
        out = super().to_json(height)
        body = self.casper
        out["casper"] = {"votes": [v.to_json() for v in body.votes],
                         "slashings": [s.to_json() for s in body.slashings],
                         "deposits": len(body.deposits), "exits": len(body.exits),
                         "bytes": self.casper_size}
        return out
