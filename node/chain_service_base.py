"""What the PoW, PoS and DPoS chain services share: how one is built, how a refused block is
recorded, and the read-only views the API serves alike for all.

A service owns its consensus chain (`PowChain`, `PosChain` or `DposChain`, made by `_new_chain`),
the block store, the mempool (kept in step with the head by `HeadTidy`), the event bus, the
counters that /status reports, and the archive that reads old bodies back from the store; the
index of which blocks hold a transaction is in the store (SQLite), not in memory.
node/chain_service.py, node/pos_service.py and node/dpos_service.py add what differs: how blocks
come in and which events they raise.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from consensus.chain_spec import ChainSpec
from consensus.dpos.chain import DposChain
from consensus.dpos.spec import DposSpec
from consensus.orphan_pool import DEFAULT_MAX_ORPHANS
from consensus.pos.chain import PosChain
from consensus.pos.signing import SignatureCache
from consensus.pos.spec import PosSpec
from consensus.pow_chain import PowChain
from consensus.types import Transaction
from node.block_archive import StoreArchive
from node.chain_views import account_view, transaction_view
from node.events import EventBus
from node.head_tidy import HeadTidy
from node.mempool import Mempool
from node.store import BlockStore

log = logging.getLogger(__name__)

LOCAL = "local"     # the `peer` of what this node made itself

SpecT = TypeVar("SpecT", bound=ChainSpec | PosSpec | DposSpec)
ChainT = TypeVar("ChainT", bound=PowChain | PosChain | DposChain)


class ChainServiceBase(ABC, Generic[SpecT, ChainT]):
    def __init__(self, spec: SpecT, store: BlockStore, events: EventBus, mempool: Mempool,
                 clock: Callable[[], float], *, max_orphans: int = DEFAULT_MAX_ORPHANS,
                 signature_cache: SignatureCache | None = None) -> None:
        self.spec = spec
        self.store = store
        self.events = events
        self.mempool = mempool
        self.clock = clock
        self.archive: StoreArchive = StoreArchive(store, self.decode_block)
        # votes' signature cache for the chain (PoS, hybrid); None = the chain makes its own
        self.signature_cache = signature_cache
        self.chain: ChainT = self._new_chain(mempool.verified.verify, max_orphans)
        self.tidy = HeadTidy(mempool, lambda: self.chain.ledger)
        self.head_listeners = self.tidy.listeners   # called after each head change
        self.rejected_total = 0
        self.reorgs_total = 0

    @abstractmethod
    def _new_chain(self, verify_tx: Callable[[Transaction], bool], max_orphans: int) -> ChainT:
        """The consensus chain at genesis of `self.spec`."""

    @abstractmethod
    def decode_block(self, raw: bytes) -> Any:
        """A block of this chain's kind from the wire or the store."""

    @staticmethod
    @abstractmethod
    def show_id(block_id: bytes) -> str:
        """A block id as the API and events show it (PoW byte-reversed hex, PoS plain hex)."""

    def block_rejected(self, block_id: bytes, reason: str, source: str) -> None:
        """Count, log and announce a block refused by the rules or by the wire checks."""
        self.rejected_total += 1
        shown = self.show_id(block_id)
        log.warning("rejected block %s from %s: %s", shown[:16], source[:16], reason)
        self.events.emit("block_rejected", hash=shown, reason=reason, peer=source)

    def submit_transaction(self, tx: Transaction) -> bytes:
        """Admit to the mempool or raise InvalidTransaction with the reason."""
        return self.mempool.add(tx, self.chain.ledger)

    # ---- read-only views for the API -----------------------------------------------------------
    @property
    def head_height(self) -> int:
        return self.chain.head.height

    def account_json(self, account: bytes) -> dict:
        return account_view(self.chain, self.mempool, account)

    def transaction_status(self, txid: bytes) -> dict:
        return transaction_view(self.chain, self.mempool, self.store.blocks_with_tx, txid,
                                self.show_id)

    def raw_block(self, entry: Any) -> bytes:
        """A known block's bytes for sync: from memory when its body is there, else from the
        store as it was written (no decode, no cache churn)."""
        if not hasattr(entry, "body"):
            return entry.block.serialize()   # a chain that keeps every body
        if entry.body is not None:
            return entry.body.serialize()
        raw = self.store.get_raw(entry.hash)
        if raw is None:
            return entry.block.serialize()   # raises BodyUnavailable if truly gone
        return raw
