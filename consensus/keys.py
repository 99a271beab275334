"""Ed25519 keys for accounts, miners and validators, via `cryptography`.

Keys are derived deterministically from a seed string so a testnet's accounts can be recreated from
its cluster seed. Verification never raises: it answers True/False, because bad signatures are bad
input, not errors in this program.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PUBKEY_BYTES = 32
SIGNATURE_BYTES = 64


def derive_private_key(seed: str, label: str) -> bytes:
    """A 32-byte Ed25519 private key determined by (seed, label), e.g. ("42", "account/0")."""
    return hashlib.sha256(f"p2p-testnet/key/{seed}/{label}".encode()).digest()


def public_key(private_key: bytes) -> bytes:
    """The 32-byte raw public key of a 32-byte raw private key."""
    key = Ed25519PrivateKey.from_private_bytes(private_key)
    return key.public_key().public_bytes_raw()


def sign(private_key: bytes, message: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(private_key).sign(message)


def verify(pubkey: bytes, signature: bytes, message: bytes) -> bool:
    """True only for a valid signature by `pubkey`; malformed keys or signatures give False."""
    if len(pubkey) != PUBKEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(pubkey).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
