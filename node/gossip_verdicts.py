"""Consensus results -> gossip verdicts, one mapping for both chains' bridges.

consensus/ reports what it did with an input (a block `connected`, an attestation `ignore`d ...);
p2p/ needs a verdict: accept (forward it), ignore (drop it quietly) or reject (drop it and penalise
the sender), as consensus-specs' `[IGNORE]`/`[REJECT]` gossip conditions have it.
"""

from __future__ import annotations

from typing import Protocol

from consensus.pos.chain import AttestationResult, OperationResult
from consensus.pow_chain import BlockResult
from p2p.gossip import GossipMessage, Verdict


def block_verdict(result: BlockResult) -> Verdict:
    """The verdict on a gossiped block, from what the chain did with it. An orphan is ignored;
    the bridge asks its sender for the missing chain."""
    # [ACCEPT] the block entered the block tree, on the head chain or a side branch
    if result.outcome in ("connected", "side"):
        return Verdict.accept()
    # [IGNORE] the block is already known
    if result.outcome == "duplicate":
        return Verdict.ignore("duplicate block")
    # [IGNORE] the parent is unknown: not the sender's fault, it may be ahead of us
    if result.outcome == "orphan":
        return Verdict.ignore("parent unknown; syncing from the sender")
    # [IGNORE] the block is from our future: our clock may be the wrong one
    if result.temporary:
        return Verdict.ignore(result.reason)
    # [REJECT] the block breaks a rule
    return Verdict.reject(result.reason)


def outcome_verdict(result: AttestationResult | OperationResult) -> Verdict:
    """The verdict on a vote, slashing evidence, deposit or exit: the chain already answered in
    gossip terms, so this only carries the reason across."""
    if result.outcome == "accept":
        return Verdict.accept()
    if result.outcome == "ignore":
        return Verdict.ignore(result.reason)
    return Verdict.reject(result.reason)


class RecordsRejections(Protocol):
    def block_rejected(self, block_id: bytes, reason: str, source: str) -> None: ...


def reject_block(service: RecordsRejections, msg: GossipMessage, reason: str) -> Verdict:
    """[REJECT] a block message that fails the wire checks (malformed, wrong id), recorded like a
    block the rules refused."""
    service.block_rejected(msg.msg_id, reason, msg.peer_id)
    return Verdict.reject(reason)
