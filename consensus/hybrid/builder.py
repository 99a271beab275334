"""Assembling a hybrid block for the miner, and signing votes for validators.

A template is the PoW template (`consensus.block_builder.build_block`: transfers, coinbase,
header) plus a Casper body of the pooled operations that apply on top of it: each is run through
the real rules (consensus/hybrid/casper.py) on a scratch copy of the next state, one at a time,
and kept only if it applies, so a mined block is valid by construction. Signatures are not
re-checked (the pool verified them on admission). The coinbase then commits to the body and the
merkle root to the coinbase. Solving the nonce stays the miner's job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TypeVar

from consensus import keys, pow
from consensus.block_builder import build_block as build_pow_block
from consensus.errors import InvalidTransaction
from consensus.hybrid.casper import (
    TRUSTED,
    LedgerWrites,
    process_deposit,
    process_exit,
    process_slashing,
    process_vote,
    state_for_child,
)
from consensus.hybrid.chain import HybridChain
from consensus.hybrid.errors import InvalidEvidence, InvalidOperation, VoteError
from consensus.hybrid.operations import CasperPool
from consensus.hybrid.state import CasperState
from consensus.hybrid.types import CasperBody, HybridBlock, HybridVote, coinbase_commitment
from consensus.ledger import Ledger
from consensus.types import Transaction

T = TypeVar("T")
VOTE_BYTES = 140            # a vote's msgpack encoding, at most (for the body's bound)


def build_block(chain: HybridChain, pool: CasperPool, miner: bytes,
                candidates: Iterable[Transaction], now: int, *,
                max_txs: int | None = None) -> HybridBlock:
    """An unsolved hybrid block on `chain.head` paying `miner` (nonce 0)."""
    plain = build_pow_block(chain, miner, candidates, now, max_txs=max_txs)
    height = chain.head.height + 1
    ledger = _after_transfers(chain.ledger, plain.transactions[1:]) if pool.deposits else Ledger()
    writes = LedgerWrites(ledger, {}, checks_funds=bool(pool.deposits))
    state = state_for_child(chain.state, chain.head.hash, height, writes)
    body = CasperBody(
        deposits=_applying(pool.deposits.values(),
                           lambda d: process_deposit(state, d, writes, TRUSTED)),
        exits=_applying(pool.exits.values(), lambda x: process_exit(state, x, TRUSTED)),
        slashings=_applying(pool.evidence.values(),
                            lambda s: process_slashing(state, s, miner, writes, TRUSTED)),
        votes=_applying(sorted(pool.votes.values(), key=lambda v: v.validator_index),
                        lambda v: process_vote(state, v, miner, writes, TRUSTED),
                        limit=chain.spec.max_casper_bytes // VOTE_BYTES))
    coinbase = replace(plain.transactions[0], signature=coinbase_commitment(body))
    txs = (coinbase, *plain.transactions[1:])
    header = replace(plain.header, merkle_root=pow.merkle_root([tx.txid for tx in txs]))
    return HybridBlock(header, txs, body)


def _applying(items: Iterable[T], process: Callable[[T], None], limit: int | None = None
              ) -> tuple[T, ...]:
    chosen: list[T] = []
    for item in items:
        if limit is not None and len(chosen) >= limit:
            break
        try:
            process(item)
        except (VoteError, InvalidEvidence, InvalidOperation):
            continue
        chosen.append(item)
    return tuple(chosen)


def _after_transfers(ledger: Ledger, txs: Sequence[Transaction]) -> Ledger:
    """A scratch copy of `ledger` with the block's transfers applied (deposits pay after them)."""
    scratch = Ledger(dict(ledger.balances), dict(ledger.nonces))
    balances: dict[bytes, int] = {}
    nonces: dict[bytes, int] = {}
    for tx in txs:
        try:
            scratch._check_transfer(tx, balances, nonces, lambda _tx: True)
        except InvalidTransaction:
            continue
    scratch.balances.update(balances)
    scratch.nonces.update(nonces)
    return scratch


def make_vote(state: CasperState, validator_index: int, private_key: bytes, *,
              source_epoch: int | None = None) -> HybridVote:
    """A signed vote for `state`'s checkpoint from its recommended source (EIP-1011's
    `recommended_target_hash` and `recommended_source_epoch`); `source_epoch` overrides the
    source (adversarial roles)."""
    source = state.expected_source_epoch if source_epoch is None else source_epoch
    unsigned = HybridVote(validator_index, state.checkpoint.hash, state.epoch, source)
    return replace(unsigned, signature=keys.sign(private_key, unsigned.signing_root))
