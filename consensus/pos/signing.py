"""Signing PoS objects and checking their signatures, cheaply.

Every signature is Ed25519 over an object's 32-byte signing root (domain tag + canonical bytes, see
`types`). Checking is the dominant cost of validating attestations, so:
- parsed public keys are cached (`_public_key`), saving the point decoding on each check;
- `SignatureCache` remembers attestations already verified, keyed by (attestation root, pubkey):
  an attestation verified on gossip is not verified again when it arrives inside a block
  (node/mempool.py's `VerifiedCache` does the same for transactions).

`SignatureChecks` bundles the three checks the state transition needs, so a caller can pass the
cached ones, the plain ones, or `TRUSTED` (replaying blocks this node already validated).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consensus import keys
from consensus.pos.types import (
    DOMAIN_RANDAO,
    Attestation,
    Checkpoint,
    Deposit,
    Exit,
    PosBlock,
    encode,
    sha256,
)
from consensus.types import Transaction, verify_transaction_signature

__all__ = ["verify_signature", "verify_attestation_signature", "randao_signing_root",
           "sign_attestation", "sign_block", "sign_randao", "sign_deposit", "sign_exit",
           "SignatureCache", "SignatureChecks", "SignedVote", "FULL_CHECKS", "TRUSTED"]


@lru_cache(maxsize=4096)
def _public_key(pubkey: bytes) -> Ed25519PublicKey | None:
    try:
        return Ed25519PublicKey.from_public_bytes(pubkey)
    except ValueError:
        return None


def verify_signature(pubkey: bytes, signature: bytes, message: bytes) -> bool:
    """True only for a valid Ed25519 signature; malformed keys or signatures give False."""
    if len(pubkey) != keys.PUBKEY_BYTES or len(signature) != keys.SIGNATURE_BYTES:
        return False
    key = _public_key(pubkey)
    if key is None:
        return False
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def verify_attestation_signature(att: Attestation, pubkey: bytes) -> bool:
    return verify_signature(pubkey, att.signature, att.signing_root)


def randao_signing_root(epoch: int) -> bytes:
    return sha256(DOMAIN_RANDAO + encode(epoch))


# ---- signing (validators, tests, adversarial roles) ------------------------------------------
def sign_attestation(private_key: bytes, slot: int, validator_index: int, head_root: bytes,
                     source: Checkpoint, target: Checkpoint) -> Attestation:
    unsigned = Attestation(slot, validator_index, head_root, source, target)
    return Attestation(slot, validator_index, head_root, source, target,
                       keys.sign(private_key, unsigned.signing_root))


def sign_randao(private_key: bytes, epoch: int) -> bytes:
    return keys.sign(private_key, randao_signing_root(epoch))


def sign_block(private_key: bytes, block: PosBlock) -> PosBlock:
    """The same block with its header signed by `private_key`."""
    return PosBlock(block.slot, block.proposer_index, block.parent_root, block.state_root,
                    block.randao_reveal, block.body,
                    keys.sign(private_key, block.header.signing_root))


def sign_deposit(private_key: bytes, pubkey: bytes, amount: int, nonce: int) -> Deposit:
    """A deposit of `amount` from the account of `private_key` into validator `pubkey`."""
    account = keys.public_key(private_key)
    unsigned = Deposit(pubkey, amount, account, nonce=nonce)
    return Deposit(pubkey, amount, account, keys.sign(private_key, unsigned.signing_root), nonce)


def sign_exit(private_key: bytes, validator_index: int, epoch: int) -> Exit:
    unsigned = Exit(validator_index, epoch)
    return Exit(validator_index, epoch, keys.sign(private_key, unsigned.signing_root))


# ---- cached verification ----------------------------------------------------------------------
class SignedVote(Protocol):
    """What the cache needs of a vote (a PoS attestation, a hybrid FFG vote): a root that commits
    to the signature, the signature, and the signing root it signs."""

    @property
    def root(self) -> bytes: ...

    @property
    def signature(self) -> bytes: ...

    @property
    def signing_root(self) -> bytes: ...


class SignatureCache:
    """Bounded set of (attestation root, pubkey) pairs whose signature is known good.

    Bound: `max_items` pairs, oldest first out (32,768 by default: a few epochs of votes of
    thousands of validators; a vote evicted and seen again costs one more verification).

    The pubkey is part of the key because a validator index may name different keys on different
    branches (deposits on each side of a fork), and the root commits to the signature.
    """

    def __init__(self, max_items: int = 32_768) -> None:
        self.max_items = max_items
        self._keys: OrderedDict[bytes, None] = OrderedDict()
        self.verified = 0          # signatures actually checked (for benchmarks and tests)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: bytes) -> bool:
        return key in self._keys

    def verify_attestation(self, att: SignedVote, pubkey: bytes) -> bool:
        """Signature check that consults the cache first and remembers successes."""
        key = att.root + pubkey
        if key in self._keys:
            return True
        self.verified += 1
        if not verify_signature(pubkey, att.signature, att.signing_root):
            return False
        self._keys[key] = None
        if len(self._keys) > self.max_items:
            self._keys.popitem(last=False)
        return True


@dataclass(frozen=True)
class SignatureChecks:
    """The signature checks a state transition runs: blocks/randao/deposits/exits/evidence
    (`signature`), attestations (`attestation`, may be cached), transactions (`transaction`)."""
    signature: Callable[[bytes, bytes, bytes], bool] = verify_signature
    attestation: Callable[[Attestation, bytes], bool] = verify_attestation_signature
    transaction: Callable[[Transaction], bool] = verify_transaction_signature


def _trust(*_args: object) -> bool:
    return True


FULL_CHECKS = SignatureChecks()
TRUSTED = SignatureChecks(_trust, _trust, _trust)
