"""The chain's archive of block bodies that left memory (consensus/block_archive.py): reads them
back from the block store by id, through a bounded LRU cache of decoded blocks, so the API or a
peer syncing old blocks costs one SQLite read and a decode per block not recently asked for.

It also keeps a PoW chain's undo data for main-chain blocks deeper than the chain's window
(`put_undo`, `load_undo`: written to SQLite at once, never cached), so a deep reorg can revert them.

Bound: `max_blocks` decoded blocks (256 by default: a sync batch and its neighbours). The chain
calls it only for bodies it dropped, which the node stored before announcing them; a body missing
from the store is raised as `BodyUnavailable` (a broken store, never a peer's fault).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

import msgpack

from consensus.block_archive import BodyUnavailable
from consensus.ledger import BlockUndo
from node.store import BlockStore

B = TypeVar("B")
DEFAULT_ARCHIVE_CACHE_BLOCKS = 256


class StoreArchive(Generic[B]):
    def __init__(self, store: BlockStore, decode: Callable[[bytes], B],
                 max_blocks: int = DEFAULT_ARCHIVE_CACHE_BLOCKS) -> None:
        self.store = store
        self.decode = decode
        self.max_blocks = max_blocks
        self._cache: OrderedDict[bytes, B] = OrderedDict()
        self.reads = 0          # bodies read from SQLite (cache misses), for /status and tests

    def __len__(self) -> int:
        return len(self._cache)

    def load_block(self, block_id: bytes) -> B:
        block = self._cache.get(block_id)
        if block is not None:
            self._cache.move_to_end(block_id)
            return block
        raw = self.store.get_raw(block_id)
        if raw is None:
            raise BodyUnavailable(f"block {block_id.hex()[:16]} is neither in memory nor stored")
        self.reads += 1
        block = self.decode(raw)
        self._cache[block_id] = block
        while len(self._cache) > self.max_blocks:
            self._cache.popitem(last=False)
        return block

    def put_undo(self, block_id: bytes, undo: BlockUndo) -> None:
        rows = [[account, balance, nonce] for account, (balance, nonce) in undo.previous.items()]
        self.store.put_undo(block_id, msgpack.packb([undo.block_hash, rows]))

    def load_undo(self, block_id: bytes) -> BlockUndo:
        raw = self.store.get_undo(block_id)
        if raw is None:
            raise BodyUnavailable(f"no undo data stored for block {block_id.hex()[:16]}")
        block_hash, rows = msgpack.unpackb(raw, raw=False, strict_map_key=True)
        return BlockUndo(block_hash, {account: (balance, nonce)
                                      for account, balance, nonce in rows})
