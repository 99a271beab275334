"""Blocks on a DposChain, step by step: who may produce a slot, what a missed slot costs, when a
block becomes irreversible, which branch is the head, and what a double production leads to."""

from __future__ import annotations

from consensus.dpos.errors import Violation
from consensus.dpos.types import DposBlock
from tests.consensus.dpos.dpos_steps import (
    PRODUCERS,
    make_block,
    new_chain,
    produce,
    produce_round,
    produce_slots,
    slot_ms,
)

P = PRODUCERS


# ---- who may produce ----------------------------------------------------------------------------
def test_scheduled_producer_block_connects_and_is_rewarded():
    chain = new_chain()
    update = produce(chain, 1)
    assert update.results[0].outcome == "connected"
    assert chain.head.height == 1 and chain.head.block.producer == P[0]
    assert chain.ledger.balance(P[0]) == chain.spec.block_reward
    assert chain.state.produced == {P[0]: 1}


def test_block_by_the_wrong_producer_is_rejected_with_the_reason():
    chain = new_chain()
    block = make_block(chain, 1, producer=P[3])
    result = chain.on_block(block, slot_ms(chain, 1)).results[0]
    assert result.outcome == "rejected" and not result.temporary
    assert result.violation is Violation.WRONG_PRODUCER
    assert "belongs to producer" in result.reason
    assert chain.head is chain.genesis


def test_block_for_a_future_slot_is_refused_for_now_and_accepted_in_its_slot():
    chain = new_chain()
    block = make_block(chain, 10)
    result = chain.on_block(block, slot_ms(chain, 5)).results[0]
    assert result.outcome == "rejected" and result.temporary
    assert result.violation is Violation.FUTURE
    assert chain.on_block(block, slot_ms(chain, 10)).results[0].outcome == "connected"


def test_block_with_a_forged_signature_is_rejected_but_not_remembered():
    chain = new_chain()
    good = make_block(chain, 1)
    forged = DposBlock(good.slot, good.producer, good.parent_root, good.body, b"\x01" * 64)
    result = chain.on_block(forged, slot_ms(chain, 1)).results[0]
    assert result.violation is Violation.BAD_SIGNATURE
    assert chain.on_block(good, slot_ms(chain, 1)).results[0].outcome == "connected"


def test_slots_must_increase_along_a_branch():
    chain = new_chain(producers=1, repetitions=1)
    produce(chain, 3)
    block = make_block(chain, 3, parent=chain.head)
    result = chain.on_block(block, slot_ms(chain, 3)).results[0]
    assert result.outcome == "rejected" and result.violation is Violation.TIMESTAMP


# ---- missed slots -------------------------------------------------------------------------------
def test_missed_slots_stay_empty_and_count_against_their_producer():
    chain = new_chain()
    updates = produce_round(chain, skip={P[2]})
    assert chain.head.height == 12                  # 14 slots, P[2]'s two empty
    assert chain.state.missed == {P[2]: 2}
    assert [p for u in updates for _s, p in u.missed] == [P[2], P[2]]
    assert P[2] not in chain.state.produced and chain.state.produced[P[3]] == 2


# ---- irreversibility ----------------------------------------------------------------------------
def test_lib_trails_the_head_by_7_to_8_blocks_on_a_healthy_default_network():
    chain = new_chain()            # 7 x 2: threshold 5, gap = (5 - 2) * 2 + (1 or 2)
    for _ in range(4):
        produce_round(chain)
    gaps = set()
    for _ in range(14):
        produce(chain, chain.head.slot + 1)
        gaps.add(chain.head.height - chain.lib.height)
    assert gaps == {7, 8}


def test_lib_of_21_producers_advances_with_15_and_stalls_with_14():
    chain = new_chain(producers=21, repetitions=1)
    produce_round(chain, skip=set(P[15:21]))        # 15 produce
    assert chain.lib.height == 1
    chain = new_chain(producers=21, repetitions=1)
    produce_round(chain, skip=set(P[14:21]))        # 14 produce
    produce_round(chain, skip=set(P[14:21]))
    assert chain.lib.height == 0


def test_three_producers_with_one_down_stall_the_lib():
    chain = new_chain(producers=3, repetitions=1)
    produce_round(chain)
    assert chain.lib.height == 1
    for _ in range(5):
        produce_round(chain, skip={P[2]})
    assert chain.lib.height == 2         # P[2]'s last block (slot 2), all three built on it
    assert chain.state.last_produced[P[2]] == 2
    assert chain.head.height == 13


def test_lib_changed_is_reported_once_per_advance():
    chain = new_chain(producers=3, repetitions=1)
    updates = produce_round(chain)
    assert [u.lib_changed.height for u in updates if u.lib_changed] == [1]


# ---- fork choice --------------------------------------------------------------------------------
def test_shorter_branch_with_higher_lib_wins_and_its_lib_is_never_reverted():
    chain = new_chain(producers=7, repetitions=1)
    produce_round(chain)
    fork = chain.head
    majority, minority = set(P[:5]), set(P[5:7])
    # the minority builds 6 blocks over three rounds: longer, but its LIB cannot pass the fork
    start = fork.slot + 1
    produce_slots(chain, range(start, start + 21), skip=majority)
    minority_tip = chain.head
    assert minority_tip.height == fork.height + 6 and chain.lib.height <= fork.height
    later = make_block(chain, start + 22, parent=minority_tip)      # the minority's next block
    # the majority builds 5 blocks in the first of those rounds, on the fork point
    parent = fork
    for slot in range(start, start + 7):
        if chain.spec.schedule[slot % 7] in minority:
            continue
        block = make_block(chain, slot, parent=parent)
        chain.on_block(block, slot_ms(chain, start + 21))
        parent = chain.get(block.root)
    assert chain.head is parent and chain.head.height == fork.height + 5
    assert chain.lib.height == fork.height + 1
    # the longer branch grows further; it no longer contains the LIB and is never taken back
    result = chain.on_block(later, slot_ms(chain, start + 22)).results[0]
    assert result.outcome == "rejected" and result.violation is Violation.IRREVERSIBLE
    assert result.temporary                    # honest producers built it: IGNORE, no blame
    assert chain.head is parent


def test_equal_lib_then_the_longer_branch_wins_and_reorgs():
    chain = new_chain(producers=7, repetitions=1)
    produce_round(chain)                        # slots 1-7, LIB at height 3
    fork = chain.head
    # two branches of minority producers: neither moves the LIB
    a = make_block(chain, 12, parent=fork)                      # P[5]
    chain.on_block(a, slot_ms(chain, 12))
    b1 = make_block(chain, 13, parent=fork)                     # P[6]
    chain.on_block(b1, slot_ms(chain, 13))
    assert chain.get(a.root).lib_height == chain.get(b1.root).lib_height == 3
    assert chain.head.root == a.root            # same LIB, same height: the first seen stays
    b2 = make_block(chain, 14, parent=chain.get(b1.root))       # P[0]
    update = chain.on_block(b2, slot_ms(chain, 14))
    assert chain.head.root == b2.root and update.reorgs[0].depth == 1


# ---- double production --------------------------------------------------------------------------
def _double_produce(chain):
    """The producer of the next slot signs two different blocks for it."""
    slot = chain.head.slot + 1
    parent = chain.head
    first = make_block(chain, slot, parent=parent)
    second = make_block(chain, slot, parent=parent.parent or parent)
    chain.on_block(first, slot_ms(chain, slot))
    update = chain.on_block(second, slot_ms(chain, slot))
    return first.producer, update


def test_double_production_is_detected_and_recorded_by_the_next_block():
    chain = new_chain(producers=3, repetitions=1)
    produce_round(chain)
    offender, update = _double_produce(chain)
    assert [e.offender for e in update.evidence] == [offender]
    produce(chain, chain.head.slot + 1)
    assert (offender, update.evidence[0].slot) in chain.state.offences
    assert offender not in chain.state.slashed           # EOSIO: no penalty by default
    assert not chain.evidence                             # recorded: out of the pool


def test_double_production_penalty_slashes_and_drops_the_producer():
    chain = new_chain(producers=7, repetitions=1, candidates=1, slash_double_production=True,
                      stakes=tuple((p, 10) for p in P[:7]))
    produce_round(chain)
    offender, update = _double_produce(chain)
    assert update.evidence
    for _ in range(3):
        produce_round(chain, skip={offender})
    state = chain.state
    assert offender in state.slashed and offender not in state.stakes
    assert offender not in state.schedule and P[3] in state.schedule
    assert state.schedule_version == 1
