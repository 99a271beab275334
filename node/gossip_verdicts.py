"""How consensus outcomes become gossip verdicts: decided by the kind of rule broken (a
`consensus.errors.Violation`), never by the text of the reason.

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

from typing import Literal

from consensus.errors import Violation
from p2p.gossip import Verdict

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


def outcome_verdict(outcome: Literal["accept", "ignore", "reject"], reason: str,
                    violation: Violation | None) -> Verdict:
    """A verdict consensus already decided (PoS votes, evidence), labelled by its violation."""
    if outcome == "accept":
        return Verdict.accept()
    if outcome == "ignore":
        return Verdict.ignore(reason, category=label(violation))
    return rejected(reason, violation)
