"""A DPoS node's memory does not grow with its history (issue 17, finding 5): once a block is
below the LIB its body leaves memory for the SQLite store, and every reader -- the API, sync to a
fresh node, a restart -- still gets it.

The chain service is the node's own (`DposChainService`) over a real `BlockStore` file, on a fake
clock; one node holds every producer's key and produces each slot as its duties would. Sync runs
through the node's own `DposBridge` (`blocks_after` and `ingest`), on a stub host.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from consensus.dpos.chain import DposNode
from consensus.dpos.schedule import get_scheduled_producer
from consensus.dpos.types import DposBlock
from consensus.types import sign_transaction
from node.dpos_bridge import DposBridge
from node.dpos_service import DposChainService
from node.events import EventBus
from node.mempool import Mempool
from node.store import BlockStore
from tests.consensus.dpos.dpos_steps import KEY_OF, VOTER_KEYS, VOTERS, dpos_spec

SPEC = dpos_spec(producers=7, repetitions=1)
SYNC_BATCH = 16


class FakeClock:
    def __init__(self) -> None:
        self.ms = SPEC.genesis_time_ms

    def __call__(self) -> float:
        return self.ms / 1000


class StubHost:
    """What DposBridge asks of a P2PHost when nothing is gossiped."""

    def add_topic(self, *args, **kwargs) -> None:
        pass

    def set_sync_source(self, source) -> None:
        self.source = source


def open_service(path: Path, clock: FakeClock) -> DposChainService:
    service = DposChainService(SPEC, BlockStore(path), EventBus("dpos-memory", None, clock),
                               Mempool(), clock)
    service.load()
    return service


def produce_slot(service: DposChainService, clock: FakeClock, slot: int, *, txs=(),
                 parent: DposNode | None = None) -> DposBlock:
    """The slot's scheduled producer (on the head, or on `parent`) makes and submits a block."""
    chain = service.chain
    clock.ms = SPEC.slot_start_ms(slot)
    base = parent or chain.head
    assert base.state is not None
    producer = get_scheduled_producer(base.state.schedule, slot, SPEC.repetitions)
    block = chain.build_block(slot, KEY_OF[producer], txs, parent_root=base.root)
    update = service.submit_block(block)
    assert update.results[0].outcome in ("connected", "side"), update.results
    return block


def produce_until_lib(service: DposChainService, clock: FakeClock, height: int) -> list[int]:
    """Slots until the LIB reaches `height`; the bodies held after each block."""
    held = []
    slot = service.chain.head.slot + 1
    while service.chain.lib.height < height:
        produce_slot(service, clock, slot)
        held.append(service.chain.memory_items()["bodies"])
        slot += 1
        assert slot < 4 * height + 50, "the LIB stalled"
    return held


@pytest.fixture
def node(tmp_path: Path):
    clock = FakeClock()
    service = open_service(tmp_path / "chain.sqlite", clock)
    yield service, clock
    service.store.close()


def test_bodies_below_the_lib_leave_memory_and_stay_bounded(node):
    service, clock = node
    held = produce_until_lib(service, clock, 60)
    chain = service.chain
    lib, head = chain.lib, chain.head
    below = [n for n in chain.blocks.values() if 0 < n.height < lib.height]
    assert below and all(n.body is None and n.state is None for n in below)
    items = chain.memory_items()
    assert items["blocks_indexed"] == len(chain.blocks) == head.height + 1   # the index stays
    # the blocks from the LIB to the head, and genesis (not in the store: its body stays)
    assert items["bodies"] == head.height - lib.height + 1 + 1
    assert chain.genesis.body is not None
    # flat over the run: a round of 7 producers keeps the LIB within 7 blocks of the head
    assert max(held[20:]) <= max(held[:20]) <= 7 + 2
    assert items["headers"] == head.height - lib.height, "watched headers: above the LIB only"


def test_old_blocks_are_served_by_the_api_from_the_store(node):
    service, clock = node
    tx = sign_transaction(VOTER_KEYS[0], VOTERS[1], 5, 1, 0)
    first = produce_slot(service, clock, 1, txs=(tx,))
    produce_until_lib(service, clock, 30)
    assert service.chain.get(first.root).body is None

    reads = service.archive.reads
    shown = service.block_json(first.root.hex())
    assert shown is not None and shown["main_chain"] and shown["irreversible"]
    assert shown["height"] == 1 and len(shown["transactions"]) == 1
    assert service.archive.reads == reads + 1, "read back from SQLite"
    headers = service.headers_json(0, 3)
    assert [h["height"] for h in headers] == [0, 1, 2, 3] and headers[1]["txs"] == 1
    status = service.transaction_status(tx.txid)
    assert status["in_main_chain"] and status["height"] == 1
    assert service.tips_json()[0]["hash"] == service.chain.head.root.hex()
    assert service.status_fields()["finalized"]["height"] == service.chain.lib.height


async def test_a_fresh_node_syncs_every_block_from_disk(node, tmp_path):
    service, clock = node
    produce_until_lib(service, clock, 40)
    source = DposBridge(service, StubHost())
    raw_first = service.store.get_raw(service.chain.main_chain_at(1).root)
    assert source.blocks_after([service.chain.genesis_root], 1) == [raw_first]

    fresh = open_service(tmp_path / "fresh.sqlite", clock)
    try:
        sink = DposBridge(fresh, StubHost())
        while fresh.chain.head.height < service.chain.head.height:
            batch = source.blocks_after(sink.locator(), SYNC_BATCH)
            assert batch, "the source has more blocks"
            await sink.ingest("source", batch)
        assert fresh.chain.head.root == service.chain.head.root
        assert fresh.chain.lib.root == service.chain.lib.root
        assert fresh.chain.memory_items()["bodies"] == service.chain.memory_items()["bodies"]
    finally:
        fresh.store.close()


def test_a_fork_above_the_lib_reorgs_then_its_loser_leaves_memory(node):
    service, clock = node
    produce_until_lib(service, clock, 10)
    fork = service.chain.head
    slot = fork.slot + 1
    loser = produce_slot(service, clock, slot)                    # on the head
    rival = produce_slot(service, clock, slot + 1, parent=fork)   # a branch beside it
    winner = produce_slot(service, clock, slot + 2, parent=service.chain.get(rival.root))
    assert service.chain.head.root == winner.root and service.reorgs_total == 1
    assert service.chain.get(loser.root).body is not None, "above the LIB: still in memory"

    produce_until_lib(service, clock, winner_height := service.chain.get(winner.root).height)
    assert service.chain.lib.height >= winner_height
    dead = service.chain.get(loser.root)
    assert dead.body is None and dead.state is None
    shown = service.block_json(loser.root.hex())
    assert shown is not None and not shown["main_chain"], "a dead branch is still served"
    assert service.chain.memory_items()["bodies"] == (
        service.chain.head.height - service.chain.lib.height + 1 + 1)


def test_a_restart_reads_everything_back(tmp_path):
    clock = FakeClock()
    path = tmp_path / "chain.sqlite"
    before = open_service(path, clock)
    tx = sign_transaction(VOTER_KEYS[0], VOTERS[1], 9, 1, 0)
    first = produce_slot(before, clock, 1, txs=(tx,))
    produce_until_lib(before, clock, 30)
    head, lib = before.chain.head.root, before.chain.lib.root
    balance, bodies = before.chain.ledger.balance(VOTERS[1]), before.chain.memory_items()["bodies"]
    before.store.close()

    after = open_service(path, clock)
    try:
        assert after.chain.head.root == head and after.chain.lib.root == lib
        assert after.chain.ledger.balance(VOTERS[1]) == balance
        assert after.chain.get(first.root).body is None, "replay lets old bodies go again"
        assert after.chain.memory_items()["bodies"] == bodies
        assert after.block_json(first.root.hex())["main_chain"]
        assert after.transaction_status(tx.txid)["height"] == 1
        produce_slot(after, clock, after.chain.head.slot + 1)     # and it goes on producing
        assert after.chain.head.height == before.chain.head.height + 1
    finally:
        after.store.close()
