"""The tree of known blocks (every branch, not just the best one) and the bounded orphan pool.

A `BlockEntry` exists for every block whose header passed validation and whose parent is known;
`status` records whether its transactions were validated by connecting it to the best chain.
Orphans (parent unknown) wait in `OrphanPool`, which evicts its oldest entry when full so a peer
cannot grow it without bound.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from consensus.errors import Violation
from consensus.types import Block

Status = Literal["valid", "unvalidated", "invalid"]


@dataclass(eq=False)
class BlockEntry:
    block: Block
    height: int
    total_work: int
    seq: int                      # arrival order: equal work keeps the tip seen first
    parent: BlockEntry | None
    status: Status = "unvalidated"
    invalid_reason: str = ""
    invalid_violation: Violation | None = None
    children: list[BlockEntry] = field(default_factory=list)

    @property
    def hash(self) -> bytes:
        return self.block.hash

    @property
    def time(self) -> int:
        return self.block.header.time

    @property
    def bits(self) -> int:
        return self.block.header.bits


class BlockTree:
    def __init__(self, genesis: Block, genesis_work: int) -> None:
        self.genesis = BlockEntry(genesis, 0, genesis_work, 0, None, "valid")
        self._entries: dict[bytes, BlockEntry] = {genesis.hash: self.genesis}
        self._next_seq = 1

    def __contains__(self, block_hash: bytes) -> bool:
        return block_hash in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, block_hash: bytes) -> BlockEntry | None:
        return self._entries.get(block_hash)

    def entries(self) -> Iterator[BlockEntry]:
        return iter(self._entries.values())

    def add(self, block: Block, parent: BlockEntry, work: int) -> BlockEntry:
        entry = BlockEntry(block, parent.height + 1, parent.total_work + work, self._next_seq, parent)
        self._next_seq += 1
        parent.children.append(entry)
        self._entries[block.hash] = entry
        return entry

    def tips(self) -> list[BlockEntry]:
        return [e for e in self._entries.values() if not e.children]

    @staticmethod
    def ancestor(entry: BlockEntry, height: int) -> BlockEntry:
        """The ancestor of `entry` at `height` (walks parents; heights here are small)."""
        if height > entry.height or height < 0:
            raise ValueError(f"no ancestor at height {height} of a block at {entry.height}")
        while entry.height > height:
            entry = entry.parent  # type: ignore[assignment]
        return entry

    @staticmethod
    def common_ancestor(a: BlockEntry, b: BlockEntry) -> BlockEntry:
        while a.height > b.height:
            a = a.parent  # type: ignore[assignment]
        while b.height > a.height:
            b = b.parent  # type: ignore[assignment]
        while a is not b:
            a, b = a.parent, b.parent  # type: ignore[assignment]
        return a

    @staticmethod
    def median_time_past(entry: BlockEntry, span: int = 11) -> int:
        """Median timestamp of `entry` and up to span-1 ancestors (Bitcoin's GetMedianTimePast)."""
        times = []
        node: BlockEntry | None = entry
        while node is not None and len(times) < span:
            times.append(node.time)
            node = node.parent
        times.sort()
        return times[len(times) // 2]

    def mark_invalid(self, entry: BlockEntry) -> list[BlockEntry]:
        """Mark a block and all its descendants invalid; returns them."""
        marked, stack = [], [entry]
        while stack:
            node = stack.pop()
            node.status = "invalid"
            marked.append(node)
            stack.extend(node.children)
        return marked


class OrphanPool:
    """Blocks whose parent is unknown, bounded; connected when their parent arrives."""

    def __init__(self, max_blocks: int = 256) -> None:
        self.max_blocks = max_blocks
        self._blocks: OrderedDict[bytes, Block] = OrderedDict()

    def __contains__(self, block_hash: bytes) -> bool:
        return block_hash in self._blocks

    def __len__(self) -> int:
        return len(self._blocks)

    def add(self, block: Block) -> None:
        if block.hash in self._blocks:
            return
        self._blocks[block.hash] = block
        while len(self._blocks) > self.max_blocks:
            self._blocks.popitem(last=False)

    def pop_children(self, parent_hash: bytes) -> list[Block]:
        children = [b for b in self._blocks.values() if b.header.prev_hash == parent_hash]
        for child in children:
            del self._blocks[child.hash]
        return children
