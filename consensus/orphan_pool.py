"""The bounded pool of orphan blocks (parent unknown), shared by the PoW and the PoS chain.

A block whose parent we lack waits here until the parent arrives (the chain then takes its
children out with `pop_children`) or until it is evicted. The pool holds at most `max_blocks`
blocks (`DEFAULT_MAX_ORPHANS` unless the node config says otherwise); when full, the oldest
arrival goes first, so a peer that floods us with parentless blocks can cost us no more than that
many blocks of memory, and cannot pin one block there forever (Bitcoin Core's orphan limits
follow the same idea). Blocks are identified by the caller's id (PoW block hash, PoS block root),
so one pool serves both chains.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

DEFAULT_MAX_ORPHANS = 256

B = TypeVar("B")


class OrphanPool(Generic[B]):
    """At most `max_blocks` blocks whose parent is unknown, in arrival order; the oldest is
    evicted first."""

    def __init__(self, max_blocks: int = DEFAULT_MAX_ORPHANS) -> None:
        self.max_blocks = max_blocks
        # block id -> (parent id, block), oldest first
        self._blocks: OrderedDict[bytes, tuple[bytes, B]] = OrderedDict()

    def __contains__(self, block_id: bytes) -> bool:
        return block_id in self._blocks

    def __len__(self) -> int:
        return len(self._blocks)

    def add(self, block_id: bytes, parent_id: bytes, block: B) -> None:
        """Keep `block` until its parent arrives. A block already waiting keeps its place in the
        eviction order (re-announcing it does not make it younger)."""
        if block_id in self._blocks:
            return
        self._blocks[block_id] = (parent_id, block)
        while len(self._blocks) > self.max_blocks:
            self._blocks.popitem(last=False)

    def pop_children(self, parent_id: bytes) -> list[B]:
        """Take out the blocks waiting for `parent_id`, in arrival order."""
        children = [(block_id, block) for block_id, (parent, block) in self._blocks.items()
                    if parent == parent_id]
        for block_id, _block in children:
            del self._blocks[block_id]
        return [block for _block_id, block in children]
