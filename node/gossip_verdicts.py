"""Consensus results -> gossip verdicts, one mapping for both chains' bridges, decided by the kind
of rule broken (a `consensus.errors.Violation`), never by the text of the reason.

consensus/ reports what it did with an input (a block `connected`, an attestation `ignore`d ...);
p2p/ needs a verdict: accept (forward it), ignore (drop it quietly) or reject (drop it and penalise
the sender), as consensus-specs' `[IGNORE]`/`[REJECT]` gossip conditions have it.

Races between honest peers are IGNORE: nonces and balances move with every block, and two honest
peers a block apart or on different forks disagree about them; a duplicate or a full pool says
nothing about the sender either. Any other rule a transaction or an operation breaks is REJECT:
the sender relayed what no honest node accepts, and the host penalises it. Blocks and votes are
judged by consensus itself (a block's outcome, `temporary` for a future timestamp; a vote's
ignore/reject), and only labelled here.

A verdict's category is the violation's label, so the host counts rejects by a fixed set
(`stats["rejected"]["tx: bad signature"]`, ...), whatever numbers a peer put in the payload.
"""

from __future__ import annotations

from typing import Protocol

from consensus.errors import Violation
from consensus.pow_chain import BlockResult
from p2p.gossip import GossipMessage, Verdict

# [IGNORE] nonce and balance races, duplicates and a full pool: nobody's fault
RACES = frozenset({Violation.NONCE, Violation.OVERDRAFT, Violation.DUPLICATE, Violation.POOL_FULL})


def label(violation: Violation | None) -> str:
    """The metric label of a violation ("invalid" when consensus named none)."""
    return (violation or Violation.INVALID).value


def rejected(reason: str, violation: Violation | None) -> Verdict:
    """REJECT, counted under the violation's label; `reason` goes to the log only."""
    return Verdict.reject(reason, category=label(violation))


def rule_verdict(reason: str, violation: Violation | None) -> Verdict:
    """The verdict on a transaction or operation a rule refused: IGNORE a race, else REJECT."""
    if violation in RACES:
        return Verdict.ignore(reason, category=label(violation))
    return rejected(reason, violation)


def block_verdict(result: BlockResult) -> Verdict:
    """The verdict on a gossiped block, from what the chain did with it. An orphan is ignored;
    the bridge asks its sender for the missing chain."""
    # [ACCEPT] the block entered the block tree, on the head chain or a side branch
    if result.outcome in ("connected", "side"):
        return Verdict.accept()
    # [IGNORE] the block is already known
    if result.outcome == "duplicate":
        return Verdict.ignore("duplicate block", category=label(Violation.DUPLICATE))
    # [IGNORE] the parent is unknown: not the sender's fault, it may be ahead of us
    if result.outcome == "orphan":
        return Verdict.ignore("parent unknown; syncing from the sender",
                              category=label(Violation.MISSING_PARENT))
    # [IGNORE] the block is from our future: our clock may be the wrong one
    if result.temporary:
        return Verdict.ignore(result.reason, category=label(result.violation))
    # [REJECT] the block breaks a rule
    return rejected(result.reason, result.violation)


class Judged(Protocol):
    """A consensus answer in gossip terms: PoS attestations and operations, hybrid votes and
    operations (consensus/hybrid/operations.py) all have these."""

    @property
    def outcome(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def violation(self) -> Violation | None: ...


def outcome_verdict(result: Judged) -> Verdict:
    """The verdict on a vote, slashing evidence, deposit or exit: the chain already answered in
    gossip terms, so this only carries the reason across, labelled by its violation."""
    if result.outcome == "accept":
        return Verdict.accept()
    if result.outcome == "ignore":
        return Verdict.ignore(result.reason, category=label(result.violation))
    return rejected(result.reason, result.violation)


class RecordsRejections(Protocol):
    def block_rejected(self, block_id: bytes, reason: str, source: str) -> None: ...


def reject_block(service: RecordsRejections, msg: GossipMessage, reason: str,
                 violation: Violation) -> Verdict:
    """[REJECT] a block message that fails the wire checks (malformed, wrong id), recorded like a
    block the rules refused."""
    service.block_rejected(msg.msg_id, reason, msg.peer_id)
    return rejected(reason, violation)
