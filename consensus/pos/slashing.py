"""Slashable offences: the predicates, the validation of evidence, and a detector that turns what a
node sees into evidence.

Offences (Casper FFG's two commandments, plus proposer equivocation):
- double proposal: two different blocks, same proposer, same slot;
- double vote: two different attestations of one validator with the same target epoch;
- surround vote: two attestations of one validator where one's (source, target) span strictly
  contains the other's: s1 < s2 and t2 < t1. Phase0's `is_slashable_attestation_data` checks one
  direction for an ordered pair; a pair of votes is an offence whichever way round it comes, so
  `is_surround_vote` checks both.

`validate_*_slashing` are the `[REJECT]` rules for evidence in a block or on gossip: the offence is
proven by signatures, and the offender must still be slashable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus.pos.errors import InvalidEvidence
from consensus.pos.signing import SignatureChecks
from consensus.pos.state import PosState, get_current_epoch, is_slashable_validator
from consensus.pos.types import (
    Attestation,
    AttesterSlashing,
    PosBlockHeader,
    ProposerSlashing,
    SignedBlockHeader,
)


# ---- predicates ---------------------------------------------------------------------------------
def is_double_vote(att_1: Attestation, att_2: Attestation) -> bool:
    """Different votes for the same target epoch (same validator)."""
    return (att_1.validator_index == att_2.validator_index and att_1.data != att_2.data
            and att_1.target.epoch == att_2.target.epoch)


def surrounds(att_1: Attestation, att_2: Attestation) -> bool:
    """`att_1`'s source -> target span strictly surrounds `att_2`'s."""
    return att_1.source.epoch < att_2.source.epoch and att_2.target.epoch < att_1.target.epoch


def is_surround_vote(att_1: Attestation, att_2: Attestation) -> bool:
    """One of the two votes (same validator) surrounds the other, whichever way round."""
    return att_1.validator_index == att_2.validator_index and (
        surrounds(att_1, att_2) or surrounds(att_2, att_1))


def is_slashable_attestation_pair(att_1: Attestation, att_2: Attestation) -> bool:
    return is_double_vote(att_1, att_2) or is_surround_vote(att_1, att_2)


def is_proposer_equivocation(header_1: PosBlockHeader, header_2: PosBlockHeader) -> bool:
    """Two different headers by the same proposer for the same slot."""
    return (header_1.slot == header_2.slot and header_1.proposer_index == header_2.proposer_index
            and header_1.root != header_2.root)


# ---- evidence validation ------------------------------------------------------------------------
def validate_proposer_slashing(state: PosState, evidence: ProposerSlashing,
                               checks: SignatureChecks) -> None:
    """Raise InvalidEvidence unless `evidence` proves a double proposal by a slashable validator."""
    h1, h2 = evidence.header_1.message, evidence.header_2.message
    # [REJECT] both headers are for the same slot
    if h1.slot != h2.slot:
        raise InvalidEvidence(f"headers are for different slots ({h1.slot}, {h2.slot})")
    # [REJECT] both headers name the same proposer
    if h1.proposer_index != h2.proposer_index:
        raise InvalidEvidence("headers are from different proposers")
    # [REJECT] the headers differ
    if h1.root == h2.root:
        raise InvalidEvidence("headers are identical")
    index = h1.proposer_index
    _check_slashable(state, index)
    pubkey = state.validators[index].pubkey
    # [REJECT] both headers are signed by the proposer
    for signed in (evidence.header_1, evidence.header_2):
        if not checks.signature(pubkey, signed.signature, signed.message.signing_root):
            raise InvalidEvidence("bad header signature in proposer slashing")


def validate_attester_slashing(state: PosState, evidence: AttesterSlashing,
                               checks: SignatureChecks) -> None:
    """Raise InvalidEvidence unless `evidence` proves a double or surround vote by a slashable
    validator."""
    a1, a2 = evidence.att_1, evidence.att_2
    # [REJECT] both attestations are by the same validator
    if a1.validator_index != a2.validator_index:
        raise InvalidEvidence("attestations are from different validators")
    # [REJECT] the pair is a double vote or a surround vote
    if not is_slashable_attestation_pair(a1, a2):
        raise InvalidEvidence("attestations are neither a double vote nor a surround vote")
    index = a1.validator_index
    _check_slashable(state, index)
    pubkey = state.validators[index].pubkey
    # [REJECT] both attestations are signed by the validator
    for att in (a1, a2):
        if not checks.attestation(att, pubkey):
            raise InvalidEvidence("bad attestation signature in attester slashing")


def _check_slashable(state: PosState, index: int) -> None:
    # [REJECT] the offender is a known validator
    if index >= len(state.validators):
        raise InvalidEvidence(f"unknown validator {index}")
    # [REJECT] the offender is slashable: not slashed yet, activated, not yet withdrawable
    if not is_slashable_validator(state.validators[index], get_current_epoch(state)):
        raise InvalidEvidence(f"validator {index} is not slashable (already slashed or withdrawn)")


# ---- the detector -------------------------------------------------------------------------------
@dataclass
class _VoteHistory:
    by_target: dict[int, Attestation] = field(default_factory=dict)
    max_source: int = -1
    max_target: int = -1


class SlashingDetector:
    """Remembers the signed votes and block headers a node has accepted, per validator, for the
    last `max_epochs` target epochs (bounded memory: a surround spanning more is missed);
    `check_*` answers with evidence when a new one conflicts.

    `check_*` are pure; `record_*` remember. A caller checks, validates the rest, then records, so
    an input rejected for another reason leaves the detector as it was.
    """

    def __init__(self, max_epochs: int = 32, max_headers: int = 4096) -> None:
        self.max_epochs = max_epochs
        self.max_headers = max_headers
        self._votes: dict[int, _VoteHistory] = {}
        self._headers: dict[tuple[int, int], SignedBlockHeader] = {}

    def check_attestation(self, att: Attestation) -> AttesterSlashing | None:
        history = self._votes.get(att.validator_index)
        if history is None:
            return None
        previous = history.by_target.get(att.target.epoch)
        if previous is not None:
            return AttesterSlashing(previous, att) if previous.data != att.data else None
        # Honest votes move forward: a newer target with a source no older than any seen cannot
        # surround or be surrounded, which spares the scan for almost every vote.
        if att.target.epoch > history.max_target and att.source.epoch >= history.max_source:
            return None
        for old in history.by_target.values():
            if surrounds(old, att) or surrounds(att, old):
                return AttesterSlashing(old, att)
        return None

    def votes_of(self, validator_index: int) -> dict[int, Attestation]:
        """The recorded votes of a validator, by target epoch."""
        history = self._votes.get(validator_index)
        return dict(history.by_target) if history is not None else {}

    def record_attestation(self, att: Attestation) -> None:
        history = self._votes.setdefault(att.validator_index, _VoteHistory())
        if att.target.epoch in history.by_target:
            return
        history.by_target[att.target.epoch] = att
        history.max_source = max(history.max_source, att.source.epoch)
        history.max_target = max(history.max_target, att.target.epoch)
        oldest = history.max_target - self.max_epochs
        if len(history.by_target) > self.max_epochs:
            for epoch in [e for e in history.by_target if e < oldest]:
                del history.by_target[epoch]

    def check_block(self, signed: SignedBlockHeader) -> ProposerSlashing | None:
        header = signed.message
        previous = self._headers.get((header.proposer_index, header.slot))
        if previous is not None and is_proposer_equivocation(previous.message, header):
            return ProposerSlashing(previous, signed)
        return None

    def record_block(self, signed: SignedBlockHeader) -> None:
        key = (signed.message.proposer_index, signed.message.slot)
        if key in self._headers:
            return
        self._headers[key] = signed
        while len(self._headers) > self.max_headers:
            del self._headers[next(iter(self._headers))]


class SlashingProtection:
    """A validator client's record of what its validators signed, so an honest node never signs
    an offence (EIP-3076 in spirit): at most one block per slot, one vote per target epoch, and
    no vote that surrounds or is surrounded by one it signed. Check with `may_*`, sign, then
    `record_*`."""

    def __init__(self, max_epochs: int = 64) -> None:
        self._votes = SlashingDetector(max_epochs)
        self._proposals: set[tuple[int, int]] = set()
        self.loaded = 0     # records read back from storage (a durable subclass sets it)

    def may_attest(self, att: Attestation) -> bool:
        signed = self._votes.votes_of(att.validator_index).get(att.target.epoch)
        if signed is not None:
            return signed.data == att.data
        return self._votes.check_attestation(att) is None

    def signed_votes(self, validator_index: int) -> dict[int, Attestation]:
        return self._votes.votes_of(validator_index)

    def record_attestation(self, att: Attestation) -> None:
        self._votes.record_attestation(att)

    def may_propose(self, validator_index: int, slot: int) -> bool:
        return (validator_index, slot) not in self._proposals

    def record_proposal(self, validator_index: int, slot: int) -> None:
        self._proposals.add((validator_index, slot))
