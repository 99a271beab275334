"""Hypothesis strategies for p2p frames: every message type of p2p/wire.py, valid or broken.

A case starts from a valid frame `[version, type, body]` of any message type (bodies drawn
field by field from wire.SCHEMAS' rules) and then usually breaks one thing: a field replaced by a
value of another type, a huge or negative integer, an over-long string, a value nested up to
thousands of levels, a missing or extra field; the version or the type replaced the same ways;
the envelope itself (not a list, wrong length); or the encoded bytes (truncated, a byte flipped,
invalid UTF-8 in a string, map keys that are not strings, garbage appended). Some cases are
random bytes, text frames or frames over the host's size cap, and some are websocket bytes written
straight to the socket before hanging up (pings, a frame, then the TCP connection closed).

Deep nesting is written as msgpack bytes by hand (`Nested`): msgpack's own packer refuses to go
that deep, a hostile peer's does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
from hypothesis import strategies as st

from p2p.wire import MAX_ID_BYTES, MAX_NAME_CHARS, MAX_REASON_CHARS, PROTOCOL_VERSION, SCHEMAS
from tests.p2p.p2p_harness import CHAIN_ID, GENESIS, masked_ping

FUZZ_FRAME_CAP = 64 * 1024  # the fuzzed host's max_frame_bytes: oversized cases stay cheap
INT64_MIN, UINT64_MAX = -(2**63), 2**64 - 1
MESSAGE_TYPES = sorted(SCHEMAS)
TOPICS = ["t", "blocks"]  # the topics the fuzzed host registers (tests/fuzz/targets.py)


@dataclass(frozen=True)
class Nested:
    """`leaf` inside `depth` one-element lists, encoded as msgpack bytes by hand."""

    depth: int
    leaf: Any = 1


@dataclass(frozen=True)
class FrameCase:
    """One websocket message to send: `data` (bytes, or str for a text frame), after the
    handshake or instead of the peer's hello, with what was done to it. With `hang_up`, `data`
    is raw websocket bytes written to the socket, which is then closed at once."""

    data: bytes | str
    handshaken: bool
    what: str
    hang_up: bool = False

    def __repr__(self) -> str:
        shown = self.data[:48]
        more = f"... ({len(self.data)} long)" if len(self.data) > 48 else ""
        return f"FrameCase({self.what!r}, handshaken={self.handshaken}, data={shown!r}{more})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how hypothesis shows an example
        printer.text(repr(self))


def encode(value: Any) -> bytes:
    """msgpack of `value`, where `Nested` parts may be deeper than msgpack's packer allows."""
    packer = msgpack.Packer(use_bin_type=True)
    if isinstance(value, Nested):
        return b"\x91" * value.depth + encode(value.leaf)
    if isinstance(value, list):
        return packer.pack_array_header(len(value)) + b"".join(encode(v) for v in value)
    if isinstance(value, dict):
        return packer.pack_map_header(len(value)) + b"".join(
            encode(k) + encode(v) for k, v in value.items()
        )
    return packer.pack(value)


# ---- values --------------------------------------------------------------------------------------
ints = st.one_of(
    st.integers(min_value=INT64_MIN, max_value=UINT64_MAX),
    st.sampled_from([0, -1, 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, INT64_MIN, UINT64_MAX]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.binary(max_size=80),
)
any_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(
            st.one_of(st.text(max_size=10), ints, st.binary(max_size=4)), inner, max_size=5
        ),
    ),
    max_leaves=20,
)
# Depths around the interpreter's recursion limit (1000) and msgpack's unpacker limit (1024)
# matter most: deeper than that msgpack itself refuses the frame.
nestings = st.builds(
    Nested,
    st.one_of(
        st.integers(1, 40),
        st.integers(900, 1030),
        st.sampled_from([999, 1000, 1022, 1023, 1024, 1025]),
        st.integers(1, 5000),
    ),
    st.one_of(st.just(1), scalars),
)
hostile = st.one_of(  # what replaces a field, the version or the type
    any_values,
    nestings,
    st.sampled_from([UINT64_MAX, INT64_MIN, -1, 2**63]),
    st.integers(1, 3 * MAX_REASON_CHARS).map(lambda n: "x" * n),
    st.integers(1, 4 * MAX_ID_BYTES).map(lambda n: b"\x00" * n),
)


def _bytes(n: int | None = None, max_len: int = 200) -> st.SearchStrategy:
    return st.binary(min_size=n, max_size=n) if n is not None else st.binary(max_size=max_len)


def _ids() -> st.SearchStrategy:
    return st.lists(st.binary(max_size=MAX_ID_BYTES), max_size=8)


def valid_body(msg_type: str) -> st.SearchStrategy:
    """A body of `msg_type` that passes wire.py's checks (the host may still refuse it)."""
    topic = st.one_of(st.sampled_from(TOPICS), st.text(min_size=1, max_size=MAX_NAME_CHARS))
    non_negative = st.integers(0, UINT64_MAX)
    bodies = {
        "hello": st.fixed_dictionaries(
            {
                "chain_id": st.one_of(st.just(CHAIN_ID), st.text(max_size=MAX_NAME_CHARS)),
                "genesis": st.one_of(st.just(GENESIS), _bytes(32)),
                "version": st.one_of(st.just(1), ints),
                "pubkey": _bytes(32),
                "challenge": _bytes(32),
            }
        ),
        "auth": st.fixed_dictionaries({"sig": _bytes(64)}),
        "bye": st.fixed_dictionaries({"reason": st.text(max_size=MAX_REASON_CHARS)}),
        "status": st.fixed_dictionaries(
            {
                "tip": _bytes(max_len=MAX_ID_BYTES),
                "score": st.integers(INT64_MIN, 2**63 - 1),
                "height": st.integers(0, 2**63 - 1),
            }
        ),
        "gossip": st.fixed_dictionaries(
            {"topic": topic, "id": _bytes(max_len=MAX_ID_BYTES), "payload": _bytes()}
        ),
        "data": st.fixed_dictionaries(
            {"topic": topic, "id": _bytes(max_len=MAX_ID_BYTES), "payload": _bytes()}
        ),
        "inv": st.fixed_dictionaries({"topic": topic, "ids": _ids()}),
        "getdata": st.fixed_dictionaries({"topic": topic, "ids": _ids()}),
        "notfound": st.fixed_dictionaries({"topic": topic, "ids": _ids()}),
        "req": st.fixed_dictionaries(
            {
                "id": non_negative,
                "method": st.one_of(st.just("get_blocks"), st.text(max_size=MAX_NAME_CHARS)),
                "body": st.one_of(
                    st.fixed_dictionaries(
                        {
                            "locator": st.lists(_bytes(max_len=MAX_ID_BYTES), max_size=4),
                            "limit": st.integers(-2, 1000),
                        }
                    ),
                    any_values,
                    nestings,
                ),
            }
        ),
        "resp": st.fixed_dictionaries(
            {"id": non_negative, "ok": st.booleans(), "body": st.one_of(any_values, nestings)}
        ),
    }
    assert set(bodies) == set(SCHEMAS), "a message type without a fuzz strategy"
    return bodies[msg_type]


@st.composite
def valid_frames(draw) -> tuple[str, list]:
    msg_type = draw(st.sampled_from(MESSAGE_TYPES))
    body = draw(valid_body(msg_type))
    return f"valid {msg_type}", [PROTOCOL_VERSION, msg_type, body]


# ---- mutations -----------------------------------------------------------------------------------
@st.composite
def mutated_frames(draw) -> tuple[str, bytes]:
    what, frame = draw(valid_frames())
    version, msg_type, body = frame
    kind = draw(
        st.sampled_from(
            [
                "none",
                "field",
                "missing field",
                "extra field",
                "version",
                "type",
                "body",
                "envelope",
                "bytes",
            ]
        )
    )
    if kind == "field" and body:
        name = draw(st.sampled_from(sorted(body)))
        value = draw(hostile)
        body = {**body, name: value}
        what += f", field {name} = {_label(value)}"
    elif kind == "missing field" and body:
        name = draw(st.sampled_from(sorted(body)))
        body = {k: v for k, v in body.items() if k != name}
        what += f", no {name}"
    elif kind == "extra field":
        body = {**body, draw(st.text(max_size=10)): draw(st.one_of(any_values, nestings))}
        what += ", extra field"
    elif kind == "version":
        version = draw(st.one_of(nestings, hostile, st.integers(-3, 3)))
        what += f", version = {_label(version)}"
    elif kind == "type":
        msg_type = draw(st.one_of(nestings, hostile, st.text(max_size=20)))
        what += f", type = {_label(msg_type)}"
    elif kind == "body":
        body = draw(st.one_of(any_values, nestings))
        what += f", body = {_label(body)}"
    elif kind == "envelope":
        frame_value = draw(
            st.one_of(
                st.just([version, msg_type]),
                st.just([version, msg_type, body, 0]),
                st.just({"version": version}),
                any_values,
                nestings,
            )
        )
        return what + f", envelope = {_label(frame_value)}", encode(frame_value)
    data = encode([version, msg_type, body])
    if kind == "bytes":
        return _break_bytes(draw, what, data)
    return what, data


def _break_bytes(draw: Any, what: str, data: bytes) -> tuple[str, bytes]:
    """Break an encoded frame (a plain function taking `draw`: a strategy built with `data` as its
    argument would carry kilobytes in its repr)."""
    how = draw(st.sampled_from(["truncate", "flip", "append", "bad utf-8", "int map key"]))
    if how == "truncate":
        cut = draw(st.integers(0, max(0, len(data) - 1)))
        return f"{what}, cut to {cut} bytes", data[:cut]
    if how == "flip":
        at = draw(st.integers(0, len(data) - 1))
        return f"{what}, byte {at} flipped", data[:at] + bytes(
            [data[at] ^ draw(st.integers(1, 255))]
        ) + data[at + 1 :]
    if how == "append":
        return f"{what}, garbage appended", data + draw(st.binary(min_size=1, max_size=20))
    if how == "bad utf-8":  # the type: a msgpack str whose bytes are not UTF-8
        junk = draw(st.binary(min_size=1, max_size=8).filter(lambda b: not _is_utf8(b)))
        return f"{what}, type not UTF-8", (
            b"\x93" + encode(PROTOCOL_VERSION) + bytes([0xA0 | len(junk)]) + junk + encode({})
        )
    return f"{what}, int map key", b"\x93" + encode(PROTOCOL_VERSION) + encode("status") + encode(
        {1: b"x"}
    )


def _masked_binary(payload: bytes) -> bytes:
    """A client's binary websocket frame (RFC 6455 5.2; all-zero mask), up to 64 KiB."""
    if len(payload) < 126:
        return bytes([0x82, 0x80 | len(payload)]) + b"\x00" * 4 + payload
    return bytes([0x82, 0x80 | 126]) + len(payload).to_bytes(2, "big") + b"\x00" * 4 + payload


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _label(value: Any) -> str:
    if isinstance(value, Nested):
        return f"nested {value.depth} deep"
    if isinstance(value, (str, bytes)) and len(value) > 20:
        return f"{type(value).__name__} of {len(value)}"
    if isinstance(value, (list, dict)):
        return f"{type(value).__name__} of {len(value)}"
    return repr(value)


@st.composite
def frame_cases(draw) -> FrameCase:
    """Any case: mostly a (mutated) binary frame, sometimes raw bytes, a text frame or a frame
    over the size cap; sent after the handshake or before it."""
    handshaken = draw(st.booleans())
    source = draw(st.sampled_from(["mutated"] * 8 + ["random", "text", "oversized", "hang up"]))
    if source == "random":
        data = draw(st.binary(min_size=0, max_size=300))
        return FrameCase(data, handshaken, "random bytes")
    if source == "text":
        return FrameCase(draw(st.text(max_size=50)), handshaken, "text frame")
    if source == "hang up":
        pings = masked_ping(draw(st.binary(max_size=20))) * draw(st.integers(0, 60))
        _, frame = draw(mutated_frames())
        tail = _masked_binary(frame) if draw(st.booleans()) and len(frame) < 65536 else b""
        return FrameCase(pings + tail, handshaken, "pings, a frame, then hang up", hang_up=True)
    if source == "oversized":
        return FrameCase(
            b"\x00" * (FUZZ_FRAME_CAP + draw(st.integers(1, 1000))), handshaken, "over the cap"
        )
    what, data = draw(mutated_frames())
    return FrameCase(data, handshaken, what)
