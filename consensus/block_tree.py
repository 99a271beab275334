"""The tree of known PoW blocks (every branch, not just the best one), and the walks along parent
links that both chains' block trees use (`ancestor`, `common_ancestor`).

A `BlockEntry` exists for every block whose header passed validation and whose parent is known;
`status` records whether its transactions were validated by connecting it to the best chain.
Orphans (parent unknown) wait outside the tree, in `consensus.orphan_pool.OrphanPool`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, Self, TypeVar

from consensus.block_archive import BlockArchive, BodyUnavailable
from consensus.errors import Violation
from consensus.types import Block, BlockHeader

Status = Literal["valid", "unvalidated", "invalid"]


class TreeNode(Protocol):
    """A block in a tree of blocks: the PoW `BlockEntry` and the PoS `BlockNode` both are."""

    @property
    def height(self) -> int: ...

    @property
    def parent(self) -> Self | None: ...


N = TypeVar("N", bound=TreeNode)


def parent_of(node: N) -> N:
    """The parent of a block above genesis; the walks below never go past their target."""
    parent = node.parent
    if parent is None:
        raise ValueError(f"the block at height {node.height} has no parent")
    return parent


def ancestor(node: N, height: int) -> N:
    """The ancestor of `node` at `height` (walks parents; heights here are small)."""
    if height > node.height or height < 0:
        raise ValueError(f"no ancestor at height {height} of a block at {node.height}")
    while node.height > height:
        node = parent_of(node)
    return node


def common_ancestor(a: N, b: N) -> N:
    """The highest block that both `a` and `b` descend from (or are)."""
    while a.height > b.height:
        a = parent_of(a)
    while b.height > a.height:
        b = parent_of(b)
    while a is not b:
        a, b = parent_of(a), parent_of(b)
    return a


@dataclass(eq=False)
class BlockEntry:
    """A block in the tree. The entry itself (header, height, work, links) is the per-block
    index kept for every known block; `body` (the block) may leave memory once the block is deep
    enough that the rules no longer need it (`PowChain` with an archive), and `.block` then reads
    it back from `archive`."""
    body: Block | None
    height: int
    total_work: int
    seq: int                      # arrival order: equal work keeps the tip seen first
    parent: BlockEntry | None
    status: Status = "unvalidated"
    invalid_reason: str = ""
    invalid_violation: Violation | None = None
    children: list[BlockEntry] = field(default_factory=list)
    archive: BlockArchive[Block] | None = None
    header: BlockHeader = field(init=False)
    hash: bytes = field(init=False)
    tx_count: int = field(init=False)

    def __post_init__(self) -> None:
        if self.body is None:
            raise ValueError("a block enters the tree with its body")
        self.header = self.body.header
        self.hash = self.body.hash
        self.tx_count = len(self.body.transactions)

    @property
    def block(self) -> Block:
        if self.body is not None:
            return self.body
        if self.archive is None:
            raise BodyUnavailable(f"block {self.hash[::-1].hex()[:16]} left memory, no archive")
        return self.archive.load_block(self.hash)

    @property
    def time(self) -> int:
        return self.header.time

    @property
    def bits(self) -> int:
        return self.header.bits


class BlockTree:
    def __init__(self, genesis: Block, genesis_work: int,
                 archive: BlockArchive[Block] | None = None) -> None:
        self.archive = archive
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
        entry = BlockEntry(block, parent.height + 1, parent.total_work + work, self._next_seq,
                           parent, archive=self.archive)
        self._next_seq += 1
        parent.children.append(entry)
        self._entries[block.hash] = entry
        return entry

    def tips(self) -> list[BlockEntry]:
        return [e for e in self._entries.values() if not e.children]

    @staticmethod
    def median_time_past(entry: BlockEntry, span: int = 11) -> int:
        """Median timestamp of `entry` and up to span-1 ancestors (Bitcoin's GetMedianTimePast)."""
        times: list[int] = []
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

