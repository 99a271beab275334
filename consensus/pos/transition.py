"""The state transition: `state_transition(state, block)` = advance through empty slots (running
epoch processing at each boundary), then apply the block — header, randao, operations — and check
that the block commits to the resulting state (consensus-specs phase0 `state_transition`).

Functions mutate the state they are given; callers pass a copy, so a block that raises
`InvalidBlock` leaves their state untouched. Each `[REJECT]` rule raises with its own message.
Signature checks come in as `SignatureChecks`: full, cached, or trusted (replaying stored blocks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from consensus.errors import InvalidTransaction, Violation
from consensus.pos.committees import get_attestation_slot
from consensus.pos.epoch_processing import process_epoch
from consensus.pos.errors import BadBlockSignature, InvalidBlock, InvalidEvidence
from consensus.pos.proposer import get_beacon_proposer_index
from consensus.pos.signing import FULL_CHECKS, SignatureChecks, randao_signing_root
from consensus.pos.slashing import validate_attester_slashing, validate_proposer_slashing
from consensus.pos.state import (
    EPOCHS_PER_HISTORICAL_VECTOR,
    FAR_FUTURE_EPOCH,
    PendingAttestation,
    PosState,
    Validator,
    compute_state_root,
    find_validator_index,
    get_current_epoch,
    get_previous_epoch,
    get_randao_mix,
    initiate_validator_exit,
    is_active_validator,
    slash_validator,
)
from consensus.pos.types import (
    Attestation,
    AttesterSlashing,
    BlockBody,
    Deposit,
    Exit,
    PosBlock,
    ProposerSlashing,
    sha256,
)
from consensus.types import Transaction

T = TypeVar("T")


def state_transition(state: PosState, block: PosBlock, checks: SignatureChecks = FULL_CHECKS,
                     *, validate_state_root: bool = True) -> None:
    process_slots(state, block.slot)
    process_block(state, block, checks)
    if validate_state_root:
        root = compute_state_root(state)
        # [REJECT] the block commits to the state it produces
        if block.state_root != root:
            raise InvalidBlock(f"state root {block.state_root.hex()[:16]} does not match the "
                               f"computed {root.hex()[:16]}")


# ---- slots --------------------------------------------------------------------------------------
def process_slots(state: PosState, slot: int) -> None:
    """Advance to `slot` through empty slots, processing each epoch boundary crossed."""
    if slot < state.slot:
        raise ValueError(f"cannot go back from slot {state.slot} to {slot}")
    spe = state.spec.slots_per_epoch
    while state.slot < slot:
        process_slot(state)
        if (state.slot + 1) % spe == 0:
            process_epoch(state)
        state.slot += 1


def process_slot(state: PosState) -> None:
    state.block_roots[state.slot % len(state.block_roots)] = state.latest_block_header.root


# ---- the block --------------------------------------------------------------------------------
def process_block(state: PosState, block: PosBlock, checks: SignatureChecks = FULL_CHECKS) -> None:
    # [REJECT] the block fits the size limit
    if block.size > state.spec.max_block_bytes:
        raise InvalidBlock(f"block of {block.size} bytes exceeds {state.spec.max_block_bytes}")
    process_block_header(state, block, checks)
    process_randao(state, block, checks)
    process_operations(state, block.body, checks)


def process_block_header(state: PosState, block: PosBlock, checks: SignatureChecks) -> None:
    # [REJECT] the block is for the slot the state was advanced to
    if block.slot != state.slot:
        raise InvalidBlock(f"block slot {block.slot} is not the state slot {state.slot}")
    # [REJECT] the block is newer than its parent
    if block.slot <= state.latest_block_header.slot:
        raise InvalidBlock(f"block slot {block.slot} is not after its parent's slot "
                           f"{state.latest_block_header.slot}")
    expected = get_beacon_proposer_index(state, block.slot)
    # [REJECT] the proposer is the one selected for the slot
    if block.proposer_index != expected:
        raise InvalidBlock(f"wrong proposer {block.proposer_index} for slot {block.slot} "
                           f"(expected {expected})")
    # [REJECT] the parent is the state's latest block
    if block.parent_root != state.latest_block_header.root:
        raise InvalidBlock("parent root is not the latest block of the state")
    proposer = state.validators[block.proposer_index]
    # [REJECT] the proposer is not slashed
    if proposer.slashed:
        raise InvalidBlock(f"proposer {block.proposer_index} is slashed")
    # [REJECT] the block is signed by the proposer
    if not checks.signature(proposer.pubkey, block.signature, block.header.signing_root):
        raise BadBlockSignature("bad block signature")
    state.latest_block_header = block.header


def process_randao(state: PosState, block: PosBlock, checks: SignatureChecks) -> None:
    epoch = get_current_epoch(state)
    proposer = state.validators[block.proposer_index]
    # [REJECT] the randao reveal is the proposer's signature of the epoch
    if not checks.signature(proposer.pubkey, block.randao_reveal, randao_signing_root(epoch)):
        raise InvalidBlock("bad randao reveal")
    mix = bytes(a ^ b for a, b in zip(get_randao_mix(state, epoch), sha256(block.randao_reveal)))
    state.randao_mixes[epoch % EPOCHS_PER_HISTORICAL_VECTOR] = mix


def process_operations(state: PosState, body: BlockBody, checks: SignatureChecks) -> None:
    _each(state, "proposer slashing", body.proposer_slashings, process_proposer_slashing, checks)
    _each(state, "attester slashing", body.attester_slashings, process_attester_slashing, checks)
    _each(state, "attestation", body.attestations, process_attestation, checks)
    process_transactions(state, body.transactions, checks)
    _each(state, "deposit", body.deposits, process_deposit, checks)
    _each(state, "exit", body.exits, process_exit, checks)


def _each(state: PosState, name: str, items: Iterable[T],
          process: Callable[[PosState, T, SignatureChecks], None],
          checks: SignatureChecks) -> None:
    for i, item in enumerate(items):
        try:
            process(state, item, checks)
        except (InvalidEvidence, InvalidBlock) as exc:
            raise InvalidBlock(f"{name} {i}: {exc}") from None


# ---- operations -------------------------------------------------------------------------------
def process_proposer_slashing(state: PosState, evidence: ProposerSlashing,
                              checks: SignatureChecks) -> None:
    validate_proposer_slashing(state, evidence, checks)
    slash_validator(state, evidence.offender, state.latest_block_header.proposer_index)


def process_attester_slashing(state: PosState, evidence: AttesterSlashing,
                              checks: SignatureChecks) -> None:
    validate_attester_slashing(state, evidence, checks)
    slash_validator(state, evidence.offender, state.latest_block_header.proposer_index)


def validate_attestation(state: PosState, att: Attestation, checks: SignatureChecks) -> None:
    """The rules for including `att` in a block at `state.slot` (raises InvalidBlock)."""
    spe = state.spec.slots_per_epoch
    current, previous = get_current_epoch(state), get_previous_epoch(state)
    epoch = att.target.epoch
    # [REJECT] the target is the previous or the current epoch
    if epoch not in (previous, current):
        raise InvalidBlock(f"target epoch {epoch} is neither the previous nor the current epoch")
    # [REJECT] the target epoch is the epoch of the attestation's slot
    if epoch != att.slot // spe:
        raise InvalidBlock(f"target epoch {epoch} is not the epoch of slot {att.slot}")
    # [REJECT] included at least one slot after its slot, and at most one epoch after
    if not att.slot + 1 <= state.slot <= att.slot + spe:
        raise InvalidBlock(f"attestation of slot {att.slot} cannot be included at slot "
                           f"{state.slot}")
    index = att.validator_index
    # [REJECT] the validator is known
    if index >= len(state.validators):
        raise InvalidBlock(f"unknown validator {index}")
    duty = get_attestation_slot(state, epoch, index)
    # [REJECT] the validator is active and due to attest at this slot
    if duty != att.slot:
        raise InvalidBlock(f"validator {index} is not due to attest at slot {att.slot}")
    validator = state.validators[index]
    # [REJECT] the validator is not slashed
    if validator.slashed:
        raise InvalidBlock(f"validator {index} is slashed")
    source = (state.current_justified_checkpoint if epoch == current
              else state.previous_justified_checkpoint)
    # [REJECT] the source is the justified checkpoint of this chain
    if att.source != source:
        raise InvalidBlock(f"source epoch {att.source.epoch} is not the justified checkpoint "
                           f"(epoch {source.epoch})")
    records = (state.current_epoch_attestations if epoch == current
               else state.previous_epoch_attestations)
    # [REJECT] the validator has no attestation for this target epoch on this chain yet
    if index in records:
        raise InvalidBlock(f"validator {index} already attested for epoch {epoch} on this chain")
    # [REJECT] the attestation is signed by the validator
    if not checks.attestation(att, validator.pubkey):
        raise InvalidBlock("bad attestation signature")


def process_attestation(state: PosState, att: Attestation, checks: SignatureChecks) -> None:
    validate_attestation(state, att, checks)
    records = (state.current_epoch_attestations if att.target.epoch == get_current_epoch(state)
               else state.previous_epoch_attestations)
    records[att.validator_index] = PendingAttestation(
        att, state.slot - att.slot, state.latest_block_header.proposer_index)


def process_transactions(state: PosState, txs: tuple[Transaction, ...],
                         checks: SignatureChecks) -> None:
    """Ledger rules (consensus.ledger) for each transfer; the fees go to the proposer's account."""
    ledger = state.ledger
    balances: dict[bytes, int] = {}
    nonces: dict[bytes, int] = {}
    fees = 0
    for i, tx in enumerate(txs):
        try:
            fees += ledger._check_transfer(tx, balances, nonces, checks.transaction)
        except InvalidTransaction as exc:
            raise InvalidBlock(f"transaction {i}: {exc}", exc.violation) from None
    ledger.balances.update(balances)
    ledger.nonces.update(nonces)
    if fees:
        proposer = state.validators[state.latest_block_header.proposer_index].pubkey
        ledger.balances[proposer] = ledger.balance(proposer) + fees


def process_deposit(state: PosState, deposit: Deposit, checks: SignatureChecks) -> None:
    ledger = state.ledger
    account = deposit.from_account
    # [REJECT] the amount is positive
    if deposit.amount <= 0:
        raise InvalidBlock("deposit amount must be positive", Violation.BAD_AMOUNT)
    # [REJECT] the nonce is the account's next (no replays)
    if deposit.nonce != ledger.nonce(account):
        raise InvalidBlock(f"deposit nonce {deposit.nonce}, expected {ledger.nonce(account)}",
                           Violation.NONCE)
    # [REJECT] the account can pay
    if ledger.balance(account) < deposit.amount:
        raise InvalidBlock(f"deposit of {deposit.amount} exceeds the balance "
                           f"{ledger.balance(account)}", Violation.OVERDRAFT)
    index = find_validator_index(state, deposit.pubkey)
    if index is not None:
        validator = state.validators[index]
        # [REJECT] a top-up goes to a validator that is neither slashed nor exiting
        if validator.slashed or validator.exit_epoch != FAR_FUTURE_EPOCH:
            raise InvalidBlock(f"deposit to validator {index}, which is slashed or exiting")
    # [REJECT] a new validator brings at least the minimum stake
    elif deposit.amount < state.spec.min_stake:
        raise InvalidBlock(f"deposit of {deposit.amount} is below the minimum stake "
                           f"{state.spec.min_stake}")
    # [REJECT] the deposit is signed by the paying account
    if not checks.signature(account, deposit.signature, deposit.signing_root):
        raise InvalidBlock("bad deposit signature", Violation.BAD_SIGNATURE)
    ledger.balances[account] = ledger.balance(account) - deposit.amount
    ledger.nonces[account] = deposit.nonce + 1
    if index is not None:
        state.stakes[index] += deposit.amount
        return
    activation = get_current_epoch(state) + state.spec.activation_delay_epochs
    state.validators.append(Validator(deposit.pubkey, deposit.amount, activation))
    state.stakes.append(deposit.amount)


def process_exit(state: PosState, request: Exit, checks: SignatureChecks) -> None:
    index = request.validator_index
    current = get_current_epoch(state)
    # [REJECT] the validator is known
    if index >= len(state.validators):
        raise InvalidBlock(f"unknown validator {index}")
    validator = state.validators[index]
    # [REJECT] the validator is active
    if not is_active_validator(validator, current):
        raise InvalidBlock(f"validator {index} is not active")
    # [REJECT] the validator is not already exiting
    if validator.exit_epoch != FAR_FUTURE_EPOCH:
        raise InvalidBlock(f"validator {index} is already exiting", Violation.DUPLICATE)
    # [REJECT] the exit's epoch has come
    if current < request.epoch:
        raise InvalidBlock(f"exit is valid from epoch {request.epoch}, now {current}")
    # [REJECT] the exit is signed by the validator
    if not checks.signature(validator.pubkey, request.signature, request.signing_root):
        raise InvalidBlock("bad exit signature")
    initiate_validator_exit(state, index)
