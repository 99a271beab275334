"""Connects the PoS chain to the p2p host: blocks, attestations, slashing evidence and
transactions as gossip topics, and sync of the block chain.

Verdicts follow consensus-specs' gossip conditions: accepted messages are forwarded, duplicates
and stale or not-yet-timely messages are ignored (no blame), rule breakers are rejected. They are
decided and counted by the kind of rule broken (node/gossip_verdicts.py), never by the text.
"""

from __future__ import annotations

import logging

from consensus.errors import ConsensusError, Violation
from consensus.pos.types import (
    Attestation,
    AttesterSlashing,
    Deposit,
    Evidence,
    Exit,
    PosBlock,
    ProposerSlashing,
)
from consensus.types import Transaction
from node.gossip_verdicts import (
    block_verdict,
    outcome_verdict,
    reject_block,
    rejected,
    rule_verdict,
)
from node.pos_service import PosChainService
from node.tx_gossip import TX_ANNOUNCE_BATCH_S, TX_TOPIC, validate_transaction_message
from p2p.gossip import GossipMessage, Verdict
from p2p.host import P2PHost
from p2p.sync import ChainStatus

log = logging.getLogger(__name__)

BLOCK_TOPIC = "pos_block"
ATTESTATION_TOPIC = "attestation"
SLASHING_TOPIC = "slashing"
OPERATION_TOPIC = "stake"
BLOCK_PUSH_PEERS = 3


class PosBridge:
    def __init__(self, service: PosChainService, host: P2PHost) -> None:
        self.service = service
        self.host = host
        host.add_topic(BLOCK_TOPIC, self.validate_block, announce=True,
                       fetch=service.store.get_raw, push_first=BLOCK_PUSH_PEERS)
        host.add_topic(ATTESTATION_TOPIC, self.validate_attestation)
        host.add_topic(SLASHING_TOPIC, self.validate_evidence)
        host.add_topic(TX_TOPIC, self.validate_transaction, announce=True,
                       batch_s=TX_ANNOUNCE_BATCH_S)
        host.add_topic(OPERATION_TOPIC, self.validate_operation)
        host.set_sync_source(self)
        service.evidence_listeners.append(self.publish_evidence)

    # ---- publishing ----------------------------------------------------------------------------
    def publish_block(self, block: PosBlock) -> None:
        # our own new block: to every peer in full, ahead of any queued transactions
        self.host.publish(BLOCK_TOPIC, block.root, block.serialize(), urgent=True)

    def publish_attestation(self, att: Attestation) -> None:
        self.host.publish(ATTESTATION_TOPIC, att.root, att.serialize())

    def publish_evidence(self, evidence: Evidence) -> None:
        kind = b"P" if isinstance(evidence, ProposerSlashing) else b"A"
        try:
            self.host.publish(SLASHING_TOPIC, evidence.root, kind + evidence.serialize())
        except ValueError:
            pass  # already gossiped under this id

    def publish_operation(self, kind: str, op: Deposit | Exit) -> None:
        self.host.publish(OPERATION_TOPIC, op.root, (b"D" if kind == "deposit" else b"E")
                          + op.serialize())

    def publish_transaction(self, tx: Transaction) -> None:
        self.host.publish(TX_TOPIC, tx.txid, tx.serialize())

    # ---- validators ----------------------------------------------------------------------------
    async def validate_block(self, msg: GossipMessage) -> Verdict:
        try:
            block = PosBlock.deserialize(msg.payload, self.service.spec.max_block_bytes)
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

    async def validate_attestation(self, msg: GossipMessage) -> Verdict:
        try:
            att = Attestation.deserialize(msg.payload)
        except (ConsensusError, ValueError) as exc:
            return rejected(f"malformed attestation: {exc}", Violation.MALFORMED)
        # [REJECT] the announced id is the attestation root
        if att.root != msg.msg_id:
            return rejected("announced id does not match the attestation root", Violation.WRONG_ID)
        return outcome_verdict(self.service.submit_attestation(att, msg.peer_id))

    async def validate_evidence(self, msg: GossipMessage) -> Verdict:
        payload = msg.payload
        try:
            kinds: dict[bytes, type[ProposerSlashing] | type[AttesterSlashing]] = {
                b"P": ProposerSlashing, b"A": AttesterSlashing}
            evidence = kinds[payload[:1]].deserialize(payload[1:])
        except (KeyError, ConsensusError, ValueError) as exc:
            return rejected(f"malformed slashing evidence: {exc}", Violation.MALFORMED)
        return outcome_verdict(self.service.submit_evidence(evidence, msg.peer_id))

    async def validate_operation(self, msg: GossipMessage) -> Verdict:
        chain = self.service.chain
        try:
            if msg.payload[:1] == b"D":
                result = chain.on_deposit(Deposit.deserialize(msg.payload[1:]))
            elif msg.payload[:1] == b"E":
                result = chain.on_exit(Exit.deserialize(msg.payload[1:]))
            else:
                return rejected("unknown staking operation", Violation.MALFORMED)
        except (ConsensusError, ValueError) as exc:
            return rejected(f"malformed staking operation: {exc}", Violation.MALFORMED)
        if result.outcome == "reject":
            # [IGNORE] a nonce or balance race (the sender may be on another fork)
            return rule_verdict(result.reason, result.violation)
        return outcome_verdict(result)

    async def validate_transaction(self, msg: GossipMessage) -> Verdict:
        return validate_transaction_message(msg, self.service.submit_transaction)

    # ---- SyncSource ----------------------------------------------------------------------------
    def status(self) -> ChainStatus:
        head = self.service.chain.head
        # Score: blocks on the head chain. LMD-GHOST picks the head; sync only needs "who has
        # blocks we lack", and fork choice decides once they are here.
        return ChainStatus(tip=head.root, score=head.height, height=head.height)

    def locator(self) -> list[bytes]:
        return self.service.chain.locator()

    def blocks_after(self, locator: list[bytes], limit: int) -> list[bytes]:
        return [self.service.raw_block(n)
                for n in self.service.chain.blocks_after(locator, limit)]

    async def ingest(self, peer_id: str, payloads: list[bytes]) -> None:
        for raw in payloads:
            try:
                block = PosBlock.deserialize(raw, self.service.spec.max_block_bytes)
            except (ConsensusError, ValueError) as exc:
                log.warning("sync from %s: malformed block: %s", peer_id[:16], exc)
                return
            update = self.service.submit_block(block, peer_id)
            if update.results[0].outcome == "rejected" and not update.results[0].temporary:
                return
