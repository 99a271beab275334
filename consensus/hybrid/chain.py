"""`HybridChain`: the Bitcoin-exact `PowChain` with Casper FFG on top (EIP-1011).

It is a `PowChain` -- the same header, proof-of-work, retarget, median-time and ledger rules run
unchanged -- that overrides its hooks:
- `_check_block_alone`: also the Casper body's own bound and the coinbase's commitment to it;
- `_apply`/`_revert`: a block also runs the Casper transition (consensus/hybrid/casper.py) on its
  parent's Casper state; its money moves (deposits, withdrawals, rewards) go into the block's
  ledger undo record, so a reorg reverts them with the transfers;
- `_place`/`_is_better`/`_best_tip`: fork choice by EIP-1011's score, and never across the
  finalized checkpoint: a heavier branch that does not contain it is kept as a side branch and
  reported as a refused reorg (`HybridChainUpdate.refused`).

Every block in the tree that can still win gets a Casper state as soon as it arrives: blocks that
extend a branch are *evaluated* for fork choice (their votes, slashings, epoch processing) before
their transfers are validated, which happens, as in PoW, when fork choice connects them. A block
whose Casper section breaks a rule is invalid at once. States are kept per block (a block without
a Casper body shares its parent's) and dropped below the finalized checkpoint, which no branch
may cross.

Invariants (PoW's, plus): the head is the best tip by score among the valid blocks that descend
from the finalized checkpoint; the local finalized checkpoint only moves forward.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from consensus.block_archive import PowArchive
from consensus.block_tree import BlockEntry, common_ancestor
from consensus.errors import InvalidBlock, Violation
from consensus.fork_choice import reorg_path
from consensus.hybrid import fork_choice as fc
from consensus.hybrid.casper import (
    TRUSTED,
    LedgerWrites,
    VoteChecks,
    process_body,
    state_for_child,
)
from consensus.hybrid.spec import HybridSpec
from consensus.hybrid.state import CasperState, FinalityPoint, genesis_state
from consensus.hybrid.types import HybridBlock, VoteSlashing, coinbase_commitment
from consensus.ledger import BlockUndo, Ledger
from consensus.orphan_pool import DEFAULT_MAX_ORPHANS
from consensus.pos.signing import SignatureCache, verify_signature
from consensus.pow_chain import BlockResult, ChainUpdate, PowChain
from consensus.types import Block, Transaction, verify_transaction_signature

MAX_REFUSED_REPORTS = 1024


@dataclass(frozen=True)
class RefusedReorg:
    """A branch with more work than the head that fork choice refused because it does not
    contain the finalized checkpoint (PoW alone would have switched to it)."""
    tip: bytes
    height: int
    total_work: int
    head_work: int
    fork_height: int                  # where it leaves the head's chain
    finalized: FinalityPoint
    finalized_height: int


@dataclass(frozen=True)
class SlashedValidator:
    validator_index: int
    reason: str                       # "double vote" or "surround vote"
    block_hash: bytes                 # the head-chain block that included the evidence
    evidence: VoteSlashing


@dataclass
class HybridChainUpdate(ChainUpdate):
    justified_changed: FinalityPoint | None = None
    finalized_changed: FinalityPoint | None = None
    slashed: list[SlashedValidator] = field(default_factory=list)
    refused: list[RefusedReorg] = field(default_factory=list)


class HybridChain(PowChain):
    spec: HybridSpec

    def __init__(self, spec: HybridSpec, *,
                 verify_tx: Callable[[Transaction], bool] = verify_transaction_signature,
                 max_orphans: int = DEFAULT_MAX_ORPHANS,
                 signature_cache: SignatureCache | None = None,
                 archive: PowArchive[Block] | None = None) -> None:
        super().__init__(spec, verify_tx=verify_tx, max_orphans=max_orphans, archive=archive)
        genesis = genesis_state(spec, self.genesis_hash)
        self.states: dict[bytes, CasperState] = {self.genesis_hash: genesis}
        self.signatures = signature_cache if signature_cache is not None else SignatureCache()
        self.checks = VoteChecks(verify_signature, self.signatures.verify_attestation)
        self.finalized: FinalityPoint | None = genesis.fc_finalized   # local, only forward
        self.finalized_height = 0
        self._reported: OrderedDict[bytes, None] = OrderedDict()   # refused branches' forks

    # ---- queries -------------------------------------------------------------------------------
    @property
    def state(self) -> CasperState:
        """The head's Casper state."""
        return self.states[self.head.hash]

    @property
    def justified(self) -> FinalityPoint:
        return self.state.fc_justified

    def state_of(self, block_hash: bytes) -> CasperState | None:
        return self.states.get(block_hash)

    def next_state(self) -> CasperState:
        """The Casper state a child of the head starts from (its epoch initialized when it opens
        one): what votes, evidence and operations offered now are judged against."""
        return state_for_child(self.state, self.head.hash, self.head.height + 1,
                               LedgerWrites(Ledger(), {}, checks_funds=False))

    def is_viable(self, entry: BlockEntry) -> bool:
        """Descends from the finalized checkpoint (every block does before finality)."""
        point = self.finalized
        return point is None or fc.descends_from(entry, point, self.finalized_height)

    # ---- handling a block ----------------------------------------------------------------------
    def on_block(self, block: Block, now: int, *, trusted: bool = False) -> HybridChainUpdate:
        before = self.head
        update = super().on_block(block, now, trusted=trusted)
        assert isinstance(update, HybridChainUpdate)
        self._finish(update, before)
        return update

    def _new_update(self) -> HybridChainUpdate:
        return HybridChainUpdate(old_head=self.head.hash)

    def _check_block_alone(self, block: Block, trusted: bool) -> None:
        super()._check_block_alone(block, trusted)
        # [REJECT] a hybrid block carries a Casper body
        if not isinstance(block, HybridBlock):
            raise InvalidBlock("not a hybrid block (no Casper body)", Violation.MALFORMED)
        # [REJECT] the Casper body fits its own bound (apart from the transfers' block space)
        if block.casper_size > self.spec.max_casper_bytes:
            raise InvalidBlock(f"casper body of {block.casper_size} bytes exceeds "
                               f"{self.spec.max_casper_bytes}", Violation.BLOCK_SIZE)
        # [REJECT] the coinbase commits to the Casper body (so the header covers every vote)
        if block.transactions[0].signature != coinbase_commitment(block.casper):
            raise InvalidBlock("coinbase does not commit to the casper body",
                               Violation.MERKLE_ROOT)

    def _place(self, entry: BlockEntry, update: ChainUpdate) -> BlockResult:
        assert isinstance(update, HybridChainUpdate)
        # [IGNORE] a block that does not descend from the finalized checkpoint never becomes the
        # head, whatever its work (EIP-1011: finalized blocks are never reverted)
        if not self.is_viable(entry):
            self._refuse(entry, update)
            return BlockResult(entry.hash, "side", height=entry.height)
        try:
            self._evaluate(entry)
        except InvalidBlock as exc:
            for marked in self.tree.mark_invalid(entry):
                marked.invalid_reason = str(exc)
                marked.invalid_violation = (exc.violation if marked is entry
                                            else Violation.INVALID_PARENT)
            return BlockResult(entry.hash, "invalidated", str(exc), entry.height,
                               violation=exc.violation)
        return super()._place(entry, update)

    def _evaluate(self, entry: BlockEntry) -> None:
        """The Casper state fork choice scores `entry` by, before its transfers are validated."""
        block, parent = entry.block, entry.parent
        assert isinstance(block, HybridBlock) and parent is not None
        parent_state = self.states.get(parent.hash)
        if parent_state is None:
            raise InvalidBlock("the parent has no Casper state (it is before finality)",
                               Violation.INVALID_PARENT)
        if self.spec.epoch_of(entry.height) == parent_state.epoch and not block.casper:
            self.states[entry.hash] = parent_state       # nothing changes: shared
            return
        writes = LedgerWrites(Ledger(), {}, checks_funds=False)
        state = state_for_child(parent_state, parent.hash, entry.height, writes)
        process_body(state, block.casper, block.transactions[0].recipient, writes,
                     TRUSTED if self._trusted else self.checks)
        self.states[entry.hash] = state

    def _is_better(self, candidate: BlockEntry, current: BlockEntry) -> bool:
        return fc.is_better(candidate, self.states[candidate.hash], current,
                            self.states[current.hash])

    def _best_tip(self) -> BlockEntry:
        best: BlockEntry | None = None
        for entry in self.tree.entries():
            if (entry.status == "invalid" or entry.hash not in self.states
                    or not self.is_viable(entry)):
                continue
            if best is None or self._is_better(entry, best):
                best = entry
        assert best is not None, "the finalized block itself is always a candidate"
        return best

    def _apply(self, entry: BlockEntry, verify: Callable[[Transaction], bool]) -> BlockUndo:
        """Epoch processing, the transfers, the Casper body -- all or nothing."""
        block, parent = entry.block, entry.parent
        assert isinstance(block, HybridBlock) and parent is not None
        parent_state = self.states.get(parent.hash)
        if parent_state is None:
            raise InvalidBlock("the parent has no Casper state", Violation.INVALID_PARENT)
        previous: dict[bytes, tuple[int | None, int | None]] = {}
        writes = LedgerWrites(self.ledger, previous)
        checks = TRUSTED if entry.status == "valid" or self._trusted else self.checks
        try:
            opens_epoch = self.spec.epoch_of(entry.height) != parent_state.epoch
            state = (state_for_child(parent_state, parent.hash, entry.height, writes)
                     if opens_epoch or block.casper else parent_state)
            undo = self.ledger.apply_block(block, entry.height, self.spec.block_reward,
                                           verify=verify)
            for account, value in undo.previous.items():
                previous.setdefault(account, value)
            if block.casper:
                process_body(state, block.casper, block.transactions[0].recipient, writes,
                             checks)
        except InvalidBlock:
            writes.undo()
            raise
        self.states[entry.hash] = state
        return BlockUndo(block.hash, previous)

    # ---- finality ------------------------------------------------------------------------------
    def _refuse(self, entry: BlockEntry, update: HybridChainUpdate) -> None:
        """Report a branch that PoW alone would switch to: once per branch (by where it leaves
        the head's chain), when it first outweighs the head."""
        point = self.finalized
        if point is None or entry.total_work <= self.head.total_work:
            return
        fork = common_ancestor(entry, self.head)
        if fork.hash in self._reported:
            return
        self._reported[fork.hash] = None
        while len(self._reported) > MAX_REFUSED_REPORTS:
            self._reported.popitem(last=False)
        update.refused.append(RefusedReorg(entry.hash, entry.height, entry.total_work,
                                           self.head.total_work, fork.height, point,
                                           self.finalized_height))

    def _finish(self, update: HybridChainUpdate, before: BlockEntry) -> None:
        """Checkpoint changes and the slashings the new head chain applied."""
        old_state, new_state = self.states[before.hash], self.state
        if new_state.fc_justified != old_state.fc_justified:
            update.justified_changed = new_state.fc_justified
        point = new_state.fc_finalized
        if point is not None and (self.finalized is None or point.epoch > self.finalized.epoch):
            self.finalized = point
            self.finalized_height = self.spec.checkpoint_height(point.epoch)
            update.finalized_changed = point
            self._prune_states()
        if before is not self.head:
            for node in reorg_path(before, self.head).apply:
                block = node.block
                assert isinstance(block, HybridBlock)
                for evidence in block.casper.slashings:
                    update.slashed.append(SlashedValidator(evidence.offender, evidence.kind,
                                                           node.hash, evidence))

    def _prune_states(self) -> None:
        """Drop the states of blocks that can no longer be built on: below the finalized
        checkpoint, or on branches that do not contain it."""
        point = self.finalized
        root = self.tree.get(point.hash) if point is not None else None
        if root is None:
            return
        keep, stack = {}, [root]
        while stack:                                  # the finalized block and its descendants
            entry = stack.pop()
            state = self.states.get(entry.hash)
            if state is not None:
                keep[entry.hash] = state
            stack.extend(entry.children)
        self.states = keep

    # ---- views ---------------------------------------------------------------------------------
    def validators_json(self) -> list[dict]:
        state = self.next_state()
        return [{"index": i, "pubkey": v.pubkey.hex(), "deposit": v.deposit,
                 "start_dynasty": v.start_dynasty,
                 "end_dynasty": None if v.end_dynasty >= 1 << 63 else v.end_dynasty,
                 "active": state.may_vote(i), "slashed": v.slashed, "withdrawn": v.withdrawn,
                 "voted": i in state.voted}
                for i, v in enumerate(state.validators)]


__all__ = ["HybridChain", "HybridChainUpdate", "RefusedReorg", "SlashedValidator"]
