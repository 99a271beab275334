"""Where block bodies that left memory are read back from: a protocol the node implements over
its block store (node/block_archive.py), so the rules stay free of files and SQLite.

A chain keeps in memory a per-block index (id, parent, height, slot or header) for every block it
knows, and the bodies only where the rules may still need them: the unfinalized window (PoS), the
blocks from the last irreversible block up (DPoS) or the last blocks below the head (PoW). An
older body is asked of the archive when something reads it -- the API, sync, a reorg deeper than
the window. Every body the archive is asked for was stored by the node before the chain let go of
it, so a missing one is a broken store, not input.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from consensus.errors import ConsensusError
from consensus.ledger import BlockUndo

B = TypeVar("B", covariant=True)
Body = TypeVar("Body")


class BodyUnavailable(ConsensusError, LookupError):
    """A body that left memory is not in the archive (the store lost it)."""


class BlockArchive(Protocol[B]):
    def load_block(self, block_id: bytes) -> B:
        """The block `block_id`, or raise BodyUnavailable."""
        ...


class PowArchive(BlockArchive[B], Protocol[B]):
    """A PoW chain's archive also keeps the undo data of main-chain blocks that left memory, so
    a reorg deeper than the in-memory window can still revert them."""

    def put_undo(self, block_id: bytes, undo: BlockUndo) -> None:
        """Keep `undo` (written before the chain lets go of it)."""
        ...

    def load_undo(self, block_id: bytes) -> BlockUndo:
        """The undo data put for `block_id`, or raise BodyUnavailable."""
        ...


def body_or_archived(body: Body | None, archive: BlockArchive[Body] | None, root: bytes) -> Body:
    """A block index entry's body: the one in memory, else the archive's copy (BodyUnavailable
    when the entry has neither)."""
    if body is not None:
        return body
    if archive is None:
        raise BodyUnavailable(f"block {root.hex()[:16]} left memory and no archive")
    return archive.load_block(root)
