"""Attestation duties: every active validator attests once per epoch, at the slot given by its
position in a seeded shuffle of the epoch's active validators.

slot(i) = epoch_start + position(i) % slots_per_epoch, where positions order the active indices by
SHA-256(seed || index) and the seed comes from the randao mix of epoch - 2 (as for proposers).
Duties are spread evenly: each slot gets n / slots_per_epoch attesters, give or take one.

Duties are a pure function of (seed, active indices), memoised (as consensus-specs' pyspec caches
its committees), so many attestations of one epoch cost one shuffle.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

from consensus.pos.proposer import DOMAIN_ATTESTER, get_seed
from consensus.pos.state import (
    PosState,
    compute_start_slot_at_epoch,
    get_active_validator_indices,
    get_current_epoch,
    get_previous_epoch,
)
from consensus.pos.types import sha256


@lru_cache(maxsize=128)
def compute_attester_slots(seed: bytes, active: tuple[int, ...], start_slot: int,
                           slots_per_epoch: int) -> Mapping[int, int]:
    """validator index -> the slot it attests at, for one epoch."""
    order = sorted(active, key=lambda index: sha256(seed + index.to_bytes(8, "little")))
    return MappingProxyType({index: start_slot + position % slots_per_epoch
                             for position, index in enumerate(order)})


def get_attester_slots(state: PosState, epoch: int) -> Mapping[int, int]:
    """Duties of `epoch`, which must be the state's current or previous epoch (memoised on the
    state: one pass over the validators per epoch, not per attestation)."""
    duties = state.duties.get(epoch)
    if duties is not None:
        return duties
    current = get_current_epoch(state)
    if epoch not in (current, get_previous_epoch(state)):
        raise ValueError(f"duties of epoch {epoch} are not known to a state at slot {state.slot}")
    spe = state.spec.slots_per_epoch
    duties = compute_attester_slots(get_seed(state, epoch, DOMAIN_ATTESTER),
                                    tuple(get_active_validator_indices(state, epoch)),
                                    compute_start_slot_at_epoch(epoch, spe), spe)
    for old in [e for e in state.duties if e < current - 1]:
        del state.duties[old]
    state.duties[epoch] = duties
    return duties


def get_attestation_slot(state: PosState, epoch: int, validator_index: int) -> int | None:
    """The slot at which the validator attests in `epoch`, or None if it is not active then."""
    return get_attester_slots(state, epoch).get(validator_index)


def get_attesters(state: PosState, slot: int) -> list[int]:
    """Validators due to attest at `slot`, in index order."""
    duties = get_attester_slots(state, slot // state.spec.slots_per_epoch)
    return sorted(index for index, duty in duties.items() if duty == slot)
