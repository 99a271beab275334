"""`PosChain`: the node-facing facade of the PoS rules, shaped like `consensus.pow_chain.PowChain`
so node/ can drive both chains alike.

It owns a fork-choice `Store` (every accepted block with its post-state), an orphan pool, the
operation pool for proposals, the verified-signature cache and the slashing detector, and reports
what each call did in a `PosChainUpdate` (a PoW `ChainUpdate` plus checkpoints, slashings and
evidence): per-block results, reorgs (depth, common ancestor, reverted and applied blocks, as PoW
reports them), transactions reverted and applied.

The head is recomputed after each accepted block and on `on_tick`; gossip votes
(`on_attestation`) only update the store, and move the head at the next tick or block, which keeps
an attestation's cost at one signature check and a few lookups.

Invariants: a rejected block, attestation or piece of evidence leaves the chain as it was (except
that evidence proven by an otherwise refused vote is kept: it is valid on its own); `head` is
always the fork choice's answer as of the last block or tick; finalized blocks never revert.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from consensus.block_archive import BlockArchive
from consensus.fork_choice import reorg_path
from consensus.orphan_pool import DEFAULT_MAX_ORPHANS, OrphanPool
from consensus.pos import fork_choice as fc
from consensus.pos.committees import get_attesters
from consensus.pos.errors import (
    AttestationIgnored,
    BadBlockSignature,
    InvalidAttestation,
    InvalidBlock,
    InvalidEvidence,
    MissingParent,
    TimeTooNew,
    Violation,
)
from consensus.pos.fork_choice import BlockNode, Store
from consensus.pos.operation_pool import BoundedMap, OperationPool
from consensus.pos.proposal import build_block
from consensus.pos.proposer import get_beacon_proposer_index
from consensus.pos.signing import (
    TRUSTED,
    SignatureCache,
    SignatureChecks,
    sign_attestation,
    verify_signature,
)
from consensus.pos.slashing import (
    SlashingDetector,
    validate_attester_slashing,
    validate_proposer_slashing,
)
from consensus.pos.spec import PosSpec, initialize_genesis
from consensus.pos.state import FAR_FUTURE_EPOCH, PosState, get_current_epoch, is_active_validator
from consensus.pos.transition import process_deposit, process_exit
from consensus.pos.types import (
    Attestation,
    Checkpoint,
    Deposit,
    Evidence,
    Exit,
    PosBlock,
    ProposerSlashing,
)
from consensus.pow_chain import BlockResult, ChainUpdate, Outcome, Reorg
from consensus.types import Transaction, verify_transaction_signature

Verdict = Literal["accept", "ignore", "reject"]
MAX_INVALID_ROOTS = 4096
MIN_VOTE_WINDOW = 1024


def vote_window(spec: PosSpec) -> int:
    """How many votes the seen-set and the signature cache keep: votes older than an epoch are
    ignored by slot before either is consulted, and each validator votes once an epoch, so four
    votes per genesis validator (two epochs, and room for deposits) cover what can still come."""
    return max(MIN_VOTE_WINDOW, 4 * len(spec.validators))
Op = TypeVar("Op", Deposit, Exit)

__all__ = ["PosChain", "PosChainUpdate", "AttestationResult", "OperationResult",
           "SlashedValidator", "BlockResult", "Reorg"]


@dataclass(frozen=True)
class AttestationResult:
    outcome: Verdict
    reason: str = ""                     # for people: logs and events
    evidence: Evidence | None = None     # slashing evidence this vote revealed, if any
    violation: Violation | None = None   # ignore, reject: the kind of rule (decide by this)

    @property
    def accepted(self) -> bool:
        return self.outcome == "accept"


@dataclass(frozen=True)
class OperationResult:
    """Verdict on slashing evidence, a deposit or an exit offered to the pool."""
    outcome: Verdict
    reason: str = ""                     # for people: logs and events
    violation: Violation | None = None   # ignore, reject: the kind of rule (decide by this)


@dataclass(frozen=True)
class SlashedValidator:
    validator_index: int
    reason: str                 # "double proposal", "double vote", "surround vote"
    block_root: bytes           # the block on the new head chain that included the evidence
    evidence: Evidence


@dataclass
class PosChainUpdate(ChainUpdate):
    justified_changed: Checkpoint | None = None
    finalized_changed: Checkpoint | None = None
    slashed: list[SlashedValidator] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)      # new evidence seen


class _RootSet:
    """Bounded set of roots (oldest evicted): at most `max_items`."""

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self._roots: OrderedDict[bytes, None] = OrderedDict()

    def __contains__(self, root: bytes) -> bool:
        return root in self._roots

    def __len__(self) -> int:
        return len(self._roots)

    def add(self, root: bytes) -> None:
        self._roots[root] = None
        while len(self._roots) > self.max_items:
            self._roots.popitem(last=False)


class PosChain:
    def __init__(self, spec: PosSpec, *,
                 verify_tx: Callable[[Transaction], bool] = verify_transaction_signature,
                 max_orphans: int = DEFAULT_MAX_ORPHANS,
                 signature_cache: SignatureCache | None = None,
                 archive: BlockArchive[PosBlock] | None = None) -> None:
        """`archive`: where bodies behind finality are read back from; with one, they leave
        memory when the node calls `release_finalized_bodies`; without, every body stays."""
        self.spec = spec
        self.verify_tx = verify_tx
        state, genesis = initialize_genesis(spec)
        self.store: Store = fc.get_forkchoice_store(state, genesis, spec.genesis_time_ms)
        self.store.archive = archive
        self.head: BlockNode = self.store.blocks[genesis.root]
        self.orphans: OrphanPool[PosBlock] = OrphanPool(max_orphans)
        self.pool = OperationPool()
        self.signatures = (signature_cache if signature_cache is not None
                           else SignatureCache(vote_window(spec)))
        self.checks = SignatureChecks(verify_signature, self.signatures.verify_attestation,
                                      verify_tx)
        self.detector = SlashingDetector()
        self._invalid = _RootSet(MAX_INVALID_ROOTS)
        self._seen_attestations = _RootSet(vote_window(spec))
        self._main: list[BlockNode] = [self.head]       # the head's chain, by height

    # ---- queries -------------------------------------------------------------------------------
    @property
    def genesis_root(self) -> bytes:
        return self.store.genesis_root

    @property
    def genesis_hash(self) -> bytes:
        """Alias of `genesis_root`, as PowChain names it."""
        return self.store.genesis_root

    @property
    def state(self) -> PosState:
        """The head's post-state."""
        state = self.head.state
        assert state is not None, "states are pruned only before the finalized block"
        return state

    @property
    def ledger(self):
        """Account balances and nonces at the head (what the mempool checks against)."""
        return self.state.ledger

    @property
    def justified(self) -> Checkpoint:
        return self.store.justified_checkpoint

    @property
    def finalized(self) -> Checkpoint:
        return self.store.finalized_checkpoint

    def current_slot(self, now_ms: int) -> int:
        return self.spec.slot_at(now_ms)

    def get(self, root: bytes) -> BlockNode | None:
        return self.store.blocks.get(root)

    def main_chain_at(self, height: int) -> BlockNode | None:
        return self._main[height] if 0 <= height < len(self._main) else None

    def is_on_main_chain(self, node: BlockNode) -> bool:
        return node.height < len(self._main) and self._main[node.height] is node

    def locator(self) -> list[bytes]:
        """Bitcoin's block locator over the head chain: dense for 10 blocks, then sparser."""
        roots, step, height = [], 1, self.head.height
        while height > 0:
            roots.append(self._main[height].root)
            if len(roots) >= 10:
                step *= 2
            height -= step
        roots.append(self.genesis_root)
        return roots

    def blocks_after(self, locator: list[bytes], limit: int) -> list[BlockNode]:
        """Head-chain blocks after the first locator root we have on our head chain."""
        start = 0
        for root in locator:
            node = self.store.blocks.get(root)
            if node is not None and self.is_on_main_chain(node):
                start = node.height
                break
        return self._main[start + 1:start + 1 + max(0, limit)]

    def checkpoint_state(self, epoch: int, parent_root: bytes | None = None) -> PosState:
        """The state at the start of `epoch` on the branch of `parent_root` (default: the head)."""
        base = self.head if parent_root is None else self.store.blocks[parent_root]
        root = fc.get_checkpoint_root(base, epoch, self.spec.slots_per_epoch)
        return fc.get_checkpoint_state(self.store, Checkpoint(epoch, root))

    def get_proposer(self, slot: int, parent_root: bytes | None = None) -> int:
        epoch = slot // self.spec.slots_per_epoch
        return get_beacon_proposer_index(self.checkpoint_state(epoch, parent_root), slot)

    def get_attesters(self, slot: int) -> list[int]:
        return get_attesters(self.checkpoint_state(slot // self.spec.slots_per_epoch), slot)

    def get_weight(self, root: bytes) -> int:
        return fc.get_weight(self.store, root)

    def validators_json(self) -> list[dict]:
        state = self.state
        epoch = get_current_epoch(state)
        return [{"index": i, "pubkey": v.pubkey.hex(), "stake": state.stakes[i],
                 "effective_stake": v.effective_stake, "active": is_active_validator(v, epoch),
                 "slashed": v.slashed, "activation_epoch": v.activation_epoch,
                 "exit_epoch": None if v.exit_epoch == FAR_FUTURE_EPOCH else v.exit_epoch,
                 "withdrawable_epoch": None if v.withdrawable_epoch == FAR_FUTURE_EPOCH
                 else v.withdrawable_epoch}
                for i, v in enumerate(state.validators)]

    def release_finalized_bodies(self) -> int:
        """Let the bodies behind the finalized checkpoint leave memory (`fc.prune_bodies`). The
        node calls it once the blocks of a call are stored, since the archive reads them back
        from there. Returns how many left."""
        return fc.prune_bodies(self.store)

    def memory_items(self) -> dict[str, int]:
        """What the chain holds in memory, by kind (for /status): the per-block index, the
        bodies and states still held (the unfinalized window), and every bounded cache."""
        nodes = self.store.blocks.values()
        return {"blocks_indexed": len(self.store.blocks),
                "bodies": sum(1 for n in nodes if n.body is not None),
                "states": sum(1 for n in nodes if n.state is not None),
                "checkpoint_states": len(self.store.checkpoint_states),
                "orphans": len(self.orphans), "signature_cache": len(self.signatures),
                "seen_attestations": len(self._seen_attestations),
                "pool_attestations": len(self.pool.attestations),
                "latest_messages": len(self.store.latest_messages)}

    # ---- handlers -------------------------------------------------------------------------------
    def on_tick(self, now_ms: int) -> PosChainUpdate:
        """Advance the clock; the head moves if votes received since the last block say so."""
        update, before = self._begin()
        fc.on_tick(self.store, now_ms)
        spe = self.spec.slots_per_epoch
        self.pool.prune_attestations(self.current_slot(now_ms) - spe)
        self._update_head(update)
        return self._finish(update, before)

    def on_block(self, block: PosBlock, now_ms: int, *, trusted: bool = False) -> PosChainUpdate:
        """Handle one block (and any orphans it unlocks). `trusted` is for replaying blocks this
        node stored itself: signatures were checked when they were first accepted."""
        update, before = self._begin()
        fc.on_tick(self.store, now_ms)
        pending = [block]
        while pending:
            current = pending.pop(0)
            result = self._add_block(current, trusted, update)
            update.results.append(result)
            if result.outcome in ("connected", "side"):
                pending.extend(self.orphans.pop_children(result.block_hash))
        return self._finish(update, before)

    def on_attestation(self, att: Attestation, now_ms: int) -> AttestationResult:
        """Gossip validation of one vote; an accepted vote counts in fork choice and is pooled."""
        store = self.store
        fc.on_tick(store, now_ms)
        root = att.root
        # [IGNORE] not seen before (gossip or block): never verified twice
        if root in self._seen_attestations:
            return AttestationResult("ignore", "attestation already seen",
                                     violation=Violation.DUPLICATE)
        # [IGNORE] not older than one epoch
        if att.slot + self.spec.slots_per_epoch < self.current_slot(now_ms):
            return AttestationResult("ignore", f"attestation slot {att.slot} is more than an "
                                               f"epoch old", violation=Violation.UNTIMELY)
        try:
            state = fc.validate_on_attestation(store, att, self.checks)
        except AttestationIgnored as exc:
            return AttestationResult("ignore", str(exc), violation=exc.violation)
        except InvalidAttestation as exc:
            return AttestationResult("reject", str(exc), violation=exc.violation)
        assert state is not None
        # [REJECT] the voted-for block descends from the finalized checkpoint
        if not fc.is_descendant_of_finalized(store, store.blocks[att.head_root]):
            return AttestationResult("reject", "head block conflicts with the finalized checkpoint",
                                     violation=Violation.INVALID_ATTESTATION)
        evidence = self.detector.check_attestation(att)
        if evidence is not None and self._accept_evidence(evidence) is None:
            self._seen_attestations.add(root)
            return AttestationResult("ignore", f"{evidence.kind} by validator "
                                               f"{att.validator_index}", evidence,
                                     violation=Violation.EQUIVOCATION)
        # [REJECT] the source is the justified checkpoint of the target's chain
        if att.source != state.current_justified_checkpoint:
            return AttestationResult("reject", f"source epoch {att.source.epoch} is not the "
                                               f"justified checkpoint (epoch "
                                               f"{state.current_justified_checkpoint.epoch})",
                                     violation=Violation.INVALID_ATTESTATION)
        self.detector.record_attestation(att)
        self._seen_attestations.add(root)
        self.pool.add_attestation(att)
        fc.update_latest_messages(store, att)
        return AttestationResult("accept")

    def on_slashing_evidence(self, evidence: Evidence) -> OperationResult:
        """Validate evidence against the head state; pool it for the next proposal."""
        if evidence.root in self.pool.evidence:
            return OperationResult("ignore", "evidence already known", Violation.DUPLICATE)
        state = self.state
        index = evidence.offender
        # [IGNORE] the offender is not already slashed on our head chain
        if index < len(state.validators) and state.validators[index].slashed:
            return OperationResult("ignore", f"validator {index} is already slashed",
                                   Violation.DUPLICATE)
        error = self._accept_evidence(evidence)
        if error is not None:
            return OperationResult("reject", str(error), error.violation)
        return OperationResult("accept")

    def on_deposit(self, deposit: Deposit) -> OperationResult:
        """Pool a deposit that applies to the head state."""
        return self._pool_operation(deposit, process_deposit, self.pool.deposits)

    def on_exit(self, request: Exit) -> OperationResult:
        """Pool an exit that applies to the head state."""
        return self._pool_operation(request, process_exit, self.pool.exits)

    # ---- validators' duties ---------------------------------------------------------------------
    def build_block(self, slot: int, proposer_index: int, private_key: bytes,
                    txs: Iterable[Transaction] = (), now_ms: int | None = None, *,
                    parent_root: bytes | None = None) -> PosBlock:
        """A signed block at `slot` on the head (or on `parent_root`: double proposals) packing the
        pooled attestations not yet included on that branch, evidence, deposits and exits."""
        if now_ms is not None:
            fc.on_tick(self.store, now_ms)
        parent = self.head if parent_root is None else self.store.blocks[parent_root]
        if parent.state is None:
            raise ValueError("cannot build on a block before the finalized checkpoint")
        return build_block(parent.state, parent.root, slot, proposer_index, private_key,
                           self.pool, txs)

    def make_attestation(self, slot: int, validator_index: int, private_key: bytes, *,
                         head_root: bytes | None = None, target: Checkpoint | None = None,
                         source: Checkpoint | None = None) -> Attestation:
        """A signed vote for the head as of `slot` (overrides make double and surround votes)."""
        spe = self.spec.slots_per_epoch
        head = self.head if head_root is None else self.store.blocks[head_root]
        while head.slot > slot and head.parent is not None:
            head = head.parent
        epoch = slot // spe
        if target is None:
            target = Checkpoint(epoch, fc.get_checkpoint_root(head, epoch, spe))
        if source is None:
            source = fc.get_checkpoint_state(self.store, target).current_justified_checkpoint
        return sign_attestation(private_key, slot, validator_index, head.root, source, target)

    # ---- internals ------------------------------------------------------------------------------
    def _begin(self) -> tuple[PosChainUpdate, tuple[Checkpoint, Checkpoint]]:
        before = (self.store.justified_checkpoint, self.store.finalized_checkpoint)
        return PosChainUpdate(old_head=self.head.root), before

    def _finish(self, update: PosChainUpdate,
                before: tuple[Checkpoint, Checkpoint]) -> PosChainUpdate:
        justified, finalized = before
        if self.store.justified_checkpoint != justified:
            update.justified_changed = self.store.justified_checkpoint
        if self.store.finalized_checkpoint != finalized:
            update.finalized_changed = self.store.finalized_checkpoint
            fc.prune_states(self.store)
        update.new_head = self.head.root
        return update

    def _add_block(self, block: PosBlock, trusted: bool, update: PosChainUpdate) -> BlockResult:
        root = block.root
        existing = self.store.blocks.get(root)
        if existing is not None:
            return BlockResult(root, "duplicate", height=existing.height)
        if root in self._invalid:
            return BlockResult(root, "rejected", "block is known to be invalid",
                               violation=Violation.KNOWN_INVALID)
        if root in self.orphans:
            return BlockResult(root, "duplicate")
        # [REJECT] the block fits the size limit (checked before it may wait as an orphan)
        if block.size > self.spec.max_block_bytes:
            return BlockResult(root, "rejected", f"block of {block.size} bytes exceeds "
                                                 f"{self.spec.max_block_bytes}",
                               violation=Violation.BLOCK_SIZE)
        try:
            node = fc.on_block(self.store, block, TRUSTED if trusted else self.checks)
        except MissingParent as exc:
            if block.parent_root in self._invalid:
                self._invalid.add(root)
                return BlockResult(root, "rejected", "parent block is invalid",
                                   violation=Violation.INVALID_PARENT)
            self.orphans.add(root, block.parent_root, block)
            update.missing_parent = block.parent_root
            return BlockResult(root, "orphan", str(exc), violation=exc.violation)
        except TimeTooNew as exc:
            return BlockResult(root, "rejected", str(exc), temporary=True, violation=exc.violation)
        except BadBlockSignature as exc:
            # the root does not commit to the signature: an honest copy may follow (not remembered)
            return BlockResult(root, "rejected", str(exc), violation=exc.violation)
        except InvalidBlock as exc:
            self._invalid.add(root)
            return BlockResult(root, "rejected", str(exc), violation=exc.violation)
        self._watch_block(node, update)
        self._update_head(update)
        outcome: Outcome = "connected" if self.head is node else "side"
        return BlockResult(root, outcome, height=node.height)

    def _watch_block(self, node: BlockNode, update: PosChainUpdate) -> None:
        """What an accepted block tells the slashing detector and the pool."""
        block = node.block
        evidence: Evidence | None = self.detector.check_block(block.signed_header)
        if evidence is not None and self._accept_evidence(evidence) is None:
            update.evidence.append(evidence)
        self.detector.record_block(block.signed_header)
        for att in block.body.attestations:
            evidence = self.detector.check_attestation(att)
            if evidence is not None and self._accept_evidence(evidence) is None:
                update.evidence.append(evidence)
            self.detector.record_attestation(att)
            self._seen_attestations.add(att.root)
            self.pool.add_attestation(att)

    def _accept_evidence(self, evidence: Evidence) -> InvalidEvidence | None:
        """Validate evidence against the head state, pool it, stop counting the offender's votes.
        Returns None when accepted (or already pooled), else why it was refused."""
        if evidence.root in self.pool.evidence:
            return None
        try:
            if isinstance(evidence, ProposerSlashing):
                validate_proposer_slashing(self.state, evidence, self.checks)
            else:
                validate_attester_slashing(self.state, evidence, self.checks)
        except InvalidEvidence as exc:
            return exc
        self.pool.add_evidence(evidence)
        fc.on_equivocation(self.store, evidence.offender)
        return None

    def _pool_operation(self, operation: Op,
                        process: Callable[[PosState, Op, SignatureChecks], None],
                        table: BoundedMap[Op]) -> OperationResult:
        # [IGNORE] not already pooled
        if operation.root in table:
            return OperationResult("ignore", "already pooled", Violation.DUPLICATE)
        scratch = self.state.copy()
        try:
            process(scratch, operation, self.checks)
        except InvalidBlock as exc:
            # [REJECT] the operation applies to the head state (gossip may still ignore a nonce or
            # balance race by its violation: node/gossip_verdicts.py)
            violation = (Violation.INVALID_OPERATION if exc.violation is Violation.INVALID_BLOCK
                         else exc.violation)
            return OperationResult("reject", str(exc), violation)
        table.put(operation.root, operation)
        return OperationResult("accept")

    def _update_head(self, update: PosChainUpdate) -> None:
        new_head = fc.get_head(self.store)
        if new_head is self.head:
            return
        path = reorg_path(self.head, new_head)
        old_head = self.head
        if path.revert:
            update.reorgs.append(Reorg(
                depth=path.depth, old_head=old_head.root, new_head=new_head.root,
                common_ancestor=path.common_ancestor.root,
                common_height=path.common_ancestor.height,
                reverted=[n.root for n in path.revert], applied=[n.root for n in path.apply]))
        for node in path.revert:
            update.reverted_txs.extend(node.block.body.transactions)
        for node in path.apply:
            update.applied_txs.extend(node.block.body.transactions)
            body = node.block.body
            for evidence in body.evidence:
                update.slashed.append(SlashedValidator(evidence.offender, evidence.kind,
                                                       node.root, evidence))
        del self._main[path.common_ancestor.height + 1:]
        self._main.extend(path.apply)
        self.head = new_head

