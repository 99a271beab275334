"""Exceptions raised by consensus rules, and the kinds of rule they report broken.

One root (`ConsensusError`) so callers can catch every rule violation at a trust boundary; each
subclass also derives from `ValueError` because a rule violation is always bad input.

Every violation carries a `Violation`: which kind of rule was broken. Code decides by it -- a
gossip verdict (IGNORE a race, REJECT a forgery), a metric's label -- and never by the text of
the reason, which stays free for people (logs, events, API errors) and may embed numbers a peer
chose. The enum is the fixed set of labels a node can count by.
"""

from __future__ import annotations

from enum import Enum


class Violation(Enum):
    """The kind of rule an input broke; the value is its metric label."""

    MALFORMED = "malformed"                    # bytes that do not decode
    WRONG_ID = "wrong id"                      # a gossip id that is not the object's hash
    # transactions (ledger rules, mempool admission)
    COINBASE = "coinbase"                      # a coinbase out of place, or a bad one
    BAD_AMOUNT = "bad amount"                  # not positive, or overflowing with the fee
    NONCE = "nonce"                            # replayed or out of order
    OVERDRAFT = "overdraft"                    # the sender cannot pay amount + fee
    BAD_SIGNATURE = "bad signature"
    DUPLICATE = "duplicate"                    # already known: pooled, seen, slashed
    POOL_FULL = "pool full"
    INVALID_TRANSACTION = "invalid transaction"
    # blocks
    BLOCK_SIZE = "block size"
    MERKLE_ROOT = "merkle root"
    DUPLICATE_TRANSACTION = "duplicate transaction"
    PROOF_OF_WORK = "proof of work"
    DIFFICULTY = "difficulty"
    TIMESTAMP = "timestamp"                    # not above the median time past
    FUTURE = "future"                          # ahead of our clock: maybe valid later
    MISSING_PARENT = "missing parent"
    INVALID_PARENT = "invalid parent"
    KNOWN_INVALID = "known invalid"
    INVALID_BLOCK = "invalid block"            # any other block rule (PoS transition, proposer)
    WRONG_PRODUCER = "wrong producer"          # DPoS: not the scheduled producer of the slot
    IRREVERSIBLE = "conflicts with irreversible"   # DPoS: off the branch of our LIB (IGNORE)
    # PoS votes and operations
    UNTIMELY = "untimely"                      # cannot be judged now: unknown block, out of window
    EQUIVOCATION = "equivocation"              # a vote that proves a slashable offence
    INVALID_ATTESTATION = "invalid attestation"
    INVALID_VOTE = "invalid vote"              # a hybrid FFG vote that breaks a rule
    INVALID_EVIDENCE = "invalid evidence"
    INVALID_OPERATION = "invalid operation"
    INVALID = "invalid"                        # a rule violation of no finer kind


class ConsensusError(ValueError):
    """Root of every consensus rule violation. `violation` is the class's own kind unless the
    raise names a finer one: `InvalidTransaction("...", Violation.OVERDRAFT)`."""

    violation: Violation = Violation.INVALID

    def __init__(self, reason: str = "", violation: Violation | None = None) -> None:
        super().__init__(reason)
        if violation is not None:
            self.violation = violation


class DecodeError(ConsensusError):
    """Bytes that do not decode into a well-formed object (wrong length, bad field)."""

    violation = Violation.MALFORMED


class InvalidTransaction(ConsensusError):
    """A transaction that breaks a ledger rule (signature, nonce, balance, amounts)."""

    violation = Violation.INVALID_TRANSACTION


class InvalidBlock(ConsensusError):
    """A block that breaks a block rule (PoW, merkle root, size, time, coinbase, its
    transactions)."""

    violation = Violation.INVALID_BLOCK


class TimeTooNew(InvalidBlock):
    """A block whose timestamp is too far ahead of our clock: invalid now, maybe valid later
    (Bitcoin's BLOCK_TIME_FUTURE), so the sender is not to blame and the block is not remembered."""

    violation = Violation.FUTURE
