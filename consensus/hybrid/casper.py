"""The Casper FFG transition of a hybrid block: EIP-1011's contract (`simple_casper.v.py`,
ethereum/casper) as pure functions on a `CasperState`, each `[REJECT]` rule citing the check it
follows.

A block at height h runs, in this order (EIP-1011: "at the start of each epoch the contract's
`initialize_epoch` is called before any transaction"; "vote transactions go at the end"):
1. `initialize_epoch(h // epoch_length)` when h is the first block of an epoch;
2. the block's transfers (the PoW ledger rules, consensus/ledger.py: not here);
3. the Casper body: deposits, logouts, slashings, votes (`process_body`).

Money moves through `LedgerWrites`: deposits are paid from an account, withdrawals paid back to
the validator's key, the miner that includes a vote earns 1/8 of its reward and the miner that
includes evidence the 1/25 bounty (EIP-1011 pays `msg.sender`; here the reporter is the block's
miner, who put the evidence in). Every write remembers the account's previous balance and nonce
in the block's undo record, so a reorg reverts it with the block's transfers.

Economics follow `initialize_epoch`, `proc_reward` and `collective_reward` with exact fractions:
each epoch the deposits of the current and previous dynasty are multiplied by
`(1 + collective) / (1 + reward_factor)`, and a vote with the expected source adds
`deposit * reward_factor` at once, so a voter nets `(1 + collective)` and a non-voter loses about
`reward_factor`, which grows by `base_penalty_factor` with every epoch since finality.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction

from consensus.errors import InvalidBlock, Violation
from consensus.ffg import is_slashable_pair, is_supermajority
from consensus.hybrid.errors import (
    InvalidEvidence,
    InvalidOperation,
    InvalidVote,
    VoteError,
    VoteIgnored,
)
from consensus.hybrid.spec import (
    COIN,
    MINER_VOTE_REWARD_QUOTIENT,
    SLASH_BOUNTY_QUOTIENT,
    SLASH_FRACTION_MULTIPLIER,
)
from consensus.hybrid.state import (
    FAR_FUTURE,
    CasperState,
    CasperValidator,
    CheckpointRecord,
    FinalityPoint,
)
from consensus.hybrid.types import CasperBody, Deposit, Exit, HybridVote, VoteSlashing
from consensus.ledger import Ledger
from consensus.pos.signing import verify_signature


# ---- what a transition needs from outside ------------------------------------------------------
def verify_vote_signature(vote: HybridVote, pubkey: bytes) -> bool:
    return verify_signature(pubkey, vote.signature, vote.signing_root)


@dataclass(frozen=True)
class VoteChecks:
    """Signature checks: votes (`vote`, may be cached) and deposits, exits (`signature`)."""
    signature: Callable[[bytes, bytes, bytes], bool] = verify_signature
    vote: Callable[[HybridVote, bytes], bool] = verify_vote_signature


def _trust(*_args: object) -> bool:
    return True


FULL_CHECKS = VoteChecks()
TRUSTED = VoteChecks(_trust, _trust)


class LedgerWrites:
    """Balance and nonce changes the Casper section makes to a ledger, each account's first
    previous value remembered in `previous` (the shape of `consensus.ledger.BlockUndo.previous`).

    `checks_funds` False is for fork choice, which scores a side branch by its Casper state before
    the branch's transfers are validated (consensus/hybrid/chain.py): deposits are then counted
    without their nonce and balance rules, which run when the block is connected."""

    def __init__(self, ledger: Ledger, previous: dict[bytes, tuple[int | None, int | None]],
                 *, checks_funds: bool = True) -> None:
        self.ledger = ledger
        self.previous = previous
        self.checks_funds = checks_funds

    def balance(self, account: bytes) -> int:
        return self.ledger.balance(account)

    def nonce(self, account: bytes) -> int:
        return self.ledger.nonce(account)

    def _remember(self, account: bytes) -> None:
        if account not in self.previous:
            self.previous[account] = (self.ledger.balances.get(account),
                                      self.ledger.nonces.get(account))

    def credit(self, account: bytes, amount: int) -> None:
        if amount <= 0:
            return
        self._remember(account)
        self.ledger.balances[account] = self.ledger.balance(account) + amount

    def pay_in(self, account: bytes, amount: int, nonce: int) -> None:
        """Debit `amount` and move the nonce past `nonce` (a deposit spends like a transfer)."""
        self._remember(account)
        self.ledger.balances[account] = self.ledger.balance(account) - amount
        self.ledger.nonces[account] = nonce + 1

    def undo(self) -> None:
        """Put back every remembered account (a block that turned out invalid)."""
        for account, (balance, nonce) in self.previous.items():
            _restore(self.ledger.balances, account, balance)
            _restore(self.ledger.nonces, account, nonce)


def _restore(table: dict[bytes, int], key: bytes, value: int | None) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value


# ---- 1. the epoch ------------------------------------------------------------------------------
def reward_factor(state: CasperState, esf: int) -> Fraction:
    """`BASE_INTEREST_FACTOR / sqrt(total deposits in coins) + BASE_PENALTY_FACTOR * (esf - 2)`
    (`initialize_epoch`), with an integer square root, and never below 0 (the contract asserts
    > 0 instead, which would halt the chain)."""
    spec = state.spec
    deposits = max(state.total_deposits(state.dynasty), state.total_deposits(state.dynasty - 1))
    root = math.isqrt(deposits // COIN + 1)
    value = spec.base_interest_factor / root + spec.base_penalty_factor * (esf - 2)
    return max(Fraction(0), value)


def collective_reward(state: CasperState, esf: int) -> Fraction:
    """`collective_reward`: half the reward factor times the fraction that voted with the expected
    source in the epoch that ends, while finality is live (esf <= 2); else 0."""
    if not state.deposit_exists() or esf > 2 or not state.total_cur or not state.total_prev:
        return Fraction(0)
    source = state.expected_source_epoch
    cur = Fraction(state.cur_dyn_votes.get(source, 0), state.total_cur)
    prev = Fraction(state.prev_dyn_votes.get(source, 0), state.total_prev)
    return min(cur, prev) * state.reward_factor / 2


def initialize_epoch(state: CasperState, epoch: int, checkpoint_hash: bytes,
                     writes: LedgerWrites) -> None:
    """EIP-1011 `initialize_epoch(epoch)`, run by the first block of `epoch`, whose parent is the
    epoch's checkpoint (`checkpoint_hash`)."""
    if epoch != state.epoch + 1:
        raise ValueError(f"epoch {epoch} does not follow {state.epoch}")   # a caller's bug
    # the deposits behind the checkpoint, recorded before anything moves (fork choice's min)
    checkpoint = CheckpointRecord(epoch, checkpoint_hash, state.total_deposits(state.dynasty),
                                  state.total_deposits(state.dynasty - 1))
    esf = epoch - state.last_finalized_epoch
    exists = state.deposit_exists()
    next_factor = reward_factor(state, esf) if exists else Fraction(0)
    # rewards and penalties of the epoch that ends: one rescale of the live deposits
    rescale = (1 + collective_reward(state, esf)) / (1 + state.reward_factor)
    for index, validator in enumerate(state.validators):
        if state.may_vote(index) and rescale != 1:
            state.validators[index] = replace(
                validator, deposit=validator.deposit * rescale.numerator // rescale.denominator)
    state.reward_factor = next_factor
    state.epoch = epoch
    state.previous_checkpoint, state.checkpoint = state.checkpoint, checkpoint
    if not exists:
        # Before the first deposits, new epochs are finalized instantly (`insta_finalize`)
        state.main_hash_justified = True
        state.justified |= {epoch - 1}
        state.finalized |= {epoch - 1}
        state.last_justified_epoch = state.last_finalized_epoch = epoch - 1
    _increment_dynasty(state, epoch)
    _process_withdrawals(state, epoch, writes)
    # the votes of the new epoch: weights and totals as of now, an empty bitmap
    state.weights = [v.deposit for v in state.validators]
    state.total_cur = _weight_of(state, state.dynasty)
    state.total_prev = _weight_of(state, state.dynasty - 1)
    state.voted = frozenset()
    state.cur_dyn_votes, state.prev_dyn_votes = {}, {}


def _weight_of(state: CasperState, dynasty: int) -> int:
    return sum(w for v, w in zip(state.validators, state.weights) if v.in_dynasty(dynasty))


def _increment_dynasty(state: CasperState, epoch: int) -> None:
    """`increment_dynasty`: a new dynasty once the checkpoint two epochs back is finalized."""
    if epoch - 2 in state.finalized:
        state.dynasty += 1
        # validators whose last dynasty just ended may withdraw WITHDRAWAL_DELAY epochs on
        for index, validator in enumerate(state.validators):
            if validator.end_dynasty + 1 == state.dynasty:
                state.validators[index] = replace(
                    validator, withdrawal_epoch=epoch + state.spec.withdrawal_delay_epochs)
    if state.main_hash_justified:
        state.expected_source_epoch = epoch - 1
    state.main_hash_justified = False


def _process_withdrawals(state: CasperState, epoch: int, writes: LedgerWrites) -> None:
    """`withdraw`, automatic: at its withdrawal epoch a validator's deposit goes back to its key's
    account; a slashed one keeps `max(0, 1 - 3 * slashed_recently / total_at_logout)` of it,
    where slashed_recently is what was slashed in the 2 * WITHDRAWAL_DELAY epochs up to now."""
    delay = state.spec.withdrawal_delay_epochs
    for index, validator in enumerate(state.validators):
        due = validator.withdrawal_epoch
        if validator.withdrawn or due is None or epoch < due:
            continue
        amount = validator.deposit
        if validator.slashed and validator.deposits_at_logout > 0:
            recently = state.slashed_at(due) - state.slashed_at(due - 2 * delay - 1)
            keep = max(Fraction(0), 1 - Fraction(SLASH_FRACTION_MULTIPLIER * recently,
                                                 validator.deposits_at_logout))
            amount = amount * keep.numerator // keep.denominator
        writes.credit(validator.pubkey, amount)
        state.validators[index] = replace(validator, deposit=0, withdrawn=True)


# ---- 3. the body --------------------------------------------------------------------------------
def process_body(state: CasperState, body: CasperBody, miner: bytes, writes: LedgerWrites,
                 checks: VoteChecks) -> None:
    """Deposits, logouts, slashings, votes; the first one that breaks a rule makes the block
    invalid (EIP-1011: "a vote transaction that fails makes the block invalid")."""
    steps: list[tuple[str, tuple, Callable[..., None]]] = [
        ("deposit", body.deposits, lambda d: process_deposit(state, d, writes, checks)),
        ("exit", body.exits, lambda x: process_exit(state, x, checks)),
        ("slashing", body.slashings,
         lambda s: process_slashing(state, s, miner, writes, checks)),
        ("vote", body.votes, lambda v: process_vote(state, v, miner, writes, checks)),
    ]
    for name, items, process in steps:
        for i, item in enumerate(items):
            try:
                process(item)
            except (VoteError, InvalidEvidence, InvalidOperation) as exc:
                raise InvalidBlock(f"{name} {i}: {exc}", exc.violation) from None


def validate_vote(state: CasperState, vote: HybridVote, checks: VoteChecks) -> None:
    """EIP-1011 `_votable` and the signature, against the state of the block that would include
    the vote. Raises InvalidVote (`[REJECT]`) or VoteIgnored (`[IGNORE]`)."""
    index = vote.validator_index
    # [REJECT] the validator is known
    if index >= len(state.validators):
        raise InvalidVote(f"unknown validator {index}")
    # [REJECT] the source is before the target (a link goes forward; added to `_votable`)
    if vote.source_epoch >= vote.target_epoch:
        raise InvalidVote(f"source epoch {vote.source_epoch} is not before target epoch "
                          f"{vote.target_epoch}")
    # [IGNORE] the target epoch is the current epoch (`_votable`: target_epoch == current_epoch)
    if vote.target_epoch != state.epoch:
        raise VoteIgnored(f"target epoch {vote.target_epoch} is not the current epoch "
                          f"{state.epoch}")
    # [IGNORE] the target is this chain's checkpoint (`_votable`: recommended_target_hash)
    if vote.target_hash != state.checkpoint.hash:
        raise VoteIgnored(f"target {vote.target_hash[::-1].hex()[:16]} is not this chain's "
                          f"checkpoint of epoch {state.epoch}")
    # [IGNORE] no vote of this validator for this target epoch yet (`_votable`: vote_bitmap)
    if index in state.voted:
        raise VoteIgnored(f"validator {index} already voted for epoch {state.epoch} on this "
                          f"chain", Violation.DUPLICATE)
    # [IGNORE] the source is justified on this chain (`_votable`: checkpoints[source].is_justified)
    if vote.source_epoch not in state.justified:
        raise VoteIgnored(f"source epoch {vote.source_epoch} is not justified on this chain")
    # [IGNORE] the validator is in the current or the previous dynasty (`_votable`)
    if not state.may_vote(index):
        raise VoteIgnored(f"validator {index} is in neither the current dynasty "
                          f"{state.dynasty} nor the previous one")
    # [REJECT] signed by the validator (`validate_vote_signature`; checked last: the costly one)
    if not checks.vote(vote, state.validators[index].pubkey):
        raise InvalidVote("bad vote signature", Violation.BAD_SIGNATURE)


def process_vote(state: CasperState, vote: HybridVote, miner: bytes, writes: LedgerWrites,
                 checks: VoteChecks) -> None:
    """EIP-1011 `vote`: count the vote, pay its reward, justify and finalize."""
    validate_vote(state, vote, checks)
    index, source, target = vote.validator_index, vote.source_epoch, vote.target_epoch
    validator = state.validators[index]
    weight = state.weights[index]
    state.voted |= {index}
    if validator.in_dynasty(state.dynasty):
        state.cur_dyn_votes[source] = state.cur_dyn_votes.get(source, 0) + weight
    if validator.in_dynasty(state.dynasty - 1):
        state.prev_dyn_votes[source] = state.prev_dyn_votes.get(source, 0) + weight
    if source == state.expected_source_epoch:       # `proc_reward`: the validator and the miner
        rf = state.reward_factor
        reward = weight * rf.numerator // rf.denominator
        state.validators[index] = replace(validator, deposit=validator.deposit + reward)
        writes.credit(miner, reward // MINER_VOTE_REWARD_QUOTIENT)
    enough = (is_supermajority(state.cur_dyn_votes.get(source, 0), state.total_cur)
              and is_supermajority(state.prev_dyn_votes.get(source, 0), state.total_prev))
    if not enough or target in state.justified:
        return
    min_deposit = state.spec.non_revert_min_deposit
    state.justified |= {target}
    state.last_justified_epoch = target
    state.main_hash_justified = True
    if state.checkpoint.backed(min_deposit):
        state.fc_justified = FinalityPoint(target, state.checkpoint.hash)
    # two checkpoints justified in a row: the source is finalized
    previous = state.previous_checkpoint
    if target == source + 1 and previous is not None:
        state.finalized |= {source}
        state.last_finalized_epoch = source
        if previous.backed(min_deposit):
            state.fc_finalized = FinalityPoint(source, previous.hash)


def validate_slashing(state: CasperState, evidence: VoteSlashing, checks: VoteChecks) -> None:
    """EIP-1011 `slashable(vote_msg_1, vote_msg_2)`; raises InvalidEvidence."""
    v1, v2 = evidence.vote_1, evidence.vote_2
    index = v1.validator_index
    # [REJECT] both votes are by the same validator
    if v2.validator_index != index:
        raise InvalidEvidence("votes are from different validators")
    # [REJECT] the validator is known and has not withdrawn
    if index >= len(state.validators) or state.validators[index].withdrawn:
        raise InvalidEvidence(f"unknown or withdrawn validator {index}")
    validator = state.validators[index]
    # [REJECT] the validator's start dynasty has come (`start_dynasty <= dynasty`)
    if validator.start_dynasty > state.dynasty:
        raise InvalidEvidence(f"validator {index} starts at dynasty {validator.start_dynasty}")
    # [REJECT] two different messages (`msg_hash_1 != msg_hash_2`: the same vote twice is no
    # offence)
    if v1.data == v2.data:
        raise InvalidEvidence("the two votes are the same vote")
    # [REJECT] not slashed already (`is_slashed`)
    if validator.slashed:
        raise InvalidEvidence(f"validator {index} is already slashed", Violation.DUPLICATE)
    # [REJECT] a double vote or a surround vote, in either order
    if not is_slashable_pair(v1, v2):
        raise InvalidEvidence("the votes are neither a double vote nor a surround vote")
    # [REJECT] both votes are signed by the validator (`validate_signature`)
    for vote in (v1, v2):
        if not checks.vote(vote, validator.pubkey):
            raise InvalidEvidence("bad vote signature in slashing evidence")


def process_slashing(state: CasperState, evidence: VoteSlashing, reporter: bytes,
                     writes: LedgerWrites, checks: VoteChecks) -> None:
    """EIP-1011 `slash`: a 4% bounty to the reporter, the deposit counted in `total_slashed`,
    and a forced logout at the next dynasty (the deposit itself is cut at withdrawal)."""
    validate_slashing(state, evidence, checks)
    index = evidence.offender
    validator = state.validators[index]
    writes.credit(reporter, validator.deposit // SLASH_BOUNTY_QUOTIENT)
    total = state.slashed_at(state.epoch) + validator.deposit
    kept = tuple(p for p in state.total_slashed if p[0] < state.epoch)
    state.total_slashed = (*kept, (state.epoch, total))
    end_dynasty, at_logout = validator.end_dynasty, validator.deposits_at_logout
    if state.dynasty < end_dynasty:
        end_dynasty = state.dynasty + 1
        if validator.end_dynasty == FAR_FUTURE:
            at_logout = state.total_deposits(state.dynasty)
    state.validators[index] = replace(validator, slashed=True, end_dynasty=end_dynasty,
                                      deposits_at_logout=at_logout)


def process_deposit(state: CasperState, deposit: Deposit, writes: LedgerWrites,
                    checks: VoteChecks) -> None:
    """EIP-1011 `deposit`: a new validator joining at dynasty + 2."""
    account = deposit.from_account
    # [REJECT] at least MIN_DEPOSIT_SIZE
    if deposit.amount < state.spec.min_deposit_size:
        raise InvalidOperation(f"deposit of {deposit.amount} is below the minimum "
                               f"{state.spec.min_deposit_size}", Violation.BAD_AMOUNT)
    # [REJECT] the nonce is the paying account's next (no replays; added: a deposit is a
    # transaction of the account)
    if writes.checks_funds and deposit.nonce != writes.nonce(account):
        raise InvalidOperation(f"deposit nonce {deposit.nonce}, expected "
                               f"{writes.nonce(account)}", Violation.NONCE)
    # [REJECT] the account can pay (`msg.value`)
    if writes.checks_funds and writes.balance(account) < deposit.amount:
        raise InvalidOperation(f"deposit of {deposit.amount} exceeds the balance "
                               f"{writes.balance(account)}", Violation.OVERDRAFT)
    # [REJECT] the key is not a validator yet (`not self.validator_indexes[withdrawal_addr]`)
    if state.find(deposit.pubkey) is not None:
        raise InvalidOperation("this key already has a deposit", Violation.DUPLICATE)
    # [REJECT] signed by the paying account
    if not checks.signature(account, deposit.signature, deposit.signing_root):
        raise InvalidOperation("bad deposit signature", Violation.BAD_SIGNATURE)
    writes.pay_in(account, deposit.amount, deposit.nonce)
    state.validators.append(CasperValidator(deposit.pubkey, deposit.amount, state.dynasty + 2))
    state.weights.append(0)


def process_exit(state: CasperState, request: Exit, checks: VoteChecks) -> None:
    """EIP-1011 `logout`: the validator leaves after DYNASTY_LOGOUT_DELAY dynasties."""
    index = request.validator_index
    # [REJECT] the validator is known
    if index >= len(state.validators):
        raise InvalidOperation(f"unknown validator {index}")
    validator = state.validators[index]
    # [REJECT] the logout's epoch has come (`current_epoch >= epoch`)
    if request.epoch > state.epoch:
        raise InvalidOperation(f"logout is for epoch {request.epoch}, now {state.epoch}")
    end_dynasty = state.dynasty + state.spec.dynasty_logout_delay
    # [REJECT] not logging out already (`end_dynasty > dynasty + DYNASTY_LOGOUT_DELAY`)
    if validator.end_dynasty <= end_dynasty:
        raise InvalidOperation(f"validator {index} is already logging out", Violation.DUPLICATE)
    # [REJECT] signed by the validator
    if not checks.signature(validator.pubkey, request.signature, request.signing_root):
        raise InvalidOperation("bad logout signature", Violation.BAD_SIGNATURE)
    state.validators[index] = replace(validator, end_dynasty=end_dynasty,
                                      deposits_at_logout=state.total_deposits(state.dynasty))


# ---- a block's pre-state ------------------------------------------------------------------------
def state_for_child(parent_state: CasperState, parent_hash: bytes, height: int,
                    writes: LedgerWrites) -> CasperState:
    """A copy of the parent's state ready for the block at `height`: the epoch initialized when
    the block opens one (withdrawals credited through `writes`)."""
    state = parent_state.copy()
    epoch = state.spec.epoch_of(height)
    if epoch != state.epoch:
        initialize_epoch(state, epoch, parent_hash, writes)
    return state
