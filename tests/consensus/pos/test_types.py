"""Canonical encodings of PoS objects: round trips, what roots and signing roots commit to, the
spec's JSON, and the DecodeError that malformed bytes must raise."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.errors import ConsensusError, DecodeError
from consensus.pos.signing import sign_attestation, verify_attestation_signature
from consensus.pos.spec import PosSpec, initialize_genesis
from consensus.pos.types import (
    Attestation,
    AttesterSlashing,
    BlockBody,
    Checkpoint,
    Deposit,
    Exit,
    PosBlock,
    PosBlockHeader,
    ProposerSlashing,
    SignedBlockHeader,
    encode,
)
from consensus.types import sign_transaction
from tests.consensus.pos.pos_steps import (
    ALICE_KEY,
    BOB,
    VALIDATOR_KEYS,
    VALIDATOR_PUBKEYS,
    make_spec,
)

u64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
root = st.binary(min_size=32, max_size=32)
sig = st.binary(min_size=64, max_size=64)
checkpoints = st.builds(Checkpoint, u64, root)
attestations = st.builds(Attestation, u64, u64, root, checkpoints, checkpoints, sig)
headers = st.builds(PosBlockHeader, u64, u64, root, root, root)
signed_headers = st.builds(SignedBlockHeader, headers, sig)
deposits = st.builds(Deposit, root, u64, root, sig, u64)
exits = st.builds(Exit, u64, u64, sig)
bodies = st.builds(
    BlockBody,
    st.just((sign_transaction(ALICE_KEY, BOB, 5, 1, 0),)) | st.just(()),
    st.lists(attestations, max_size=3).map(tuple),
    st.lists(st.builds(ProposerSlashing, signed_headers, signed_headers), max_size=1).map(tuple),
    st.lists(st.builds(AttesterSlashing, attestations, attestations), max_size=1).map(tuple),
    st.lists(deposits, max_size=2).map(tuple), st.lists(exits, max_size=2).map(tuple))
blocks = st.builds(PosBlock, u64, u64, root, root, sig, bodies, sig)


@given(attestations)
def test_attestation_round_trip(att):
    assert Attestation.deserialize(att.serialize()) == att


@given(blocks)
@settings(max_examples=50)
def test_block_round_trip(block):
    again = PosBlock.deserialize(block.serialize())
    assert again == block and again.root == block.root


@given(st.builds(AttesterSlashing, attestations, attestations),
       st.builds(ProposerSlashing, signed_headers, signed_headers), deposits, exits)
def test_evidence_and_operations_round_trip(attester, proposer, deposit, request):
    assert AttesterSlashing.deserialize(attester.serialize()) == attester
    assert ProposerSlashing.deserialize(proposer.serialize()) == proposer
    assert Deposit.deserialize(deposit.serialize()) == deposit
    assert Exit.deserialize(request.serialize()) == request


@given(st.binary(max_size=300))
def test_random_bytes_decode_or_raise_decode_error(raw):
    for cls in (Attestation, PosBlock, AttesterSlashing, ProposerSlashing, Deposit, Exit):
        try:
            cls.deserialize(raw)
        except DecodeError:
            pass


@pytest.mark.parametrize("value, message", [
    ([1, 2, b"\x00" * 32, [0, b"\x00" * 32], [0, b"\x00" * 32]], "array of 6 fields"),
    ([1, 2, b"\x00" * 31, [0, b"\x00" * 32], [0, b"\x00" * 32], b"\x00" * 64], "head root"),
    ([-1, 2, b"\x00" * 32, [0, b"\x00" * 32], [0, b"\x00" * 32], b"\x00" * 64], "slot"),
    ([True, 2, b"\x00" * 32, [0, b"\x00" * 32], [0, b"\x00" * 32], b"\x00" * 64], "slot"),
    ([1.5, 2, b"\x00" * 32, [0, b"\x00" * 32], [0, b"\x00" * 32], b"\x00" * 64], "slot"),
    ([1, 2, b"\x00" * 32, [0, "text"], [0, b"\x00" * 32], b"\x00" * 64], "source root"),
    ({"slot": 1}, "array"),
])
def test_malformed_attestation_fields_name_the_field(value, message):
    with pytest.raises(DecodeError, match=message):
        Attestation.deserialize(msgpack.packb(value, use_bin_type=True))


def test_bad_msgpack_and_size_cap_raise_decode_error():
    att = sign_attestation(VALIDATOR_KEYS[0], 3, 0, b"\x01" * 32, Checkpoint(0, b"\x02" * 32),
                           Checkpoint(0, b"\x03" * 32))
    raw = att.serialize()
    for bad in (raw[:-1], raw + b"\x00", b"\xc1", b""):
        with pytest.raises(DecodeError):
            Attestation.deserialize(bad)
    block = PosBlock(1, 0, b"\x00" * 32, b"\x00" * 32, b"\x00" * 64)
    with pytest.raises(DecodeError, match="exceeds"):
        PosBlock.deserialize(block.serialize(), max_bytes=10)
    assert issubclass(DecodeError, ConsensusError) and issubclass(DecodeError, ValueError)


def test_signing_root_excludes_the_signature_and_is_domain_separated():
    att = sign_attestation(VALIDATOR_KEYS[0], 3, 0, b"\x01" * 32, Checkpoint(0, b"\x02" * 32),
                           Checkpoint(0, b"\x03" * 32))
    unsigned = replace(att, signature=bytes(64))
    assert att.signing_root == unsigned.signing_root
    assert att.root != unsigned.root                     # the root commits to the signature
    assert verify_attestation_signature(att, VALIDATOR_PUBKEYS[0])
    assert not verify_attestation_signature(att, VALIDATOR_PUBKEYS[1])
    assert not verify_attestation_signature(replace(att, slot=4), VALIDATOR_PUBKEYS[0])
    header = PosBlockHeader(3, 0, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32)
    assert header.signing_root != header.root


def test_block_root_is_the_header_root_and_commits_to_the_body():
    block = PosBlock(1, 0, b"\x00" * 32, b"\x00" * 32, b"\x00" * 64)
    assert block.root == block.header.root
    assert replace(block, signature=b"\x01" * 64).root == block.root
    with_exit = replace(block, body=BlockBody(exits=(Exit(1, 0),)))
    assert with_exit.root != block.root
    assert replace(block, randao_reveal=b"\x01" * 64).root != block.root


def test_spec_json_round_trip_and_field_errors():
    spec = make_spec(4, slash_fraction=Fraction(1, 16), inactivity_leak_rate="1/8")
    assert spec.inactivity_leak_rate == Fraction(1, 8)
    again = PosSpec.from_json(spec.to_json())
    assert again == spec and again.digest() == spec.digest()
    with pytest.raises(ValueError, match="unknown PoS spec field"):
        PosSpec.from_json({**spec.to_json(), "bogus": 1})
    with pytest.raises(ValueError, match="slots_per_epoch"):
        make_spec(4, slots_per_epoch=0)
    with pytest.raises(ValueError, match="slash_fraction"):
        make_spec(4, slash_fraction=2)
    with pytest.raises(ValueError, match="duplicate pubkey"):
        PosSpec(validators=((VALIDATOR_PUBKEYS[0], 1), (VALIDATOR_PUBKEYS[0], 1)))
    with pytest.raises(ValueError, match="validators"):
        PosSpec()


def test_genesis_commits_to_the_spec():
    _s1, g1 = initialize_genesis(make_spec(4))
    _s2, g2 = initialize_genesis(make_spec(4, base_reward=7))
    _s3, g3 = initialize_genesis(make_spec(4))
    assert g1.root == g3.root != g2.root
    state, genesis = initialize_genesis(make_spec(4))
    assert state.finalized_checkpoint == Checkpoint(0, genesis.root)
    assert encode([1, b"x"]) == msgpack.packb([1, b"x"], use_bin_type=True)
