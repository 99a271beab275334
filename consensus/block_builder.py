"""Assembling candidate blocks for miners: pick transactions, pay the coinbase, commit the merkle
root.

Pure: the caller passes the parent, the time and the transactions it has; solving the nonce is the
miner's job (`pow.search_nonce`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TypeVar

from consensus import pow
from consensus.errors import InvalidTransaction
from consensus.ledger import Ledger
from consensus.pow_chain import PowChain
from consensus.types import TX_BYTES, Block, BlockHeader, Transaction, make_coinbase

B = TypeVar("B", bound=Block)
BLOCK_VERSION = 1
HEADER_AND_COUNT_BYTES = pow.HEADER_BYTES + 4


def select_transactions(ledger: Ledger, candidates: Iterable[Transaction], max_txs: int) -> list[
        Transaction]:
    """The longest prefix-valid selection: each sender's transactions in nonce order, skipping any
    that no longer applies (signatures are trusted: the mempool verified them on admission)."""
    balances: dict[bytes, int] = {}
    nonces: dict[bytes, int] = {}
    chosen: list[Transaction] = []
    for tx in candidates:
        if len(chosen) >= max_txs:
            break
        try:
            ledger._check_transfer(tx, balances, nonces, lambda _tx: True)
        except InvalidTransaction:
            continue
        chosen.append(tx)
    return chosen


def build_block(chain: PowChain, miner: bytes, candidates: Iterable[Transaction], now: int, *,
                max_txs: int | None = None) -> Block:
    """An unsolved block on `chain.head` paying reward + fees to `miner` (nonce 0)."""
    parent = chain.head
    room = (chain.spec.max_block_bytes - HEADER_AND_COUNT_BYTES) // TX_BYTES - 1
    limit = room if max_txs is None else min(room, max_txs)
    txs = select_transactions(chain.ledger, candidates, limit)
    height = parent.height + 1
    coinbase = make_coinbase(miner, chain.spec.block_reward + sum(tx.fee for tx in txs), height)
    all_txs = (coinbase, *txs)
    header = BlockHeader(BLOCK_VERSION, parent.hash, pow.merkle_root([t.txid for t in all_txs]),
                         chain.next_block_time(now), chain.expected_bits(parent), 0)
    return Block(header, all_txs)


def with_nonce(block: B, time: int, nonce: int) -> B:
    """The same block (of whatever kind: a hybrid block keeps its Casper body) with a solved
    header."""
    h = block.header
    return replace(block, header=BlockHeader(h.version, h.prev_hash, h.merkle_root, time, h.bits,
                                             nonce))


def solve(block: B, pow_limit: int | None = None) -> B:
    """Find a nonce (rolling the time when the nonce space runs out). For tests and tools."""
    target = pow.bits_to_target(block.header.bits)
    time = block.header.time
    while True:
        prefix = with_nonce(block, time, 0).header.serialize()[:76]
        nonce = pow.search_nonce(prefix, target, 0, 1 << 32)
        if nonce is not None:
            return with_nonce(block, time, nonce)
        time += 1
