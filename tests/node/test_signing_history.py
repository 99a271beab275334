"""Slashing protection read back from disk: what a validator signed before a restart still stops
it from signing an offence after."""

from __future__ import annotations

import pytest

from consensus.pos.signing import sign_attestation
from consensus.pos.types import Checkpoint
from node.signing_history import DurableSlashingProtection, SigningHistoryError
from tests.consensus.pos.pos_steps import VALIDATOR_KEYS

A, B, C = (bytes([i]) * 32 for i in (1, 2, 3))


def vote(validator: int, slot: int, head: bytes, source: int, target: int):
    return sign_attestation(VALIDATOR_KEYS[validator], slot, validator, head,
                            Checkpoint(source, A), Checkpoint(target, B))


def test_a_restarted_validator_refuses_what_it_refused_before(tmp_path):
    path = tmp_path / "signing.sqlite"
    before = DurableSlashingProtection(path)
    signed = vote(3, 17, C, 1, 2)
    before.record_attestation(signed)
    before.record_proposal(3, 17)
    before.close()                      # or a SIGKILL: each record is committed on its own

    after = DurableSlashingProtection(path)
    assert after.loaded == 2
    assert after.may_attest(signed), "the very same vote may be sent again"
    assert not after.may_attest(vote(3, 18, A, 1, 2)), "another vote for target 2: double vote"
    assert not after.may_attest(vote(3, 30, C, 0, 3)), "0->3 surrounds 1->2"
    assert after.may_attest(vote(3, 30, C, 2, 3))
    assert after.may_attest(vote(4, 18, A, 1, 2)), "records are per validator"
    assert not after.may_propose(3, 17) and after.may_propose(3, 18)


def test_votes_older_than_the_kept_window_are_dropped_on_start(tmp_path):
    path = tmp_path / "signing.sqlite"
    first = DurableSlashingProtection(path, keep_epochs=4)
    for target in (1, 2, 9, 10):
        first.record_attestation(vote(0, target * 8, C, target - 1, target))
    first.close()
    second = DurableSlashingProtection(path, keep_epochs=4)
    assert second.loaded == 2
    assert sorted(second.signed_votes(0)) == [10], "memory keeps the newest; the rest is on disk"


def test_an_unreadable_history_stops_the_node_with_a_reason(tmp_path):
    path = tmp_path / "signing.sqlite"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(SigningHistoryError, match="cannot read the signing history"):
        DurableSlashingProtection(path)
