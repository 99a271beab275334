"""Bodies below the LIB leave memory (issue 17, finding 5): a DposChain with an archive lets them
go when asked (`release_irreversible_bodies`), keeps the window from the LIB to the tips and the
genesis body, and never reads a released body back for its own rules.

The archive here is a dict the test fills as the node's store would: every block the chain holds
is "stored" before the chain is asked to release (`store_and_release`).
"""

from __future__ import annotations

from consensus import keys
from consensus.block_archive import BodyUnavailable
from consensus.dpos.chain import DposChain
from consensus.dpos.types import DposBlock
from tests.consensus.dpos.dpos_steps import (
    KEY_OF,
    PRODUCERS,
    dpos_spec,
    make_block,
    produce_round,
    produce_slots,
    slot_ms,
)

P = PRODUCERS


class DictArchive:
    """The node's store, reduced to what the chain asks of it; counts every read."""

    def __init__(self) -> None:
        self.blocks: dict[bytes, DposBlock] = {}
        self.reads = 0

    def load_block(self, block_id: bytes) -> DposBlock:
        self.reads += 1
        try:
            return self.blocks[block_id]
        except KeyError:
            raise BodyUnavailable(block_id.hex()[:16]) from None


def archived_chain(producers: int = 7, repetitions: int = 1, **overrides
                   ) -> tuple[DposChain, DictArchive]:
    archive = DictArchive()
    return DposChain(dpos_spec(producers, repetitions, **overrides), archive=archive), archive


def store_and_release(chain: DposChain, archive: DictArchive) -> int:
    """What the node does after each call: store the new blocks, then let old bodies go."""
    for node in chain.blocks.values():
        if node.body is not None and node is not chain.genesis:
            archive.blocks.setdefault(node.root, node.body)
    return chain.release_irreversible_bodies()


def bodies_in_memory(chain: DposChain) -> set[int]:
    return {n.height for n in chain.blocks.values() if n.body is not None}


def test_without_an_archive_every_body_stays():
    chain = DposChain(dpos_spec(7, 1))
    for _ in range(3):
        produce_round(chain)
    assert chain.lib.height > 0
    assert chain.release_irreversible_bodies() == 0
    assert chain.memory_items()["bodies"] == len(chain.blocks)


def test_bodies_below_the_lib_leave_and_the_window_and_genesis_stay():
    chain, archive = archived_chain()
    for _ in range(4):
        produce_round(chain)
        store_and_release(chain, archive)
    lib, head = chain.lib, chain.head
    assert lib.height > 10
    assert bodies_in_memory(chain) == {0, *range(lib.height, head.height + 1)}
    assert chain.memory_items()["bodies"] == head.height - lib.height + 1 + 1
    assert chain.memory_items()["states"] == head.height - lib.height + 1
    assert chain.memory_items()["blocks_indexed"] == head.height + 1   # the index stays whole
    old = chain.main_chain_at(1)
    assert old is not None and old.body is None
    assert old.block == archive.blocks[old.root] and old.block.slot == old.slot


def test_the_rules_never_read_a_released_body():
    """Fork choice, production, LIB, missed slots and reorgs above the LIB use the fields."""
    chain, archive = archived_chain()
    for _ in range(3):
        for slot in range(chain.head.slot + 1, chain.head.slot + 8):
            if chain.scheduled_producer(slot) != P[6]:       # P[6] is offline: missed slots
                produce_slots(chain, [slot])
                store_and_release(chain, archive)
    fork = chain.head
    a = make_block(chain, fork.slot + 1, parent=fork)
    chain.on_block(a, slot_ms(chain, a.slot))
    b1 = make_block(chain, fork.slot + 2, parent=fork)
    chain.on_block(b1, slot_ms(chain, b1.slot))
    b2 = make_block(chain, fork.slot + 3, parent=chain.get(b1.root))
    update = chain.on_block(b2, slot_ms(chain, b2.slot))
    store_and_release(chain, archive)
    assert update.reorgs and chain.head.root == b2.root
    assert chain.lib.height > 5 and archive.reads == 0


def test_a_branch_that_conflicts_with_the_lib_lets_its_bodies_go():
    chain, archive = archived_chain()
    produce_round(chain)
    fork = chain.head
    majority, minority = set(P[:5]), set(P[5:7])
    start = fork.slot + 1
    produce_slots(chain, range(start, start + 21), skip=majority)     # 6 minority blocks
    store_and_release(chain, archive)
    dead = [n for n in chain.blocks.values() if n.height > fork.height]
    assert len(dead) == 6 and all(n.body is not None for n in dead)
    parent = fork
    for slot in range(start, start + 7):                             # the majority's branch
        if chain.spec.schedule[slot % 7] in minority:
            continue
        block = make_block(chain, slot, parent=parent)
        chain.on_block(block, slot_ms(chain, start + 21))
        parent = chain.get(block.root)
    store_and_release(chain, archive)
    assert chain.lib.height == fork.height + 1 and chain.lib is not dead[0]
    assert all(n.body is None and n.state is None for n in dead)
    assert dead[0].block == archive.blocks[dead[0].root], "still readable from the archive"
    items = chain.memory_items()
    assert items["bodies"] == chain.head.height - chain.lib.height + 1 + 1
    assert items["states"] == chain.head.height - chain.lib.height + 1


def test_release_without_a_lib_move_walks_nothing():
    chain, archive = archived_chain()
    produce_round(chain)
    store_and_release(chain, archive)
    assert store_and_release(chain, archive) == 0


def test_the_double_production_watch_keeps_headers_above_the_lib_only():
    """A block for a slot at or below the LIB's cannot descend from the LIB: it is refused before
    it is watched, so the headers of those slots are let go with the LIB."""
    chain, archive = archived_chain()
    for _ in range(4):
        produce_round(chain)
        store_and_release(chain, archive)
    above = [n for n in chain.blocks.values() if n.slot > chain.lib.slot]
    assert chain.memory_items()["headers"] == len(above) == chain.head.height - chain.lib.height
    lib = chain.lib          # its producer signs a second block for its slot, on the grandparent
    unsigned = DposBlock(lib.slot, lib.block.producer, lib.parent.parent.root)
    twin = DposBlock(unsigned.slot, unsigned.producer, unsigned.parent_root,
                     signature=keys.sign(KEY_OF[unsigned.producer], unsigned.header.signing_root))
    result = chain.on_block(twin, slot_ms(chain, chain.head.slot)).results[0]
    assert result.outcome == "rejected" and result.temporary and not chain.evidence
