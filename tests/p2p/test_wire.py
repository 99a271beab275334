"""wire.py: frames round-trip, and every kind of bad frame becomes a readable DecodeError."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2p.errors import DecodeError, EncodeError
from p2p.wire import MAX_FRAME_BYTES, decode_envelope, decode_frame, encode_frame


def test_round_trip():
    body = {"topic": "blocks", "id": b"\x01" * 32, "payload": b"block bytes"}
    assert decode_frame(encode_frame("gossip", body)) == ("gossip", body)


def test_frame_over_the_cap_is_refused_before_decoding():
    with pytest.raises(DecodeError, match="frame of 5000000 bytes exceeds 4194304"):
        decode_frame(b"\x00" * 5_000_000)
    assert MAX_FRAME_BYTES == 4194304


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xc1\xc1\xc1", "not valid msgpack"),
        (msgpack.packb({"a": 1}), "must be a list"),
        (msgpack.packb([1, "gossip"]), "must be a list"),
        (msgpack.packb([7, "gossip", {}]), "protocol version 7 unsupported"),
        (msgpack.packb([True, "gossip", {}]), "is not an integer"),
        (msgpack.packb([1, "x", {}]), "unknown message type 'x'"),
        (msgpack.packb([1, "inv", []]), "must be a map"),
        (msgpack.packb([1, "inv", {"topic": "t"}]), "lacks field 'ids'"),
        (msgpack.packb([1, "inv", {"topic": "t", "ids": ["a"]}], use_bin_type=True),
         "field 'ids' must be a list of bytes"),
        (msgpack.packb([1, "req", {"id": True, "method": "m", "body": None}]),
         "field 'id' must be a non-negative integer"),
        (msgpack.packb([1, "hello", {"chain_id": "c", "genesis": b"x", "version": 1, "pubkey": b"",
                                     "challenge": b""}],
                       use_bin_type=True), "field 'genesis' must be bytes of length 32"),
        (msgpack.packb([1, "bye", {1: "x"}]), "not valid msgpack"),  # strict_map_key
    ],
)
def test_malformed_frames_name_the_problem(data, reason):
    with pytest.raises(DecodeError, match=reason):
        decode_frame(data)


def test_handshake_decoding_accepts_any_version():
    data = encode_frame("bye", {"reason": "r"}, version=9)
    assert decode_envelope(data) == (9, "bye", {"reason": "r"})


def test_unencodable_body_raises_encode_error():
    with pytest.raises(EncodeError):
        encode_frame("req", {"id": 1, "method": "m", "body": object()})


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256))
def test_random_bytes_only_ever_raise_decode_error(data):
    try:
        decode_frame(data)
    except DecodeError:
        pass
