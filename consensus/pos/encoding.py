"""Canonical encoding of the PoS wire types, written once for all of them.

Each wire type in `consensus.pos.types` lists its fields in wire order in a `WIRE` table: the
attribute, its codec, and the label decode errors name it by. From that table the bases here derive
what every type would otherwise write out by hand:
- `WireList`: `to_list()`, the fixed-order array of the encoded fields, and
  `from_list(value, what)`, which checks the array's length and each field's type and length,
  naming the bad field
  (`"attestation source root must be 32 bytes"`);
- `WireObject`: `serialize()` (msgpack of that array), `deserialize(raw)` (size cap first, then
  msgpack, then `from_list`) and `root`, the SHA-256 of the serialized bytes;
- `Signable`: `signing_root`, the SHA-256 of the type's domain tag followed by the encoding of
  every field but `signature`, so a signature made for one kind of object never verifies as
  another.

Encoding (consensus/pos/types.py explains why): integers as msgpack integers (64-bit unsigned),
bytes as msgpack bin, nested objects as nested arrays, transactions as their 152-byte PoW encoding.
Decoding is a trust boundary: every failure is a `DecodeError`, so the rules never see a malformed
object.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Protocol, Self

import msgpack

from consensus.errors import DecodeError
from consensus.types import TX_BYTES, Transaction

MAX_UINT64 = (1 << 64) - 1
ROOT_BYTES = 32
PUBKEY_BYTES = 32
SIGNATURE_BYTES = 64
MAX_OBJECT_BYTES = 4 * 1024 * 1024    # no single gossip object (attestation, evidence) is larger


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def encode(value: Any) -> bytes:
    """Canonical msgpack bytes of a fixed-order array (bin type for bytes, never str)."""
    return msgpack.packb(value, use_bin_type=True)


def decode(raw: bytes, what: str, max_bytes: int = MAX_OBJECT_BYTES) -> Any:
    """msgpack bytes -> Python value; every failure becomes DecodeError."""
    # [REJECT] the encoding fits the size cap; checked before msgpack allocates anything
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise DecodeError(f"{what}: expected bytes, got {type(raw).__name__}")
    if len(raw) > max_bytes:
        raise DecodeError(f"{what} of {len(raw)} bytes exceeds the {max_bytes}-byte limit")
    try:
        return msgpack.unpackb(raw, raw=False, strict_map_key=True, use_list=True)
    except (msgpack.UnpackException, ValueError, TypeError) as exc:
        raise DecodeError(f"{what} is not valid msgpack: {type(exc).__name__}: {exc}") from None


# ---- checks of decoded values -------------------------------------------------------------------
def check_uint(value: Any, what: str) -> int:
    # bool is an int subclass in Python, but msgpack keeps them apart and so do we
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_UINT64:
        raise DecodeError(f"{what} must be a 64-bit unsigned integer")
    return value


def check_bytes(value: Any, length: int, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != length:
        raise DecodeError(f"{what} must be {length} bytes")
    return value


def check_array(value: Any, length: int, what: str) -> list[Any]:
    if not isinstance(value, list) or len(value) != length:
        raise DecodeError(f"{what} must be an array of {length} fields")
    return value


def check_items(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise DecodeError(f"{what} must be an array")
    return value


# ---- field codecs -------------------------------------------------------------------------------
class Codec(Protocol):
    """How one field goes onto the wire and comes back, checked; `what` names it in errors."""

    def encode(self, value: Any) -> Any: ...

    def decode(self, value: Any, what: str) -> Any: ...


class Uint:
    def encode(self, value: int) -> int:
        return value

    def decode(self, value: Any, what: str) -> int:
        return check_uint(value, what)


@dataclass(frozen=True)
class FixedBytes:
    length: int

    def encode(self, value: bytes) -> bytes:
        return value

    def decode(self, value: Any, what: str) -> bytes:
        return check_bytes(value, self.length, what)


@dataclass(frozen=True)
class Nested:
    """Another wire type, as its own array."""
    cls: type[WireList]

    def encode(self, value: WireList) -> list[Any]:
        return value.to_list()

    def decode(self, value: Any, what: str) -> WireList:
        return self.cls.from_list(value, what)


class TransactionBytes:
    """A transaction as its 152-byte PoW encoding (one format for both chains)."""

    def encode(self, value: Transaction) -> bytes:
        return value.serialize()

    def decode(self, value: Any, what: str) -> Transaction:
        return Transaction.deserialize(check_bytes(value, TX_BYTES, what))


@dataclass(frozen=True)
class Items:
    """A variable-length array of one codec, decoded to a tuple. Items are named by their kind and
    position (`"attestation 3"`), not by the enclosing object: a block body names them so."""
    item: Codec
    plural: str
    singular: str

    def encode(self, value: tuple[Any, ...]) -> list[Any]:
        return [self.item.encode(x) for x in value]

    def decode(self, value: Any, what: str) -> tuple[Any, ...]:
        return tuple(self.item.decode(x, f"{self.singular} {i}")
                     for i, x in enumerate(check_items(value, self.plural)))


UINT = Uint()
ROOT = FixedBytes(ROOT_BYTES)
PUBKEY = FixedBytes(PUBKEY_BYTES)
SIGNATURE = FixedBytes(SIGNATURE_BYTES)
TRANSACTION = TransactionBytes()


@dataclass(frozen=True)
class WireField:
    """One entry of a `WIRE` table; `label` defaults to the name with spaces (`head root`)."""
    name: str
    codec: Codec
    label: str = ""

    @property
    def what(self) -> str:
        return self.label or self.name.replace("_", " ")


# ---- the bases ---------------------------------------------------------------------------------
class WireList:
    """A type encoded as the fixed-order array of its `WIRE` fields (subclasses are frozen
    dataclasses whose constructor takes every field by name)."""
    __slots__ = ()
    WIRE: ClassVar[tuple[WireField, ...]]
    WHAT: ClassVar[str]                 # how errors name a whole object of this type

    def to_list(self) -> list[Any]:
        return [f.codec.encode(getattr(self, f.name)) for f in self.WIRE]

    @classmethod
    def from_list(cls, value: Any, what: str | None = None) -> Self:
        """Check and decode the fields in wire order; the first bad one raises DecodeError."""
        what = cls.WHAT if what is None else what
        items = check_array(value, len(cls.WIRE), what)
        return cls(**{f.name: f.codec.decode(item, f"{what} {f.what}")
                      for f, item in zip(cls.WIRE, items, strict=True)})


class WireObject(WireList):
    """A type that also travels alone (gossip, store): bytes, and a root naming those bytes."""

    def serialize(self) -> bytes:
        return encode(self.to_list())

    @classmethod
    def deserialize(cls, raw: bytes, max_bytes: int | None = None) -> Self:
        return cls.from_list(decode(raw, cls.WHAT,
                                    MAX_OBJECT_BYTES if max_bytes is None else max_bytes))

    @cached_property
    def root(self) -> bytes:
        return sha256(self.serialize())


class Signable(WireObject):
    """A type signed over its signing root: `DOMAIN` + the encoding of all fields but
    `signature`."""
    DOMAIN: ClassVar[bytes]

    def message_list(self) -> list[Any]:
        return [f.codec.encode(getattr(self, f.name)) for f in self.WIRE if f.name != "signature"]

    @cached_property
    def signing_root(self) -> bytes:
        return sha256(self.DOMAIN + encode(self.message_list()))
