"""A PoS node's memory does not grow with its history (issue 17, finding 5): once finalized, the
blocks behind the checkpoint leave memory (bodies and states) for the SQLite store, and every
reader -- the API, sync, a reorg in the unfinalized window, a restart -- still gets them.

The chain service is the node's own (`PosChainService`) over a real `BlockStore` file, on a fake
clock; one node runs all validators, proposing and voting slot by slot as its duties would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from consensus.pos.types import PosBlock
from consensus.types import sign_transaction
from node.events import EventBus
from node.mempool import Mempool
from node.pos_service import PosChainService
from node.store import BlockStore
from tests.consensus.pos.pos_steps import ALICE_KEY, BOB, VALIDATOR_KEYS, make_spec, slot_time

SPEC = make_spec(8)


class FakeClock:
    def __init__(self) -> None:
        self.ms = SPEC.genesis_time_ms

    def __call__(self) -> float:
        return self.ms / 1000


def open_service(path: Path, clock: FakeClock) -> PosChainService:
    service = PosChainService(SPEC, BlockStore(path), EventBus("pos-memory", None, clock),
                              Mempool(), clock)
    service.load()
    return service


def run_slot(service: PosChainService, clock: FakeClock, slot: int, *, txs=(),
             parent_root: bytes | None = None, vote_for_it: bool = False) -> PosBlock:
    """The slot's proposer builds a block (on the head or `parent_root`), then its attesters
    vote for the head (or for this block)."""
    chain = service.chain
    clock.ms = slot_time(SPEC, slot)
    service.tick()
    proposer = chain.get_proposer(slot, parent_root)
    block = chain.build_block(slot, proposer, VALIDATOR_KEYS[proposer], txs,
                              parent_root=parent_root)
    update = service.submit_block(block)
    assert update.results[0].outcome in ("connected", "side"), update.results
    clock.ms = slot_time(SPEC, slot, 1 / 3)
    service.tick()
    for validator in chain.get_attesters(slot):
        head = block.root if vote_for_it else None
        service.submit_attestation(chain.make_attestation(slot, validator,
                                                          VALIDATOR_KEYS[validator],
                                                          head_root=head))
    return block


def run_until_finalized(service: PosChainService, clock: FakeClock, epoch: int,
                        first_slot: int = 1) -> int:
    """Slots until the finalized checkpoint reaches `epoch` (at most 10 epochs more)."""
    slot = first_slot
    while service.chain.finalized.epoch < epoch:
        run_slot(service, clock, slot)
        slot += 1
        assert slot < first_slot + (epoch + 10) * SPEC.slots_per_epoch, "finality stalled"
    return slot


@pytest.fixture
def node(tmp_path: Path):
    clock = FakeClock()
    service = open_service(tmp_path / "chain.sqlite", clock)
    yield service, clock
    service.store.close()


def test_bodies_and_states_behind_finality_leave_memory(node):
    service, clock = node
    run_until_finalized(service, clock, 4)
    chain = service.chain
    finalized = chain.get(chain.finalized.root)
    behind = [n for n in chain.store.blocks.values() if 0 < n.height < finalized.height]
    assert behind and all(n.body is None and n.state is None for n in behind)
    items = chain.memory_items()
    assert items["blocks_indexed"] == len(chain.store.blocks)   # the index stays whole
    # the unfinalized window, and genesis (the anchor, which has no archive to come back from)
    assert items["bodies"] == chain.head.height - finalized.height + 1 + 1
    assert items["states"] <= items["bodies"]


def test_headers_from_genesis_are_served_after_finality(node):
    """The chain audit of a run reads /chain from height 0 once finality has moved on."""
    service, clock = node
    run_until_finalized(service, clock, 4)
    headers = service.headers_json(0, 3)
    assert [h["height"] for h in headers] == [0, 1, 2, 3]


def test_old_blocks_are_served_from_the_store_by_the_api_and_sync(node):
    service, clock = node
    tx = sign_transaction(ALICE_KEY, BOB, 5, 1, 0)
    first = run_slot(service, clock, 1, txs=(tx,))
    run_until_finalized(service, clock, 4, first_slot=2)
    assert service.chain.get(first.root).body is None

    shown = service.block_json(first.root.hex())
    assert shown is not None and shown["main_chain"] and shown["height"] == 1
    assert service.archive.reads >= 1, "read back from SQLite"
    synced = [service.raw_block(n) for n in service.chain.blocks_after(
        [service.chain.genesis_root], limit=2)]
    assert synced[0] == first.serialize(), "sync answers old blocks with the stored bytes"
    status = service.transaction_status(tx.txid)
    assert status["in_main_chain"] and status["height"] == 1


def test_a_reorg_in_the_unfinalized_window_still_works(node):
    service, clock = node
    slot = run_until_finalized(service, clock, 3)
    parent = service.chain.head
    first = run_slot(service, clock, slot)
    rival = run_slot(service, clock, slot + 1, parent_root=parent.root)
    loser = first if service.chain.head.root == rival.root else rival
    reorgs = service.reorgs_total
    tip = loser
    for extra in range(2, 2 + SPEC.slots_per_epoch):   # the losing branch grows and gets votes
        tip = run_slot(service, clock, slot + extra, parent_root=tip.root, vote_for_it=True)
        if service.reorgs_total > reorgs:
            break
    assert service.reorgs_total > reorgs, "the other branch became the head"
    assert service.chain.head.root == tip.root
    assert service.chain.get(loser.root).body is not None, "unfinalized bodies stay in memory"


def test_a_restart_reads_everything_back(tmp_path):
    clock = FakeClock()
    path = tmp_path / "chain.sqlite"
    before = open_service(path, clock)
    tx = sign_transaction(ALICE_KEY, BOB, 9, 1, 0)
    first = run_slot(before, clock, 1, txs=(tx,))
    run_until_finalized(before, clock, 4, first_slot=2)
    head, finalized = before.chain.head.root, before.chain.finalized
    balance = before.chain.ledger.balance(BOB)
    before.store.close()

    after = open_service(path, clock)
    try:
        assert after.chain.head.root == head and after.chain.finalized == finalized
        assert after.chain.ledger.balance(BOB) == balance
        assert after.chain.get(first.root).body is None, "replay lets old bodies go again"
        assert after.block_json(first.root.hex())["main_chain"]
        assert after.transaction_status(tx.txid)["height"] == 1
    finally:
        after.store.close()
