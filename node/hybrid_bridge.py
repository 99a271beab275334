"""Connects the hybrid chain to the p2p host: the PoW bridge (blocks, transactions, sync, the
mining strategies) plus three topics for Casper FFG -- votes, vote-slashing evidence, and staking
operations (deposits and logouts).

Verdicts come from consensus (consensus/hybrid/operations.py) and are labelled by the kind of rule
broken (node/gossip_verdicts.py), never by the text. A vote is gossiped the way EIP-1011 clients
broadcast vote transactions before a miner includes them.
"""

from __future__ import annotations

from consensus.errors import ConsensusError, Violation
from consensus.hybrid.types import Deposit, Exit, HybridVote, VoteSlashing
from node.gossip_verdicts import outcome_verdict, rejected, rule_verdict
from node.hybrid_service import HybridChainService
from node.p2p_bridge import PowBridge
from p2p.gossip import GossipMessage, Verdict
from p2p.host import P2PHost
from p2p.sync import ChainStatus

VOTE_TOPIC = "vote"
SLASHING_TOPIC = "vote_slashing"
OPERATION_TOPIC = "stake"


class HybridBridge(PowBridge):
    service: HybridChainService

    def __init__(self, service: HybridChainService, host: P2PHost) -> None:
        super().__init__(service, host)
        host.add_topic(VOTE_TOPIC, self.validate_vote)
        host.add_topic(SLASHING_TOPIC, self.validate_evidence)
        host.add_topic(OPERATION_TOPIC, self.validate_operation)
        service.evidence_listeners.append(self.publish_evidence)

    # ---- publishing ----------------------------------------------------------------------------
    def publish_vote(self, vote: HybridVote) -> None:
        self.host.publish(VOTE_TOPIC, vote.root, vote.serialize())

    def publish_evidence(self, evidence: VoteSlashing) -> None:
        try:
            self.host.publish(SLASHING_TOPIC, evidence.root, evidence.serialize())
        except ValueError:
            pass  # already gossiped under this id

    def publish_operation(self, op: Deposit | Exit) -> None:
        kind = b"D" if isinstance(op, Deposit) else b"E"
        self.host.publish(OPERATION_TOPIC, op.root, kind + op.serialize())

    # ---- SyncSource ----------------------------------------------------------------------------
    def status(self) -> ChainStatus:
        """EIP-1011's score squeezed into the wire's 63 bits: the justified epoch above bit 40,
        the total work (capped at 2**40, far beyond a testnet's) below, so a peer behind in
        justification syncs from one ahead even when it has more work. Fork choice then decides
        on the blocks themselves."""
        head = self.public_head()
        state = self.service.chain.state_of(head.hash)
        justified = state.highest_justified_epoch() if state is not None else 0
        score = (min(justified, (1 << 22) - 1) << 40) | min(head.total_work, (1 << 40) - 1)
        return ChainStatus(tip=head.hash, score=score, height=head.height)

    # ---- validators ----------------------------------------------------------------------------
    async def validate_vote(self, msg: GossipMessage) -> Verdict:
        try:
            vote = HybridVote.deserialize(msg.payload)
        except (ConsensusError, ValueError) as exc:
            return rejected(f"malformed vote: {exc}", Violation.MALFORMED)
        # [REJECT] the announced id is the vote's root
        if vote.root != msg.msg_id:
            return rejected("announced id does not match the vote root", Violation.WRONG_ID)
        return outcome_verdict(self.service.submit_vote(vote, msg.peer_id))

    async def validate_evidence(self, msg: GossipMessage) -> Verdict:
        try:
            evidence = VoteSlashing.deserialize(msg.payload)
        except (ConsensusError, ValueError) as exc:
            return rejected(f"malformed slashing evidence: {exc}", Violation.MALFORMED)
        return outcome_verdict(self.service.submit_evidence(evidence, msg.peer_id))

    async def validate_operation(self, msg: GossipMessage) -> Verdict:
        try:
            op: Deposit | Exit
            if msg.payload[:1] == b"D":
                op = Deposit.deserialize(msg.payload[1:])
            elif msg.payload[:1] == b"E":
                op = Exit.deserialize(msg.payload[1:])
            else:
                return rejected("unknown staking operation", Violation.MALFORMED)
        except (ConsensusError, ValueError) as exc:
            return rejected(f"malformed staking operation: {exc}", Violation.MALFORMED)
        result = self.service.submit_operation(op)
        if result.outcome == "reject":
            # [IGNORE] a nonce or balance race (the sender may be on another fork)
            return rule_verdict(result.reason, result.violation)
        return outcome_verdict(result)
