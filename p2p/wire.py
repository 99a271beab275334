"""Wire format: one websocket binary message = one msgpack frame `[version, type, body]`.

`encode_frame` / `decode_frame` are the only way bytes become messages and back. Decoding is the
trust boundary of the whole package: it caps the size before msgpack sees the data, turns every
msgpack failure into `DecodeError`, and then checks the body of each known message type field by
field, so the rest of p2p/ can index bodies without re-checking them. Unknown extra fields are
ignored, missing or mistyped ones are errors. Reasons name a peer's values with `shown` only: the
`repr` of a value nested a thousand deep raises RecursionError, which must never escape a decoder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack

from p2p.errors import DecodeError, EncodeError, shown

MAX_FRAME_BYTES = 4 * 1024 * 1024
PROTOCOL_VERSION = 1

MAX_NAME_CHARS = 64  # topic and method names
MAX_ID_BYTES = 64  # gossip message ids and chain ids (tips, locator entries)
MAX_IDS_PER_FRAME = 1024  # inv / getdata / notfound
MAX_REASON_CHARS = 1024  # bye reasons

# A field check returns None when the value is fine, else what the value should have been.
FieldCheck = Callable[[Any], str | None]


def _is_int(value: Any) -> bool:
    # bool is an int subclass in Python, but msgpack keeps them apart and so do we
    return isinstance(value, int) and not isinstance(value, bool)


def _str(max_chars: int) -> FieldCheck:
    def check(value: Any) -> str | None:
        if isinstance(value, str) and len(value) <= max_chars:
            return None
        return f"a string of at most {max_chars} characters"

    return check


def _bytes(exact: int | None = None, max_len: int = MAX_FRAME_BYTES) -> FieldCheck:
    def check(value: Any) -> str | None:
        if not isinstance(value, bytes):
            return "bytes"
        if exact is not None and len(value) != exact:
            return f"bytes of length {exact}"
        if len(value) > max_len:
            return f"bytes of at most {max_len} bytes"
        return None

    return check


def _bytes_list(max_items: int, max_len: int) -> FieldCheck:
    def check(value: Any) -> str | None:
        if not isinstance(value, list) or not all(isinstance(v, bytes) for v in value):
            return "a list of bytes"
        if len(value) > max_items or any(len(v) > max_len for v in value):
            return f"a list of at most {max_items} ids of at most {max_len} bytes"
        return None

    return check


def _int(value: Any) -> str | None:
    return None if _is_int(value) else "an integer"


def _non_negative_int(value: Any) -> str | None:
    return None if _is_int(value) and value >= 0 else "a non-negative integer"


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "a boolean"


def _any(value: Any) -> str | None:
    return None


_TOPIC = _str(MAX_NAME_CHARS)
_MSG_ID = _bytes(max_len=MAX_ID_BYTES)
_MSG_IDS = _bytes_list(MAX_IDS_PER_FRAME, MAX_ID_BYTES)

# Body schema of every message type this version speaks.
SCHEMAS: dict[str, dict[str, FieldCheck]] = {
    # handshake (p2p/handshake.py)
    "hello": {
        "chain_id": _str(MAX_NAME_CHARS),
        "genesis": _bytes(exact=32),
        "version": _int,
        "pubkey": _bytes(exact=32),
        "challenge": _bytes(exact=32),
    },
    "auth": {"sig": _bytes(exact=64)},
    "bye": {"reason": _str(MAX_REASON_CHARS)},
    # chain status (p2p/sync.py)
    "status": {"tip": _bytes(max_len=MAX_ID_BYTES), "score": _int, "height": _non_negative_int},
    # gossip (p2p/gossip.py)
    "gossip": {"topic": _TOPIC, "id": _MSG_ID, "payload": _bytes()},
    "inv": {"topic": _TOPIC, "ids": _MSG_IDS},
    "getdata": {"topic": _TOPIC, "ids": _MSG_IDS},
    "data": {"topic": _TOPIC, "id": _MSG_ID, "payload": _bytes()},
    "notfound": {"topic": _TOPIC, "ids": _MSG_IDS},
    # request / response (p2p/rpc.py)
    "req": {"id": _non_negative_int, "method": _str(MAX_NAME_CHARS), "body": _any},
    "resp": {"id": _non_negative_int, "ok": _bool, "body": _any},
}
MESSAGE_TYPES = frozenset(SCHEMAS)


def encode_frame(msg_type: str, body: dict, *, version: int = PROTOCOL_VERSION) -> bytes:
    """Serialise one message. Raises EncodeError if `body` holds something msgpack cannot carry."""
    try:
        return msgpack.packb([version, msg_type, body], use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"cannot encode {msg_type!r} frame: {exc}") from exc


def decode_frame(
    data: bytes, max_bytes: int = MAX_FRAME_BYTES, *, version: int = PROTOCOL_VERSION
) -> tuple[str, dict]:
    """Decode and check one frame of protocol `version`. Raises DecodeError with a readable
    reason."""
    frame_version, msg_type, body = decode_envelope(data, max_bytes, version=version)
    return msg_type, body


def decode_envelope(
    data: bytes, max_bytes: int = MAX_FRAME_BYTES, *, version: int | None = None
) -> tuple[int, str, dict]:
    """Like decode_frame, but also returns the frame's version; `version=None` accepts any.

    The handshake uses `version=None` so that a peer on another protocol version still gets a
    readable "version mismatch" instead of an undecodable frame.
    """
    # [REJECT] the frame fits the cap; checked before msgpack allocates anything
    if len(data) > max_bytes:
        raise DecodeError(f"frame of {len(data)} bytes exceeds {max_bytes}")
    try:
        frame = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except (msgpack.UnpackException, ValueError, TypeError) as exc:
        raise DecodeError(f"frame is not valid msgpack: {type(exc).__name__}: {exc}") from exc
    # [REJECT] the frame is a 3-element list [version, type, body]
    if not isinstance(frame, list) or len(frame) != 3:
        raise DecodeError("frame must be a list [version, type, body]")
    frame_version, msg_type, body = frame
    # [REJECT] the version is an integer we speak
    if not _is_int(frame_version):
        raise DecodeError(f"protocol version {shown(frame_version)} is not an integer")
    if version is not None and frame_version != version:
        raise DecodeError(f"protocol version {frame_version} unsupported")
    # [REJECT] the type is a known message type
    if not isinstance(msg_type, str) or msg_type not in SCHEMAS:
        raise DecodeError(f"unknown message type {shown(msg_type, MAX_NAME_CHARS)}")
    # [REJECT] the body is a map with every field of that type, each of the right kind
    if not isinstance(body, dict):
        raise DecodeError(f"body of {msg_type!r} must be a map")
    for name, check in SCHEMAS[msg_type].items():
        if name not in body:
            raise DecodeError(f"{msg_type!r} lacks field {name!r}")
        expected = check(body[name])
        if expected is not None:
            raise DecodeError(f"field {name!r} must be {expected}")
    return frame_version, msg_type, body
