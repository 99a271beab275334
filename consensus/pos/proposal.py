"""Building a block: pick the operations that are valid on the branch being extended, compute
the state root, sign.

Selection runs the real operation rules (`transition.process_*`) on a scratch copy of the parent
state, one operation at a time, keeping those that apply, so a packed block is valid by
construction; signatures are not re-checked (the pool holds verified operations). The state root
is then computed by applying the chosen body to a fresh copy, exactly as a validating node will.

The header rules (right proposer, not slashed) are not enforced here: adversarial roles and tests
build blocks for any proposer and any parent, and the receiving nodes judge them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from consensus.errors import InvalidTransaction
from consensus.pos.encoding import WireObject
from consensus.pos.errors import InvalidBlock, InvalidEvidence
from consensus.pos.operation_pool import OperationPool
from consensus.pos.signing import TRUSTED, SignatureChecks, sign_block, sign_randao
from consensus.pos.state import (
    PosState,
    compute_start_slot_at_epoch,
    compute_state_root,
    get_block_root,
    get_current_epoch,
)
from consensus.pos.transition import (
    process_attestation,
    process_attester_slashing,
    process_deposit,
    process_exit,
    process_operations,
    process_proposer_slashing,
    process_randao,
    process_slots,
    process_transactions,
)
from consensus.pos.types import (
    ZERO_HASH,
    Attestation,
    AttesterSlashing,
    BlockBody,
    PosBlock,
    PosBlockHeader,
    ProposerSlashing,
)
from consensus.types import TX_BYTES, Transaction

BLOCK_OVERHEAD_BYTES = 512        # header fields, randao reveal, signature, array headers
ITEM_OVERHEAD_BYTES = 5           # msgpack array/bin header of one item, at most

Op = TypeVar("Op", bound=WireObject)


def build_block(parent_state: PosState, parent_root: bytes, slot: int, proposer_index: int,
                private_key: bytes, pool: OperationPool,
                txs: Iterable[Transaction] = ()) -> PosBlock:
    """A signed block at `slot` on the block whose post-state is `parent_state`."""
    if slot <= parent_state.slot:
        raise ValueError(f"slot {slot} is not after the parent's slot {parent_state.slot}")
    state = parent_state.copy()
    process_slots(state, slot)
    state.latest_block_header = PosBlockHeader(slot, proposer_index, parent_root, ZERO_HASH,
                                               ZERO_HASH)
    reveal = sign_randao(private_key, get_current_epoch(state))
    body = select_operations(state, pool, txs)
    unsigned = PosBlock(slot, proposer_index, parent_root, ZERO_HASH, reveal, body)
    final = state.copy()
    final.latest_block_header = unsigned.header
    process_randao(final, unsigned, TRUSTED)
    process_operations(final, body, TRUSTED)
    block = PosBlock(slot, proposer_index, parent_root, compute_state_root(final), reveal, body)
    return sign_block(private_key, block)


def select_operations(state: PosState, pool: OperationPool,
                      txs: Iterable[Transaction]) -> BlockBody:
    """The operations of `pool` (and `txs`) that apply to `state`, within the size limit, in
    processing order. `state` is at the block's slot with the block's header."""
    scratch = state.copy()
    budget = _Budget(state.spec.max_block_bytes - BLOCK_OVERHEAD_BYTES)

    proposer_slashings: list[ProposerSlashing] = []
    attester_slashings: list[AttesterSlashing] = []
    for evidence in list(pool.evidence.values()):
        if isinstance(evidence, ProposerSlashing):
            if _take(process_proposer_slashing, scratch, evidence, budget):
                proposer_slashings.append(evidence)
        elif _take(process_attester_slashing, scratch, evidence, budget):
            attester_slashings.append(evidence)
    attestations = [att for att in _countable_attestations(scratch, pool.attestations_by_slot())
                    if _take(process_attestation, scratch, att, budget)]
    transactions = _select_transactions(scratch, txs, budget)
    process_transactions(scratch, tuple(transactions), TRUSTED)
    deposits = [d for d in list(pool.deposits.values())
                if _take(process_deposit, scratch, d, budget)]
    exits = [e for e in list(pool.exits.values())
             if _take(process_exit, scratch, e, budget)]
    return BlockBody(tuple(transactions), tuple(attestations), tuple(proposer_slashings),
                     tuple(attester_slashings), tuple(deposits), tuple(exits))


def _take(process: Callable[[PosState, Op, SignatureChecks], None], scratch: PosState,
          operation: Op, budget: _Budget) -> bool:
    """Apply `operation` to `scratch` if it fits and its rules allow (they check before they
    change, so a refused operation leaves `scratch` as it was)."""
    size = len(operation.serialize())
    if not budget.has_room(size):
        return False
    try:
        process(scratch, operation, TRUSTED)
    except (InvalidBlock, InvalidEvidence):
        return False
    budget.take(size)
    return True


def _countable_attestations(state: PosState, candidates: list[Attestation]) -> list[Attestation]:
    """Attestations whose target is this branch's checkpoint (others would not count here)."""
    spe = state.spec.slots_per_epoch
    roots: dict[int, bytes | None] = {}
    out = []
    for att in candidates:
        epoch = att.target.epoch
        if epoch not in roots:
            past = compute_start_slot_at_epoch(epoch, spe) < state.slot
            try:
                roots[epoch] = get_block_root(state, epoch) if past else None
            except ValueError:
                roots[epoch] = None
        if roots[epoch] is not None and att.target.root == roots[epoch]:
            out.append(att)
    return out


def _select_transactions(state: PosState, candidates: Iterable[Transaction],
                         budget: _Budget) -> list[Transaction]:
    """The prefix-valid selection (as consensus.block_builder does for PoW blocks)."""
    balances: dict[bytes, int] = {}
    nonces: dict[bytes, int] = {}
    chosen: list[Transaction] = []
    for tx in candidates:
        if not budget.has_room(TX_BYTES):
            break
        try:
            # checks every rule before it touches the overlays: a failure leaves them as they were
            state.ledger._check_transfer(tx, balances, nonces, TRUSTED.transaction)
        except InvalidTransaction:
            continue
        budget.take(TX_BYTES)
        chosen.append(tx)
    return chosen


class _Budget:
    """Bytes left in the block; each item also costs its msgpack header."""

    def __init__(self, room: int) -> None:
        self.room = room

    def has_room(self, size: int) -> bool:
        return size + ITEM_OVERHEAD_BYTES <= self.room

    def take(self, size: int) -> bool:
        if not self.has_room(size):
            return False
        self.room -= size + ITEM_OVERHEAD_BYTES
        return True
