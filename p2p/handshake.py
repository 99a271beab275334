"""Handshake: prove identities and agree on chain and protocol before any other message.

Both sides send `hello {chain_id, genesis, version, pubkey, challenge}` at once, check the peer's
hello, then send `auth {sig}`: an Ed25519 signature over DOMAIN + peer_challenge + own_pubkey,
which proves the peer holds the key of the peer id it claims and binds it to this connection.
The host may also refuse a peer by id before it sends its auth (`admit`), e.g. while a link
rule partitions the two (link_shaper.py). A side that finds a mismatch or refuses raises
HandshakeError; the connection owner then sends `bye {reason}` and closes, so both ends can log
the same reason. The whole exchange is bounded by HANDSHAKE_TIMEOUT_S.

This module knows nothing about websockets: it talks through a HandshakeChannel (a Connection).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from p2p.errors import HandshakeError
from p2p.identity import Identity, compute_peer_id, is_valid_signature

HANDSHAKE_DOMAIN = b"p2p-testnet/handshake/v1"
HANDSHAKE_TIMEOUT_S = 5.0
CHALLENGE_BYTES = 32
SELF_CONNECTION = "self-connection"  # the category (and reason) of dialing ourselves


@dataclass(frozen=True)
class ChainParams:
    """What two peers must agree on to talk at all."""

    chain_id: str
    genesis_hash: bytes
    version: int


@dataclass(frozen=True)
class HandshakeResult:
    peer_pubkey: bytes

    @property
    def peer_id(self) -> str:
        return compute_peer_id(self.peer_pubkey)


class HandshakeChannel(Protocol):
    def send(self, msg_type: str, body: dict) -> bool: ...

    async def next_handshake_frame(self) -> tuple[int, str, dict]:
        """Next decoded frame as (version, type, body); raises HandshakeError if the link closed."""
        ...


def make_hello(identity: Identity, params: ChainParams, challenge: bytes) -> dict:
    return {
        "chain_id": params.chain_id,
        "genesis": params.genesis_hash,
        "version": params.version,
        "pubkey": identity.pubkey,
        "challenge": challenge,
    }


def compute_auth_message(challenge: bytes, signer_pubkey: bytes) -> bytes:
    return HANDSHAKE_DOMAIN + challenge + signer_pubkey


def get_hello_mismatch(
    identity: Identity, params: ChainParams, frame_version: int, hello: dict
) -> HandshakeError | None:
    """Why this hello is unacceptable, or None. `hello` has passed wire.py's shape checks."""
    # [REJECT] same protocol version, both on the frame and in the hello
    theirs = hello["version"] if frame_version == params.version else frame_version
    if theirs != params.version:
        return HandshakeError(f"version mismatch: ours {params.version}, theirs {theirs}",
                              category="version mismatch")
    # [REJECT] same chain id
    if hello["chain_id"] != params.chain_id:
        return HandshakeError(f"chain id mismatch: ours {params.chain_id!r}, "
                              f"theirs {hello['chain_id']!r}", category="chain id mismatch")
    # [REJECT] same genesis block
    if hello["genesis"] != params.genesis_hash:
        return HandshakeError(
            f"genesis mismatch: ours {params.genesis_hash.hex()[:16]}, "
            f"theirs {hello['genesis'].hex()[:16]}",
            category="genesis mismatch",
        )
    # [REJECT] not ourselves (a dial set that contains our own URL)
    if hello["pubkey"] == identity.pubkey:
        return HandshakeError(SELF_CONNECTION, category=SELF_CONNECTION)
    return None


async def perform_handshake(
    channel: HandshakeChannel,
    identity: Identity,
    params: ChainParams,
    *,
    timeout: float = HANDSHAKE_TIMEOUT_S,
    admit: Callable[[str], str | None] | None = None,
    challenge_source: Callable[[int], bytes] = secrets.token_bytes,
) -> HandshakeResult:
    """Run both halves of the handshake over `channel`.

    `admit(peer_id)` answers None to go on, or the reason to refuse the peer its hello claims to
    be (counted as category "refused"); it runs before our auth is sent, so a refused peer never
    sees the handshake succeed.
    Returns the authenticated peer key. Raises HandshakeError on any mismatch, a refusal, a bad
    signature, a peer's `bye`, a closed link or the timeout; it never sends `bye` itself.
    `challenge_source(n)` gives n random bytes: the OS's by default, as the challenge must be
    unpredictable to the peer; a deterministic simulation passes its seeded rng's `randbytes`.
    """
    challenge = challenge_source(CHALLENGE_BYTES)
    channel.send("hello", make_hello(identity, params, challenge))
    try:
        async with asyncio.timeout(timeout):
            frame_version, hello = await _expect(channel, "hello")
            mismatch = get_hello_mismatch(identity, params, frame_version, hello)
            if mismatch is not None:
                raise mismatch
            # [REJECT] the host admits the claimed peer (refusing an unproven claim is safe)
            refusal = admit(compute_peer_id(hello["pubkey"])) if admit is not None else None
            if refusal is not None:
                raise HandshakeError(refusal, category="refused")
            sig = identity.sign(compute_auth_message(hello["challenge"], identity.pubkey))
            channel.send("auth", {"sig": sig})
            _, auth = await _expect(channel, "auth")
    except TimeoutError:
        raise HandshakeError(f"handshake timed out after {timeout} s", category="timeout") from None
    # [REJECT] the peer signed our challenge with the key it announced
    auth_message = compute_auth_message(challenge, hello["pubkey"])
    if not is_valid_signature(hello["pubkey"], auth_message, auth["sig"]):
        raise HandshakeError("bad handshake signature", category="bad signature")
    return HandshakeResult(peer_pubkey=hello["pubkey"])


async def _expect(channel: HandshakeChannel, expected: str) -> tuple[int, dict]:
    frame_version, msg_type, body = await channel.next_handshake_frame()
    if msg_type == "bye":
        raise HandshakeError(f"peer said: {body['reason']}", category="peer said bye",
                             from_peer=True)
    # [REJECT] handshake messages come in order: hello, then auth
    if msg_type != expected:
        raise HandshakeError(f"expected {expected!r} during handshake, got {msg_type!r}",
                             category="unexpected message")
    return frame_version, body
