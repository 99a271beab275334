"""The Casper state of a hybrid chain at one block: what EIP-1011's contract stores, as a plain
value the chain keeps per block (consensus/hybrid/chain.py).

Field by field against `simple_casper.v.py` (ethereum/casper):
- `validators[i]`: `deposit` (wei here in base units, unscaled: see below), `start_dynasty`,
  `end_dynasty`, `is_slashed`, `total_deposits_at_logout`; plus when its withdrawal falls due and
  whether it happened (the contract's `withdraw` is a transaction; here it is automatic);
- `epoch` (`current_epoch`), `dynasty`, `expected_source_epoch`, `main_hash_justified`,
  `last_justified_epoch`, `last_finalized_epoch`, `reward_factor`;
- the current epoch's `checkpoints[epoch]`: target hash, the deposits recorded for fork choice
  (`cur_dyn_deposits`, `prev_dyn_deposits`), the vote bitmap (`voted`) and the vote sums by source
  (`cur_dyn_votes`, `prev_dyn_votes`); the previous epoch's checkpoint (the only one a vote can
  finalize); which epochs are justified (any of them can be a vote's source) and finalized;
- `total_slashed` by epoch (cumulative, for proportional slashing at withdrawal);
- for the client's fork choice: the highest justified and finalized checkpoints whose recorded
  deposits reach `non_revert_min_deposit` (the contract's `highest_justified_epoch(min)` and
  `highest_finalized_epoch(min)`, kept up to date instead of scanned for).

Simplifications (docs/hybrid-design.md says why): deposits are stored unscaled and rescaled one by
one at each epoch (the contract multiplies one `deposit_scale_factor`); a vote weighs the voter's
deposit as of the epoch's start (`weights`), and the totals it is compared with are taken at the
same moment, so the 2/3 threshold does not drift with rewards paid during the epoch.

The state is a mutable value; a block's transition runs on a `copy()` (lists and dicts copied,
their immutable items shared), so the parent's state is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from consensus.hybrid.spec import HybridSpec

FAR_FUTURE = (1 << 64) - 1          # the contract's DEFAULT_END_DYNASTY
NO_EPOCH = -1


@dataclass(frozen=True, slots=True)
class CasperValidator:
    pubkey: bytes
    deposit: int
    start_dynasty: int
    end_dynasty: int = FAR_FUTURE
    slashed: bool = False
    deposits_at_logout: int = 0
    withdrawal_epoch: int | None = None   # set when its last dynasty is over
    withdrawn: bool = False

    def in_dynasty(self, dynasty: int) -> bool:
        """EIP-1011 `in_dynasty`: start_dynasty <= dynasty < end_dynasty (never once withdrawn)."""
        return not self.withdrawn and self.start_dynasty <= dynasty < self.end_dynasty


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """`checkpoints[epoch]`'s fixed part: its hash and the deposits recorded when the epoch began
    (fork choice counts only checkpoints backed by `non_revert_min_deposit`)."""
    epoch: int
    hash: bytes
    cur_dyn_deposits: int
    prev_dyn_deposits: int

    def backed(self, min_deposit: int) -> bool:
        return self.cur_dyn_deposits >= min_deposit and self.prev_dyn_deposits >= min_deposit


@dataclass(frozen=True, slots=True)
class FinalityPoint:
    """A checkpoint fork choice counts: its epoch and its block's hash."""
    epoch: int
    hash: bytes


@dataclass
class CasperState:
    spec: HybridSpec
    epoch: int
    dynasty: int
    validators: list[CasperValidator]
    weights: list[int]                      # deposits at the epoch's start: vote weights
    total_cur: int                          # weights of the current dynasty
    total_prev: int                         # weights of the previous dynasty
    checkpoint: CheckpointRecord            # the current epoch's target
    previous_checkpoint: CheckpointRecord | None
    voted: frozenset[int]                   # vote bitmap of the current epoch
    cur_dyn_votes: dict[int, int]           # source epoch -> weight, current epoch's target
    prev_dyn_votes: dict[int, int]
    justified: frozenset[int]
    finalized: frozenset[int]
    last_justified_epoch: int
    last_finalized_epoch: int
    expected_source_epoch: int
    main_hash_justified: bool
    reward_factor: Fraction
    total_slashed: tuple[tuple[int, int], ...]     # (epoch, cumulative) where it grew
    fc_justified: FinalityPoint
    fc_finalized: FinalityPoint | None

    def copy(self) -> CasperState:
        return replace(self, validators=list(self.validators), weights=list(self.weights),
                       cur_dyn_votes=dict(self.cur_dyn_votes),
                       prev_dyn_votes=dict(self.prev_dyn_votes))

    # ---- accessors -----------------------------------------------------------------------------
    def total_deposits(self, dynasty: int) -> int:
        """Live deposits of the validators in `dynasty` (the contract's running totals)."""
        return sum(v.deposit for v in self.validators if v.in_dynasty(dynasty))

    def deposit_exists(self) -> bool:
        """EIP-1011 `deposit_exists`: both the current and the previous dynasty hold deposits."""
        return (self.total_deposits(self.dynasty) > 0
                and self.total_deposits(self.dynasty - 1) > 0)

    def may_vote(self, index: int) -> bool:
        """In the current or the previous dynasty (EIP-1011 `_votable`, rule 5)."""
        validator = self.validators[index]
        return validator.in_dynasty(self.dynasty) or validator.in_dynasty(self.dynasty - 1)

    def slashed_at(self, epoch: int) -> int:
        """Cumulative deposits slashed up to `epoch` (the contract's `total_slashed[epoch]`)."""
        total = 0
        for at, cumulative in self.total_slashed:
            if at > epoch:
                break
            total = cumulative
        return total

    def find(self, pubkey: bytes) -> int | None:
        for index, validator in enumerate(self.validators):
            if validator.pubkey == pubkey:
                return index
        return None

    def highest_justified_epoch(self) -> int:
        """EIP-1011 `highest_justified_epoch(NON_REVERT_MIN_DEPOSIT)`: 0 with none (pure PoW)."""
        return self.fc_justified.epoch

    def highest_finalized_epoch(self) -> int:
        """EIP-1011 `highest_finalized_epoch(NON_REVERT_MIN_DEPOSIT)`: -1 with none."""
        return NO_EPOCH if self.fc_finalized is None else self.fc_finalized.epoch


def genesis_state(spec: HybridSpec, genesis_hash: bytes) -> CasperState:
    """Epoch 0, its checkpoint the genesis block, justified and finalized by definition.

    Genesis validators count as deposited two dynasties before genesis: they are in dynasty 0 and
    the chain starts at dynasty 1, so both the current and the previous dynasty hold their
    deposits from the first epoch on (EIP-1011 would start them at dynasty + 2 of a live chain).
    Without genesis validators the chain starts as plain PoW at dynasty 0, as the contract does.
    """
    validators = [CasperValidator(pubkey, deposit, 0) for pubkey, deposit in spec.validators]
    dynasty = 1 if validators else 0
    weights = [v.deposit for v in validators]
    total = sum(weights)
    checkpoint = CheckpointRecord(0, genesis_hash, total, total)
    backed = bool(validators) and checkpoint.backed(spec.non_revert_min_deposit)
    state = CasperState(
        spec=spec, epoch=0, dynasty=dynasty, validators=validators, weights=weights,
        total_cur=total, total_prev=total, checkpoint=checkpoint, previous_checkpoint=None,
        voted=frozenset(), cur_dyn_votes={}, prev_dyn_votes={}, justified=frozenset({0}),
        finalized=frozenset({0}),
        last_justified_epoch=0, last_finalized_epoch=0, expected_source_epoch=0,
        main_hash_justified=False, reward_factor=Fraction(0), total_slashed=(),
        fc_justified=FinalityPoint(0, genesis_hash),
        fc_finalized=FinalityPoint(0, genesis_hash) if backed else None)
    return state
