"""Epoch processing: what happens to the state at the last slot of every epoch (consensus-specs
phase0 `process_epoch`), in this order:

1. justification and finalization (Casper FFG, phase0 exactly: the 2-, 3- and 4-epoch cases);
2. rewards and penalties for the previous epoch's attestations, and the inactivity leak;
3. registry updates (ejection of validators whose stake fell below `ejection_stake`);
4. withdrawals (stake of validators past their withdrawable epoch goes back to their account);
5. effective stakes (the weights of the next epoch), randao mix carried over, attestation records
   rotated (current -> previous).

Economics, simplified from phase0. A validator's base reward for an epoch is
`base_reward * effective_stake / total_active_stake`, split evenly over three duties: correct
source, correct target (the epoch's checkpoint root on this chain), correct head (the block root at
the attestation's slot on this chain). Each duty done earns its third, each missed costs it. The
proposer that included an attestation earns base / `proposer_reward_quotient` of the attester's
base. During an inactivity leak (no finality for more than `inactivity_leak_after_epochs`),
attesters earn nothing and every validator that did not vote for the right target also loses
`inactivity_leak_rate` of its stake each epoch, so the participating stake grows back to 2/3.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from consensus.ffg import is_supermajority
from consensus.pos.state import (
    EPOCHS_PER_HISTORICAL_VECTOR,
    GENESIS_EPOCH,
    PendingAttestation,
    PosState,
    decrease_stake,
    get_block_root,
    get_block_root_at_slot,
    get_current_epoch,
    get_previous_epoch,
    get_total_active_stake,
    increase_stake,
    initiate_validator_exit,
    is_active_validator,
)
from consensus.pos.types import Checkpoint

DUTIES_PER_EPOCH = 3            # source, target, head
__all__ = ["process_epoch", "is_supermajority"]


def process_epoch(state: PosState) -> None:
    process_justification_and_finalization(state)
    process_rewards_and_penalties(state)
    process_registry_updates(state)
    process_withdrawals(state)
    process_effective_stake_updates(state)
    process_randao_mixes_reset(state)
    process_participation_record_updates(state)


# ---- matching attestations --------------------------------------------------------------------
def get_matching_source_attestations(state: PosState, epoch: int) -> list[PendingAttestation]:
    """Attestations for `epoch` included on this chain (their source was checked on inclusion)."""
    if epoch == get_current_epoch(state):
        return list(state.current_epoch_attestations.values())
    if epoch == get_previous_epoch(state):
        return list(state.previous_epoch_attestations.values())
    raise ValueError(f"epoch {epoch} is neither the current nor the previous epoch")


def get_matching_target_attestations(state: PosState, epoch: int) -> list[PendingAttestation]:
    root = get_block_root(state, epoch)
    return [p for p in get_matching_source_attestations(state, epoch)
            if p.attestation.target.root == root]


def get_matching_head_attestations(state: PosState, epoch: int) -> list[PendingAttestation]:
    return [p for p in get_matching_target_attestations(state, epoch)
            if p.attestation.head_root == get_block_root_at_slot(state, p.attestation.slot)]


def get_unslashed_attesting_indices(state: PosState,
                                    pendings: Iterable[PendingAttestation]) -> set[int]:
    validators = state.validators
    return {p.attestation.validator_index for p in pendings
            if not validators[p.attestation.validator_index].slashed}


def get_attesting_stake(state: PosState, pendings: Iterable[PendingAttestation]) -> int:
    validators = state.validators
    return sum(validators[i].effective_stake
               for i in get_unslashed_attesting_indices(state, pendings))


# ---- 1. justification and finalization ------------------------------------------------------
def process_justification_and_finalization(state: PosState) -> None:
    current_epoch = get_current_epoch(state)
    if current_epoch <= GENESIS_EPOCH + 1:
        return
    previous_epoch = get_previous_epoch(state)
    old_previous_justified = state.previous_justified_checkpoint
    old_current_justified = state.current_justified_checkpoint
    total = get_total_active_stake(state)

    # Process justifications
    state.previous_justified_checkpoint = state.current_justified_checkpoint
    bits = [False, *state.justification_bits[:-1]]
    previous_target = get_matching_target_attestations(state, previous_epoch)
    if is_supermajority(get_attesting_stake(state, previous_target), total):
        state.current_justified_checkpoint = Checkpoint(previous_epoch,
                                                        get_block_root(state, previous_epoch))
        bits[1] = True
    current_target = get_matching_target_attestations(state, current_epoch)
    if is_supermajority(get_attesting_stake(state, current_target), total):
        state.current_justified_checkpoint = Checkpoint(current_epoch,
                                                        get_block_root(state, current_epoch))
        bits[0] = True
    state.justification_bits = tuple(bits)

    # Process finalizations
    # The 2nd/3rd/4th most recent epochs are justified, the 2nd using the 4th as source
    if all(bits[1:4]) and old_previous_justified.epoch + 3 == current_epoch:
        state.finalized_checkpoint = old_previous_justified
    # The 2nd/3rd most recent epochs are justified, the 2nd using the 3rd as source
    if all(bits[1:3]) and old_previous_justified.epoch + 2 == current_epoch:
        state.finalized_checkpoint = old_previous_justified
    # The 1st/2nd/3rd most recent epochs are justified, the 1st using the 3rd as source
    if all(bits[0:3]) and old_current_justified.epoch + 2 == current_epoch:
        state.finalized_checkpoint = old_current_justified
    # The 1st/2nd most recent epochs are justified, the 1st using the 2nd as source
    if all(bits[0:2]) and old_current_justified.epoch + 1 == current_epoch:
        state.finalized_checkpoint = old_current_justified


# ---- 2. rewards, penalties, inactivity leak ----------------------------------------------------
def get_finality_delay(state: PosState) -> int:
    return get_previous_epoch(state) - state.finalized_checkpoint.epoch


def is_in_inactivity_leak(state: PosState) -> bool:
    spec = state.spec
    return spec.inactivity_leak_rate > 0 and \
        get_finality_delay(state) > spec.inactivity_leak_after_epochs


def get_base_reward(state: PosState, index: int, total_active_stake: int) -> int:
    return state.spec.base_reward * state.validators[index].effective_stake // total_active_stake


def get_eligible_validator_indices(state: PosState) -> list[int]:
    """Active in the previous epoch, or slashed and not yet withdrawable (phase0)."""
    previous = get_previous_epoch(state)
    return [i for i, v in enumerate(state.validators)
            if is_active_validator(v, previous)
            or (v.slashed and previous + 1 < v.withdrawable_epoch)]


def get_attestation_deltas(state: PosState) -> tuple[list[int], list[int]]:
    """(rewards, penalties) per validator for the previous epoch's attestations."""
    n = len(state.validators)
    rewards, penalties = [0] * n, [0] * n
    total = get_total_active_stake(state)
    if total == 0:
        return rewards, penalties
    previous = get_previous_epoch(state)
    source = get_matching_source_attestations(state, previous)
    target = get_matching_target_attestations(state, previous)
    head = get_matching_head_attestations(state, previous)
    duty_sets = [get_unslashed_attesting_indices(state, atts) for atts in (source, target, head)]
    in_leak = is_in_inactivity_leak(state)
    rate = state.spec.inactivity_leak_rate
    for index in get_eligible_validator_indices(state):
        share = get_base_reward(state, index, total) // DUTIES_PER_EPOCH
        for attesting in duty_sets:
            if index not in attesting:
                penalties[index] += share
            elif not in_leak:
                rewards[index] += share
        if in_leak and index not in duty_sets[1]:
            stake = state.validators[index].effective_stake
            penalties[index] += stake * rate.numerator // rate.denominator
    quotient = state.spec.proposer_reward_quotient
    for pending in source:
        attester = pending.attestation.validator_index
        if not state.validators[attester].slashed:
            rewards[pending.proposer_index] += get_base_reward(state, attester, total) // quotient
    return rewards, penalties


def process_rewards_and_penalties(state: PosState) -> None:
    if get_current_epoch(state) == GENESIS_EPOCH:
        return
    rewards, penalties = get_attestation_deltas(state)
    for index in range(len(state.validators)):
        increase_stake(state, index, rewards[index])
        decrease_stake(state, index, penalties[index])


# ---- 3..5. registry, withdrawals, bookkeeping ---------------------------------------------------
def process_registry_updates(state: PosState) -> None:
    """Eject active validators whose effective stake fell below `ejection_stake` (0: never)."""
    threshold = state.spec.ejection_stake
    if threshold <= 0:
        return
    current = get_current_epoch(state)
    for index, validator in enumerate(state.validators):
        if is_active_validator(validator, current) and validator.effective_stake < threshold:
            initiate_validator_exit(state, index)


def process_withdrawals(state: PosState) -> None:
    """Return the stake of validators withdrawable from the next epoch to their own account."""
    next_epoch = get_current_epoch(state) + 1
    ledger = state.ledger
    for index, validator in enumerate(state.validators):
        stake = state.stakes[index]
        if stake > 0 and validator.withdrawable_epoch <= next_epoch:
            ledger.balances[validator.pubkey] = ledger.balance(validator.pubkey) + stake
            state.stakes[index] = 0


def process_effective_stake_updates(state: PosState) -> None:
    for index, validator in enumerate(state.validators):
        if validator.effective_stake != state.stakes[index]:
            state.validators[index] = replace(validator, effective_stake=state.stakes[index])


def process_randao_mixes_reset(state: PosState) -> None:
    current = get_current_epoch(state)
    state.randao_mixes[(current + 1) % EPOCHS_PER_HISTORICAL_VECTOR] = \
        state.randao_mixes[current % EPOCHS_PER_HISTORICAL_VECTOR]


def process_participation_record_updates(state: PosState) -> None:
    state.previous_epoch_attestations = state.current_epoch_attestations
    state.current_epoch_attestations = {}
