"""The PoW chain state machine: `on_block(chain, block, now)` validates a block, files it in the
block tree (or the orphan pool), and moves the best chain and the ledger when fork choice says so.

Invariants:
- a rejected block leaves the chain exactly as it was;
- the ledger always equals genesis + the blocks from genesis to `head`, applied in order;
- switching branches reverts to the common ancestor and applies the new branch as one step: if a
  block on the new branch turns out invalid, that block and its descendants are marked invalid and
  the ledger returns to the best remaining valid chain, so no half-applied branch is ever visible.

The hybrid chain (consensus/hybrid/chain.py) is this chain with Casper FFG on top: it overrides the
few hooks below (`_new_update`, `_place`, `_is_better`, `_best_tip`, `_apply`, `_revert`) and
nothing else, so both run the same Bitcoin rules.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from consensus import pow
from consensus.block_archive import PowArchive
from consensus.block_tree import BlockEntry, BlockTree, ancestor, parent_of
from consensus.chain_spec import ChainSpec
from consensus.errors import InvalidBlock, TimeTooNew, Violation
from consensus.fork_choice import best_tip, is_better_tip, reorg_path
from consensus.ledger import BlockUndo, Ledger
from consensus.orphan_pool import DEFAULT_MAX_ORPHANS, OrphanPool
from consensus.types import Block, Transaction, verify_transaction_signature

KEEP_BODIES_DEPTH = 64   # bodies and undo data this far below the head stay in memory
Outcome = Literal["connected", "side", "orphan", "duplicate", "rejected", "invalidated"]


@dataclass(frozen=True)
class BlockResult:
    block_hash: bytes
    outcome: Outcome
    reason: str = ""          # for people: logs and events
    height: int | None = None
    temporary: bool = False   # rejected only for now (timestamp ahead of our clock): may retry
    violation: Violation | None = None   # rejected, invalidated, orphan: the kind of rule broken


@dataclass(frozen=True)
class Reorg:
    depth: int
    old_head: bytes
    new_head: bytes
    common_ancestor: bytes
    common_height: int
    reverted: list[bytes]
    applied: list[bytes]


@dataclass
class ChainUpdate:
    """What one `on_block` call did, for the node to persist, announce and log."""
    results: list[BlockResult] = field(default_factory=list)
    old_head: bytes = b""
    new_head: bytes = b""
    reorgs: list[Reorg] = field(default_factory=list)
    reverted_txs: list[Transaction] = field(default_factory=list)
    applied_txs: list[Transaction] = field(default_factory=list)
    missing_parent: bytes | None = None

    @property
    def head_changed(self) -> bool:
        return self.old_head != self.new_head

    @property
    def stored(self) -> list[BlockResult]:
        """Results for blocks that entered the tree (to be persisted)."""
        return [r for r in self.results if r.outcome in ("connected", "side")]


class PowChain:
    def __init__(self, spec: ChainSpec, *,
                 verify_tx: Callable[[Transaction], bool] = verify_transaction_signature,
                 max_orphans: int = DEFAULT_MAX_ORPHANS,
                 archive: PowArchive[Block] | None = None,
                 keep_depth: int = KEEP_BODIES_DEPTH) -> None:
        """`archive`: where bodies and undo data more than `keep_depth` blocks below the head go
        (`release_deep_blocks`); without one, every body and undo record stays in memory."""
        self.spec = spec
        self.verify_tx = verify_tx
        self.archive = archive
        self.keep_depth = keep_depth
        self._with_body: list[tuple[int, int, BlockEntry]] = []   # heap: (height, seq, entry)
        self._bodies_released = 0   # so /status counts bodies in memory without a walk
        genesis = spec.genesis_block()
        self.tree = BlockTree(genesis, pow.block_work(genesis.header.bits), archive)
        self.orphans: OrphanPool[Block] = OrphanPool(max_orphans)
        self.ledger = Ledger()
        self.ledger.apply_genesis(genesis)
        self.head: BlockEntry = self.tree.genesis
        self._undo: dict[bytes, BlockUndo] = {}
        self._trusted = False

    @property
    def genesis_hash(self) -> bytes:
        return self.tree.genesis.hash

    # ---- queries -------------------------------------------------------------------------------
    def get(self, block_hash: bytes) -> BlockEntry | None:
        return self.tree.get(block_hash)

    def main_chain_at(self, height: int) -> BlockEntry | None:
        if not 0 <= height <= self.head.height:
            return None
        return ancestor(self.head, height)

    def is_on_main_chain(self, entry: BlockEntry) -> bool:
        return entry.height <= self.head.height and self.main_chain_at(entry.height) is entry

    def locator(self) -> list[bytes]:
        """Bitcoin's block locator: dense for the last 10 blocks, then exponentially sparser."""
        hashes, step, height = [], 1, self.head.height
        while height > 0:
            hashes.append(ancestor(self.head, height).hash)
            if len(hashes) >= 10:
                step *= 2
            height -= step
        hashes.append(self.genesis_hash)
        return hashes

    def blocks_after(self, locator: list[bytes], limit: int) -> list[BlockEntry]:
        """Main-chain blocks after the first locator hash we have on our main chain."""
        start = self.tree.genesis
        for block_hash in locator:
            entry = self.tree.get(block_hash)
            if entry is not None and self.is_on_main_chain(entry):
                start = entry
                break
        end = min(self.head.height, start.height + limit)
        if end <= start.height:
            return []
        out, node = [], ancestor(self.head, end)
        while node is not start:
            out.append(node)
            node = parent_of(node)
        out.reverse()
        return out

    def expected_bits(self, parent: BlockEntry) -> int:
        """Bits required of the child of `parent` (retarget every `retarget_window` blocks)."""
        height = parent.height + 1
        if height % self.spec.retarget_window != 0:
            return parent.bits
        # Bitcoin measures the window from (window - 1) blocks back: the famous off-by-one, kept.
        first = ancestor(parent, max(0, parent.height - (self.spec.retarget_window - 1)))
        return pow.next_bits(parent.bits, first.time, parent.time,
                             target_timespan=self.spec.target_timespan_s,
                             pow_limit=self.spec.pow_limit)

    def next_block_time(self, now: int) -> int:
        """The timestamp a miner should use now: the clock, but above the median time past."""
        return max(now, BlockTree.median_time_past(self.head, self.spec.median_time_span) + 1)

    def release_deep_blocks(self) -> int:
        """Let bodies more than `keep_depth` below the head leave memory (every branch), and move
        the undo data of main-chain blocks that deep to the archive. Call it once the blocks are
        stored (the archive reads them back from there). A reorg deeper than the window still
        works: `.block` and `_disconnect` read back what left. Returns how many bodies left."""
        if self.archive is None:
            return 0
        cutoff = self.head.height - self.keep_depth
        released = 0
        while self._with_body and self._with_body[0][0] < cutoff:
            _height, _seq, entry = heapq.heappop(self._with_body)
            if entry.body is not None:
                entry.body = None
                released += 1
        self._bodies_released += released
        if cutoff > 0:
            node: BlockEntry | None = ancestor(self.head, cutoff - 1)
            while node is not None and node.hash in self._undo:
                self.archive.put_undo(node.hash, self._undo.pop(node.hash))
                node = node.parent
        return released

    def memory_items(self) -> dict[str, int]:
        """What the chain holds in memory, by kind (for /status)."""
        return {"blocks_indexed": len(self.tree),
                "bodies": len(self.tree) - self._bodies_released,
                "undo": len(self._undo), "orphans": len(self.orphans)}

    # ---- the handler ---------------------------------------------------------------------------
    def on_block(self, block: Block, now: int, *, trusted: bool = False) -> ChainUpdate:
        """Handle one block (and any orphans it unlocks). `now` is the node's clock in seconds.

        `trusted` is for replaying blocks this node stored itself: PoW and signatures were checked
        when they were first accepted.
        """
        update = self._new_update()
        self._trusted = trusted
        pending = [block]
        while pending:
            current = pending.pop(0)
            result = self._add_block(current, now, trusted, update)
            update.results.append(result)
            if result.outcome in ("connected", "side"):
                pending.extend(self.orphans.pop_children(current.hash))
        update.new_head = self.head.hash
        return update

    def _add_block(self, block: Block, now: int, trusted: bool, update: ChainUpdate) -> BlockResult:
        block_hash = block.hash
        existing = self.tree.get(block_hash)
        if existing is not None:
            if existing.status == "invalid":
                return BlockResult(block_hash, "rejected", "block is known to be invalid",
                                   violation=Violation.KNOWN_INVALID)
            return BlockResult(block_hash, "duplicate", height=existing.height)
        if block_hash in self.orphans:
            return BlockResult(block_hash, "duplicate")
        try:
            self._check_block_alone(block, trusted)
        except InvalidBlock as exc:
            return BlockResult(block_hash, "rejected", str(exc), violation=exc.violation)
        parent = self.tree.get(block.header.prev_hash)
        if parent is None:
            self.orphans.add(block_hash, block.header.prev_hash, block)
            update.missing_parent = block.header.prev_hash
            return BlockResult(block_hash, "orphan", "parent unknown",
                               violation=Violation.MISSING_PARENT)
        try:
            self._check_header_in_context(block, parent, now, trusted)
        except TimeTooNew as exc:
            return BlockResult(block_hash, "rejected", str(exc), temporary=True,
                               violation=exc.violation)
        except InvalidBlock as exc:
            return BlockResult(block_hash, "rejected", str(exc), violation=exc.violation)
        entry = self.tree.add(block, parent, pow.block_work(block.header.bits))
        if self.archive is not None:
            heapq.heappush(self._with_body, (entry.height, entry.seq, entry))
        return self._place(entry, update)

    # ---- hooks (the hybrid chain overrides these) ----------------------------------------------
    def _new_update(self) -> ChainUpdate:
        return ChainUpdate(old_head=self.head.hash)

    def _place(self, entry: BlockEntry, update: ChainUpdate) -> BlockResult:
        """A block just entered the tree: make it the head if fork choice says so."""
        if not self._is_better(entry, self.head):
            return BlockResult(entry.hash, "side", height=entry.height)
        self._switch_to(entry, update)
        if entry.status == "invalid":
            return BlockResult(entry.hash, "invalidated", entry.invalid_reason, entry.height,
                               violation=entry.invalid_violation)
        return BlockResult(entry.hash, "connected", height=entry.height)

    def _is_better(self, candidate: BlockEntry, current: BlockEntry) -> bool:
        return is_better_tip(candidate, current)

    def _best_tip(self) -> BlockEntry:
        # All entries, not just tips: a block whose only children are invalid (such as the
        # old head) is a tip for fork choice, and the tips alone may all be invalid.
        return best_tip(self.tree.entries())

    def _apply(self, entry: BlockEntry, verify: Callable[[Transaction], bool]) -> BlockUndo:
        """Apply a block's effects on top of the head, or raise InvalidBlock changing nothing."""
        return self.ledger.apply_block(entry.block, entry.height, self.spec.block_reward,
                                       verify=verify)

    def _revert(self, entry: BlockEntry, undo: BlockUndo) -> None:
        self.ledger.revert_block(undo)

    def _check_block_alone(self, block: Block, trusted: bool) -> None:
        """Rules that need no other block."""
        # [REJECT] block fits the size limit
        if block.size > self.spec.max_block_bytes:
            raise InvalidBlock(f"block of {block.size} bytes exceeds {self.spec.max_block_bytes}",
                               Violation.BLOCK_SIZE)
        # [REJECT] at least a coinbase
        if not block.transactions:
            raise InvalidBlock("block has no transactions", Violation.COINBASE)
        # [REJECT] header commits to the transactions
        if block.header.merkle_root != block.computed_merkle_root():
            raise InvalidBlock("merkle root does not match the transactions", Violation.MERKLE_ROOT)
        # [REJECT] no transaction twice
        if len({tx.txid for tx in block.transactions}) != len(block.transactions):
            raise InvalidBlock("duplicate transaction in block", Violation.DUPLICATE_TRANSACTION)
        # [REJECT] hash meets the target the header claims (sampled PoW, a simulation's spec:
        # the bits encode a valid target; their value and everything else is checked as always)
        if not trusted:
            reason = self.spec.check_work(block.hash, block.header.bits)
            if reason:
                raise InvalidBlock(f"invalid proof of work: {reason}", Violation.PROOF_OF_WORK)

    def _check_header_in_context(self, block: Block, parent: BlockEntry, now: int,
                                 trusted: bool) -> None:
        header = block.header
        # [REJECT] parent is not known to be invalid
        if parent.status == "invalid":
            raise InvalidBlock("parent block is invalid", Violation.INVALID_PARENT)
        expected = self.expected_bits(parent)
        # [REJECT] difficulty is the one retargeting requires
        if header.bits != expected:
            raise InvalidBlock(f"bits {header.bits:08x}, expected {expected:08x}",
                               Violation.DIFFICULTY)
        mtp = BlockTree.median_time_past(parent, self.spec.median_time_span)
        # [REJECT] timestamp above the median of the last 11 blocks
        if header.time <= mtp:
            raise InvalidBlock(f"timestamp {header.time} not above median time past {mtp}",
                               Violation.TIMESTAMP)
        # [REJECT] timestamp not too far in the future of our clock
        limit = now + self.spec.max_future_block_time_s
        if not trusted and header.time > limit:
            raise TimeTooNew(f"timestamp {header.time} is {header.time - now} s in the future "
                               f"(limit {self.spec.max_future_block_time_s} s)")

    # ---- moving the best chain -----------------------------------------------------------------
    def _switch_to(self, target: BlockEntry, update: ChainUpdate) -> None:
        """Make `target` the head, or the best valid tip if something on the way is invalid."""
        while True:
            path = reorg_path(self.head, target)
            old_head = self.head
            for entry in path.revert:
                self._disconnect(entry, update)
            failed = self._connect_all(path.apply, update)
            if failed is None:
                if path.revert:
                    update.reorgs.append(Reorg(
                        depth=path.depth, old_head=old_head.hash, new_head=self.head.hash,
                        common_ancestor=path.common_ancestor.hash,
                        common_height=path.common_ancestor.height,
                        reverted=[e.hash for e in path.revert],
                        applied=[e.hash for e in path.apply]))
                return
            # Undo the partial branch, restore the old chain, then retry with the best valid tip.
            while self.head is not path.common_ancestor:
                self._disconnect(self.head, update)
            for entry in reversed(path.revert):
                self._connect(entry, update)
            candidate = self._best_tip()
            if candidate is self.head or not self._is_better(candidate, self.head):
                return
            target = candidate

    def _connect_all(self, entries: list[BlockEntry], update: ChainUpdate) -> BlockEntry | None:
        for entry in entries:
            try:
                self._connect(entry, update)
            except InvalidBlock as exc:
                for marked in self.tree.mark_invalid(entry):
                    marked.invalid_reason = str(exc)
                    marked.invalid_violation = (exc.violation if marked is entry
                                                else Violation.INVALID_PARENT)
                return entry
        return None

    def _connect(self, entry: BlockEntry, update: ChainUpdate) -> None:
        trusted = entry.status == "valid" or self._trusted
        verify = _trust_signature if trusted else self.verify_tx
        undo = self._apply(entry, verify)
        entry.status = "valid"
        self._undo[entry.hash] = undo
        self.head = entry
        update.applied_txs.extend(entry.block.transactions[1:])

    def _disconnect(self, entry: BlockEntry, update: ChainUpdate) -> None:
        undo = self._undo.pop(entry.hash, None)
        if undo is None:
            assert self.archive is not None, "undo data leaves memory only into an archive"
            undo = self.archive.load_undo(entry.hash)
        self._revert(entry, undo)
        self.head = parent_of(entry)
        update.reverted_txs.extend(entry.block.transactions[1:])


def _trust_signature(tx: Transaction) -> bool:
    """Signature check for blocks already validated once (re-connect after a reorg, or replay)."""
    return True
