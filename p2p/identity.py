"""Node identity: an Ed25519 key pair; the peer id is the hex of the 32-byte raw public key.

Used by the handshake to prove that the remote end holds the key it claims.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SEED_BYTES = 32
PUBKEY_BYTES = 32
SIGNATURE_BYTES = 64


@dataclass(frozen=True)
class Identity:
    private_key: Ed25519PrivateKey
    pubkey: bytes

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        # [REJECT] an Ed25519 private key is exactly a 32-byte seed
        if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
            got = f"{len(seed)} bytes" if isinstance(seed, bytes) else type(seed).__name__
            # never echo key material
            raise ValueError(f"private_key must be {SEED_BYTES} bytes, got {got}")
        key = Ed25519PrivateKey.from_private_bytes(seed)
        pubkey = key.public_key().public_bytes_raw()
        return cls(private_key=key, pubkey=pubkey)

    @property
    def peer_id(self) -> str:
        return compute_peer_id(self.pubkey)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


def compute_peer_id(pubkey: bytes) -> str:
    return pubkey.hex()


def is_valid_signature(pubkey: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(pubkey).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
