"""Step helpers for consensus tests: mine a block, add it, check the head, replay the ledger.

Tests read as scripts — `mine(chain)`, `add(chain, block)`, `assert chain.head ...` — so each one
could be dumped as a vector of (block, now, expected outcome). Blocks are solved for real at easy
bits (0x207fffff: about two tries a block), never faked.
"""

from __future__ import annotations

import hashlib

from consensus import keys, pow
from consensus.block_builder import build_block, solve
from consensus.block_tree import BlockEntry
from consensus.chain_spec import ChainSpec
from consensus.ledger import Ledger
from consensus.pow_chain import ChainUpdate, PowChain
from consensus.types import Block, BlockHeader, Transaction, make_coinbase, sign_transaction

EASY_BITS = 0x207FFFFF                       # regtest: every other hash wins

ALICE_KEY = keys.derive_private_key("consensus-tests", "alice")
BOB_KEY = keys.derive_private_key("consensus-tests", "bob")
ALICE = keys.public_key(ALICE_KEY)
BOB = keys.public_key(BOB_KEY)
ALICE_FUNDS = 1_000_000

MINER_A = hashlib.sha256(b"miner-a").digest()
MINER_B = hashlib.sha256(b"miner-b").digest()


def easy_spec(**overrides) -> ChainSpec:
    """A chain where Alice is funded at genesis and blocks cost two hashes."""
    fields = dict(genesis_bits=EASY_BITS, allocations=((ALICE, ALICE_FUNDS),))
    fields.update(overrides)
    return ChainSpec(**fields)


def pay(sender_key: bytes, recipient: bytes, amount: int, nonce: int, fee: int = 1) -> Transaction:
    return sign_transaction(sender_key, recipient, amount, fee, nonce)


def mine(chain: PowChain, *, time: int | None = None, txs: tuple[Transaction, ...] = (),
         miner: bytes = MINER_A) -> Block:
    """What a miner does: `build_block` on the head, then `solve`. Not added to the chain."""
    now = chain.head.time + chain.spec.target_block_interval_s if time is None else time
    return solve(build_block(chain, miner, txs, now))


def mine_on(chain: PowChain, parent: BlockEntry | Block, *, time: int | None = None,
            txs: tuple[Transaction, ...] = (), miner: bytes = MINER_A,
            coinbase_amount: int | None = None, bits: int | None = None) -> Block:
    """A solved block on any parent the chain knows, with exactly these transactions (no selection,
    so it may break ledger rules on purpose). Bits and time default to what the rules require."""
    if isinstance(parent, Block):
        parent = chain.get(parent.hash)
        assert parent is not None, "parent must be in the chain's block tree"
    if coinbase_amount is None:
        coinbase_amount = chain.spec.block_reward + sum(tx.fee for tx in txs)
    all_txs = (make_coinbase(miner, coinbase_amount, parent.height + 1), *txs)
    header = BlockHeader(1, parent.hash, pow.merkle_root([tx.txid for tx in all_txs]),
                         parent.time + chain.spec.target_block_interval_s if time is None else time,
                         chain.expected_bits(parent) if bits is None else bits, 0)
    return solve(Block(header, all_txs))


def with_header(block: Block, **changes) -> Block:
    """The same transactions under a header with some fields changed (not re-solved)."""
    fields = {name: getattr(block.header, name) for name in
              ("version", "prev_hash", "merkle_root", "time", "bits", "nonce")}
    fields.update(changes)
    return Block(BlockHeader(**fields), block.transactions)


def resolve(block: Block) -> Block:
    """Solve a block again after its header or transactions were tampered with."""
    return solve(with_header(block, nonce=0))


def break_pow(block: Block) -> Block:
    """The block with the first nonce after its own whose hash misses the target."""
    nonce = block.header.nonce
    while True:
        nonce += 1
        broken = with_header(block, nonce=nonce)
        if pow.hash_to_int(broken.hash) > pow.bits_to_target(broken.header.bits):
            return broken


def add(chain: PowChain, block: Block, now: int | None = None) -> ChainUpdate:
    """Deliver one block; `now` defaults to the block's own timestamp (a punctual clock)."""
    return chain.on_block(block, block.header.time if now is None else now)


def outcome(update: ChainUpdate) -> tuple[str, str]:
    """(outcome, reason) of the one block an update is about."""
    assert len(update.results) == 1, update.results
    return update.results[0].outcome, update.results[0].reason


def add_connected(chain: PowChain, block: Block) -> ChainUpdate:
    update = add(chain, block)
    assert [r.outcome for r in update.results] == ["connected"], update.results
    assert chain.head.hash == block.hash
    return update


def grow(chain: PowChain, count: int, *, miner: bytes = MINER_A, spacing: int | None = None
         ) -> list[Block]:
    """Mine and connect `count` blocks on the head, `spacing` seconds apart."""
    blocks = []
    for _ in range(count):
        time = None if spacing is None else chain.head.time + spacing
        block = mine(chain, time=time, miner=miner)
        add_connected(chain, block)
        blocks.append(block)
    return blocks


def main_chain(chain: PowChain) -> list[BlockEntry]:
    """Entries from genesis to head."""
    path, node = [], chain.head
    while node is not None:
        path.append(node)
        node = node.parent
    return path[::-1]


def ledger_state(ledger: Ledger) -> tuple[dict[bytes, int], dict[bytes, int]]:
    """A copy of balances and nonces, to compare before and after."""
    return dict(ledger.balances), dict(ledger.nonces)


def replayed_ledger(chain: PowChain) -> Ledger:
    """A fresh ledger: genesis, then every block from genesis to the head, applied in order."""
    ledger = Ledger()
    ledger.apply_genesis(chain.tree.genesis.block)
    for entry in main_chain(chain)[1:]:
        ledger.apply_block(entry.block, entry.height, chain.spec.block_reward)
    return ledger


def assert_ledger_matches_main_chain(chain: PowChain) -> None:
    assert ledger_state(chain.ledger) == ledger_state(replayed_ledger(chain))
