"""`PowChain.on_block` as step scripts: mine a block, add it, check the outcome, the head and the
ledger. Every block is solved for real at regtest bits (0x207fffff) unless a test needs otherwise.
"""

from __future__ import annotations

from consensus import pow
from consensus.block_tree import BlockTree
from consensus.pow_chain import PowChain
from consensus.types import ZERO_HASH, Block
from tests.consensus.chain_steps import (
    ALICE,
    ALICE_FUNDS,
    ALICE_KEY,
    BOB,
    EASY_BITS,
    MINER_A,
    MINER_B,
    add,
    add_connected,
    assert_ledger_matches_main_chain,
    break_pow,
    easy_spec,
    grow,
    ledger_state,
    main_chain,
    mine,
    mine_on,
    outcome,
    pay,
    resolve,
    with_header,
)

REGTEST_LIMIT = pow.bits_to_target(EASY_BITS)


def assert_rejected_without_trace(chain: PowChain, block: Block, reason: str,
                                  now: int | None = None) -> None:
    """The block is rejected for `reason` and the chain is exactly as before."""
    head, state, size = chain.head, ledger_state(chain.ledger), len(chain.tree)
    update = add(chain, block, now)
    assert outcome(update) == ("rejected", reason)
    assert chain.head is head and not update.head_changed
    assert ledger_state(chain.ledger) == state
    assert len(chain.tree) == size and block.hash not in chain.tree
    assert block.hash not in chain.orphans


# ---- growing one chain ---------------------------------------------------------------------------

def test_mined_blocks_connect_one_after_another():
    chain = PowChain(easy_spec())
    blocks = grow(chain, 5)
    assert chain.head.hash == blocks[-1].hash and chain.head.height == 5
    assert [e.hash for e in main_chain(chain)[1:]] == [b.hash for b in blocks]
    assert chain.ledger.balance(MINER_A) == 5 * chain.spec.block_reward
    assert chain.ledger.balance(ALICE) == ALICE_FUNDS
    assert_ledger_matches_main_chain(chain)


def test_a_transfer_in_a_block_moves_coins_and_pays_the_miner_its_fee():
    chain = PowChain(easy_spec())
    transfer = pay(ALICE_KEY, BOB, 300, 0, fee=7)
    update = add_connected(chain, mine(chain, txs=(transfer,)))
    assert update.applied_txs == [transfer]
    assert chain.ledger.balance(BOB) == 300
    assert chain.ledger.balance(ALICE) == ALICE_FUNDS - 307
    assert chain.ledger.balance(MINER_A) == chain.spec.block_reward + 7
    assert chain.ledger.nonce(ALICE) == 1


def test_a_block_delivered_twice_is_a_duplicate():
    chain = PowChain(easy_spec())
    block = mine(chain)
    add_connected(chain, block)
    update = add(chain, block)
    assert outcome(update) == ("duplicate", "")
    assert update.results[0].height == 1 and not update.head_changed


def test_trusted_replay_skips_proof_of_work_but_not_the_other_rules():
    chain = PowChain(easy_spec())
    unsolved = break_pow(mine(chain))
    assert outcome(add(chain, unsolved))[0] == "rejected"
    update = chain.on_block(unsolved, now=0, trusted=True)      # also far "in the future"
    assert outcome(update) == ("connected", "")


# ---- rules for a block on its own ----------------------------------------------------------------

def test_oversized_block_is_rejected():
    # room for the header, the count, a coinbase and exactly one transfer
    chain = PowChain(easy_spec(max_block_bytes=84 + 2 * 152))
    two_transfers = (pay(ALICE_KEY, BOB, 1, 0), pay(ALICE_KEY, BOB, 1, 1))
    too_big = mine_on(chain, chain.head, txs=two_transfers)
    assert too_big.size == 84 + 3 * 152
    assert_rejected_without_trace(chain, too_big, "block of 540 bytes exceeds 388")
    add_connected(chain, mine_on(chain, chain.head, txs=two_transfers[:1]))


def test_block_whose_transactions_do_not_match_its_merkle_root_is_rejected():
    chain = PowChain(easy_spec())
    block = mine(chain, txs=(pay(ALICE_KEY, BOB, 5, 0),))
    swapped = Block(block.header, (block.transactions[0], pay(ALICE_KEY, BOB, 6, 0)))
    assert swapped.hash == block.hash                           # same header, so the PoW holds
    assert_rejected_without_trace(chain, swapped, "merkle root does not match the transactions")


def test_block_without_transactions_is_rejected():
    chain = PowChain(easy_spec())
    empty = resolve(Block(with_header(mine(chain), merkle_root=ZERO_HASH).header, ()))
    assert_rejected_without_trace(chain, empty, "block has no transactions")


def test_block_with_a_transaction_twice_is_rejected():
    chain = PowChain(easy_spec())
    transfer = pay(ALICE_KEY, BOB, 5, 0)
    block = mine_on(chain, chain.head, txs=(transfer, transfer))
    assert_rejected_without_trace(chain, block, "duplicate transaction in block")


def test_block_whose_hash_misses_its_target_is_rejected():
    chain = PowChain(easy_spec())
    block = break_pow(mine(chain))
    assert_rejected_without_trace(chain, block,
                                  "invalid proof of work: hash does not meet the target in bits")


def test_block_claiming_bits_easier_than_the_pow_limit_is_rejected():
    chain = PowChain(easy_spec())
    block = mine_on(chain, chain.head, bits=0x2100FFFF)
    assert_rejected_without_trace(
        chain, block, "invalid proof of work: bits 0x2100ffff outside the allowed range")


# ---- rules that need the parent ------------------------------------------------------------------

def test_block_with_bits_other_than_the_required_ones_is_rejected():
    chain = PowChain(easy_spec())
    harder = mine_on(chain, chain.head, bits=0x207FFFFE)
    assert_rejected_without_trace(chain, harder, "bits 207ffffe, expected 207fffff")


def test_timestamp_must_be_above_the_median_of_the_last_eleven_blocks():
    chain = PowChain(easy_spec())
    genesis_time = chain.head.time
    grow(chain, 11, spacing=1)                                  # times genesis+1 .. genesis+11
    median = genesis_time + 6
    assert BlockTree.median_time_past(chain.head) == median
    at_median = mine_on(chain, chain.head, time=median)
    assert_rejected_without_trace(
        chain, at_median, f"timestamp {median} not above median time past {median}")
    # one second later is fine, although it is earlier than the parent's own time
    add_connected(chain, mine_on(chain, chain.head, time=median + 1))


def test_timestamp_more_than_max_future_seconds_ahead_of_the_clock_is_rejected():
    chain = PowChain(easy_spec())
    now = chain.head.time + 100
    limit_s = chain.spec.max_future_block_time_s
    too_late = mine_on(chain, chain.head, time=now + limit_s + 1)
    assert_rejected_without_trace(
        chain, too_late, f"timestamp {now + limit_s + 1} is {limit_s + 1} s in the future "
                         f"(limit {limit_s} s)", now=now)
    update = add(chain, mine_on(chain, chain.head, time=now + limit_s), now)
    assert outcome(update)[0] == "connected"


def test_next_block_time_stays_above_the_median_time_past():
    chain = PowChain(easy_spec())
    grow(chain, 3, spacing=10)
    mtp = BlockTree.median_time_past(chain.head)
    assert chain.next_block_time(now=0) == mtp + 1
    assert chain.next_block_time(now=mtp + 50) == mtp + 50


# ---- retargeting ---------------------------------------------------------------------------------

def test_fast_blocks_make_the_next_window_harder_measured_from_the_window_start():
    spec = easy_spec(retarget_window=10, target_block_interval_s=2)   # expect 20 s a window
    chain = PowChain(spec)
    genesis_time = chain.head.time
    add_connected(chain, mine(chain, time=genesis_time + 5))
    grow(chain, 8, spacing=1)                                   # block 9 at genesis + 13
    assert {e.bits for e in main_chain(chain)} == {EASY_BITS}
    # Bitcoin measures from the window's first block (here genesis), not from block 1:
    # 0x7fffff * 13 // 20 = 0x533332, the exponent unchanged.
    assert chain.expected_bits(chain.head) == 0x20533332
    assert pow.bits_to_target(0x20533332) < REGTEST_LIMIT

    stale = mine_on(chain, chain.head, bits=EASY_BITS)
    assert_rejected_without_trace(chain, stale, "bits 207fffff, expected 20533332")
    block10 = mine(chain)
    add_connected(chain, block10)
    assert block10.header.bits == 0x20533332
    # inside a window the bits stay put, whatever the timing
    add_connected(chain, mine(chain, time=chain.head.time + 1000))
    assert chain.expected_bits(chain.head) == 0x20533332


def test_slow_blocks_make_the_next_window_easier_by_at_most_four_times():
    spec = easy_spec(genesis_bits=0x2003FFFF, retarget_window=10, target_block_interval_s=2)
    chain = PowChain(spec)
    grow(chain, 9, spacing=30)                                  # 270 s for a 20 s window
    # clamped to 4 x 20 s: 0x03ffff * 4 = 0x0ffffc
    assert chain.expected_bits(chain.head) == 0x200FFFFC
    add_connected(chain, mine(chain))


def test_retarget_never_goes_easier_than_the_pow_limit():
    chain = PowChain(easy_spec(retarget_window=10))
    grow(chain, 9, spacing=1000)
    assert chain.expected_bits(chain.head) == EASY_BITS


# ---- orphans -------------------------------------------------------------------------------------

def test_blocks_delivered_child_first_connect_when_the_parent_arrives():
    miner = PowChain(easy_spec())
    b1, b2, b3 = grow(miner, 3)
    node = PowChain(easy_spec())

    update = add(node, b3)
    assert outcome(update) == ("orphan", "parent unknown")
    assert update.missing_parent == b2.hash
    assert outcome(add(node, b2))[0] == "orphan"
    assert outcome(add(node, b3)) == ("duplicate", "")
    assert node.head is node.tree.genesis and len(node.orphans) == 2

    update = add(node, b1)
    assert [(r.block_hash, r.outcome) for r in update.results] == \
        [(b1.hash, "connected"), (b2.hash, "connected"), (b3.hash, "connected")]
    assert node.head.hash == b3.hash and len(node.orphans) == 0
    assert ledger_state(node.ledger) == ledger_state(miner.ledger)


def test_orphan_pool_is_bounded_and_evicts_the_oldest():
    miner = PowChain(easy_spec())
    b1, b2, b3, b4 = grow(miner, 4)
    node = PowChain(easy_spec(), max_orphans=2)
    for block in (b4, b3, b2):
        assert outcome(add(node, block))[0] == "orphan"
    assert len(node.orphans) == 2
    assert b4.hash not in node.orphans and b3.hash in node.orphans and b2.hash in node.orphans

    update = add(node, b1)
    assert [r.outcome for r in update.results] == ["connected"] * 3
    assert node.head.hash == b3.hash
    add_connected(node, b4)


def test_orphan_with_invalid_proof_of_work_is_not_kept():
    miner = PowChain(easy_spec())
    _, b2 = grow(miner, 2)
    node = PowChain(easy_spec())
    assert_rejected_without_trace(node, break_pow(b2),
                                  "invalid proof of work: hash does not meet the target in bits")


# ---- forks ---------------------------------------------------------------------------------------

def test_equal_work_keeps_the_tip_seen_first():
    alice_node, bob_node = PowChain(easy_spec()), PowChain(easy_spec())
    a1 = mine(alice_node, miner=MINER_A)
    b1 = mine(bob_node, miner=MINER_B)
    add_connected(alice_node, a1)
    add_connected(bob_node, b1)

    assert outcome(add(alice_node, b1)) == ("side", "")
    assert outcome(add(bob_node, a1)) == ("side", "")
    assert alice_node.head.hash == a1.hash and bob_node.head.hash == b1.hash
    assert alice_node.get(b1.hash).total_work == alice_node.head.total_work


def test_heavier_branch_reorgs_to_the_common_ancestor_and_back():
    node, rival = PowChain(easy_spec()), PowChain(easy_spec())
    shared = mine(node)
    add_connected(node, shared)
    add_connected(rival, shared)
    transfer = pay(ALICE_KEY, BOB, 300, 0)
    a2 = mine(node, txs=(transfer,))
    add_connected(node, a2)
    (a3,) = grow(node, 1)
    b2, b3, b4 = grow(rival, 3, miner=MINER_B)

    assert outcome(add(node, b2)) == ("side", "")
    assert outcome(add(node, b3)) == ("side", "")              # a tie: a3 was seen first
    assert node.head.hash == a3.hash

    update = add(node, b4)
    assert outcome(update) == ("connected", "")
    assert node.head.hash == b4.hash
    (reorg,) = update.reorgs
    assert reorg.depth == 2
    assert (reorg.common_ancestor, reorg.common_height) == (shared.hash, 1)
    assert (reorg.old_head, reorg.new_head) == (a3.hash, b4.hash)
    assert reorg.reverted == [a3.hash, a2.hash]
    assert reorg.applied == [b2.hash, b3.hash, b4.hash]
    assert update.reverted_txs == [transfer]
    assert node.ledger.balance(BOB) == 0 and node.ledger.nonce(ALICE) == 0
    assert node.ledger.balance(MINER_A) == node.spec.block_reward          # only `shared`
    assert node.ledger.balance(MINER_B) == 3 * node.spec.block_reward
    assert_ledger_matches_main_chain(node)

    # the old branch grows heavier again: back we go, re-applying the transfer
    a4 = mine_on(node, a3)
    assert outcome(add(node, a4)) == ("side", "")
    update = add(node, mine_on(node, a4))
    (back,) = update.reorgs
    assert back.depth == 3 and back.common_ancestor == shared.hash
    assert update.applied_txs == [transfer]
    assert node.ledger.balance(BOB) == 300
    assert_ledger_matches_main_chain(node)


def test_heavier_branch_with_an_invalid_transaction_is_invalidated_and_the_chain_stays():
    node = PowChain(easy_spec())
    grow(node, 3)
    head, state = node.head, ledger_state(node.ledger)

    # a rival branch from genesis: c1, c2 fine, c3 spends more than Alice has, c4 on top
    c1 = mine_on(node, node.tree.genesis, miner=MINER_B)
    assert outcome(add(node, c1)) == ("side", "")
    c2 = mine_on(node, c1, miner=MINER_B)
    assert outcome(add(node, c2)) == ("side", "")
    overdraft = pay(ALICE_KEY, BOB, ALICE_FUNDS + 1, 0)
    c3 = mine_on(node, c2, txs=(overdraft,), miner=MINER_B)
    assert outcome(add(node, c3)) == ("side", "")               # not heavier, not checked yet
    c4 = mine_on(node, c3, miner=MINER_B)

    update = add(node, c4)
    assert outcome(update) == (
        "invalidated",
        f"transaction 1: overdraft: balance {ALICE_FUNDS} < amount {ALICE_FUNDS + 1} + fee 1")
    assert node.head is head and not update.head_changed and update.reorgs == []
    assert ledger_state(node.ledger) == state
    assert [node.get(b.hash).status for b in (c1, c2, c3, c4)] == \
        ["valid", "valid", "invalid", "invalid"]

    # descendants of an invalid block are rejected, and so is the invalid block itself
    assert_rejected_without_trace(node, mine_on(node, c4), "parent block is invalid")
    assert outcome(add(node, c3)) == ("rejected", "block is known to be invalid")

    # the valid part of the branch can still win with valid blocks
    d3 = mine_on(node, c2, miner=MINER_B)
    assert outcome(add(node, d3)) == ("side", "")
    d4 = mine_on(node, d3, miner=MINER_B)
    update = add(node, d4)
    assert outcome(update) == ("connected", "")
    assert update.reorgs[0].common_height == 0 and update.reorgs[0].depth == 3
    assert_ledger_matches_main_chain(node)


# ---- locators ------------------------------------------------------------------------------------

def test_locator_is_dense_for_ten_blocks_then_doubles_its_steps():
    chain = PowChain(easy_spec())
    grow(chain, 40)
    heights = [chain.get(h).height for h in chain.locator()]
    assert heights == [40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 29, 25, 17, 1, 0]
    assert chain.locator()[-1] == chain.genesis_hash


def test_locator_of_a_fresh_chain_is_just_genesis():
    chain = PowChain(easy_spec())
    assert chain.locator() == [chain.genesis_hash]


def test_blocks_after_a_forks_locator_are_the_main_chain_after_the_fork_point():
    node, peer = PowChain(easy_spec()), PowChain(easy_spec())
    shared = grow(node, 3)
    for block in shared:
        add_connected(peer, block)
    a4, a5 = grow(node, 2)
    b4, b5, b6 = grow(peer, 3, miner=MINER_B)
    # the node has seen b4 as a side block: known, but not on its main chain
    assert outcome(add(node, b4)) == ("side", "")

    locator = peer.locator()
    assert locator[:3] == [b6.hash, b5.hash, b4.hash]
    assert [e.hash for e in node.blocks_after(locator, limit=500)] == [a4.hash, a5.hash]
    assert [e.hash for e in node.blocks_after(locator, limit=1)] == [a4.hash]
    assert node.blocks_after(node.locator(), limit=500) == []
    unknown = [b"\x42" * 32]
    assert [e.height for e in node.blocks_after(unknown, limit=500)] == [1, 2, 3, 4, 5]
