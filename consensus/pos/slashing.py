"""Slashable offences: the predicates, the validation of evidence, and a detector that turns what a
node sees into evidence.

Offences (Casper FFG's two commandments, plus proposer equivocation):
- double proposal: two different blocks, same proposer, same slot;
- double vote: two different attestations of one validator with the same target epoch;
- surround vote: two attestations of one validator where one's (source, target) span strictly
  contains the other's: s1 < s2 and t2 < t1. Phase0's `is_slashable_attestation_data` checks one
  direction for an ordered pair; a pair of votes is an offence whichever way round it comes, so
  `is_surround_vote` checks both.

The vote rules are Casper FFG's and shared with the hybrid consensus: they live in
`consensus.ffg`, and the names here are theirs. `validate_*_slashing` are the `[REJECT]` rules for
evidence in a block or on gossip: the offence is proven by signatures, and the offender must still
be slashable.
"""

from __future__ import annotations

from consensus.ffg import VoteHistory, VoteProtection, is_double_vote, is_surround_vote, surrounds
from consensus.ffg import is_slashable_pair as is_slashable_attestation_pair
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

__all__ = ["is_double_vote", "surrounds", "is_surround_vote", "is_slashable_attestation_pair",
           "is_proposer_equivocation", "validate_proposer_slashing",
           "validate_attester_slashing", "SlashingDetector", "SlashingProtection"]


# ---- predicates ---------------------------------------------------------------------------------
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
class SlashingDetector:
    """Remembers the signed votes and block headers a node has accepted, per validator, for the
    last `max_epochs` target epochs (bounded memory: a surround spanning more is missed);
    `check_*` answers with evidence when a new one conflicts.

    `check_*` are pure; `record_*` remember. A caller checks, validates the rest, then records, so
    an input rejected for another reason leaves the detector as it was.
    """

    def __init__(self, max_epochs: int = 32, max_headers: int = 1024) -> None:
        """Bounds: `max_epochs` target epochs of votes per validator, and the last
        `max_headers` block headers (1,024 slots: far more than the unfinalized window of a
        healthy chain, where a second block for a slot can still be accepted)."""
        self.max_epochs = max_epochs
        self.max_headers = max_headers
        self._votes: VoteHistory[Attestation] = VoteHistory(max_epochs)
        self._headers: dict[tuple[int, int], SignedBlockHeader] = {}

    def check_attestation(self, att: Attestation) -> AttesterSlashing | None:
        previous = self._votes.conflict(att)
        return AttesterSlashing(previous, att) if previous is not None else None

    def votes_of(self, validator_index: int) -> dict[int, Attestation]:
        """The recorded votes of a validator, by target epoch."""
        return self._votes.votes_of(validator_index)

    def record_attestation(self, att: Attestation) -> None:
        self._votes.record(att)

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


class SlashingProtection(VoteProtection[Attestation]):
    """A validator client's record of what its validators signed, so an honest node never signs
    an offence (EIP-3076 in spirit): at most one block per slot, one vote per target epoch, and
    no vote that surrounds or is surrounded by one it signed (`consensus.ffg.VoteProtection`).
    Check with `may_*`, sign, then `record_*`.

    Bounds: one entry per validator for blocks -- the highest slot it proposed at, EIP-3076's
    "refuse to sign any block with slot <= the lowest watermark" in its one-slot form (an honest
    proposer's slots only grow) -- and one vote per validator (`consensus.ffg.VoteProtection`).
    The full history is on disk (node/signing_history.py)."""

    def __init__(self, max_epochs: int = 64) -> None:
        super().__init__(max_epochs)
        self._last_proposal: dict[int, int] = {}    # validator -> highest slot proposed at

    def may_attest(self, att: Attestation) -> bool:
        return self.may_vote(att)

    def record_attestation(self, att: Attestation) -> None:
        self.record_vote(att)

    def may_propose(self, validator_index: int, slot: int) -> bool:
        return slot > self._last_proposal.get(validator_index, -1)

    def record_proposal(self, validator_index: int, slot: int) -> None:
        if slot > self._last_proposal.get(validator_index, -1):
            self._last_proposal[validator_index] = slot

    def proposal_entries(self) -> int:
        """Validators with a proposal on record (the in-memory size)."""
        return len(self._last_proposal)
