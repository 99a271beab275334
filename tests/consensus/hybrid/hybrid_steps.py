"""Step helpers for hybrid consensus tests: a chain with genesis validators, blocks mined for real
at easy bits with whatever Casper body a test wants, votes signed by the validators' keys.

Tests read as scripts -- `grow(chain, 3)`, `vote_all(chain, [0, 1])`, `mine_body(chain, votes)` --
so each could be dumped as a vector of (block, expected outcome).
"""

from __future__ import annotations

from consensus import keys, pow
from consensus.block_builder import solve
from consensus.block_tree import BlockEntry
from consensus.hybrid.builder import build_block, make_vote
from consensus.hybrid.chain import HybridChain, HybridChainUpdate
from consensus.hybrid.operations import CasperPool
from consensus.hybrid.spec import COIN, HybridSpec
from consensus.hybrid.types import (
    CasperBody,
    HybridBlock,
    HybridVote,
    coinbase_commitment,
)
from consensus.types import BlockHeader, Transaction, make_coinbase
from tests.consensus.chain_steps import ALICE, ALICE_FUNDS, EASY_BITS, MINER_A

EPOCH = 4
DEPOSIT = 32 * COIN
VALIDATOR_KEYS = [keys.derive_private_key("hybrid-tests", f"validator/{i}") for i in range(16)]


def hybrid_spec(validators: int = 3, deposits: list[int] | None = None, **overrides
                ) -> HybridSpec:
    deposits = deposits or [DEPOSIT] * validators
    fields = dict(genesis_bits=EASY_BITS, allocations=((ALICE, ALICE_FUNDS * COIN),),
                  epoch_length=EPOCH,
                  validators=tuple((keys.public_key(VALIDATOR_KEYS[i]), d)
                                   for i, d in enumerate(deposits)))
    fields.update(overrides)
    return HybridSpec(**fields)


def new_chain(validators: int = 3, deposits: list[int] | None = None, **overrides
              ) -> HybridChain:
    return HybridChain(hybrid_spec(validators, deposits, **overrides))


def mine_body(chain: HybridChain, body: CasperBody = CasperBody(), *,
              parent: BlockEntry | None = None, miner: bytes = MINER_A,
              txs: tuple[Transaction, ...] = (), commit: bool = True) -> HybridBlock:
    """A solved block on `parent` (default: the head) with exactly this body and these transfers
    (no selection: it may break a rule on purpose)."""
    parent = parent or chain.head
    amount = chain.spec.block_reward + sum(tx.fee for tx in txs)
    coinbase = make_coinbase(miner, amount, parent.height + 1)
    if commit:
        coinbase = Transaction(coinbase.sender, coinbase.recipient, coinbase.amount, 0,
                               coinbase.nonce, coinbase_commitment(body))
    all_txs = (coinbase, *txs)
    header = BlockHeader(1, parent.hash, pow.merkle_root([tx.txid for tx in all_txs]),
                         parent.time + chain.spec.target_block_interval_s,
                         chain.expected_bits(parent), 0)
    return solve(HybridBlock(header, all_txs, body))


def add(chain: HybridChain, block: HybridBlock) -> HybridChainUpdate:
    return chain.on_block(block, block.header.time)


def add_connected(chain: HybridChain, block: HybridBlock) -> HybridChainUpdate:
    update = add(chain, block)
    assert [r.outcome for r in update.results] == ["connected"], update.results
    return update


def grow(chain: HybridChain, count: int, *, votes: tuple[HybridVote, ...] = (),
         miner: bytes = MINER_A) -> list[HybridBlock]:
    """`count` blocks on the head; the first carries `votes`."""
    blocks = []
    for i in range(count):
        block = mine_body(chain, CasperBody(votes=votes if i == 0 else ()), miner=miner)
        add_connected(chain, block)
        blocks.append(block)
    return blocks


def grow_to(chain: HybridChain, height: int) -> None:
    if height > chain.head.height:
        grow(chain, height - chain.head.height)


def votes_of(chain: HybridChain, validators: list[int], *, source_epoch: int | None = None
             ) -> tuple[HybridVote, ...]:
    """Votes of these validators for the next block's epoch, from its recommended source."""
    state = chain.next_state()
    return tuple(make_vote(state, i, VALIDATOR_KEYS[i], source_epoch=source_epoch)
                 for i in validators)


def vote_in_next_epoch(chain: HybridChain, validators: list[int]) -> None:
    """Move to the first block of the next epoch, then include the votes of those of these
    validators that may vote in the block after (EIP-1011 validators vote once the epoch has
    begun)."""
    start = (chain.head.height // EPOCH + 1) * EPOCH
    grow_to(chain, start)
    state = chain.next_state()
    grow(chain, 1, votes=votes_of(chain, [i for i in validators if state.may_vote(i)]))


def mined_with_pool(chain: HybridChain, pool: CasperPool, miner: bytes = MINER_A
                    ) -> HybridBlock:
    return solve(build_block(chain, pool, miner, (), chain.head.time + 1))
