"""Exceptions raised by p2p/.

One root, `P2PError`, so node/ can catch everything this package raises at its trust
boundary; builtins are extra bases where a caller may already expect them (aiohttp style).
"""

from __future__ import annotations


class P2PError(Exception):
    """Root of every error p2p/ raises on purpose."""


class DecodeError(P2PError, ValueError):
    """A frame from a peer is not a well-formed message (size, msgpack, shape, version)."""


class EncodeError(P2PError, TypeError):
    """A message cannot be put on the wire (not msgpack-serialisable, or too large)."""


class HandshakeError(P2PError):
    """The handshake failed; `reason` is the human-readable cause that both sides log.

    `from_peer` is True when the peer told us the reason (its `bye`), so we must not answer
    with a `bye` of our own.
    """

    def __init__(self, reason: str, *, from_peer: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.from_peer = from_peer


class RequestError(P2PError):
    """A request failed: the remote handler raised, it timed out, or the peer is gone."""
