"""`DposChain`: the node-facing facade of the DPoS rules, shaped like `PosChain` (same queries,
`on_block`, a `ChainUpdate` report) so node/ drives it the same way.

It owns the block tree (every accepted block with its post-state), the orphan pool, the pool of
operations and evidence waiting for a block, and the double-production detector.

Fork choice (EOSIO `fork_database`, index `by_lib_block_num`): the tip with the highest LIB wins,
then the longest branch, then the tip seen first; only tips that contain our last irreversible
block are candidates, so an irreversible block is never reverted. Our LIB is the highest LIB any
head has had; it never moves back.

Time enters as `now_ms` arguments; nothing here reads a clock.

Invariants: a refused block, operation or piece of evidence leaves the chain as it was; `head` is
the fork choice's answer after every call; blocks below the LIB keep no state (pruned), and
branches that conflict with it are dropped from the candidates.

Memory (docs/memory.md): every known block keeps a small index entry (`DposNode`: root, slot,
height, links). With an archive, `release_irreversible_bodies` lets the bodies below the LIB,
and of the branches that conflict with it, leave memory: an irreversible block is never reverted
and nothing builds on a dead branch, so the rules never read them again; the API and sync read
them back through `DposNode.block`. The genesis body stays (it is not in the node's store).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from consensus import keys
from consensus.block_archive import BlockArchive, body_or_archived
from consensus.block_tree import ancestor
from consensus.dpos.errors import (
    BadBlockSignature,
    ConflictsWithIrreversible,
    FutureSlot,
    InvalidBlock,
    InvalidEvidence,
    InvalidOperation,
    Violation,
)
from consensus.dpos.schedule import get_scheduled_producer
from consensus.dpos.spec import DposSpec
from consensus.dpos.state import (
    TRUSTED,
    Checks,
    DposState,
    initialize_genesis,
    process_block,
    process_evidence,
    process_operation,
    process_transfer,
    validate_evidence,
)
from consensus.dpos.types import (
    DoubleProduction,
    DposBlock,
    DposBody,
    DposOperation,
    SignedDposHeader,
)
from consensus.errors import InvalidTransaction
from consensus.fork_choice import reorg_path
from consensus.ledger import Ledger
from consensus.orphan_pool import DEFAULT_MAX_ORPHANS, OrphanPool
from consensus.pos.operation_pool import BoundedMap
from consensus.pos.signing import verify_signature
from consensus.pow_chain import BlockResult, ChainUpdate, Outcome, Reorg
from consensus.types import Transaction, verify_transaction_signature

Verdict = Literal["accept", "ignore", "reject"]
MAX_REPORTED_MISSES = 64          # per update: a long outage is summed in state, not listed
MAX_WATCHED_HEADERS = 4096        # first headers per (producer, slot) above the LIB


@dataclass(eq=False, slots=True)
class DposNode:
    """A block in the tree: the per-block index kept for every known block. `body` (the block
    itself) leaves memory once the block is below the LIB (`release_irreversible_bodies`) and
    `.block` then reads it back from `archive`; what the rules read on every block (root, slot,
    height, links) are fields, so they never touch the archive."""
    body: DposBlock | None                 # the block; None once it left memory (below the LIB)
    root: bytes
    slot: int
    height: int
    seq: int                               # arrival order: ties keep the tip seen first
    parent: DposNode | None
    state: DposState | None                # None once pruned (below the LIB, or off its branch)
    children: list[DposNode] = field(default_factory=list)
    archive: BlockArchive[DposBlock] | None = None

    @property
    def block(self) -> DposBlock:
        return body_or_archived(self.body, self.archive, self.root)

    @property
    def hash(self) -> bytes:
        """Alias of `root`, for code written against PoW entries (`raw_block`)."""
        return self.root

    @property
    def lib_height(self) -> int:
        assert self.state is not None, "only candidates for the head are compared"
        return self.state.lib_height


@dataclass(frozen=True)
class OperationResult:
    outcome: Verdict
    reason: str = ""
    violation: Violation | None = None


@dataclass
class DposChainUpdate(ChainUpdate):
    lib_changed: DposNode | None = None
    schedule_changed: tuple[int, tuple[bytes, ...]] | None = None    # (version, schedule)
    missed: list[tuple[int, bytes]] = field(default_factory=list)    # (slot, producer) on head
    evidence: list[DoubleProduction] = field(default_factory=list)   # new evidence seen


def is_better_tip(candidate: DposNode, current: DposNode) -> bool:
    """Highest LIB first, then the longest branch; a tie keeps the tip seen first."""
    a = (candidate.lib_height, candidate.height, -candidate.seq)
    return a > (current.lib_height, current.height, -current.seq)


class DposChain:
    def __init__(self, spec: DposSpec, *,
                 verify_tx: Callable[[Transaction], bool] = verify_transaction_signature,
                 max_orphans: int = DEFAULT_MAX_ORPHANS,
                 archive: BlockArchive[DposBlock] | None = None) -> None:
        """`archive`: where bodies below the LIB are read back from; with one, they leave memory
        when the node calls `release_irreversible_bodies`; without, every body stays."""
        self.spec = spec
        self.checks = Checks(verify_signature, verify_tx)
        self.archive = archive
        genesis = spec.genesis_block()
        # no archive for genesis: it is not in the node's store, so its body stays
        self.genesis = DposNode(genesis, genesis.root, genesis.slot, 0, 0, None,
                                initialize_genesis(spec))
        self.blocks: dict[bytes, DposNode] = {genesis.root: self.genesis}
        self.head = self.lib = self.genesis
        self.orphans: OrphanPool[DposBlock] = OrphanPool(max_orphans)
        self.operations: BoundedMap[DposOperation] = BoundedMap(4096)
        self.evidence: BoundedMap[DoubleProduction] = BoundedMap(256)
        # the first signed header per (producer, slot) above the LIB (a block for a slot at or
        # below the LIB's cannot descend from it, so it is refused before it is watched);
        # headers, not blocks, so no body below the LIB is held here
        self._headers: OrderedDict[tuple[bytes, int], SignedDposHeader] = OrderedDict()
        self._invalid: BoundedMap[bool] = BoundedMap(4096)
        self._main: list[DposNode] = [self.genesis]
        self._seq = 0
        self._released_from = 0     # bodies below this height (and off its branch) are released
        self._bodies_released = 0
        self._states_dropped = 0

    def memory_items(self) -> dict[str, int]:
        """What the chain holds in memory, by kind (for /status): the per-block index, the
        bodies and states still held (the blocks from the LIB to the tips, and genesis's body),
        and the pools and caches, bounded where they are made."""
        return {"blocks_indexed": len(self.blocks),
                "bodies": len(self.blocks) - self._bodies_released,
                "states": len(self.blocks) - self._states_dropped,
                "orphans": len(self.orphans), "operations": len(self.operations),
                "evidence": len(self.evidence), "headers": len(self._headers),
                "invalid": len(self._invalid)}

    # ---- queries -------------------------------------------------------------------------------
    @property
    def genesis_root(self) -> bytes:
        return self.genesis.root

    @property
    def genesis_hash(self) -> bytes:
        return self.genesis.root

    @property
    def state(self) -> DposState:
        assert self.head.state is not None, "the head always keeps its state"
        return self.head.state

    @property
    def ledger(self) -> Ledger:
        """Balances and nonces at the head (what the mempool checks against)."""
        return self.state.ledger

    def current_slot(self, now_ms: int) -> int:
        return self.spec.slot_at(now_ms)

    def get(self, root: bytes) -> DposNode | None:
        return self.blocks.get(root)

    def scheduled_producer(self, slot: int) -> bytes:
        """Who produces `slot` on top of the head (the head's active schedule)."""
        return get_scheduled_producer(self.state.schedule, slot, self.spec.repetitions)

    def main_chain_at(self, height: int) -> DposNode | None:
        return self._main[height] if 0 <= height < len(self._main) else None

    def is_on_main_chain(self, node: DposNode) -> bool:
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

    def blocks_after(self, locator: list[bytes], limit: int) -> list[DposNode]:
        start = 0
        for root in locator:
            node = self.blocks.get(root)
            if node is not None and self.is_on_main_chain(node):
                start = node.height
                break
        return self._main[start + 1:start + 1 + max(0, limit)]

    def descends_from_lib(self, node: DposNode) -> bool:
        return node.height >= self.lib.height and ancestor(node, self.lib.height) is self.lib

    # ---- handlers ------------------------------------------------------------------------------
    def on_block(self, block: DposBlock, now_ms: int, *, trusted: bool = False
                 ) -> DposChainUpdate:
        """Handle one block (and the orphans it unlocks). `trusted`: replaying our own store."""
        update = DposChainUpdate(old_head=self.head.root)
        before = (self.lib, self.state.schedule_version)
        pending = [block]
        while pending:
            current = pending.pop(0)
            result = self._add_block(current, now_ms, trusted, update)
            update.results.append(result)
            if result.outcome in ("connected", "side"):
                pending.extend(self.orphans.pop_children(result.block_hash))
        if self.lib is not before[0]:
            update.lib_changed = self.lib
            self._prune()
        if self.state.schedule_version != before[1]:
            update.schedule_changed = (self.state.schedule_version, self.state.schedule)
        update.new_head = self.head.root
        return update

    def on_operation(self, op: DposOperation) -> OperationResult:
        """Pool an operation that applies to the head state."""
        # [IGNORE] not already pooled
        if op.root in self.operations:
            return OperationResult("ignore", "already pooled", Violation.DUPLICATE)
        try:
            process_operation(self.state.copy(), op, self.spec, self.checks,
                              self.head.slot + 1)
        except InvalidOperation as exc:
            return OperationResult("reject", str(exc), exc.violation)
        self.operations.put(op.root, op)
        return OperationResult("accept")

    def on_evidence(self, evidence: DoubleProduction) -> OperationResult:
        """Pool double-production evidence that the head state has not recorded."""
        if evidence.root in self.evidence:
            return OperationResult("ignore", "evidence already known", Violation.DUPLICATE)
        try:
            validate_evidence(self.state, evidence, self.checks)
        except InvalidEvidence as exc:
            verdict: Verdict = "ignore" if exc.violation is Violation.DUPLICATE else "reject"
            return OperationResult(verdict, str(exc), exc.violation)
        self.evidence.put(evidence.root, evidence)
        return OperationResult("accept")

    def release_irreversible_bodies(self) -> int:
        """Let the bodies below the LIB, and of the branches that conflict with it, leave memory
        (only with an archive to read them back from). The node calls it once the blocks of a
        call are stored, since the archive reads them back from there. Returns how many left.

        Walks only the heights the LIB passed since the last call: a dead branch never grows
        (its blocks are refused as conflicting with the LIB), so older ones stay released."""
        if self.archive is None:
            return 0
        keep, node, released = self.lib, self.lib.parent, 0
        while node is not None and node.height >= self._released_from:
            if node.archive is not None:     # genesis has none: its body stays
                released += _release_body(node)
            for child in node.children:
                if child is not keep:
                    released += sum(_release_body(dead) for dead in _subtree(child))
            keep, node = node, node.parent
        self._released_from = self.lib.height
        self._bodies_released += released
        return released

    # ---- producing -----------------------------------------------------------------------------
    def build_block(self, slot: int, private_key: bytes, txs: Iterable[Transaction] = (), *,
                    parent_root: bytes | None = None,
                    exclude_sender: bytes | None = None) -> DposBlock:
        """A signed block for `slot` on the head (or on `parent_root`: double production) with
        the pooled evidence, the transfers and the operations that apply, in that order.
        `exclude_sender` leaves out one account's transfers and operations (the censor role)."""
        parent = self.head if parent_root is None else self.blocks[parent_root]
        if parent.state is None:
            raise ValueError("cannot build on a pruned block")
        scratch = parent.state.copy()
        evidence = []
        for item in self.evidence.values():
            try:
                process_evidence(scratch, item, self.spec, self.checks)
            except InvalidEvidence:
                continue
            evidence.append(item)
        included: list[Transaction] = []
        for tx in txs:
            if tx.sender == exclude_sender:
                continue
            try:
                process_transfer(scratch, tx, self.checks)
            except InvalidTransaction:
                continue
            included.append(tx)
        ops = []
        for op in sorted(self.operations.values(), key=lambda o: (o.account, o.nonce)):
            if op.account == exclude_sender:
                continue
            try:
                process_operation(scratch, op, self.spec, self.checks, slot)
            except InvalidOperation:
                continue
            ops.append(op)
        body = DposBody(tuple(included), tuple(ops), tuple(evidence))
        producer = keys.public_key(private_key)
        unsigned = DposBlock(slot, producer, parent.root, body)
        return DposBlock(slot, producer, parent.root, body,
                         keys.sign(private_key, unsigned.header.signing_root))

    # ---- internals -----------------------------------------------------------------------------
    def _add_block(self, block: DposBlock, now_ms: int, trusted: bool,
                   update: DposChainUpdate) -> BlockResult:
        root = block.root
        existing = self.blocks.get(root)
        if existing is not None:
            return BlockResult(root, "duplicate", height=existing.height)
        if root in self._invalid:
            return BlockResult(root, "rejected", "block is known to be invalid",
                               violation=Violation.KNOWN_INVALID)
        if root in self.orphans:
            return BlockResult(root, "duplicate")
        # [REJECT] the block fits the size limit
        if block.size > self.spec.max_block_bytes:
            return BlockResult(root, "rejected", f"block of {block.size} bytes exceeds "
                                                 f"{self.spec.max_block_bytes}",
                               violation=Violation.BLOCK_SIZE)
        try:
            node = self._check_and_apply(block, now_ms, trusted)
        except FutureSlot as exc:
            return BlockResult(root, "rejected", str(exc), temporary=True,
                               violation=exc.violation)
        except ConflictsWithIrreversible as exc:
            # honest producers on the far side of a healed partition build these: no blame
            return BlockResult(root, "rejected", str(exc), temporary=True,
                               violation=exc.violation)
        except BadBlockSignature as exc:
            return BlockResult(root, "rejected", str(exc), violation=exc.violation)
        except InvalidBlock as exc:
            self._invalid.put(root, True)
            return BlockResult(root, "rejected", str(exc), violation=exc.violation)
        if node is None:
            self.orphans.add(root, block.parent_root, block)
            update.missing_parent = block.parent_root
            return BlockResult(root, "orphan", "parent unknown",
                               violation=Violation.MISSING_PARENT)
        self._watch_producer(block, update)
        if is_better_tip(node, self.head) and self.descends_from_lib(node):
            self._switch_to(node, update)
        outcome: Outcome = "connected" if self.head is node else "side"
        return BlockResult(root, outcome, height=node.height)

    def _check_and_apply(self, block: DposBlock, now_ms: int, trusted: bool
                         ) -> DposNode | None:
        """The new tree node, None for an orphan, or raise (the tree unchanged)."""
        # [IGNORE] the slot has started on our clock (give or take the allowed drift)
        latest = self.spec.slot_at(now_ms + self.spec.max_future_slot_ms)
        if block.slot > latest and not trusted:
            raise FutureSlot(f"slot {block.slot} has not started (now slot "
                             f"{self.spec.slot_at(now_ms)})")
        parent = self.blocks.get(block.parent_root)
        if parent is None:
            return None
        # [IGNORE] the parent is on the branch of our last irreversible block
        if parent.state is None or not self.descends_from_lib(parent):
            raise ConflictsWithIrreversible(f"parent at height {parent.height} is not on the "
                                            f"branch of irreversible block {self.lib.height}")
        checks = TRUSTED if trusted else self.checks
        state = process_block(parent.state, block, self.spec, checks)
        self._seq += 1
        node = DposNode(block, block.root, block.slot, parent.height + 1, self._seq, parent,
                        state, archive=self.archive)
        parent.children.append(node)
        self.blocks[node.root] = node
        return node

    def _watch_producer(self, block: DposBlock, update: DposChainUpdate) -> None:
        """Remember the first block per (producer, slot); a second one is evidence."""
        key = (block.producer, block.slot)
        first = self._headers.get(key)
        if first is None:
            self._headers[key] = block.signed_header
            while len(self._headers) > MAX_WATCHED_HEADERS:    # while the LIB stalls
                self._headers.popitem(last=False)
            return
        evidence = DoubleProduction(first, block.signed_header)
        if self.on_evidence(evidence).outcome == "accept":
            update.evidence.append(evidence)

    def _switch_to(self, new_head: DposNode, update: DposChainUpdate) -> None:
        path = reorg_path(self.head, new_head)
        if path.revert:
            update.reorgs.append(Reorg(
                depth=path.depth, old_head=self.head.root, new_head=new_head.root,
                common_ancestor=path.common_ancestor.root,
                common_height=path.common_ancestor.height,
                reverted=[n.root for n in path.revert], applied=[n.root for n in path.apply]))
        for node in path.revert:
            update.reverted_txs.extend(node.block.body.transactions)
        for node in path.apply:
            update.applied_txs.extend(node.block.body.transactions)
            self._report_missed(node, update)
        del self._main[path.common_ancestor.height + 1:]
        self._main.extend(path.apply)
        self.head = new_head
        lib_height = self.state.lib_height
        if lib_height > self.lib.height:
            self.lib = self._main[lib_height]
        self._tidy_pools()

    def _report_missed(self, node: DposNode, update: DposChainUpdate) -> None:
        parent = node.parent
        if parent is None or parent.state is None:
            return
        first = max(parent.slot + 1, node.slot - MAX_REPORTED_MISSES)
        for slot in range(first, node.slot):
            update.missed.append((slot, get_scheduled_producer(
                parent.state.schedule, slot, self.spec.repetitions)))

    def _tidy_pools(self) -> None:
        state = self.state
        stale = [r for r, op in self.operations.items()
                 if op.nonce < state.ledger.nonce(op.account)]
        for root in stale:
            del self.operations[root]
        done = [r for r, e in self.evidence.items() if (e.offender, e.slot) in state.offences]
        for root in done:
            del self.evidence[root]

    def _prune(self) -> None:
        """Drop the states below the LIB and of branches that conflict with it, and the watched
        headers of slots no block can take any more."""
        for key in [k for k in self._headers if k[1] <= self.lib.slot]:
            del self._headers[key]
        node: DposNode | None = self.lib.parent
        while node is not None and node.state is not None:
            node.state = None
            self._states_dropped += 1
            for child in node.children:
                if not self.is_on_main_chain(child):
                    self._states_dropped += sum(_drop_state(dead) for dead in _subtree(child))
            node = node.parent


def _subtree(root: DposNode) -> list[DposNode]:
    out, stack = [], [root]
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(current.children)
    return out


def _drop_state(node: DposNode) -> int:
    if node.state is None:
        return 0
    node.state = None
    return 1


def _release_body(node: DposNode) -> int:
    if node.body is None:
        return 0
    node.body = None
    return 1

