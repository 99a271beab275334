"""A PoW node's memory does not grow with its history (issue 17, finding 5): bodies and undo data
more than `KEEP_BODIES_DEPTH` blocks below the head leave memory for the SQLite store, and every
reader -- the API, sync, a reorg deeper than the window, a restart -- still gets them.

The chain service here is the node's own (`ChainService`) over a real `BlockStore` file; blocks
are solved for real at easy bits (tests/consensus/chain_steps.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from consensus.pow import hash_hex
from consensus.pow_chain import KEEP_BODIES_DEPTH
from node.chain_service import ChainService
from node.events import EventBus
from node.mempool import Mempool
from node.store import BlockStore
from tests.consensus.chain_steps import (
    ALICE_KEY,
    BOB,
    MINER_B,
    assert_ledger_matches_main_chain,
    easy_spec,
    main_chain,
    mine,
    mine_on,
    pay,
)

FAR_FUTURE_S = 4_000_000_000.0   # the node's clock: every test block's timestamp is in its past
HISTORY = KEEP_BODIES_DEPTH + 40


def open_service(path: Path) -> ChainService:
    clock = lambda: FAR_FUTURE_S  # noqa: E731
    service = ChainService(easy_spec(), BlockStore(path), EventBus("pow-memory", None, clock),
                           Mempool(), clock)
    service.load()
    return service


def mine_blocks(service: ChainService, count: int, txs=()) -> list:
    blocks = []
    for i in range(count):
        block = mine(service.chain, txs=txs if i == 0 else ())
        update = service.submit_block(block)
        assert update.results[0].outcome == "connected", update.results
        blocks.append(block)
    return blocks


@pytest.fixture
def service(tmp_path: Path):
    svc = open_service(tmp_path / "chain.sqlite")
    yield svc
    svc.store.close()


def deep_entries(service: ChainService) -> list:
    cutoff = service.chain.head.height - KEEP_BODIES_DEPTH
    return [e for e in main_chain(service.chain) if 0 < e.height < cutoff]


def test_bodies_and_undo_deep_below_the_head_leave_memory(service):
    mine_blocks(service, HISTORY)
    deep = deep_entries(service)
    assert deep, "the chain is longer than the in-memory window"
    assert all(e.body is None for e in deep), "bodies below the window left memory"
    items = service.chain.memory_items()
    assert items["blocks_indexed"] == HISTORY + 1            # the per-block index stays whole
    assert items["bodies"] <= KEEP_BODIES_DEPTH + 2
    assert items["bodies"] == sum(1 for e in service.chain.tree.entries() if e.body is not None)
    assert items["undo"] <= KEEP_BODIES_DEPTH + 1


def test_old_blocks_are_served_from_the_store_by_the_api_and_sync(service):
    tx = pay(ALICE_KEY, BOB, 5, 0)
    first = mine_blocks(service, 1, txs=(tx,))[0]
    mine_blocks(service, HISTORY)
    entry = service.chain.get(first.hash)
    assert entry is not None and entry.body is None
    headers = service.headers_json(0, 5)
    assert headers[1]["hash"] == hash_hex(first.hash) and headers[1]["txs"] == 2
    assert service.archive.reads == 0, "headers come from the in-memory index"

    shown = service.block_json(hash_hex(first.hash))
    assert shown is not None and shown["main_chain"] and shown["height"] == 1
    assert len(shown["transactions"]) == 2
    synced = [service.raw_block(e) for e in service.chain.blocks_after([service.chain.genesis_hash],
                                                                      limit=3)]
    assert synced[0] == first.serialize(), "sync answers old blocks with the stored bytes"
    status = service.transaction_status(tx.txid)
    assert status["in_main_chain"] and status["height"] == 1


def test_a_reorg_deeper_than_the_window_reads_bodies_and_undo_back(service):
    tx = pay(ALICE_KEY, BOB, 7, 0)
    mine_blocks(service, 5)
    fork_point = service.chain.head
    mine_blocks(service, HISTORY, txs=(tx,))
    old_head = service.chain.head
    assert all(e.body is None for e in deep_entries(service))

    parent = fork_point
    for _ in range(HISTORY + 1):                       # one more block: more work, it wins
        block = mine_on(service.chain, parent, miner=MINER_B)
        service.submit_block(block)
        parent = service.chain.get(block.hash)
    assert service.chain.head is parent, "the longer branch became the head"
    assert service.reorgs_total == 1
    assert old_head.height - fork_point.height > KEEP_BODIES_DEPTH, "deeper than the window"
    assert_ledger_matches_main_chain(service.chain)
    assert tx.txid in service.mempool, "the reverted transfer is back in the mempool"
    # both branches' last blocks are within the window now: the old one could still win back
    assert service.chain.memory_items()["bodies"] <= 2 * (KEEP_BODIES_DEPTH + 2)
    mine_blocks(service, KEEP_BODIES_DEPTH + 2)
    assert service.chain.memory_items()["bodies"] <= KEEP_BODIES_DEPTH + 2


def test_a_restart_reads_everything_back(tmp_path):
    path = tmp_path / "chain.sqlite"
    before = open_service(path)
    tx = pay(ALICE_KEY, BOB, 9, 0)
    first = mine_blocks(before, 1, txs=(tx,))[0]
    mine_blocks(before, HISTORY)
    head, balance = before.chain.head.hash, before.chain.ledger.balance(BOB)
    before.store.close()

    after = open_service(path)
    try:
        assert after.chain.head.hash == head
        assert after.chain.ledger.balance(BOB) == balance
        assert after.chain.get(first.hash).body is None, "replay lets deep bodies go again"
        assert after.block_json(hash_hex(first.hash))["main_chain"]
        assert after.transaction_status(tx.txid)["height"] == 1
        assert_ledger_matches_main_chain(after.chain)
    finally:
        after.store.close()
