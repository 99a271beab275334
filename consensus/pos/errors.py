"""Exceptions raised by the Proof-of-Stake rules.

They extend the package root `consensus.errors.ConsensusError` (itself a `ValueError`), so a caller
at a trust boundary catches every PoS rule violation with the same `except` as the PoW ones. Blocks
reuse `InvalidBlock` and `TimeTooNew` from the PoW package, so node/ handles both chains alike.
"""

from __future__ import annotations

from consensus.errors import ConsensusError, DecodeError, InvalidBlock, TimeTooNew, Violation

__all__ = ["ConsensusError", "DecodeError", "InvalidBlock", "TimeTooNew", "AttestationError",
           "InvalidAttestation", "AttestationIgnored", "InvalidEvidence", "InvalidOperation",
           "MissingParent", "BadBlockSignature", "Violation"]


class BadBlockSignature(InvalidBlock):
    """A block whose header is not signed by its proposer. The block root does not commit to the
    signature, so this says nothing about other copies of the block: never remember the root as
    invalid (a forged copy must not poison the real block)."""

    violation = Violation.BAD_SIGNATURE


class AttestationError(ConsensusError):
    """An attestation that is not accepted. Never raised itself: its two subclasses are the two
    verdicts of consensus-specs' gossip conditions, siblings so that catching one never catches
    the other by accident."""


class InvalidAttestation(AttestationError):
    """An attestation that breaks a rule: `[REJECT]`, the sender is to blame."""

    violation = Violation.INVALID_ATTESTATION


class AttestationIgnored(AttestationError):
    """An attestation that cannot be judged now (unknown block, outside the slot window, already
    seen): `[IGNORE]`, drop it quietly without blaming the sender. Not an `InvalidAttestation`:
    it may be valid, and whoever relayed it did nothing wrong."""

    violation = Violation.UNTIMELY


class InvalidEvidence(ConsensusError):
    """Slashing evidence that does not prove an offence, or whose offender is not slashable."""

    violation = Violation.INVALID_EVIDENCE


class InvalidOperation(ConsensusError):
    """A deposit or exit that breaks a rule."""

    violation = Violation.INVALID_OPERATION


class MissingParent(ConsensusError):
    """A block whose parent is not in the store (it waits in the orphan pool)."""

    violation = Violation.MISSING_PARENT
