"""A PoS network's parameters (`PosSpec`) and the genesis state and block they imply.

The genesis block's `parent_root` is the digest of the whole spec, so two clusters with different
validators, funding or economics have different genesis roots and refuse each other's handshake
(the PoW genesis commits to its allocations the same way). Its `state_root` is zero: the genesis
state is defined by the spec, and the state names the genesis root in its checkpoints, which the
block could not commit to without a cycle.

Fractions (`slash_fraction`, `inactivity_leak_rate`) are exact `fractions.Fraction`s, written as
strings ("1/32") in JSON, so every node computes the same integer penalties.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from fractions import Fraction

from consensus.ledger import Ledger
from consensus.pos.state import (
    EPOCHS_PER_HISTORICAL_VECTOR,
    JUSTIFICATION_BITS_LENGTH,
    PosState,
    Validator,
)
from consensus.pos.types import ZERO_HASH, ZERO_SIG, BlockBody, Checkpoint, PosBlock, sha256

_FRACTIONS = ("inactivity_leak_rate", "slash_fraction")
_POSITIVE = ("slot_duration_ms", "slots_per_epoch", "max_block_bytes", "proposer_reward_quotient",
             "whistleblower_reward_quotient", "min_stake")
_NON_NEGATIVE = ("genesis_time_ms", "base_reward", "inactivity_leak_after_epochs",
                 "activation_delay_epochs", "withdrawal_delay_epochs", "max_future_slot_ms",
                 "ejection_stake")


@dataclass(frozen=True)
class PosSpec:
    chain_id: str = "p2p-testnet-pos"
    genesis_time_ms: int = 1_700_000_000_000
    slot_duration_ms: int = 1000
    slots_per_epoch: int = 8
    validators: tuple[tuple[bytes, int], ...] = field(default=())     # (pubkey, stake)
    allocations: tuple[tuple[bytes, int], ...] = field(default=())    # (account, balance)
    max_block_bytes: int = 1_000_000
    base_reward: int = 1_000_000          # per epoch, shared by all attesters by stake share
    proposer_reward_quotient: int = 8     # proposer earns base/quotient per attestation included
    inactivity_leak_after_epochs: int = 4
    inactivity_leak_rate: Fraction = Fraction(1, 64)   # share of stake lost per epoch of leak
    slash_fraction: Fraction = Fraction(1, 32)
    whistleblower_reward_quotient: int = 512
    activation_delay_epochs: int = 2
    withdrawal_delay_epochs: int = 4
    min_stake: int = 1_0000_0000          # smallest deposit that creates a validator
    max_future_slot_ms: int = 500         # clock drift allowed for blocks and attestations
    ejection_stake: int = 0               # added: eject below this stake (0: never)

    def __post_init__(self) -> None:
        for name in _FRACTIONS:
            value = getattr(self, name)
            try:
                value = Fraction(value)
            except (ValueError, TypeError, ZeroDivisionError):
                raise ValueError(f"{name}: not a fraction: {value!r}") from None
            if not 0 <= value <= 1:
                raise ValueError(f"{name}: must be between 0 and 1, got {value}")
            object.__setattr__(self, name, value)
        for name in _POSITIVE:
            if not _is_int(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be a positive integer, got {getattr(self, name)!r}")
        for name in _NON_NEGATIVE:
            if not _is_int(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name}: must be a non-negative integer, got "
                                 f"{getattr(self, name)!r}")
        if self.slots_per_epoch < 2:
            raise ValueError("slots_per_epoch: must be at least 2")
        # An epoch's attestation duties must be fixed once it starts: activation takes effect at
        # a later epoch at the earliest.
        if self.activation_delay_epochs < 1:
            raise ValueError("activation_delay_epochs: must be at least 1")
        if not self.validators:
            raise ValueError("validators: a PoS chain needs at least one genesis validator")
        seen: set[bytes] = set()
        for i, (pubkey, stake) in enumerate(self.validators):
            if not isinstance(pubkey, bytes) or len(pubkey) != 32:
                raise ValueError(f"validators[{i}]: pubkey must be 32 bytes")
            if pubkey in seen:
                raise ValueError(f"validators[{i}]: duplicate pubkey {pubkey.hex()}")
            seen.add(pubkey)
            if not _is_int(stake) or not 0 < stake < (1 << 63):
                raise ValueError(f"validators[{i}]: bad stake {stake!r}")
        for key, amount in self.allocations:
            if not isinstance(key, bytes) or len(key) != 32 or not _is_int(amount) \
                    or not 0 < amount < (1 << 63):
                raise ValueError(f"allocations: bad allocation {key!r}: {amount!r}")

    # ---- time ------------------------------------------------------------------------------------
    def slot_at(self, now_ms: int) -> int:
        """The slot in progress at `now_ms` (0 before genesis)."""
        return max(0, (now_ms - self.genesis_time_ms) // self.slot_duration_ms)

    def slot_start_ms(self, slot: int) -> int:
        return self.genesis_time_ms + slot * self.slot_duration_ms

    def epoch_at(self, slot: int) -> int:
        return slot // self.slots_per_epoch

    # ---- JSON ------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        out: dict = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "validators":
                value = [{"pubkey": k.hex(), "stake": s} for k, s in value]
            elif f.name == "allocations":
                value = [{"account": k.hex(), "amount": a} for k, a in value]
            elif f.name in _FRACTIONS:
                value = str(value)
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, data: dict) -> PosSpec:
        """Build from `to_json` output; raises ValueError naming the field that is wrong."""
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown PoS spec field(s): {', '.join(sorted(unknown))}")
        kwargs = dict(data)
        try:
            if "validators" in kwargs:
                kwargs["validators"] = tuple((bytes.fromhex(v["pubkey"]), int(v["stake"]))
                                             for v in kwargs["validators"])
            if "allocations" in kwargs:
                kwargs["allocations"] = tuple((bytes.fromhex(a["account"]), int(a["amount"]))
                                              for a in kwargs["allocations"])
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"bad PoS spec: {exc!r}") from None
        return cls(**kwargs)

    def digest(self) -> bytes:
        """SHA-256 of the canonical JSON of the spec: what the genesis block commits to."""
        return sha256(json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode())


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def get_genesis_block(spec: PosSpec) -> PosBlock:
    return PosBlock(slot=0, proposer_index=0, parent_root=spec.digest(), state_root=ZERO_HASH,
                    randao_reveal=ZERO_SIG, body=BlockBody(), signature=ZERO_SIG)


def initialize_genesis(spec: PosSpec) -> tuple[PosState, PosBlock]:
    """The genesis state and block: every spec validator active from epoch 0, every allocation
    funded, all checkpoints at the genesis root, all randao mixes the spec-derived seed."""
    block = get_genesis_block(spec)
    checkpoint = Checkpoint(0, block.root)
    ledger = Ledger()
    for account, amount in spec.allocations:
        ledger.balances[account] = ledger.balance(account) + amount
    mix = sha256(b"p2p-testnet/genesis-mix" + block.root)
    state = PosState(
        spec=spec, slot=0, latest_block_header=block.header,
        block_roots=[ZERO_HASH] * (2 * spec.slots_per_epoch),
        validators=[Validator(pubkey, stake, 0) for pubkey, stake in spec.validators],
        stakes=[stake for _pubkey, stake in spec.validators],
        ledger=ledger, randao_mixes=[mix] * EPOCHS_PER_HISTORICAL_VECTOR,
        previous_epoch_attestations={}, current_epoch_attestations={},
        justification_bits=(False,) * JUSTIFICATION_BITS_LENGTH,
        previous_justified_checkpoint=checkpoint, current_justified_checkpoint=checkpoint,
        finalized_checkpoint=checkpoint)
    return state, block
