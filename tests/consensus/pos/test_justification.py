"""Casper FFG justification and finalization (phase0 `process_justification_and_finalization`).

Two kinds of scripts:
- epoch-processing vectors (phase0 `test_process_justification_and_finalization`): a state at the
  last slot of an epoch with hand-set checkpoints, justification bits and included attestations;
  one call; the resulting checkpoints. One vector per finalization rule, with and without support,
  and the 2/3 threshold at its edges;
- chain scripts (phase0 `test_finality`): real blocks, epoch by epoch, choosing whether each
  epoch's blocks include the current epoch's votes, the previous epoch's, both or none — which is
  what decides which of the four rules finalizes.

Rules, by the justification bits they read (bit 0 = the epoch ending, bit k = k epochs before):
rule 1 (bits 1-3, 4-epoch case), rule 2 (bits 1-2, 3-epoch), rule 3 (bits 0-2, 3-epoch with the
current epoch), rule 4 (bits 0-1, 2-epoch).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from consensus.pos.chain import PosChain
from consensus.pos.epoch_processing import is_supermajority, process_justification_and_finalization
from consensus.pos.fork_choice import get_checkpoint_root
from consensus.pos.spec import initialize_genesis
from consensus.pos.state import PendingAttestation, PosState, get_block_root
from consensus.pos.transition import process_slots
from consensus.pos.types import Attestation, Checkpoint, sha256
from tests.consensus.pos.pos_steps import STAKE, attest, extend, make_spec, slot_time

SPE = 4


# ---- epoch-processing vectors -------------------------------------------------------------------
def state_before_epoch(epoch: int, stakes: list[int]) -> PosState:
    """A state at the last slot of epoch `epoch - 1` (phase0's `state.slot = SPE * epoch - 1`),
    with a distinct block root at every slot it remembers."""
    spec = make_spec(len(stakes), stakes, slots_per_epoch=SPE)
    state, _ = initialize_genesis(spec)
    state.slot = SPE * epoch - 1
    ring = len(state.block_roots)
    for slot in range(state.slot - ring + 1, state.slot + 1):
        state.block_roots[slot % ring] = sha256(b"block at slot %d" % slot)
    return state


def get_checkpoints(state: PosState, epoch: int) -> list[Checkpoint]:
    """c1..c5: the checkpoints of 1..5 epochs ago (seen from `epoch`). c1 and c2 are in the
    state's block roots; older ones only ever appear as checkpoint values."""
    out = []
    for ago in range(1, 6):
        e = epoch - ago
        root = get_block_root(state, e) if ago <= 2 else sha256(b"checkpoint %d" % e)
        out.append(Checkpoint(e, root))
    return out


def add_mock_attestations(state: PosState, source: Checkpoint, target: Checkpoint,
                          voters: list[int]) -> None:
    current = state.slot // SPE
    records = (state.current_epoch_attestations if target.epoch == current
               else state.previous_epoch_attestations)
    for v in voters:
        att = Attestation(target.epoch * SPE, v, target.root, source, target)
        records[v] = PendingAttestation(att, 1, 0)


SUPPORT = {True: [0, 1, 2], False: [0, 1]}      # of 4 equal validators: 3/4 or exactly half


def bits(*set_bits: int) -> tuple[bool, ...]:
    return tuple(i in set_bits for i in range(4))


@pytest.mark.parametrize("support", [True, False])
def test_rule_1_finalizes_on_234(support):
    """2nd/3rd/4th most recent epochs justified, the 2nd using the 4th as source."""
    epoch = 6
    state = state_before_epoch(epoch, [STAKE] * 4)
    c1, c2, c3, c4, _ = get_checkpoints(state, epoch)
    old_finalized = state.finalized_checkpoint
    state.previous_justified_checkpoint = c4
    state.current_justified_checkpoint = c3
    state.justification_bits = bits(1, 2)           # pre-shift: c3 and c4 justified
    add_mock_attestations(state, c4, c2, SUPPORT[support])
    process_justification_and_finalization(state)
    assert state.previous_justified_checkpoint == c3
    if support:
        assert state.current_justified_checkpoint == c2
        assert state.finalized_checkpoint == c4
    else:
        assert state.current_justified_checkpoint == c3
        assert state.finalized_checkpoint == old_finalized


@pytest.mark.parametrize("support", [True, False])
def test_rule_2_finalizes_on_23(support):
    """2nd/3rd most recent epochs justified, the 2nd using the 3rd as source."""
    epoch = 5
    state = state_before_epoch(epoch, [STAKE] * 4)
    c1, c2, c3, c4, _ = get_checkpoints(state, epoch)
    old_finalized = state.finalized_checkpoint
    state.previous_justified_checkpoint = c3
    state.current_justified_checkpoint = c3
    state.justification_bits = bits(1)              # pre-shift: c3 justified
    add_mock_attestations(state, c3, c2, SUPPORT[support])
    process_justification_and_finalization(state)
    assert state.previous_justified_checkpoint == c3
    if support:
        assert state.current_justified_checkpoint == c2
        assert state.finalized_checkpoint == c3
    else:
        assert state.current_justified_checkpoint == c3
        assert state.finalized_checkpoint == old_finalized


@pytest.mark.parametrize("support", [True, False])
def test_rule_3_finalizes_on_123(support):
    """1st/2nd/3rd most recent epochs justified, the 1st using the 3rd as source."""
    epoch = 6
    state = state_before_epoch(epoch, [STAKE] * 4)
    c1, c2, c3, c4, c5 = get_checkpoints(state, epoch)
    old_finalized = state.finalized_checkpoint
    state.previous_justified_checkpoint = c5
    state.current_justified_checkpoint = c3
    state.justification_bits = bits(1)              # pre-shift: c3 justified
    add_mock_attestations(state, c5, c2, SUPPORT[support])
    add_mock_attestations(state, c3, c1, SUPPORT[support])
    process_justification_and_finalization(state)
    assert state.previous_justified_checkpoint == c3
    if support:
        assert state.current_justified_checkpoint == c1
        assert state.finalized_checkpoint == c3
    else:
        assert state.current_justified_checkpoint == c3
        assert state.finalized_checkpoint == old_finalized


@pytest.mark.parametrize("support", [True, False])
def test_rule_4_finalizes_on_12(support):
    """1st/2nd most recent epochs justified, the 1st using the 2nd as source."""
    epoch = 5
    state = state_before_epoch(epoch, [STAKE] * 4)
    c1, c2, c3, _, _ = get_checkpoints(state, epoch)
    old_finalized = state.finalized_checkpoint
    state.previous_justified_checkpoint = c3
    state.current_justified_checkpoint = c2
    state.justification_bits = bits(0)              # pre-shift: c2 justified
    add_mock_attestations(state, c2, c1, SUPPORT[support])
    process_justification_and_finalization(state)
    assert state.previous_justified_checkpoint == c2
    if support:
        assert state.current_justified_checkpoint == c1
        assert state.finalized_checkpoint == c2
    else:
        assert state.current_justified_checkpoint == c2
        assert state.finalized_checkpoint == old_finalized


def test_votes_for_another_target_root_do_not_justify():
    epoch = 5
    state = state_before_epoch(epoch, [STAKE] * 4)
    c1, c2, c3, _, _ = get_checkpoints(state, epoch)
    state.current_justified_checkpoint = c2
    state.justification_bits = bits(0)
    add_mock_attestations(state, c2, Checkpoint(c1.epoch, sha256(b"elsewhere")), [0, 1, 2, 3])
    process_justification_and_finalization(state)
    assert state.current_justified_checkpoint == c2
    assert state.justification_bits[0] is False


@pytest.mark.parametrize("stakes, voters, justified", [
    ([STAKE] * 4, [0, 1], False),                   # exactly half
    ([STAKE] * 3, [0, 1], True),                    # exactly two thirds: inclusive
    ([STAKE] * 6, [0, 1, 2, 3], True),              # exactly two thirds again
    ([200, 100], [0], True),                        # 3 * 200 == 2 * 300
    ([199, 101], [0], False),                       # 597 < 600: just below
    ([STAKE] * 4, [0, 1, 2, 3], True),
])
def test_justification_threshold_is_two_thirds_inclusive(stakes, voters, justified):
    epoch = 5
    state = state_before_epoch(epoch, stakes)
    c1, c2, *_ = get_checkpoints(state, epoch)
    add_mock_attestations(state, state.current_justified_checkpoint, c1, voters)
    process_justification_and_finalization(state)
    assert (state.current_justified_checkpoint == c1) is justified
    assert state.justification_bits[0] is justified


def test_threshold_predicate():
    assert is_supermajority(2, 3) and is_supermajority(4, 6) and is_supermajority(200, 300)
    assert not is_supermajority(1, 2) and not is_supermajority(199, 300)
    assert not is_supermajority(0, 0)


def test_slashed_votes_do_not_justify():
    epoch = 5
    state = state_before_epoch(epoch, [STAKE] * 3)
    c1, *_ = get_checkpoints(state, epoch)
    state.validators[1] = replace(state.validators[1], slashed=True)
    add_mock_attestations(state, state.current_justified_checkpoint, c1, [0, 1])
    process_justification_and_finalization(state)
    assert state.current_justified_checkpoint != c1


def test_no_justification_in_the_first_two_epochs():
    state = state_before_epoch(2, [STAKE] * 4)      # last slot of epoch 1
    c1, *_ = get_checkpoints(state, 2)
    add_mock_attestations(state, state.current_justified_checkpoint, c1, [0, 1, 2, 3])
    before = (state.current_justified_checkpoint, state.justification_bits)
    process_justification_and_finalization(state)
    assert (state.current_justified_checkpoint, state.justification_bits) == before


# ---- chain scripts --------------------------------------------------------------------------
class FinalityScript:
    """One chain, 16 validators, a block every slot; each epoch's blocks include the current
    epoch's votes (`cur`), the previous epoch's (`prev`), both or none. Votes are made every slot
    but reach the proposer's pool only as the script says."""

    def __init__(self) -> None:
        self.chain = PosChain(make_spec(16))
        self.votes: dict[int, list[Attestation]] = {}
        self.epoch = 0

    def next_epoch(self, cur: bool, prev: bool) -> PosState:
        """Run the next epoch; returns the state after its epoch processing."""
        chain, spe = self.chain, self.chain.spec.slots_per_epoch
        epoch = self.epoch = self.epoch + 1
        for slot in range(epoch * spe, (epoch + 1) * spe):
            chain.on_tick(slot_time(chain.spec, slot))
            pool = chain.pool.attestations
            pool.clear()
            for att in (self.votes.get(epoch - 1, []) if prev else []) + \
                    (self.votes.get(epoch, []) if cur else []):
                pool.put(att.root, att)
            extend(chain, slot)
            self.votes.setdefault(epoch, []).extend(
                attest(chain, slot, v) for v in chain.get_attesters(slot))
        state = chain.state.copy()
        process_slots(state, (epoch + 1) * spe)
        return state

    def checkpoint(self, epoch: int) -> Checkpoint:
        """The checkpoint of `epoch` on the script's chain."""
        spe = self.chain.spec.slots_per_epoch
        return Checkpoint(epoch, get_checkpoint_root(self.chain.head, epoch, spe))


def test_chain_rule_4_current_epoch_votes_finalize_the_previous_epoch():
    script = FinalityScript()
    script.next_epoch(cur=True, prev=False)
    state = script.next_epoch(cur=True, prev=False)        # end of epoch 2
    assert state.current_justified_checkpoint == script.checkpoint(2)
    assert state.finalized_checkpoint.epoch == 0
    state = script.next_epoch(cur=True, prev=False)        # end of epoch 3
    assert state.current_justified_checkpoint == script.checkpoint(3)
    assert state.finalized_checkpoint == script.checkpoint(2)
    state = script.next_epoch(cur=True, prev=False)
    assert state.finalized_checkpoint == script.checkpoint(3)


def test_chain_rule_1_votes_included_an_epoch_late_finalize_three_back():
    script = FinalityScript()
    for _ in range(3):                                     # epochs 1..3
        state = script.next_epoch(cur=False, prev=True)
    assert state.current_justified_checkpoint == script.checkpoint(2)
    assert state.finalized_checkpoint.epoch == 0
    state = script.next_epoch(cur=False, prev=True)        # end of epoch 4
    assert state.current_justified_checkpoint == script.checkpoint(3)
    assert state.finalized_checkpoint == script.checkpoint(1)
    state = script.next_epoch(cur=False, prev=True)
    assert state.finalized_checkpoint == script.checkpoint(2)


def test_chain_rule_2_a_late_justification_finalizes_its_source():
    script = FinalityScript()
    script.next_epoch(cur=True, prev=False)
    state = script.next_epoch(cur=True, prev=False)        # end of 2: epoch 2 justified
    assert state.current_justified_checkpoint == script.checkpoint(2)
    state = script.next_epoch(cur=False, prev=False)       # epoch 3: no votes get in
    assert state.current_justified_checkpoint == script.checkpoint(2)
    assert state.finalized_checkpoint.epoch == 0
    state = script.next_epoch(cur=False, prev=True)        # epoch 3's votes get in during 4
    assert state.current_justified_checkpoint == script.checkpoint(3)
    assert state.finalized_checkpoint == script.checkpoint(2)


def test_chain_rule_3_three_justified_in_a_row_finalize_with_the_current_epoch():
    script = FinalityScript()
    script.next_epoch(cur=True, prev=False)
    script.next_epoch(cur=True, prev=False)                # J=2
    state = script.next_epoch(cur=True, prev=False)        # J=3, F=2
    assert state.finalized_checkpoint == script.checkpoint(2)
    script.next_epoch(cur=False, prev=False)               # epoch 4: nothing gets in
    state = script.next_epoch(cur=False, prev=True)        # epoch 4 justified late, F=3 (rule 2)
    assert state.current_justified_checkpoint == script.checkpoint(4)
    assert state.finalized_checkpoint == script.checkpoint(3)
    state = script.next_epoch(cur=True, prev=True)         # epochs 5 and 6 justified
    assert state.current_justified_checkpoint == script.checkpoint(6)
    assert state.finalized_checkpoint == script.checkpoint(4)      # only rule 3 gives 4


def test_chain_without_votes_never_justifies():
    script = FinalityScript()
    for _ in range(4):
        state = script.next_epoch(cur=False, prev=False)
    assert state.current_justified_checkpoint.epoch == 0
    assert state.finalized_checkpoint.epoch == 0
