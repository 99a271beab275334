"""Bitcoin's proof-of-work rules, reproduced exactly where Bitcoin defines them.

Hashes are 32-byte strings in Bitcoin's *internal* byte order (the order they are hashed and
serialized in); `hash_hex` gives the byte-reversed form that block explorers display. Integers in
the header are little-endian. Compact `bits` follow `arith_uint256::SetCompact/GetCompact`, and
retargeting follows `CalculateNextWorkRequired` (clamp to [T/4, 4T], scale, cap at the pow limit).
"""

from __future__ import annotations

import hashlib
import struct

HEADER_BYTES = 80
_HEADER = struct.Struct("<i32s32sIII")
_NONCE = struct.Struct("<I")


def sha256d(data: bytes) -> bytes:
    """Bitcoin's double SHA-256."""
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def serialize_header(version: int, prev_hash: bytes, merkle_root: bytes, time: int, bits: int,
                     nonce: int) -> bytes:
    """The 80-byte block header exactly as Bitcoin serializes it."""
    if len(prev_hash) != 32 or len(merkle_root) != 32:
        raise ValueError("prev_hash and merkle_root must be 32 bytes")
    return _HEADER.pack(version, prev_hash, merkle_root, time, bits, nonce)


def parse_header(raw80: bytes) -> tuple[int, bytes, bytes, int, int, int]:
    """Inverse of `serialize_header`: (version, prev_hash, merkle_root, time, bits, nonce)."""
    if len(raw80) != HEADER_BYTES:
        raise ValueError(f"a header is {HEADER_BYTES} bytes, got {len(raw80)}")
    return _HEADER.unpack(raw80)


def header_hash(raw80: bytes) -> bytes:
    """Block hash in internal byte order (double SHA-256 of the 80-byte header)."""
    return sha256d(raw80)


def hash_hex(h: bytes) -> str:
    """Display form of a hash: byte-reversed hex, as Bitcoin prints block hashes."""
    return h[::-1].hex()


def hash_from_hex(text: str) -> bytes:
    """Inverse of `hash_hex`; raises ValueError for anything but 64 hex digits."""
    raw = bytes.fromhex(text)
    if len(raw) != 32:
        raise ValueError(f"a hash is 64 hex digits, got {len(text)}")
    return raw[::-1]


def hash_to_int(h: bytes) -> int:
    """A hash read as the 256-bit little-endian number that PoW compares with the target."""
    return int.from_bytes(h, "little")


def bits_to_target(bits: int) -> int:
    """Decode compact `bits` (SetCompact). Raises ValueError for a negative or overflowing
    encoding."""
    size = bits >> 24
    word = bits & 0x007FFFFF
    if size <= 3:
        # SetCompact shifts the word itself, so mantissa bits shifted out cannot make it negative.
        word >>= 8 * (3 - size)
        target = word
    else:
        target = word << (8 * (size - 3))
    if word != 0 and (bits & 0x00800000):
        raise ValueError(f"compact bits {bits:#010x} encode a negative target")
    if word != 0 and (size > 34 or (word > 0xFF and size > 33) or (word > 0xFFFF and size > 32)):
        raise ValueError(f"compact bits {bits:#010x} overflow 256 bits")
    return target


def target_to_bits(target: int) -> int:
    """Encode a target as compact `bits` (GetCompact), rounding down as Bitcoin does."""
    if target < 0:
        raise ValueError("target must be non-negative")
    size = (target.bit_length() + 7) // 8
    if size <= 3:
        compact = target << (8 * (3 - size))
    else:
        compact = target >> (8 * (size - 3))
    # The 0x00800000 bit is the sign bit: if set, shift the mantissa and grow the exponent.
    if compact & 0x00800000:
        compact >>= 8
        size += 1
    return compact | (size << 24)


def next_bits(last_bits: int, first_time: int, last_time: int, *, target_timespan: int,
              pow_limit: int) -> int:
    """Bitcoin's CalculateNextWorkRequired for the block after a retarget window."""
    actual = last_time - first_time
    actual = max(actual, target_timespan // 4)
    actual = min(actual, target_timespan * 4)
    new_target = bits_to_target(last_bits) * actual // target_timespan
    new_target = min(new_target, pow_limit)
    return target_to_bits(new_target)


def block_work(bits: int) -> int:
    """Expected hashes to find a block at `bits`: 2**256 // (target + 1); 0 for an invalid
    target."""
    try:
        target = bits_to_target(bits)
    except ValueError:
        return 0
    if target == 0:
        return 0
    return (1 << 256) // (target + 1)


def check_target(bits: int, pow_limit: int) -> str | None:
    """None when `bits` encode a target in (0, pow_limit]; otherwise the reason."""
    try:
        target = bits_to_target(bits)
    except ValueError as exc:
        return str(exc)
    if target == 0 or target > pow_limit:
        return f"bits {bits:#010x} outside the allowed range"
    return None


def check_proof_of_work(block_hash: bytes, bits: int, pow_limit: int) -> str | None:
    """None when the hash meets its target; otherwise the reason (Bitcoin's CheckProofOfWork)."""
    reason = check_target(bits, pow_limit)
    if reason:
        return reason
    if hash_to_int(block_hash) > bits_to_target(bits):
        return "hash does not meet the target in bits"
    return None


def merkle_root(txids: list[bytes]) -> bytes:
    """Bitcoin's merkle root: pairwise double SHA-256, duplicating the last hash of an odd level."""
    if not txids:
        return b"\x00" * 32
    level = list(txids)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def search_nonce(header76: bytes, target: int, start: int, count: int) -> int | None:
    """Try nonces [start, start+count) for a header's first 76 bytes; the first that meets `target`.

    The first 64 bytes are hashed once and the SHA-256 state copied per nonce (Bitcoin's midstate
    trick), so a try costs one compression plus the outer hash.
    """
    sha256 = hashlib.sha256
    copy = sha256(header76[:64]).copy
    tail = bytearray(header76[64:76] + b"\x00\x00\x00\x00")
    pack_into = _NONCE.pack_into
    top_byte = target >> 248          # cheap filter on the most significant byte first
    from_bytes = int.from_bytes
    for nonce in range(start, min(start + count, 1 << 32)):
        pack_into(tail, 12, nonce)
        inner = copy()
        inner.update(tail)
        digest = sha256(inner.digest()).digest()
        if digest[31] <= top_byte and from_bytes(digest, "little") <= target:
            return nonce
    return None
