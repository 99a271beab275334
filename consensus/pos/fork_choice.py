"""Fork choice: LMD-GHOST from the justified checkpoint (consensus-specs phase0 `fork-choice.md`).

A `Store` holds every block this node accepted (a `BlockNode` per block, with the post-state), the
justified and finalized checkpoints, each validator's latest vote, and the validators known to
equivocate. Handlers:
- `on_tick(store, time_ms)` advances the clock;
- `on_block(store, block, checks)` validates a block against its parent's state, adds it, updates
  the checkpoints, counts the votes it carries and drops the votes of offenders it proves;
- `on_attestation(store, att, checks)` validates a vote against its target's checkpoint state and
  keeps it if it is the validator's newest (by target epoch);
- `on_equivocation(store, index)` removes a validator's votes for good;
- `get_head(store)` walks from the justified block to the heaviest viable child, ties to the
  lexicographically higher root.

Each handler checks everything before it changes anything: a rejected input leaves the store as it
was. Simplifications from phase0, on purpose: no proposer boost; votes count from the slot they are
for (phase0 waits one slot); checkpoints update as soon as a block's state has newer ones (the
post-2023 spec behaviour, without unrealized justification); `filter_block_tree` accepts a leaf
whose justified epoch matches the store's or is at most two epochs old (as the current spec does).

Costs: `get_head` is one pass over the justified block's subtree plus one over the latest votes;
checking that a block descends from the finalized checkpoint is memoised per node, so a long run
without finality stays linear.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from consensus.block_archive import BlockArchive, body_or_archived
from consensus.block_tree import parent_of
from consensus.pos.committees import get_attestation_slot
from consensus.pos.errors import (
    AttestationIgnored,
    InvalidAttestation,
    InvalidBlock,
    MissingParent,
    TimeTooNew,
)
from consensus.pos.signing import FULL_CHECKS, SignatureChecks
from consensus.pos.spec import PosSpec
from consensus.pos.state import (
    GENESIS_EPOCH,
    PosState,
    compute_start_slot_at_epoch,
    get_current_epoch,
    is_active_validator,
)
from consensus.pos.transition import process_slots, state_transition
from consensus.pos.types import Attestation, Checkpoint, PosBlock

MAX_CHECKPOINT_STATES = 64


@dataclass(eq=False, slots=True)
class BlockNode:
    """A block in the store: what node/ sees as `chain.head` (.root, .slot, .block, .parent).

    The node is the per-block index kept for every known block; `body` (the block itself) is
    dropped once the block is behind the finalized checkpoint (`prune_bodies`) and `.block` then
    reads it back from `archive` (the node's store, through a bounded cache)."""
    body: PosBlock | None              # the block; None once it left memory (behind finality)
    root: bytes
    parent: BlockNode | None
    height: int                        # blocks since genesis (PoW-style, for sync and reorgs)
    seq: int                           # arrival order
    state: PosState | None             # post-state; dropped for blocks before finality
    epoch_boundary_root: bytes         # the checkpoint root of this block's epoch on its chain
    slot: int
    children: list[BlockNode] = field(default_factory=list)
    finality_memo: tuple[Checkpoint, bool] | None = None
    archive: BlockArchive[PosBlock] | None = None

    @property
    def block(self) -> PosBlock:
        return body_or_archived(self.body, self.archive, self.root)

    @property
    def hash(self) -> bytes:
        """Alias of `root`, for code written against PoW entries."""
        return self.root


@dataclass(frozen=True, slots=True)
class LatestMessage:
    epoch: int
    root: bytes


@dataclass
class Store:
    spec: PosSpec
    time_ms: int
    genesis_root: bytes
    justified_checkpoint: Checkpoint
    finalized_checkpoint: Checkpoint
    blocks: dict[bytes, BlockNode]
    latest_messages: dict[int, LatestMessage] = field(default_factory=dict)
    equivocating_indices: set[int] = field(default_factory=set)
    checkpoint_states: OrderedDict[Checkpoint, PosState] = field(default_factory=OrderedDict)
    next_seq: int = 1
    archive: BlockArchive[PosBlock] | None = None   # bodies behind finality; None: keep them all


def get_forkchoice_store(anchor_state: PosState, anchor_block: PosBlock, time_ms: int) -> Store:
    root = anchor_block.root
    node = BlockNode(anchor_block, root, None, 0, 0, anchor_state, root, anchor_block.slot)
    checkpoint = Checkpoint(get_current_epoch(anchor_state), root)
    return Store(anchor_state.spec, time_ms, root, checkpoint, checkpoint, {root: node})


# ---- accessors --------------------------------------------------------------------------------
def get_current_slot(store: Store) -> int:
    return store.spec.slot_at(store.time_ms)


def get_current_store_epoch(store: Store) -> int:
    return get_current_slot(store) // store.spec.slots_per_epoch


def get_checkpoint_root(node: BlockNode, epoch: int, slots_per_epoch: int) -> bytes:
    """Root of the latest block at or before the first slot of `epoch` on `node`'s chain."""
    own_epoch = node.slot // slots_per_epoch
    if epoch > own_epoch:
        return node.root
    if epoch == own_epoch:
        return node.epoch_boundary_root
    start = compute_start_slot_at_epoch(epoch, slots_per_epoch)
    while node.slot > start and node.parent is not None:
        node = node.parent
    return node.root


def get_ancestor(store: Store, root: bytes, slot: int) -> bytes:
    node = store.blocks[root]
    while node.slot > slot and node.parent is not None:
        node = node.parent
    return node.root


def is_descendant_of_finalized(store: Store, node: BlockNode) -> bool:
    """Phase0's `get_checkpoint_block(node, finalized.epoch) == finalized.root`, memoised per node
    for the current finalized checkpoint (each node is walked once per finalized checkpoint)."""
    finalized = store.finalized_checkpoint
    start = compute_start_slot_at_epoch(finalized.epoch, store.spec.slots_per_epoch)
    walked: list[BlockNode] = []
    current: BlockNode | None = node
    while True:
        if current is None:
            result = False
            break
        memo = current.finality_memo
        if memo is not None and memo[0] == finalized:
            result = memo[1]
            break
        if current.slot <= start:
            result = current.root == finalized.root
            walked.append(current)
            break
        walked.append(current)
        current = current.parent
    for visited in walked:
        visited.finality_memo = (finalized, result)
    return result


def get_checkpoint_state(store: Store, checkpoint: Checkpoint) -> PosState:
    """The state of `checkpoint.root` advanced to the first slot of `checkpoint.epoch` (cached)."""
    state = store.checkpoint_states.get(checkpoint)
    if state is not None:
        store.checkpoint_states.move_to_end(checkpoint)
        return state
    base = store.blocks[checkpoint.root].state
    if base is None:
        raise ValueError(f"no state for checkpoint {checkpoint} (pruned before finality)")
    start = compute_start_slot_at_epoch(checkpoint.epoch, store.spec.slots_per_epoch)
    if base.slot > start:
        raise ValueError(f"block {checkpoint.root.hex()[:16]} is after the start of epoch "
                         f"{checkpoint.epoch}: not a checkpoint")
    if base.slot < start:
        base = base.copy()
        process_slots(base, start)
    store.checkpoint_states[checkpoint] = base
    while len(store.checkpoint_states) > MAX_CHECKPOINT_STATES:
        store.checkpoint_states.popitem(last=False)
    return base


# ---- handlers -----------------------------------------------------------------------------------
def on_tick(store: Store, time_ms: int) -> None:
    store.time_ms = max(store.time_ms, time_ms)


def on_block(store: Store, block: PosBlock, checks: SignatureChecks = FULL_CHECKS) -> BlockNode:
    """Validate and add `block`; returns its node.

    Raises MissingParent, TimeTooNew or InvalidBlock, and then the store is unchanged."""
    spec = store.spec
    parent = store.blocks.get(block.parent_root)
    # [IGNORE] the parent is known (else the block waits in the orphan pool)
    if parent is None:
        raise MissingParent(f"parent {block.parent_root.hex()[:16]} unknown")
    lead_ms = spec.slot_start_ms(block.slot) - store.time_ms
    # [IGNORE] the block's slot has started (within the allowed clock drift): may be valid later
    if lead_ms > spec.max_future_slot_ms:
        raise TimeTooNew(f"block slot {block.slot} starts {lead_ms} ms in the future (limit "
                         f"{spec.max_future_slot_ms} ms)")
    finalized = store.finalized_checkpoint
    finalized_slot = compute_start_slot_at_epoch(finalized.epoch, spec.slots_per_epoch)
    # [REJECT] the block is after the finalized checkpoint's slot
    if block.slot <= finalized_slot:
        raise InvalidBlock(f"block slot {block.slot} is not after the finalized slot "
                           f"{finalized_slot}")
    # [REJECT] the block descends from the finalized checkpoint (finalized blocks never revert)
    if not is_descendant_of_finalized(store, parent):
        raise InvalidBlock(f"block conflicts with the finalized checkpoint (epoch "
                           f"{finalized.epoch})")
    if parent.state is None:
        raise InvalidBlock("parent state was pruned")
    state = parent.state.copy()
    state_transition(state, block, checks)

    root = block.root
    spe = spec.slots_per_epoch
    if block.slot % spe == 0:
        boundary = root
    elif parent.slot // spe == block.slot // spe:
        boundary = parent.epoch_boundary_root
    else:
        boundary = parent.root
    node = BlockNode(block, root, parent, parent.height + 1, store.next_seq, state, boundary,
                     block.slot, archive=store.archive)
    store.next_seq += 1
    store.blocks[root] = node
    parent.children.append(node)
    update_checkpoints(store, state.current_justified_checkpoint, state.finalized_checkpoint)
    for att in block.body.attestations:
        if att.head_root in store.blocks and att.target.root in store.blocks:
            update_latest_messages(store, att)
    for evidence in block.body.evidence:
        on_equivocation(store, evidence.offender)
    return node


def update_checkpoints(store: Store, justified: Checkpoint, finalized: Checkpoint) -> None:
    """Adopt a block state's checkpoints when they are newer. `justified` and `finalized` come
    from one state, so after a finality change the store's justified checkpoint is re-taken from
    that state unless it already descends from the new finalized block."""
    if finalized.epoch > store.finalized_checkpoint.epoch:
        store.finalized_checkpoint = finalized
        current = store.blocks[store.justified_checkpoint.root]
        if not is_descendant_of_finalized(store, current):
            store.justified_checkpoint = justified
    if justified.epoch > store.justified_checkpoint.epoch:
        store.justified_checkpoint = justified


def validate_on_attestation(store: Store, att: Attestation, checks: SignatureChecks = FULL_CHECKS,
                            *, is_from_block: bool = False) -> PosState | None:
    """Phase0's `validate_on_attestation` plus the validator, duty and signature checks against
    the target's checkpoint state (which it returns). Raises InvalidAttestation (`[REJECT]`) or
    AttestationIgnored (`[IGNORE]`); catch `AttestationError` for both."""
    spec = store.spec
    target = att.target
    # [REJECT] the target epoch is the epoch of the attestation's slot
    if target.epoch != att.slot // spec.slots_per_epoch:
        raise InvalidAttestation(f"target epoch {target.epoch} is not the epoch of slot "
                                 f"{att.slot}")
    if not is_from_block:
        current_slot = spec.slot_at(store.time_ms + spec.max_future_slot_ms)
        # [IGNORE] the attestation's slot has started (within the allowed clock drift)
        if att.slot > current_slot:
            raise AttestationIgnored(f"attestation slot {att.slot} is in the future (now "
                                     f"{get_current_slot(store)})")
        current_epoch = get_current_store_epoch(store)
        # [IGNORE] the target is the current or the previous epoch
        if target.epoch + 1 < current_epoch:
            raise AttestationIgnored(f"target epoch {target.epoch} is too old (now "
                                     f"{current_epoch})")
    head = store.blocks.get(att.head_root)
    # [IGNORE] the voted-for block is known
    if head is None:
        raise AttestationIgnored(f"unknown head block {att.head_root.hex()[:16]}")
    # [IGNORE] the target block is known
    if target.root not in store.blocks:
        raise AttestationIgnored(f"unknown target block {target.root.hex()[:16]}")
    # [REJECT] the voted-for block is not newer than the attestation
    if head.slot > att.slot:
        raise InvalidAttestation(f"head block of slot {head.slot} is newer than the attestation "
                                 f"slot {att.slot}")
    # [REJECT] the target is the epoch-boundary ancestor of the voted-for block
    if get_checkpoint_root(head, target.epoch, spec.slots_per_epoch) != target.root:
        raise InvalidAttestation("target root is not the epoch-boundary ancestor of the head block")
    if is_from_block:
        return None
    try:
        state = get_checkpoint_state(store, target)
    except ValueError as exc:
        # [IGNORE] a target from before finality has no state left to check the vote against
        raise AttestationIgnored(f"target {target.epoch} cannot be checked: {exc}") from None
    index = att.validator_index
    # [REJECT] the validator is known
    if index >= len(state.validators):
        raise InvalidAttestation(f"unknown validator {index}")
    validator = state.validators[index]
    # [REJECT] the validator is active in the target epoch
    if not is_active_validator(validator, target.epoch):
        raise InvalidAttestation(f"validator {index} is not active in epoch {target.epoch}")
    duty = get_attestation_slot(state, target.epoch, index)
    # [REJECT] the validator is due to attest at this slot
    if duty != att.slot:
        raise InvalidAttestation(f"validator {index} attests at slot {duty}, not {att.slot}")
    # [REJECT] the validator is not slashed
    if validator.slashed:
        raise InvalidAttestation(f"validator {index} is slashed")
    # [REJECT] the attestation is signed by the validator
    if not checks.attestation(att, validator.pubkey):
        raise InvalidAttestation("bad attestation signature")
    return state


def on_attestation(store: Store, att: Attestation, checks: SignatureChecks = FULL_CHECKS,
                   *, is_from_block: bool = False) -> None:
    validate_on_attestation(store, att, checks, is_from_block=is_from_block)
    update_latest_messages(store, att)


def update_latest_messages(store: Store, att: Attestation) -> bool:
    """Keep `att` as its validator's vote if it is newer (by target epoch). True if kept."""
    index = att.validator_index
    if index in store.equivocating_indices:
        return False
    previous = store.latest_messages.get(index)
    if previous is not None and att.target.epoch <= previous.epoch:
        return False
    store.latest_messages[index] = LatestMessage(att.target.epoch, att.head_root)
    return True


def on_equivocation(store: Store, index: int) -> None:
    """A validator proven to equivocate (or slashed): its votes never count again."""
    store.equivocating_indices.add(index)
    store.latest_messages.pop(index, None)


# ---- the head ---------------------------------------------------------------------------------
def get_head(store: Store) -> BlockNode:
    justified = store.blocks[store.justified_checkpoint.root]
    subtree = _subtree(justified)
    weights = _weights(store, subtree)
    viable = _filter_block_tree(store, subtree)
    head = justified
    while True:
        children = [c for c in head.children if viable.get(c.root, False)]
        if not children:
            return head
        head = max(children, key=lambda c: (weights[c.root], c.root))


def get_weight(store: Store, root: bytes) -> int:
    """Stake voting for `root` or a descendant (for tests and the API; get_head batches this)."""
    node = store.blocks[root]
    return _weights(store, _subtree(node))[root]


def _subtree(root: BlockNode) -> list[BlockNode]:
    """`root` and its descendants, parents before children."""
    order, stack = [], [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.children)
    return order


def _weights(store: Store, subtree: list[BlockNode]) -> dict[bytes, int]:
    weights = {node.root: 0 for node in subtree}
    state = get_checkpoint_state(store, store.justified_checkpoint)
    validators = state.validators
    epoch = get_current_epoch(state)
    for index, message in store.latest_messages.items():
        if message.root not in weights or index in store.equivocating_indices:
            continue
        if index >= len(validators):
            continue
        validator = validators[index]
        if validator.slashed or not is_active_validator(validator, epoch):
            continue
        weights[message.root] += validator.effective_stake
    for node in reversed(subtree[1:]):
        weights[parent_of(node).root] += weights[node.root]
    return weights


def _filter_block_tree(store: Store, subtree: list[BlockNode]) -> dict[bytes, bool]:
    """Which blocks lead to a viable leaf: one whose state agrees with the store's justified and
    finalized checkpoints (phase0 `filter_block_tree`)."""
    current_epoch = get_current_store_epoch(store)
    justified, finalized = store.justified_checkpoint, store.finalized_checkpoint
    viable: dict[bytes, bool] = {}
    for node in reversed(subtree):
        if node.children:
            viable[node.root] = any(viable.get(c.root, False) for c in node.children)
            continue
        state = node.state
        if state is None:
            viable[node.root] = False
            continue
        voting_source = state.current_justified_checkpoint
        correct_justified = (justified.epoch == GENESIS_EPOCH
                             or voting_source.epoch == justified.epoch
                             or voting_source.epoch + 2 >= current_epoch)
        correct_finalized = (finalized.epoch == GENESIS_EPOCH
                             or is_descendant_of_finalized(store, node))
        viable[node.root] = correct_justified and correct_finalized
    return viable


# ---- memory ----------------------------------------------------------------------------------
def prune_states(store: Store) -> int:
    """Drop the post-states of blocks that can no longer be built on: the ancestors of the
    finalized block and the branches hanging off them. Returns how many were dropped."""
    finalized = store.blocks[store.finalized_checkpoint.root]
    dropped = 0
    keep = finalized
    node = finalized.parent
    while node is not None and node.state is not None:
        node.state = None
        dropped += 1
        for child in node.children:
            if child is not keep:
                dropped += _drop_subtree_states(child)
        keep, node = node, node.parent
    return dropped


def prune_bodies(store: Store) -> int:
    """Let the bodies of the finalized block's ancestors, and of the branches hanging off them,
    leave memory (only with an archive to read them back from). Finalized blocks never revert and
    no block can be built on a dead branch, so the rules never need these bodies again; the API
    and sync read them through the archive. Returns how many were dropped."""
    if store.archive is None:
        return 0
    keep = store.blocks[store.finalized_checkpoint.root]
    node, dropped = keep.parent, 0
    while node is not None and node.body is not None:
        # the anchor (genesis) was made before the store had an archive and is not in it: its
        # one body stays, or /chain and sync from height 0 could not read it back
        if node.archive is not None:
            node.body = None
            dropped += 1
        for child in node.children:
            if child is not keep:
                for dead in _subtree(child):
                    if dead.body is not None:
                        dead.body = None
                        dropped += 1
        keep, node = node, node.parent
    return dropped


def _drop_subtree_states(root: BlockNode) -> int:
    dropped = 0
    for node in _subtree(root):
        if node.state is not None:
            node.state = None
            dropped += 1
    return dropped
