"""A DPoS network's parameters (`DposSpec`), its presets, and the genesis block they imply.

Every parameter is a genesis parameter: nodes with different specs have different genesis roots
and refuse each other's handshake (the genesis block's `parent_root` is the digest of the spec,
as on PoS).

Presets (`PRESETS`, `spec_for_preset`):
- `default`: 7 producers x 2 repetitions x 0.5 s, so a 4-node testnet shows the LIB advancing
  within seconds (LIB gap 7-8 blocks, see docs/dpos-design.md);
- `eosio`: EOSIO's 21 producers x 12 blocks x 0.5 s (`config.hpp`: `block_interval_ms = 500`,
  `producer_repetitions = 12`, `max_producers = 125` of which 21 are elected);
- `graphene`: BitShares' 21 witnesses x 1 block x 3 s (`GRAPHENE_DEFAULT_BLOCK_INTERVAL`);
- `tron`: TRON's 27 super representatives x 1 block x 3 s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

from consensus.dpos.types import ZERO_HASH, DposBlock, sha256

PRESETS: dict[str, dict[str, int]] = {
    "default": {"producers": 7, "repetitions": 2, "slot_duration_ms": 500},
    "eosio": {"producers": 21, "repetitions": 12, "slot_duration_ms": 500},
    "graphene": {"producers": 21, "repetitions": 1, "slot_duration_ms": 3000},
    "tron": {"producers": 27, "repetitions": 1, "slot_duration_ms": 3000},
}

_POSITIVE = ("slot_duration_ms", "producers", "repetitions", "max_votes", "max_block_bytes")
_NON_NEGATIVE = ("genesis_time_ms", "update_interval_blocks", "block_reward",
                 "unstake_delay_slots", "max_future_slot_ms", "vote_weight_doubling_slots")
_KEY_LISTS = ("schedule", "candidates")
_AMOUNT_LISTS = ("stakes", "allocations")


@dataclass(frozen=True)
class DposSpec:
    chain_id: str = "p2p-testnet-dpos"
    genesis_time_ms: int = 1_700_000_000_000
    slot_duration_ms: int = 500
    producers: int = 7                    # schedule size (EOSIO elects 21)
    repetitions: int = 2                  # consecutive blocks per producer (EOSIO: 12)
    update_interval_blocks: int = 0       # blocks between elections; 0 = once per round
    max_votes: int = 30                   # EOSIO `voteproducer`: at most 30 producers
    schedule: tuple[bytes, ...] = field(default=())      # genesis schedule, in order
    candidates: tuple[bytes, ...] = field(default=())    # registered at genesis besides those
    stakes: tuple[tuple[bytes, int], ...] = field(default=())       # staked at genesis
    allocations: tuple[tuple[bytes, int], ...] = field(default=())  # liquid at genesis
    block_reward: int = 1_0000_0000       # minted to the producer of each block
    unstake_delay_slots: int = 120        # EOSIO refunds after 3 days; 60 s here
    slash_double_production: bool = False  # optional penalty (EOSIO has none)
    vote_weight_doubling_slots: int = 0   # EOSIO doubles vote weight every 52 weeks; 0 = off
    max_block_bytes: int = 1_000_000
    max_future_slot_ms: int = 500         # clock drift allowed for blocks

    def __post_init__(self) -> None:
        for name in _POSITIVE:
            if not _is_int(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be a positive integer, got {getattr(self, name)!r}")
        for name in _NON_NEGATIVE:
            if not _is_int(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name}: must be a non-negative integer, got "
                                 f"{getattr(self, name)!r}")
        if not isinstance(self.slash_double_production, bool):
            raise ValueError("slash_double_production: must be true or false")
        if len(self.schedule) != self.producers:
            raise ValueError(f"schedule: genesis names {len(self.schedule)} producers, "
                             f"the spec elects {self.producers}")
        keys = self.schedule + self.candidates
        for i, key in enumerate(keys):
            if not isinstance(key, bytes) or len(key) != 32:
                raise ValueError(f"candidates[{i}]: a producer key is 32 bytes")
        if len(set(keys)) != len(keys):
            raise ValueError("schedule, candidates: a key is named twice")
        for name in _AMOUNT_LISTS:
            for key, amount in getattr(self, name):
                if not isinstance(key, bytes) or len(key) != 32 or not _is_int(amount) \
                        or not 0 < amount < (1 << 63):
                    raise ValueError(f"{name}: bad entry {key!r}: {amount!r}")

    # ---- time and rounds -----------------------------------------------------------------------
    def slot_at(self, now_ms: int) -> int:
        """The slot in progress at `now_ms` (0 before genesis; slot 0 is genesis' own)."""
        return max(0, (now_ms - self.genesis_time_ms) // self.slot_duration_ms)

    def slot_start_ms(self, slot: int) -> int:
        return self.genesis_time_ms + slot * self.slot_duration_ms

    @property
    def round_slots(self) -> int:
        """Slots in one round: every producer's turn once."""
        return self.producers * self.repetitions

    @property
    def election_interval(self) -> int:
        return self.update_interval_blocks or self.round_slots

    def round_of(self, slot: int) -> int:
        return slot // self.round_slots

    # ---- genesis -------------------------------------------------------------------------------
    def genesis_block(self) -> DposBlock:
        digest = sha256(json.dumps(self.to_json(), sort_keys=True).encode())
        return DposBlock(0, ZERO_HASH, digest)

    # ---- JSON ----------------------------------------------------------------------------------
    def to_json(self) -> dict:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _KEY_LISTS:
                value = [k.hex() for k in value]
            elif f.name in _AMOUNT_LISTS:
                value = [{"account": k.hex(), "amount": a} for k, a in value]
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, data: dict) -> DposSpec:
        """Build from `to_json` output; raises ValueError naming the field that is wrong."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown dpos spec field(s): {', '.join(sorted(unknown))}")
        kwargs = dict(data)
        try:
            for name in _KEY_LISTS:
                if name in kwargs:
                    kwargs[name] = tuple(bytes.fromhex(k) for k in kwargs[name])
            for name in _AMOUNT_LISTS:
                if name in kwargs:
                    kwargs[name] = tuple((bytes.fromhex(e["account"]), int(e["amount"]))
                                         for e in kwargs[name])
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"bad dpos spec: {exc}") from None
        return cls(**kwargs)


def spec_for_preset(preset: str, **overrides: Any) -> DposSpec:
    """A spec from a named preset, with any field overridden (keys, stakes, genesis time)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown dpos preset {preset!r}; known: {', '.join(PRESETS)}")
    return DposSpec(**{**PRESETS[preset], **overrides})


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
