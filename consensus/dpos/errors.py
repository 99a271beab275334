"""Exceptions raised by the DPoS rules, under the package root `consensus.errors.ConsensusError`.

Blocks reuse `InvalidBlock` and `TimeTooNew` from the PoW package so node/ treats every chain's
blocks alike; the subclasses here only name the DPoS rules. IGNORE vs REJECT is decided by the
class (its `Violation`), never by the text:
- `FutureSlot` is a `TimeTooNew`: maybe valid once our clock catches up, the sender is not blamed;
- `ConflictsWithIrreversible`: an honest producer on the other side of a healed partition built
  it; we will never take it, but nobody forged anything (IGNORE);
- `WrongProducer`, `BadBlockSignature`, `InvalidOperation`, `InvalidEvidence`: REJECT.
"""

from __future__ import annotations

from consensus.errors import ConsensusError, DecodeError, InvalidBlock, TimeTooNew, Violation

__all__ = ["ConsensusError", "DecodeError", "InvalidBlock", "TimeTooNew", "FutureSlot",
           "WrongProducer", "BadBlockSignature", "ConflictsWithIrreversible", "InvalidOperation",
           "InvalidEvidence", "MissingParent", "Violation"]


class FutureSlot(TimeTooNew):
    """A block for a slot that has not started on our clock (plus the allowed drift)."""


class WrongProducer(InvalidBlock):
    """A block signed for a slot by someone the parent's schedule does not name for it, or by a
    producer whose stake was slashed."""

    violation = Violation.WRONG_PRODUCER


class BadBlockSignature(InvalidBlock):
    """A header not signed by its producer. The root does not commit to the signature: never
    remember the root as invalid (a forged copy must not poison the real block)."""

    violation = Violation.BAD_SIGNATURE


class ConflictsWithIrreversible(InvalidBlock):
    """A block on a branch that does not contain our last irreversible block."""

    violation = Violation.IRREVERSIBLE


class InvalidOperation(ConsensusError):
    """A stake, unstake, candidate registration or vote that breaks a rule."""

    violation = Violation.INVALID_OPERATION


class InvalidEvidence(ConsensusError):
    """Double-production evidence that proves nothing, or names an already punished offence."""

    violation = Violation.INVALID_EVIDENCE


class MissingParent(ConsensusError):
    """A block whose parent is not in the tree (it waits in the orphan pool)."""

    violation = Violation.MISSING_PARENT
