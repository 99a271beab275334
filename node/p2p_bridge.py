"""Connects the PoW chain to the p2p host: gossip validators, block/tx publishing, and sync.

The validators translate consensus outcomes into gossip verdicts (consensus-specs style): a block
that entered the tree is accepted (and forwarded), a duplicate is ignored, an orphan is ignored and
triggers a sync from the peer that sent it, and a block or transaction that breaks a rule is
rejected, which penalises the sender. Rejects are counted by the kind of rule broken
(node/gossip_verdicts.py), never by the reason's text.
"""

from __future__ import annotations

import logging

from consensus.block_tree import BlockEntry
from consensus.errors import ConsensusError, DecodeError, Violation
from consensus.pow_chain import ChainUpdate
from consensus.types import Block, Transaction
from node.chain_service import ChainService
from node.gossip_verdicts import block_verdict, reject_block
from node.mining_strategy import MiningStrategy
from node.tx_gossip import TX_ANNOUNCE_BATCH_S, TX_TOPIC, validate_transaction_message
from p2p.gossip import GossipMessage, Verdict
from p2p.host import P2PHost
from p2p.sync import ChainStatus

log = logging.getLogger(__name__)

MAX_HELD_BLOCKS = 10_000
BLOCK_PUSH_PEERS = 3   # full blocks to 3 peers at once, announcements (inv) to the others
BLOCK_TOPIC = "block"


class PowBridge:
    def __init__(self, service: ChainService, host: P2PHost) -> None:
        self.service = service
        self.host = host
        self.strategy: MiningStrategy | None = None   # set by the node; adversarial roles
        self.held_blocks: list[tuple[Block, str]] = []  # peer blocks a withholder ignores
        host.add_topic(BLOCK_TOPIC, self.validate_block, announce=True, fetch=service.store.get_raw,
                       push_first=BLOCK_PUSH_PEERS)
        host.add_topic(TX_TOPIC, self.validate_transaction, announce=True,
                       batch_s=TX_ANNOUNCE_BATCH_S)
        host.set_sync_source(self)

    # ---- publishing ----------------------------------------------------------------------------
    def publish_block(self, block: Block) -> None:
        # our own new block: to every peer in full, ahead of any queued transactions
        self.host.publish(BLOCK_TOPIC, block.hash, block.serialize(), urgent=True)

    def publish_transaction(self, tx: Transaction) -> None:
        self.host.publish(TX_TOPIC, tx.txid, tx.serialize())

    # ---- gossip validators ---------------------------------------------------------------------
    async def validate_block(self, msg: GossipMessage) -> Verdict:
        try:
            block = self.service.decode_block(msg.payload)
        except DecodeError as exc:
            return reject_block(self.service, msg, f"malformed block: {exc}", exc.violation)
        # [REJECT] the announced id is the block's hash
        if block.hash != msg.msg_id:
            return reject_block(self.service, msg, "announced id does not match the block hash",
                                Violation.WRONG_ID)
        if self.strategy is not None and self.strategy.holds_peer_blocks:
            if len(self.held_blocks) < MAX_HELD_BLOCKS:
                self.held_blocks.append((block, msg.peer_id))
            return Verdict.ignore("held back by the withhold role", category="held back")
        result = self.submit_peer_block(block, msg.peer_id).results[0]
        if result.outcome == "orphan":
            self.host.sync.request_sync(msg.peer_id)
        return block_verdict(result)

    def submit_peer_block(self, block: Block, peer_id: str) -> ChainUpdate:
        update = self.service.submit_block(block, peer_id)
        if self.strategy is not None:
            for result in update.results:
                if result.outcome in ("connected", "side") and result.height is not None:
                    self.strategy.on_peer_block(result.height)
        return update

    def release_held_blocks(self) -> int:
        held, self.held_blocks = self.held_blocks, []
        for block, peer_id in held:
            self.submit_peer_block(block, peer_id)
        return len(held)

    async def validate_transaction(self, msg: GossipMessage) -> Verdict:
        return validate_transaction_message(msg, self.service.submit_transaction)

    # ---- SyncSource ----------------------------------------------------------------------------
    def _private(self) -> set[bytes]:
        if self.strategy is None:
            return set()
        return {b.hash for b in self.strategy.private_blocks()}

    def public_head(self) -> BlockEntry:
        """The head as peers may know it: below any block an adversarial role keeps private."""
        head = self.service.chain.head
        private = self._private()
        while head.hash in private and head.parent is not None:
            head = head.parent
        return head

    def status(self) -> ChainStatus:
        head = self.public_head()
        # The wire carries 64-bit scores; testnet difficulties stay far below that.
        return ChainStatus(tip=head.hash, score=min(head.total_work, (1 << 63) - 1),
                           height=head.height)

    def locator(self) -> list[bytes]:
        return self.service.chain.locator()

    def blocks_after(self, locator: list[bytes], limit: int) -> list[bytes]:
        private = self._private()
        out = []
        for entry in self.service.chain.blocks_after(locator, limit):
            if entry.hash in private:
                break  # never leak a withheld branch through sync
            out.append(self.service.raw_block(entry))
        return out

    async def ingest(self, peer_id: str, payloads: list[bytes]) -> None:
        for raw in payloads:
            try:
                block = self.service.decode_block(raw)
            except ConsensusError as exc:
                log.warning("sync from %s: malformed block: %s", peer_id[:16], exc)
                return
            if self.strategy is not None and self.strategy.holds_peer_blocks:
                if len(self.held_blocks) < MAX_HELD_BLOCKS:
                    self.held_blocks.append((block, peer_id))
                continue
            update = self.submit_peer_block(block, peer_id)
            if update.results[0].outcome in ("rejected", "invalidated"):
                return  # the rest of this batch builds on a block we refused
