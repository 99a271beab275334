"""The DPoS state of one branch and the block transition (`process_block`).

A state is what a block's branch says: balances and nonces (the shared `Ledger`), stakes, votes,
candidates, pending refunds, the active schedule (and one proposed schedule waiting to become
irreversible), per-producer production, misses and offences, and the last irreversible height.
Each accepted block gets its own post-state (`DposState.copy()` of the parent's, then the block
applied), so the transition needs no undo.

`process_block` checks everything in order and raises before returning; the caller only keeps
the new state if it returns, so a rejected block leaves every state untouched.

Rules and their sources:
- slot -> producer, missed slots, election and LIB: `consensus/dpos/schedule.py`;
- new schedule only once the block that proposed it is irreversible (EOSIO
  `block_header_state::next`: `pending_schedule` is promoted when `dpos_irreversible_blocknum`
  passes `pending_schedule.schedule_lib_num`);
- operations: EOSIO system contract `delegatebw`, `undelegatebw` + `refund`, `regproducer`,
  `voteproducer` (at most 30 producers, sorted and unique; a new vote replaces the old);
- optional time-weighted votes (`vote_weight_doubling_slots`, EOSIO `stake2vote`): a vote's
  weight is fixed when it is cast (or its account stakes more), so later votes count more;
- stake locked while voting (an account that votes cannot unstake: withdraw the vote first) and
  unstaked coins come back `unstake_delay_slots` later (EOSIO's 3-day refund delay);
- rewards: `block_reward` plus the block's fees to its producer (EOSIO pays per produced block
  from inflation, `onblock` + `claimrewards`; no claiming here);
- double production: evidence is recorded per (producer, slot) once; with
  `slash_double_production` the producer's stake is burnt and it is barred from producing and
  from elections (EOSIO has no slashing: the penalty is an option, off by default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from consensus.dpos.errors import (
    BadBlockSignature,
    InvalidBlock,
    InvalidEvidence,
    InvalidOperation,
    WrongProducer,
)
from consensus.dpos.schedule import (
    compute_lib_height,
    count_missed_slots,
    elect_producers,
    get_scheduled_producer,
    tally_votes,
)
from consensus.dpos.spec import DposSpec
from consensus.dpos.types import DoubleProduction, DposBlock, DposOperation, OpKind
from consensus.errors import InvalidTransaction, Violation
from consensus.ledger import Ledger
from consensus.types import MAX_AMOUNT, Transaction, verify_transaction_signature

VerifySignature = Callable[[bytes, bytes, bytes], bool]     # (pubkey, signature, message)


@dataclass(frozen=True)
class Checks:
    """The signature checks the transition makes: cached ones on a live node, `TRUSTED` when
    replaying blocks this node validated before."""
    signature: VerifySignature
    transaction: Callable[[Transaction], bool] = verify_transaction_signature


TRUSTED = Checks(lambda _k, _s, _m: True, lambda _tx: True)


@dataclass
class DposState:
    ledger: Ledger
    schedule: tuple[bytes, ...]
    candidates: set[bytes]
    stakes: dict[bytes, int] = field(default_factory=dict)
    votes: dict[bytes, tuple[bytes, ...]] = field(default_factory=dict)
    vote_slots: dict[bytes, int] = field(default_factory=dict)   # when each vote was (re)cast
    refunds: list[tuple[int, bytes, int]] = field(default_factory=list)  # (slot, account, amount)
    schedule_version: int = 0
    pending_schedule: tuple[bytes, ...] | None = None
    pending_height: int = 0               # the block that proposed `pending_schedule`
    last_produced: dict[bytes, int] = field(default_factory=dict)
    produced: dict[bytes, int] = field(default_factory=dict)
    missed: dict[bytes, int] = field(default_factory=dict)
    offences: set[tuple[bytes, int]] = field(default_factory=set)   # (producer, slot)
    slashed: set[bytes] = field(default_factory=set)
    lib_height: int = 0
    height: int = 0
    slot: int = 0

    def copy(self) -> DposState:
        return DposState(
            Ledger(dict(self.ledger.balances), dict(self.ledger.nonces)), self.schedule,
            set(self.candidates), dict(self.stakes), dict(self.votes), dict(self.vote_slots),
            list(self.refunds),
            self.schedule_version, self.pending_schedule, self.pending_height,
            dict(self.last_produced), dict(self.produced), dict(self.missed), set(self.offences),
            set(self.slashed), self.lib_height, self.height, self.slot)

    def vote_totals(self, doubling_slots: int = 0) -> dict[bytes, int]:
        return tally_votes(self.votes, self.stakes, self.vote_slots, doubling_slots)


def initialize_genesis(spec: DposSpec) -> DposState:
    ledger = Ledger()
    for account, amount in spec.allocations:
        ledger.balances[account] = ledger.balance(account) + amount
    stakes: dict[bytes, int] = {}
    for account, amount in spec.stakes:
        stakes[account] = stakes.get(account, 0) + amount
    return DposState(ledger, spec.schedule, set(spec.schedule) | set(spec.candidates), stakes)


# ---- blocks -------------------------------------------------------------------------------------
def process_block(state: DposState, block: DposBlock, spec: DposSpec, checks: Checks
                  ) -> DposState:
    """The post-state of `block` on `state` (its parent's), or raise and change nothing."""
    # [REJECT] slots strictly increase along a branch
    if block.slot <= state.slot:
        raise InvalidBlock(f"slot {block.slot} is not after the parent's slot {state.slot}",
                           Violation.TIMESTAMP)
    expected = get_scheduled_producer(state.schedule, block.slot, spec.repetitions)
    # [REJECT] the block is signed for its slot by the producer the schedule names
    if block.producer != expected:
        raise WrongProducer(f"slot {block.slot} belongs to producer {expected.hex()[:16]}, "
                            f"not {block.producer.hex()[:16]}")
    # [REJECT] the producer's stake was not slashed (optional penalty)
    if block.producer in state.slashed:
        raise WrongProducer(f"producer {block.producer.hex()[:16]} was slashed")
    # [REJECT] the header carries the producer's signature
    if not checks.signature(block.producer, block.signature, block.header.signing_root):
        raise BadBlockSignature(f"block at slot {block.slot} is not signed by its producer")
    new = state.copy()
    _charge_missed_slots(new, state.slot + 1, block.slot, spec)
    for index, evidence in enumerate(block.body.evidence):
        try:
            process_evidence(new, evidence, spec, checks)
        except InvalidEvidence as exc:
            raise InvalidBlock(f"evidence {index}: {exc}", exc.violation) from None
    fees = 0
    for index, tx in enumerate(block.body.transactions):
        try:
            fees += process_transfer(new, tx, checks)
        except InvalidTransaction as exc:
            raise InvalidBlock(f"transaction {index}: {exc}", exc.violation) from None
    for index, op in enumerate(block.body.operations):
        try:
            process_operation(new, op, spec, checks, block.slot)
        except InvalidOperation as exc:
            raise InvalidBlock(f"operation {index}: {exc}", exc.violation) from None
    _release_refunds(new, block.slot)
    _reward(new, block.producer, spec.block_reward + fees)
    new.height += 1
    new.slot = block.slot
    new.produced[block.producer] = new.produced.get(block.producer, 0) + 1
    new.last_produced[block.producer] = new.height
    _advance_lib_and_schedule(new, spec)
    return new


def _charge_missed_slots(state: DposState, first: int, end: int, spec: DposSpec) -> None:
    for producer, count in count_missed_slots(state.schedule, spec.repetitions, first,
                                              end).items():
        state.missed[producer] = state.missed.get(producer, 0) + count


def _release_refunds(state: DposState, slot: int) -> None:
    due = [r for r in state.refunds if r[0] <= slot]
    if not due:
        return
    state.refunds = [r for r in state.refunds if r[0] > slot]
    for _slot, account, amount in due:
        _reward(state, account, amount)


def _reward(state: DposState, account: bytes, amount: int) -> None:
    if amount:
        state.ledger.balances[account] = min(MAX_AMOUNT, state.ledger.balance(account) + amount)


def _advance_lib_and_schedule(state: DposState, spec: DposSpec) -> None:
    """LIB never moves back; a proposed schedule activates once its proposing block is
    irreversible; an election runs every `election_interval` blocks when none is pending."""
    state.lib_height = max(state.lib_height,
                           compute_lib_height(state.schedule, state.last_produced))
    if state.pending_schedule is not None and state.lib_height >= state.pending_height:
        state.schedule = state.pending_schedule
        state.schedule_version += 1
        state.pending_schedule = None
    if state.pending_schedule is None and state.height % spec.election_interval == 0:
        totals = state.vote_totals(spec.vote_weight_doubling_slots)
        elected = elect_producers(state.candidates, totals, state.schedule,
                                  spec.producers, state.slashed)
        if set(elected) != set(state.schedule):
            state.pending_schedule = elected
            state.pending_height = state.height


# ---- transfers, operations, evidence -----------------------------------------------------------
def process_transfer(state: DposState, tx: Transaction, checks: Checks) -> int:
    """Apply one transfer (the ledger's rules); returns its fee."""
    state.ledger.check_transaction(tx, verify=checks.transaction)
    ledger = state.ledger
    ledger.balances[tx.sender] = ledger.balance(tx.sender) - tx.amount - tx.fee
    ledger.balances[tx.recipient] = ledger.balance(tx.recipient) + tx.amount
    ledger.nonces[tx.sender] = ledger.nonce(tx.sender) + 1
    return tx.fee


def process_operation(state: DposState, op: DposOperation, spec: DposSpec, checks: Checks,
                      slot: int) -> None:
    """Apply a stake, unstake, registration or vote, or raise InvalidOperation."""
    ledger = state.ledger
    # [REJECT] a known kind of operation
    if op.kind not in OpKind._value2member_map_:
        raise InvalidOperation(f"unknown operation kind {op.kind}")
    kind = OpKind(op.kind)
    # [IGNORE by gossip: a race] the nonce is the account's next
    if op.nonce != ledger.nonce(op.account):
        raise InvalidOperation(f"nonce {op.nonce}, expected {ledger.nonce(op.account)}",
                               Violation.NONCE)
    if kind in (OpKind.STAKE, OpKind.UNSTAKE):
        _check_amount_operation(state, op, kind)
    elif kind is OpKind.VOTE:
        _check_vote(state, op, spec)
    # [REJECT] signed by the account (last: the expensive check)
    if not checks.signature(op.account, op.signature, op.signing_root):
        raise InvalidOperation(f"{kind.label} not signed by its account", Violation.BAD_SIGNATURE)
    ledger.nonces[op.account] = ledger.nonce(op.account) + 1
    if kind is OpKind.STAKE:
        ledger.balances[op.account] = ledger.balance(op.account) - op.amount
        state.stakes[op.account] = state.stakes.get(op.account, 0) + op.amount
        if op.account in state.votes:        # EOSIO update_votes: the vote is weighed anew
            state.vote_slots[op.account] = slot
    elif kind is OpKind.UNSTAKE:
        state.stakes[op.account] -= op.amount
        if not state.stakes[op.account]:
            del state.stakes[op.account]
        state.refunds.append((slot + spec.unstake_delay_slots, op.account, op.amount))
    elif kind is OpKind.REGISTER:
        state.candidates.add(op.account)
    elif op.candidates:
        state.votes[op.account] = tuple(op.candidates)
        state.vote_slots[op.account] = slot
    else:
        state.votes.pop(op.account, None)
        state.vote_slots.pop(op.account, None)


def _check_amount_operation(state: DposState, op: DposOperation, kind: OpKind) -> None:
    # [REJECT] a positive amount
    if op.amount <= 0:
        raise InvalidOperation(f"{kind.label} amount must be positive", Violation.BAD_AMOUNT)
    if kind is OpKind.STAKE:
        # [IGNORE by gossip: a race] the account can pay the stake
        if state.ledger.balance(op.account) < op.amount:
            raise InvalidOperation(f"balance {state.ledger.balance(op.account)} < stake "
                                   f"{op.amount}", Violation.OVERDRAFT)
        return
    # [REJECT] stake is locked while the account votes (withdraw the vote first)
    if op.account in state.votes:
        raise InvalidOperation("stake is locked while the account votes")
    # [IGNORE by gossip: a race] the account has that much stake
    if state.stakes.get(op.account, 0) < op.amount:
        raise InvalidOperation(f"stake {state.stakes.get(op.account, 0)} < unstake {op.amount}",
                               Violation.OVERDRAFT)


def _check_vote(state: DposState, op: DposOperation, spec: DposSpec) -> None:
    # [REJECT] at most max_votes candidates, each named once
    if len(op.candidates) > spec.max_votes:
        raise InvalidOperation(f"{len(op.candidates)} candidates, at most {spec.max_votes}")
    if len(set(op.candidates)) != len(op.candidates):
        raise InvalidOperation("a candidate is named twice")
    # [REJECT] every named account is a registered candidate
    for candidate in op.candidates:
        if candidate not in state.candidates:
            raise InvalidOperation(f"{candidate.hex()[:16]} is not a registered candidate")
    # [REJECT] only staked accounts vote (their weight is their stake)
    if op.candidates and state.stakes.get(op.account, 0) <= 0:
        raise InvalidOperation("an account without stake cannot vote")


def validate_evidence(state: DposState, evidence: DoubleProduction, checks: Checks) -> None:
    """Raise InvalidEvidence unless it proves a double production not yet recorded."""
    h1, h2 = evidence.header_1.message, evidence.header_2.message
    # [REJECT] same producer, same slot, different blocks
    if h1.producer != h2.producer or h1.slot != h2.slot:
        raise InvalidEvidence("headers of different producers or slots")
    if h1.root == h2.root:
        raise InvalidEvidence("the two headers are the same block")
    # [IGNORE by gossip] the offence is not recorded on this branch yet
    if (h1.producer, h1.slot) in state.offences:
        raise InvalidEvidence(f"double production at slot {h1.slot} already recorded",
                              Violation.DUPLICATE)
    # [REJECT] both headers signed by the producer
    for signed in (evidence.header_1, evidence.header_2):
        if not checks.signature(h1.producer, signed.signature, signed.message.signing_root):
            raise InvalidEvidence("a header is not signed by the producer",
                                  Violation.BAD_SIGNATURE)


def process_evidence(state: DposState, evidence: DoubleProduction, spec: DposSpec,
                     checks: Checks) -> None:
    validate_evidence(state, evidence, checks)
    state.offences.add((evidence.offender, evidence.slot))
    if spec.slash_double_production:
        state.stakes.pop(evidence.offender, None)
        state.slashed.add(evidence.offender)
