"""Casper FFG's rules as both finality gadgets here use them: PoS (Gasper, consensus/pos/) and
hybrid PoW + PoS (EIP-1011, consensus/hybrid/).

A vote is a link from a source checkpoint to a target checkpoint, signed by one validator. What
the two consensuses share, and what lives here once:
- the supermajority: a link justifies its target with at least two thirds of the stake, counted
  inclusively (`3 * votes >= 2 * total`; EIP-1011's `votes >= total * 2/3`, phase0's
  `3 * attesting >= 2 * total`);
- the two commandments (Buterin and Griffith, "Casper the Friendly Finality Gadget", 2017, section
  2.2): a validator must not publish two different votes for the same target epoch (a *double
  vote*), nor a vote whose source -> target span strictly contains another of its votes (a
  *surround vote*). The pair is an offence whichever way round it comes (EIP-1011's `slashable`
  checks both orders; phase0's `is_slashable_attestation_data` one, for an ordered pair). Two
  votes with the same data are one vote, never an offence (`test_same_msg_fails`);
- `VoteHistory`, the memory of which votes each validator signed, that turns a new vote into the
  earlier one it conflicts with (the slashing detector of a node is one of these);
  `VoteProtection`, a validator client's slashing protection, keeps only each validator's newest
  vote and refuses any that does not move forward from it (EIP-3076's minimal watermarks).

Votes are anything with `validator_index`, `source_epoch`, `target_epoch` and `data` (what is
voted for: equal data is the same vote): `consensus.pos.types.Attestation` and
`consensus.hybrid.types.HybridVote` both are.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar


class FfgVote(Protocol):
    @property
    def validator_index(self) -> int: ...

    @property
    def source_epoch(self) -> int: ...

    @property
    def target_epoch(self) -> int: ...

    @property
    def data(self) -> Hashable: ...


V = TypeVar("V", bound=FfgVote)


def is_supermajority(votes: int, total: int) -> bool:
    """At least two thirds, inclusive (`3 * votes >= 2 * total`); nothing justifies with no stake
    at all."""
    return total > 0 and 3 * votes >= 2 * total


def surrounds(a: FfgVote, b: FfgVote) -> bool:
    """`a`'s source -> target span strictly surrounds `b`'s: s_a < s_b and t_b < t_a."""
    return a.source_epoch < b.source_epoch and b.target_epoch < a.target_epoch


def is_double_vote(a: FfgVote, b: FfgVote) -> bool:
    """Different votes of one validator for the same target epoch."""
    return (a.validator_index == b.validator_index and a.data != b.data
            and a.target_epoch == b.target_epoch)


def is_surround_vote(a: FfgVote, b: FfgVote) -> bool:
    """One of two votes of one validator surrounds the other, whichever way round."""
    return a.validator_index == b.validator_index and (surrounds(a, b) or surrounds(b, a))


def is_slashable_pair(a: FfgVote, b: FfgVote) -> bool:
    return is_double_vote(a, b) or is_surround_vote(a, b)


def offence_kind(a: FfgVote, b: FfgVote) -> str:
    """How a slashable pair is named in events: "double vote" or "surround vote"."""
    return "double vote" if a.target_epoch == b.target_epoch else "surround vote"


@dataclass
class _Votes(Generic[V]):
    by_target: dict[int, V] = field(default_factory=dict)
    max_source: int = -1
    max_target: int = -1


class VoteHistory(Generic[V]):
    """The votes each validator signed, for the last `max_epochs` target epochs (bounded memory:
    a surround spanning more is missed). `conflict` is pure; `record` remembers, so a caller checks,
    validates the rest, then records, and an input refused for another reason leaves it as it was.
    """

    def __init__(self, max_epochs: int = 32) -> None:
        self.max_epochs = max_epochs
        self._votes: dict[int, _Votes[V]] = {}

    def conflict(self, vote: V) -> V | None:
        """A recorded vote of the same validator that `vote` is slashable with, if any."""
        history = self._votes.get(vote.validator_index)
        if history is None:
            return None
        previous = history.by_target.get(vote.target_epoch)
        if previous is not None:
            return previous if previous.data != vote.data else None
        # Honest votes move forward: a newer target with a source no older than any seen cannot
        # surround or be surrounded, which spares the scan for almost every vote.
        if vote.target_epoch > history.max_target and vote.source_epoch >= history.max_source:
            return None
        for old in history.by_target.values():
            if surrounds(old, vote) or surrounds(vote, old):
                return old
        return None

    def votes_of(self, validator_index: int) -> dict[int, V]:
        """The recorded votes of a validator, by target epoch."""
        history = self._votes.get(validator_index)
        return dict(history.by_target) if history is not None else {}

    def record(self, vote: V) -> None:
        history = self._votes.setdefault(vote.validator_index, _Votes())
        if vote.target_epoch in history.by_target:
            return
        history.by_target[vote.target_epoch] = vote
        history.max_source = max(history.max_source, vote.source_epoch)
        history.max_target = max(history.max_target, vote.target_epoch)
        oldest = history.max_target - self.max_epochs
        if len(history.by_target) > self.max_epochs:
            for epoch in [e for e in history.by_target if e < oldest]:
                del history.by_target[epoch]


class VoteProtection(Generic[V]):
    """A validator client's record of the votes its validators signed, so an honest one never
    signs an offence (EIP-3076): at most one vote per target epoch (the same vote again is fine),
    and none that surrounds or is surrounded by one it signed. Check with `may_vote`, sign, then
    `record_vote`.

    Bound: one vote per validator in memory -- its newest -- as EIP-3076's minimal watermarks:
    refuse a target at or below the newest signed target (unless it is that very vote) and a
    source below its source. Votes that only ever move forward so can neither surround nor be
    surrounded by any earlier one, so the older votes need not be held (the durable subclass
    keeps them on disk). `max_epochs` is kept for callers; the bound no longer depends on it."""

    def __init__(self, max_epochs: int = 64) -> None:
        self.max_epochs = max_epochs
        self._newest: dict[int, V] = {}
        self.loaded = 0     # records read back from storage (a durable subclass sets it)

    def may_vote(self, vote: V) -> bool:
        newest = self._newest.get(vote.validator_index)
        if newest is None:
            return True
        if vote.target_epoch == newest.target_epoch:
            return vote.data == newest.data
        return vote.target_epoch > newest.target_epoch and \
            vote.source_epoch >= newest.source_epoch

    def signed_votes(self, validator_index: int) -> dict[int, V]:
        """What memory holds of a validator's votes: its newest, by target epoch."""
        newest = self._newest.get(validator_index)
        return {newest.target_epoch: newest} if newest is not None else {}

    def record_vote(self, vote: V) -> None:
        newest = self._newest.get(vote.validator_index)
        if newest is None or vote.target_epoch > newest.target_epoch:
            self._newest[vote.validator_index] = vote

    def entries(self) -> int:
        """Validators with a vote on record (the in-memory size)."""
        return len(self._newest)
