"""The node's PoW chain: consensus rules + block store + mempool + events, in one place.

Every block, whatever its source (the local miner, gossip, sync, or the store at start-up), goes
through `submit_block`, which runs the consensus handler, persists what entered the block tree
before anything is announced, updates the mempool, and emits the events observers rely on. The
constructor and the views shared with PoS are in node/chain_service_base.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from consensus.block_tree import ancestor, common_ancestor
from consensus.chain_spec import ChainSpec
from consensus.pow import hash_from_hex, hash_hex
from consensus.pow_chain import ChainUpdate, PowChain
from consensus.types import Block, Transaction
from node.chain_service_base import LOCAL, ChainServiceBase

log = logging.getLogger(__name__)


class ChainService(ChainServiceBase[ChainSpec, PowChain]):
    def _new_chain(self, verify_tx: Callable[[Transaction], bool], max_orphans: int) -> PowChain:
        return PowChain(self.spec, verify_tx=verify_tx, max_orphans=max_orphans,
                        archive=self.archive)

    def decode_block(self, raw: bytes) -> Block:
        """A block from the wire or the store (the hybrid service decodes its own kind)."""
        return Block.deserialize(raw, self.spec.max_block_bytes)

    @staticmethod
    def show_id(block_id: bytes) -> str:
        return hash_hex(block_id)

    def load(self) -> int:
        """Replay the stored blocks; returns how many. Runs before the node joins the network."""
        self.store.check_network(self.spec.chain_id, hash_hex(self.chain.genesis_hash))
        count = 0
        indexed: list[tuple[bytes, bytes]] = []
        for raw, _received in self.store.iter_blocks():
            block = self.decode_block(raw)
            self.chain.on_block(block, int(self.clock()), trusted=True)
            indexed.extend((tx.txid, block.hash) for tx in block.transactions[1:])
            self.chain.release_deep_blocks()
            count += 1
        self.store.index_transactions(indexed)   # a store written before the index had one
        self.mempool.on_new_head(self.chain.ledger, [])
        return count

    def submit_block(self, block: Block, source: str = LOCAL) -> ChainUpdate:
        now = self.clock()
        update = self.chain.on_block(block, int(now))
        for result in update.results:
            hex_hash = hash_hex(result.block_hash)
            if result.outcome in ("connected", "side"):
                entry = self.chain.get(result.block_hash)
                assert entry is not None
                self.store.put_block(result.block_hash, entry.height, entry.block.serialize(), now,
                                     [tx.txid for tx in entry.block.transactions[1:]])
                self.events.emit("block_accepted", hash=hex_hash, height=entry.height,
                                 parent=hash_hex(entry.block.header.prev_hash),
                                 peer=source, main_chain=result.outcome == "connected",
                                 txs=len(entry.block.transactions),
                                 miner=entry.block.transactions[0].recipient.hex(),
                                 delay_ms=round((now - entry.time) * 1000, 1))
            elif result.outcome in ("rejected", "invalidated"):
                self.block_rejected(result.block_hash, result.reason, source)
            elif result.outcome == "orphan":
                self.events.emit("block_orphaned", hash=hex_hash, peer=source,
                                 parent=hash_hex(block.header.prev_hash))
        self.release_memory()
        for reorg in update.reorgs:
            self.reorgs_total += 1
            log.info("reorg depth %d: %s -> %s (common ancestor %s at height %d)", reorg.depth,
                     hash_hex(reorg.old_head)[:16], hash_hex(reorg.new_head)[:16],
                     hash_hex(reorg.common_ancestor)[:16], reorg.common_height)
            self.events.emit("reorg", depth=reorg.depth, old_head=hash_hex(reorg.old_head),
                             new_head=hash_hex(reorg.new_head),
                             common_ancestor=hash_hex(reorg.common_ancestor),
                             common_height=reorg.common_height,
                             reverted=[hash_hex(h) for h in reorg.reverted],
                             applied=[hash_hex(h) for h in reorg.applied])
        if update.head_changed:
            head = self.chain.head
            self.events.emit("head_changed", head=hash_hex(head.hash), height=head.height,
                             total_work=str(head.total_work),
                             previous=hash_hex(update.old_head))
            self.tidy.schedule(update.reverted_txs)
        return update

    def release_memory(self) -> None:
        """Bodies and undo data deep below the head leave memory (all of this call's blocks
        are stored by now); the hybrid chain follows the same rule."""
        self.chain.release_deep_blocks()

    # ---- read-only views for the API (PoS has the same methods) --------------------------------
    def block_json(self, text: str) -> dict | None:
        """A block by its displayed hash; None when unknown; ValueError for a malformed hash."""
        entry = self.chain.get(hash_from_hex(text))
        if entry is None:
            return None
        chain = self.chain
        out = entry.block.to_json(entry.height)
        out["status"] = entry.status
        out["main_chain"] = chain.is_on_main_chain(entry)
        out["total_work"] = str(entry.total_work)
        out["confirmations"] = chain.head.height - entry.height + 1 if out["main_chain"] else 0
        return out

    def headers_json(self, start: int, end: int) -> list[dict]:
        chain = self.chain
        end = min(end, chain.head.height)
        headers = []
        node = ancestor(chain.head, end) if end >= start else None
        while node is not None and node.height >= start:
            item = node.header.to_json()       # from the index: no body read back
            item["height"] = node.height
            item["txs"] = node.tx_count
            headers.append(item)
            node = node.parent
        headers.reverse()
        return headers

    def tips_json(self) -> list[dict]:
        chain = self.chain
        tips: list[dict[str, Any]] = []
        for tip in chain.tree.tips():
            fork = common_ancestor(tip, chain.head)
            status = "active" if tip is chain.head else (
                "invalid" if tip.status == "invalid" else
                "valid-fork" if tip.status == "valid" else "headers-only")
            tips.append({"hash": hash_hex(tip.hash), "height": tip.height, "status": status,
                         "branchlen": tip.height - fork.height, "total_work": str(tip.total_work)})
        tips.sort(key=lambda t: -t["height"])
        return tips

