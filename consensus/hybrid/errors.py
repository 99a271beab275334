"""Exceptions of the hybrid rules, under the package root `consensus.errors.ConsensusError`.

A vote is judged on gossip with consensus-specs' two verdicts, and the verdict is the exception's
type, never its text: `InvalidVote` (`[REJECT]`: no honest node signs or relays it -- a bad
signature, an unknown validator, a source that is not before its target) and `VoteIgnored`
(`[IGNORE]`: it may be valid on another branch or at another time -- another epoch, another
checkpoint, a source not justified here, a dynasty this chain has not reached). Siblings under
`VoteError`, so catching one never catches the other. Inside a block both make the block invalid.
Evidence and deposits/exits reuse the PoS errors (`InvalidEvidence`, `InvalidOperation`).
"""

from __future__ import annotations

from consensus.errors import ConsensusError, Violation
from consensus.pos.errors import InvalidEvidence, InvalidOperation

__all__ = ["VoteError", "InvalidVote", "VoteIgnored", "InvalidEvidence", "InvalidOperation"]


class VoteError(ConsensusError):
    """A vote that is not accepted; never raised itself."""


class InvalidVote(VoteError):
    """`[REJECT]`: the vote breaks a rule whatever the branch."""

    violation = Violation.INVALID_VOTE


class VoteIgnored(VoteError):
    """`[IGNORE]`: the vote does not apply to this chain now; the sender is not to blame."""

    violation = Violation.UNTIMELY
