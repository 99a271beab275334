"""A node's producer duties, slot by slot, on the real chain service (SQLite store, mempool, event
bus) with the node's clock set by the test: a producer builds only in its own slots, never twice
for one slot; `producer-offline` skips, `double-produce` signs a twin that the node reports, and
`censor` leaves an account's transfers out."""

from __future__ import annotations

import pytest

from consensus.types import sign_transaction
from node.dpos_service import DposChainService
from node.events import EventBus
from node.mempool import Mempool
from node.producer_duties import ProducerDuties
from node.store import BlockStore
from tests.consensus.dpos.dpos_steps import PRODUCER_KEYS, VOTER_KEYS, VOTERS, dpos_spec


class Clock:
    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def node(tmp_path):
    spec = dpos_spec(producers=3, repetitions=1)
    clock = Clock(spec.genesis_time_ms / 1000)
    events = EventBus("node0", None, clock)
    mempool = Mempool()
    service = DposChainService(spec, BlockStore(tmp_path / "chain.sqlite"), events, mempool,
                               clock)
    published = []
    duties = ProducerDuties(service, [PRODUCER_KEYS[0], PRODUCER_KEYS[2]],
                            publish_block=published.append, candidate_txs=mempool.candidates)
    yield service, duties, published, clock
    service.store.close()


def at_slot(service, clock, slot):
    clock.now_s = service.spec.slot_start_ms(slot) / 1000


def test_a_producer_builds_in_its_own_slots_only_and_once(node):
    service, duties, published, clock = node
    for slot in (1, 2, 3):                  # slot 1 is P[1]'s: not run here
        at_slot(service, clock, slot)
        duties.on_slot(slot)
    assert [b.slot for b in published] == [2, 3]
    duties.on_slot(3)                       # the same slot again: never a second block
    assert len(published) == 2 and service.chain.head.height == 2


def test_an_offline_producer_skips_and_a_double_producer_is_caught(node):
    service, duties, published, clock = node
    at_slot(service, clock, 2)
    duties.on_slot(2)
    duties.set_role(0, "producer-offline")
    at_slot(service, clock, 3)
    duties.on_slot(3)
    assert [b.slot for b in published] == [2] and duties.skipped == 1
    duties.set_role(0, "honest")
    duties.set_role(2, "double-produce")
    for slot in (5, 6):
        at_slot(service, clock, slot)
        duties.on_slot(slot)
    twins = [b for b in published if b.slot == 5]
    assert len(twins) == 2 and twins[0].root != twins[1].root
    assert any(e["type"] == "double_production" for e in service.events.history)


def test_a_censor_leaves_one_accounts_transfers_out(node):
    service, duties, published, clock = node
    for i in (0, 1):
        service.submit_transaction(sign_transaction(VOTER_KEYS[i], VOTERS[2], 5, 1, 0))
    duties.set_role(0, "censor:" + VOTERS[0].hex())
    at_slot(service, clock, 3)
    duties.on_slot(3)
    assert [tx.sender for tx in published[-1].body.transactions] == [VOTERS[1]]
    with pytest.raises(ValueError, match="censor names an account"):
        duties.set_role(0, "censor:xyz")
    with pytest.raises(ValueError, match="not run by this node"):
        duties.set_role(1, "producer-offline")


def test_a_restarted_producer_does_not_sign_its_slot_again(node, tmp_path):
    from node.signing_history import DurableSlashingProtection
    service, _duties, published, clock = node
    path = tmp_path / "signing.sqlite"
    first = ProducerDuties(service, [PRODUCER_KEYS[2]], publish_block=published.append,
                           candidate_txs=list, protection=DurableSlashingProtection(path))
    at_slot(service, clock, 2)
    first.protection.record_proposal(2, 2)     # killed after the record, before the block left
    first.protection.close()
    restarted = ProducerDuties(service, [PRODUCER_KEYS[2]], publish_block=published.append,
                               candidate_txs=list, protection=DurableSlashingProtection(path))
    restarted.on_slot(2)
    assert not published and restarted.refused == 1
    at_slot(service, clock, 5)
    restarted.on_slot(5)
    assert [b.slot for b in published] == [5]
    assert restarted.describe()["signing_records_loaded"] == 1
    restarted.protection.close()
