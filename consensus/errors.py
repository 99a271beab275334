"""Exceptions raised by consensus rules.

One root (`ConsensusError`) so callers can catch every rule violation at a trust boundary; each
subclass also derives from `ValueError` because a rule violation is always bad input.
"""


class ConsensusError(ValueError):
    """Root of every consensus rule violation."""


class DecodeError(ConsensusError):
    """Bytes that do not decode into a well-formed object (wrong length, bad field)."""


class InvalidTransaction(ConsensusError):
    """A transaction that breaks a ledger rule (signature, nonce, balance, amounts)."""


class InvalidBlock(ConsensusError):
    """A block that breaks a block rule (PoW, merkle root, size, time, coinbase, its
    transactions)."""


class TimeTooNew(InvalidBlock):
    """A block whose timestamp is too far ahead of our clock: invalid now, maybe valid later
    (Bitcoin's BLOCK_TIME_FUTURE), so the sender is not to blame and the block is not remembered."""
