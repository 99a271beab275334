"""Exceptions raised by node/.

One root, `NodeError`, so a caller (the CLI, a test) can catch everything this package raises on
purpose; builtins are extra bases where callers already expect them (a bad config or a bad
request body is a `ValueError`, a store that cannot be used a `RuntimeError`). Rule violations
of blocks and transactions are consensus/'s (`consensus.errors.ConsensusError`), and p2p/ has its
own root (`p2p.errors.P2PError`).
"""

from __future__ import annotations


class NodeError(Exception):
    """Root of every error node/ raises on purpose."""


class BadRequestBody(NodeError, ValueError):
    """An HTTP request body that is not the JSON an endpoint accepts (encoding, syntax, numbers
    out of range, nesting too deep); the message says what is wrong and is safe to send back."""
