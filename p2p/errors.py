"""Exceptions raised by p2p/.

One root, `P2PError`, so node/ can catch everything this package raises at its trust
boundary; builtins are extra bases where a caller may already expect them (aiohttp style).
`shown` is how a value from outside goes into an error message: bounded, never a full `repr`.
"""

from __future__ import annotations

from typing import Any

MAX_SHOWN_CHARS = 80


def shown(value: Any, max_chars: int = MAX_SHOWN_CHARS) -> str:
    """Someone else's value, fit for an error message or a log line: the `repr` of a string or
    bytes cut to `max_chars`, a number unless it is huge, and only the type and size of anything
    else. Never `repr` a container from outside: a deeply nested one raises RecursionError, a
    large one costs its size in every message."""
    if isinstance(value, (str, bytes)):
        text = repr(value[:max_chars])  # cut before repr: the value may be megabytes
        if len(value) <= max_chars and len(text) <= max_chars + 3:
            return text
        return f"{text[:max_chars]}... ({len(value)} long)"
    if isinstance(value, (bool, float)) or value is None:
        return repr(value)
    if isinstance(value, int):
        bits = value.bit_length()
        return repr(value) if bits <= 256 else f"an integer of {bits} bits"
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


class P2PError(Exception):
    """Root of every error p2p/ raises on purpose."""


class DecodeError(P2PError, ValueError):
    """A frame from a peer is not a well-formed message (size, msgpack, shape, version)."""


class EncodeError(P2PError, TypeError):
    """A message cannot be put on the wire (not msgpack-serialisable, or too large)."""


class HandshakeError(P2PError):
    """The handshake failed; `reason` is the human-readable cause that both sides log, and
    `category` the short fixed label it is counted by (`stats["rejected"]["handshake: ..."]`).

    `from_peer` is True when the peer told us the reason (its `bye`), so we must not answer
    with a `bye` of our own.
    """

    def __init__(self, reason: str, *, category: str, from_peer: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.category = category
        self.from_peer = from_peer


class BadRequest(P2PError, ValueError):
    """A peer's request whose body a handler cannot accept: the peer's fault, not ours. A handler
    raises it; the peer gets an error response and a penalty, and it is logged in one line."""


class OverBudget(P2PError):
    """A request the peer may make, but not now: it is over its budget (peer_policy.py). The peer
    gets a "busy" error response and no penalty; staying over the budget is what gets it banned."""


class RequestError(P2PError):
    """A request failed: the remote handler raised, it timed out, or the peer is gone."""
