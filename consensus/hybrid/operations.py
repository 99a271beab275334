"""Votes, slashing evidence, deposits and logouts a hybrid node hears about before a miner includes
them: their gossip verdicts, the slashing detector, and the pool a miner packs from.

Everything offered is judged against the state a child of the head would start from
(`HybridChain.next_state`), as EIP-1011's `votable` is asked about the next block. Verdicts follow
consensus-specs' gossip conditions by the exception's type (consensus/hybrid/errors.py): a vote
that may be valid elsewhere or later is IGNOREd, one no honest node would send is REJECTed.

The detector sees every well-signed vote of a known validator for the current or the previous
epoch, on whatever branch, and turns a second, conflicting one into evidence (a `VoteSlashing`),
which is pooled for the next block; the vote that proved it is not pooled (`ignore` with the
evidence). Honest votes never conflict (validators keep a slashing-protection record).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from consensus.errors import Violation
from consensus.ffg import VoteHistory
from consensus.hybrid.casper import (
    LedgerWrites,
    process_deposit,
    process_exit,
    validate_slashing,
    validate_vote,
)
from consensus.hybrid.errors import (
    InvalidEvidence,
    InvalidOperation,
    InvalidVote,
    VoteIgnored,
)
from consensus.hybrid.state import CasperState
from consensus.hybrid.types import Deposit, Exit, HybridVote, VoteSlashing
from consensus.pos.operation_pool import BoundedMap

if TYPE_CHECKING:
    from consensus.hybrid.chain import HybridChain

Verdict = Literal["accept", "ignore", "reject"]


@dataclass(frozen=True)
class VoteResult:
    outcome: Verdict
    reason: str = ""                      # for people: logs and events
    evidence: VoteSlashing | None = None  # slashing evidence this vote revealed
    violation: Violation | None = None    # ignore, reject: the kind of rule (decide by this)

    @property
    def accepted(self) -> bool:
        return self.outcome == "accept"


@dataclass(frozen=True)
class OperationResult:
    """Verdict on evidence, a deposit or a logout offered to the pool."""
    outcome: Verdict
    reason: str = ""
    violation: Violation | None = None


class CasperPool:
    """What waits for a miner, bounded; `consensus.hybrid.builder` picks what applies."""

    def __init__(self, max_votes: int = 65_536, max_other: int = 1024) -> None:
        self.votes: BoundedMap[HybridVote] = BoundedMap(max_votes)
        self.evidence: BoundedMap[VoteSlashing] = BoundedMap(max_other)
        self.deposits: BoundedMap[Deposit] = BoundedMap(max_other)
        self.exits: BoundedMap[Exit] = BoundedMap(max_other)

    def prune_votes(self, epoch: int) -> None:
        """Votes for targets before `epoch` can go in no block any more. Votes already included
        on the head chain stay: a reorg may need them again (the builder skips them meanwhile)."""
        for root in [r for r, v in self.votes.items() if v.target_epoch < epoch]:
            del self.votes[root]


class Operations:
    def __init__(self, chain: HybridChain, max_seen: int = 65_536) -> None:
        self.chain = chain
        self.pool = CasperPool()
        self.detector: VoteHistory[HybridVote] = VoteHistory()
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._max_seen = max_seen
        self._next: tuple[bytes, CasperState] | None = None

    def next_state(self) -> CasperState:
        """The head's child state, computed once per head."""
        head = self.chain.head.hash
        if self._next is None or self._next[0] != head:
            self._next = (head, self.chain.next_state())
        return self._next[1]

    def _see(self, root: bytes) -> None:
        self._seen[root] = None
        while len(self._seen) > self._max_seen:
            self._seen.popitem(last=False)

    # ---- votes ---------------------------------------------------------------------------------
    def on_vote(self, vote: HybridVote) -> VoteResult:
        # [IGNORE] not seen before (gossip or block): never verified twice
        if vote.root in self._seen:
            return VoteResult("ignore", "vote already seen", violation=Violation.DUPLICATE)
        state = self.next_state()
        index = vote.validator_index
        # [REJECT] the validator is known
        if index >= len(state.validators):
            return VoteResult("reject", f"unknown validator {index}",
                              violation=Violation.INVALID_VOTE)
        # [IGNORE] the target is the current or the previous epoch (older ones go in no block)
        if not state.epoch - 1 <= vote.target_epoch <= state.epoch:
            return VoteResult("ignore", f"target epoch {vote.target_epoch} is outside "
                                        f"{state.epoch - 1}..{state.epoch}",
                              violation=Violation.UNTIMELY)
        # [REJECT] signed by the validator (before the detector: evidence needs signatures)
        if not self.chain.checks.vote(vote, state.validators[index].pubkey):
            return VoteResult("reject", "bad vote signature", violation=Violation.BAD_SIGNATURE)
        self._see(vote.root)
        previous = self.detector.conflict(vote)
        if previous is not None:
            evidence = VoteSlashing(previous, vote)
            if self.on_evidence(evidence).outcome != "reject":
                return VoteResult("ignore", f"{evidence.kind} by validator {index}", evidence,
                                  Violation.EQUIVOCATION)
        self.detector.record(vote)
        try:
            validate_vote(state, vote, self.chain.checks)
        except VoteIgnored as exc:
            return VoteResult("ignore", str(exc), violation=exc.violation)
        except InvalidVote as exc:
            return VoteResult("reject", str(exc), violation=exc.violation)
        self.pool.votes.put(vote.root, vote)
        return VoteResult("accept")

    def on_block_votes(self, votes: tuple[HybridVote, ...]) -> list[VoteSlashing]:
        """Votes seen inside a block (which was judged already): into the detector, and into the
        pool, so another branch may include them too; returns the evidence they revealed."""
        found = []
        for vote in votes:
            previous = self.detector.conflict(vote)
            if previous is not None:
                evidence = VoteSlashing(previous, vote)
                if self.on_evidence(evidence).outcome == "accept":
                    found.append(evidence)
                continue
            self.detector.record(vote)
            self._see(vote.root)
            self.pool.votes.put(vote.root, vote)
        return found

    # ---- evidence, deposits, logouts -----------------------------------------------------------
    def on_evidence(self, evidence: VoteSlashing) -> OperationResult:
        # [IGNORE] not pooled already
        if evidence.root in self.pool.evidence:
            return OperationResult("ignore", "evidence already known", Violation.DUPLICATE)
        state = self.next_state()
        index = evidence.offender
        # [IGNORE] the offender is not slashed on our chain already
        if index < len(state.validators) and state.validators[index].slashed:
            return OperationResult("ignore", f"validator {index} is already slashed",
                                   Violation.DUPLICATE)
        try:
            validate_slashing(state, evidence, self.chain.checks)
        except InvalidEvidence as exc:
            return OperationResult("reject", str(exc), exc.violation)
        self.pool.evidence.put(evidence.root, evidence)
        return OperationResult("accept")

    def on_deposit(self, deposit: Deposit) -> OperationResult:
        # [IGNORE] not pooled already
        if deposit.root in self.pool.deposits:
            return OperationResult("ignore", "already pooled", Violation.DUPLICATE)
        writes = LedgerWrites(self.chain.ledger, {})
        try:
            process_deposit(self.next_state().copy(), deposit, writes, self.chain.checks)
        except InvalidOperation as exc:
            return OperationResult("reject", str(exc), exc.violation)
        finally:
            writes.undo()
        self.pool.deposits.put(deposit.root, deposit)
        return OperationResult("accept")

    def on_exit(self, request: Exit) -> OperationResult:
        # [IGNORE] not pooled already
        if request.root in self.pool.exits:
            return OperationResult("ignore", "already pooled", Violation.DUPLICATE)
        try:
            process_exit(self.next_state().copy(), request, self.chain.checks)
        except InvalidOperation as exc:
            return OperationResult("reject", str(exc), exc.violation)
        self.pool.exits.put(request.root, request)
        return OperationResult("accept")

    def on_new_head(self) -> None:
        self.pool.prune_votes(self.next_state().epoch)
