"""Fork choice against brute force, on random block trees delivered in random order.

A tree is random parents, random time gaps and random content (empty, a valid transfer, or an
overdraft that makes its whole subtree invalid). Retargeting every 2 blocks turns the time gaps into
different bits, so branches of equal length can carry different work. Blocks arrive in any order,
children before parents included. After every step:
- the head is the most-work entry not known to be invalid, ties to the one seen first;
- the ledger equals a fresh replay of genesis .. head.
At the end the head's work is the most work of any block whose whole branch is valid, computed
from the tree description alone, so it cannot depend on the delivery order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import pow
from consensus.block_tree import BlockEntry
from consensus.pow_chain import PowChain
from consensus.types import Block, Transaction
from tests.consensus.chain_steps import (
    ALICE_FUNDS,
    ALICE_KEY,
    BOB,
    assert_ledger_matches_main_chain,
    easy_spec,
    mine_on,
    pay,
)

SPEC = easy_spec(retarget_window=2, target_block_interval_s=4)  # a window is meant to take 8 s
GAPS_S = (1, 3, 8, 30)                 # faster, on target, slower than the window wants
FAR_FUTURE = SPEC.genesis_time + 10**6  # the clock never rejects these blocks


@dataclass(frozen=True)
class Node:
    parent: int            # index of an earlier node, or -1 for genesis
    gap_s: int             # seconds after the parent
    content: str           # "empty", "pay" or "overdraft"


@st.composite
def block_trees(draw) -> tuple[list[Node], list[int]]:
    """A tree description and a delivery order (any permutation, so children may come first)."""
    size = draw(st.integers(min_value=1, max_value=10))
    nodes = []
    for i in range(size):
        # lean towards extending the latest block so trees get deep as well as bushy
        parent = draw(st.one_of(st.just(i - 1), st.integers(min_value=-1, max_value=i - 1)))
        nodes.append(Node(parent, draw(st.sampled_from(GAPS_S)),
                          draw(st.sampled_from(["empty", "pay", "pay", "overdraft"]))))
    return nodes, draw(st.permutations(range(size)))


@cache
def alice_pays(nonce: int, overdraft: bool) -> Transaction:
    return pay(ALICE_KEY, BOB, 2 * ALICE_FUNDS if overdraft else 1, nonce)


@dataclass
class MinedTree:
    blocks: list[Block]
    valid: list[bool]               # the whole branch from genesis is valid
    work: list[int]                 # cumulative work, genesis included


def mine_tree(nodes: list[Node]) -> MinedTree:
    """Solve every block of the description. Blocks are filed in a tree of their own without
    validation, so blocks on invalid branches can be built too."""
    rules = PowChain(SPEC)
    genesis = rules.tree.genesis
    entries: list[BlockEntry] = []
    valid: list[bool] = []
    payments: list[int] = []        # Alice's transfers on the branch up to each block
    for i, node in enumerate(nodes):
        parent = genesis if node.parent < 0 else entries[node.parent]
        parent_valid = True if node.parent < 0 else valid[node.parent]
        paid = 0 if node.parent < 0 else payments[node.parent]
        txs = () if node.content == "empty" else \
            (alice_pays(paid, overdraft=node.content == "overdraft"),)
        block = mine_on(rules, parent, time=parent.time + node.gap_s, txs=txs,
                        miner=hashlib.sha256(f"miner-{i}".encode()).digest())
        entries.append(rules.tree.add(block, parent, pow.block_work(block.header.bits)))
        valid.append(parent_valid and node.content != "overdraft")
        payments.append(paid + (node.content == "pay"))
    return MinedTree([e.block for e in entries], valid, [e.total_work for e in entries])


def brute_force_best(chain: PowChain) -> BlockEntry:
    """Most work among entries not known to be invalid; equal work goes to the earliest seen."""
    candidates = [e for e in chain.tree.entries() if e.status != "invalid"]
    return min(candidates, key=lambda e: (-e.total_work, e.seq))


def deliver(tree: MinedTree, order: list[int]) -> PowChain:
    chain = PowChain(SPEC)
    for index in order:
        chain.on_block(tree.blocks[index], FAR_FUTURE)
        assert chain.head is brute_force_best(chain)
        assert chain.head.status == "valid"
        assert_ledger_matches_main_chain(chain)
    return chain


@settings(max_examples=50, deadline=None)
@given(block_trees())
def test_head_is_the_most_work_valid_tip_whatever_the_delivery_order(case):
    nodes, order = case
    tree = mine_tree(nodes)
    chain = deliver(tree, order)

    best_valid_work = max([chain.tree.genesis.total_work] +
                          [w for w, ok in zip(tree.work, tree.valid) if ok])
    assert chain.head.total_work == best_valid_work
    for block, ok in zip(tree.blocks, tree.valid):
        entry = chain.get(block.hash)
        if ok:                       # every valid block is filed and never marked invalid
            assert entry is not None and entry.status != "invalid"
            assert block.hash not in chain.orphans
        else:                        # an invalid branch never counts as validated
            assert entry is None or entry.status != "valid"

    in_tree_order = deliver(tree, sorted(order))
    assert in_tree_order.head.total_work == chain.head.total_work
