"""Fuzzing p2p frames (a few seconds in the suite; scripts/fuzz.py runs it for minutes).

Every message type of p2p/wire.py, valid or with one part broken (tests/fuzz/wire_cases.py),
against a real P2PHost on loopback (tests/fuzz/targets.py): a bad frame closes the link with a
close code and penalises its sender, nothing is an internal error or a traceback in the log.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from p2p.errors import DecodeError
from p2p.wire import PROTOCOL_VERSION, SCHEMAS, decode_envelope
from tests.fuzz.targets import SyncTarget, WireTarget
from tests.fuzz.wire_cases import FUZZ_FRAME_CAP, FrameCase, frame_cases


@pytest.fixture(scope="module")
def wire():
    with SyncTarget(WireTarget()) as target:
        yield target


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=frame_cases())
def test_a_host_refuses_bad_frames_with_a_close_code_and_keeps_serving(wire, case: FrameCase):
    wire.check(case)


@settings(max_examples=500, deadline=None)
@given(case=frame_cases())
def test_decode_envelope_returns_a_checked_frame_or_raises_decode_error(case: FrameCase):
    if isinstance(case.data, str):
        return
    version = PROTOCOL_VERSION if case.handshaken else None
    try:
        frame_version, msg_type, body = decode_envelope(case.data, FUZZ_FRAME_CAP, version=version)
    except DecodeError as exc:
        assert len(str(exc)) < 300, f"a reason of {len(str(exc))} characters"
        return
    assert type(frame_version) is int and (version is None or frame_version == version)
    assert msg_type in SCHEMAS and isinstance(body, dict)
    assert all(check(body[name]) is None for name, check in SCHEMAS[msg_type].items())
