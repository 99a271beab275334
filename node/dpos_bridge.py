"""Connects the DPoS chain to the p2p host: blocks, operations (stake, unstake, register, vote),
double-production evidence and transactions as gossip topics, and sync of the block chain.

Verdicts are decided by the kind of rule broken (node/gossip_verdicts.py), never by the text: a
block from a slot not yet started or off our irreversible branch is IGNOREd (its result is
`temporary`: honest nodes with another clock or on the other side of a healed partition send
them), a block from the wrong producer or with a bad signature is REJECTed; operations that lose
a nonce or balance race are IGNOREd, any other broken rule REJECTs.
"""

from __future__ import annotations

import logging

from consensus.dpos.types import DoubleProduction, DposBlock, DposOperation
from consensus.errors import ConsensusError, Violation
from consensus.types import Transaction
from node.dpos_service import DposChainService
from node.gossip_verdicts import (
    block_verdict,
    outcome_verdict,
    reject_block,
    rejected,
    rule_verdict,
)
from node.tx_gossip import TX_TOPIC, validate_transaction_message
from p2p.gossip import GossipMessage, Verdict
from p2p.host import P2PHost
from p2p.sync import ChainStatus

log = logging.getLogger(__name__)

BLOCK_TOPIC = "dpos_block"
OPERATION_TOPIC = "dpos_operation"
EVIDENCE_TOPIC = "dpos_evidence"
BLOCK_PUSH_PEERS = 3


class DposBridge:
    def __init__(self, service: DposChainService, host: P2PHost) -> None:
        self.service = service
        self.host = host
        host.add_topic(BLOCK_TOPIC, self.validate_block, announce=True,
                       fetch=service.store.get_raw, push_first=BLOCK_PUSH_PEERS)
        host.add_topic(OPERATION_TOPIC, self.validate_operation)
        host.add_topic(EVIDENCE_TOPIC, self.validate_evidence)
        host.add_topic(TX_TOPIC, self.validate_transaction)
        host.set_sync_source(self)
        service.evidence_listeners.append(self.publish_evidence)

    # ---- publishing ----------------------------------------------------------------------------
    def publish_block(self, block: DposBlock) -> None:
        self.host.publish(BLOCK_TOPIC, block.root, block.serialize())

    def publish_operation(self, op: DposOperation) -> None:
        self.host.publish(OPERATION_TOPIC, op.root, op.serialize())

    def publish_evidence(self, evidence: DoubleProduction) -> None:
        try:
            self.host.publish(EVIDENCE_TOPIC, evidence.root, evidence.serialize())
        except ValueError:
            pass  # already gossiped under this id

    def publish_transaction(self, tx: Transaction) -> None:
        self.host.publish(TX_TOPIC, tx.txid, tx.serialize())

    # ---- validators ----------------------------------------------------------------------------
    async def validate_block(self, msg: GossipMessage) -> Verdict:
        try:
            block = DposBlock.deserialize(msg.payload, self.service.spec.max_block_bytes)
        except (ConsensusError, ValueError) as exc:
            return reject_block(self.service, msg, f"malformed block: {exc}",
                                Violation.MALFORMED)
        # [REJECT] the announced id is the block root
        if block.root != msg.msg_id:
            return reject_block(self.service, msg, "announced id does not match the block root",
                                Violation.WRONG_ID)
        result = self.service.submit_block(block, msg.peer_id).results[0]
        if result.outcome == "orphan":
            self.host.sync.request_sync(msg.peer_id)
        return block_verdict(result)

    async def validate_operation(self, msg: GossipMessage) -> Verdict:
        try:
            op = DposOperation.deserialize(msg.payload)
        except (ConsensusError, ValueError) as exc:
            return rejected(f"malformed operation: {exc}", Violation.MALFORMED)
        # [REJECT] the announced id is the operation root
        if op.root != msg.msg_id:
            return rejected("announced id does not match the operation root", Violation.WRONG_ID)
        result = self.service.submit_operation(op, msg.peer_id)
        if result.outcome == "reject":
            # [IGNORE] a nonce or balance race (the sender may be on another fork)
            return rule_verdict(result.reason, result.violation)
        return outcome_verdict(result)

    async def validate_evidence(self, msg: GossipMessage) -> Verdict:
        try:
            evidence = DoubleProduction.deserialize(msg.payload)
        except (ConsensusError, ValueError) as exc:
            return rejected(f"malformed evidence: {exc}", Violation.MALFORMED)
        return outcome_verdict(self.service.submit_evidence(evidence, msg.peer_id))

    async def validate_transaction(self, msg: GossipMessage) -> Verdict:
        return validate_transaction_message(msg, self.service.submit_transaction)

    # ---- SyncSource ----------------------------------------------------------------------------
    def status(self) -> ChainStatus:
        head = self.service.chain.head
        # Score: height. Fork choice (LIB first) decides once the blocks are here; sync only
        # needs "who has blocks we lack".
        return ChainStatus(tip=head.root, score=head.height, height=head.height)

    def locator(self) -> list[bytes]:
        return self.service.chain.locator()

    def blocks_after(self, locator: list[bytes], limit: int) -> list[bytes]:
        return [self.service.raw_block(n)
                for n in self.service.chain.blocks_after(locator, limit)]

    async def ingest(self, peer_id: str, payloads: list[bytes]) -> None:
        for raw in payloads:
            try:
                block = DposBlock.deserialize(raw, self.service.spec.max_block_bytes)
            except (ConsensusError, ValueError) as exc:
                log.warning("sync from %s: malformed block: %s", peer_id[:16], exc)
                return
            update = self.service.submit_block(block, peer_id)
            if update.results[0].outcome == "rejected" and not update.results[0].temporary:
                return
