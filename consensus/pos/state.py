"""The PoS state: validators and their stake, account balances (a `consensus.ledger.Ledger`), the
randao mixes, recent block roots, the Casper FFG checkpoints and justification bits, and the
attestations included so far in the previous and current epoch. Plus the accessors and the few
mutators (exit, slash, stake changes) that the transition functions share.

Shape follows consensus-specs phase0 `BeaconState`, simplified:
- one attestation per validator per target epoch on a chain (no aggregation), kept in a dict by
  validator index, so "already included on this branch" is a dict lookup;
- `stakes[i]` is the validator's balance (moves at once with rewards, penalties, slashing);
  `Validator.effective_stake` is a copy taken at each epoch boundary, and every weight (proposer
  selection, justification, fork choice) uses it, so weights stay fixed within an epoch;
- the state keeps a reference to its `PosSpec` (shared by copies, not part of the state root).

The state is a plain mutable value: a transition runs on a `copy()`, so a rejected block leaves
the original untouched. Copies are shallow where the parts are immutable (validators, attestations,
headers), so a copy costs one pass over the lists and the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from consensus.ledger import Ledger
from consensus.pos.types import ZERO_HASH, Attestation, Checkpoint, PosBlockHeader, encode, sha256

if TYPE_CHECKING:
    from consensus.pos.spec import PosSpec

FAR_FUTURE_EPOCH = (1 << 64) - 1
GENESIS_EPOCH = 0
JUSTIFICATION_BITS_LENGTH = 4
EPOCHS_PER_HISTORICAL_VECTOR = 8     # randao mixes kept (the seed of epoch E uses the mix of E-2)
MIN_SEED_LOOKAHEAD = 1


@dataclass(frozen=True, slots=True)
class Validator:
    pubkey: bytes
    effective_stake: int
    activation_epoch: int
    exit_epoch: int = FAR_FUTURE_EPOCH
    withdrawable_epoch: int = FAR_FUTURE_EPOCH
    slashed: bool = False

    def to_list(self) -> list:
        return [self.pubkey, self.effective_stake, self.activation_epoch, self.exit_epoch,
                self.withdrawable_epoch, self.slashed]


@dataclass(frozen=True, slots=True)
class PendingAttestation:
    """An attestation included in a block of this chain, with when and by whom."""
    attestation: Attestation
    inclusion_delay: int
    proposer_index: int

    def to_list(self) -> list:
        return [self.attestation.root, self.inclusion_delay, self.proposer_index]


@dataclass
class PosState:
    spec: PosSpec
    slot: int
    latest_block_header: PosBlockHeader
    block_roots: list[bytes]                 # ring: root of the block at (or before) each slot
    validators: list[Validator]
    stakes: list[int]
    ledger: Ledger
    randao_mixes: list[bytes]                # ring of EPOCHS_PER_HISTORICAL_VECTOR
    previous_epoch_attestations: dict[int, PendingAttestation]
    current_epoch_attestations: dict[int, PendingAttestation]
    justification_bits: tuple[bool, ...]     # JUSTIFICATION_BITS_LENGTH flags, newest epoch first
    previous_justified_checkpoint: Checkpoint
    current_justified_checkpoint: Checkpoint
    finalized_checkpoint: Checkpoint
    # Not part of the state root: attestation duties by epoch, memoised (committees.py). Valid
    # for the life of the state and its copies, because an epoch's duties are fixed once the
    # epoch has started (activations and exits only take effect at later epochs).
    duties: dict[int, Mapping[int, int]] = field(default_factory=dict)

    def copy(self) -> PosState:
        return PosState(
            self.spec, self.slot, self.latest_block_header, list(self.block_roots),
            list(self.validators), list(self.stakes),
            Ledger(dict(self.ledger.balances), dict(self.ledger.nonces)), list(self.randao_mixes),
            dict(self.previous_epoch_attestations), dict(self.current_epoch_attestations),
            self.justification_bits, self.previous_justified_checkpoint,
            self.current_justified_checkpoint, self.finalized_checkpoint, dict(self.duties))


# ---- epochs and slots -------------------------------------------------------------------------
def compute_epoch_at_slot(slot: int, slots_per_epoch: int) -> int:
    return slot // slots_per_epoch


def compute_start_slot_at_epoch(epoch: int, slots_per_epoch: int) -> int:
    return epoch * slots_per_epoch


def get_current_epoch(state: PosState) -> int:
    return state.slot // state.spec.slots_per_epoch


def get_previous_epoch(state: PosState) -> int:
    current = get_current_epoch(state)
    return current - 1 if current > GENESIS_EPOCH else GENESIS_EPOCH


def get_block_root_at_slot(state: PosState, slot: int) -> bytes:
    """Root of the latest block at or before `slot`, for a slot in the recent past of `state`."""
    if not slot < state.slot <= slot + len(state.block_roots):
        raise ValueError(f"slot {slot} is outside the block-root history of a state at slot "
                         f"{state.slot}")
    return state.block_roots[slot % len(state.block_roots)]


def get_block_root(state: PosState, epoch: int) -> bytes:
    """The checkpoint root of `epoch`: the block at or before the epoch's first slot (which must
    be in the past of `state`)."""
    return get_block_root_at_slot(state, compute_start_slot_at_epoch(epoch,
                                                                     state.spec.slots_per_epoch))


def get_randao_mix(state: PosState, epoch: int) -> bytes:
    return state.randao_mixes[epoch % EPOCHS_PER_HISTORICAL_VECTOR]


# ---- validators -------------------------------------------------------------------------------
def is_active_validator(validator: Validator, epoch: int) -> bool:
    return validator.activation_epoch <= epoch < validator.exit_epoch


def is_slashable_validator(validator: Validator, epoch: int) -> bool:
    """Not yet slashed, and activated but not yet withdrawable (phase0)."""
    return (not validator.slashed
            and validator.activation_epoch <= epoch < validator.withdrawable_epoch)


def get_active_validator_indices(state: PosState, epoch: int) -> list[int]:
    return [i for i, v in enumerate(state.validators) if v.activation_epoch <= epoch < v.exit_epoch]


def get_total_stake(state: PosState, indices: Iterable[int]) -> int:
    validators = state.validators
    return sum(validators[i].effective_stake for i in indices)


def get_total_active_stake(state: PosState) -> int:
    return get_total_stake(state, get_active_validator_indices(state, get_current_epoch(state)))


def find_validator_index(state: PosState, pubkey: bytes) -> int | None:
    for index, validator in enumerate(state.validators):
        if validator.pubkey == pubkey:
            return index
    return None


def increase_stake(state: PosState, index: int, delta: int) -> None:
    state.stakes[index] += delta


def decrease_stake(state: PosState, index: int, delta: int) -> None:
    state.stakes[index] = max(0, state.stakes[index] - delta)


def initiate_validator_exit(state: PosState, index: int) -> None:
    """Exit at the next epoch boundary; the stake becomes withdrawable after the delay."""
    validator = state.validators[index]
    if validator.exit_epoch != FAR_FUTURE_EPOCH:
        return
    exit_epoch = get_current_epoch(state) + 1
    state.validators[index] = replace(
        validator, exit_epoch=exit_epoch,
        withdrawable_epoch=exit_epoch + state.spec.withdrawal_delay_epochs)


def slash_validator(state: PosState, index: int, whistleblower_index: int) -> int:
    """Eject the validator, cut `slash_fraction` of its stake, reward the whistleblower (the
    proposer that included the evidence). Returns the penalty."""
    spec = state.spec
    initiate_validator_exit(state, index)
    validator = state.validators[index]
    state.validators[index] = replace(validator, slashed=True)
    fraction = spec.slash_fraction
    penalty = validator.effective_stake * fraction.numerator // fraction.denominator
    decrease_stake(state, index, penalty)
    reward = validator.effective_stake // spec.whistleblower_reward_quotient
    increase_stake(state, whistleblower_index, reward)
    return penalty


# ---- the state root ---------------------------------------------------------------------------
def compute_state_root(state: PosState) -> bytes:
    """SHA-256 of the canonical encoding of the state. The latest block header enters with a zero
    state root (the block that commits to this root cannot be inside it), as in phase0."""
    header = state.latest_block_header
    ledger = state.ledger
    return sha256(encode([
        state.slot,
        [header.slot, header.proposer_index, header.parent_root, ZERO_HASH, header.body_root],
        state.block_roots,
        [v.to_list() for v in state.validators],
        state.stakes,
        sorted(ledger.balances.items()),
        sorted(ledger.nonces.items()),
        state.randao_mixes,
        [[i, p.to_list()] for i, p in state.previous_epoch_attestations.items()],
        [[i, p.to_list()] for i, p in state.current_epoch_attestations.items()],
        list(state.justification_bits),
        state.previous_justified_checkpoint.to_list(),
        state.current_justified_checkpoint.to_list(),
        state.finalized_checkpoint.to_list(),
    ]))
