"""A hybrid network's parameters: a Bitcoin-exact PoW chain spec (`ChainSpec`, every field kept)
plus the Casper FFG parameters of EIP-1011, and the genesis validators.

Constants are EIP-1011's where they can stay (the 2/3 threshold, the 1/25 slashing bounty, the
miner's 1/8 of a vote reward, the factor 3 of proportional slashing); the lengths are scaled down
from a four-month mainnet to a testnet an experiment watches for minutes (docs/hybrid-design.md
has the arithmetic):

| field                      | EIP-1011                 | here (default)                          |
| -------------------------- | ------------------------ | --------------------------------------- |
| epoch_length               | 50 blocks                | 5 blocks                                |
| base_interest_factor       | 7e-3                     | 7/1000 (the same)                       |
| base_penalty_factor        | 2e-7                     | 1/10000: an offline half of the stake   |
|                            |                          | halves in ~120 epochs, not 2623         |
| min_deposit_size           | 1500 ETH                 | 1 coin (1e8 units)                      |
| dynasty_logout_delay       | 700 dynasties            | 2 (the contract's minimum)              |
| withdrawal_delay_epochs    | 15000 epochs             | 4                                       |
| non_revert_min_deposit     | >= 200k ETH (client)     | 1 coin: any deposit makes finality real |

The genesis block commits to every Casper parameter and genesis validator (through its coinbase,
where the PoW genesis commits to its allocations), so two networks that differ in them have
different genesis hashes and refuse each other's handshake.

Fractions are exact `fractions.Fraction`s, written as strings ("7/1000") in JSON, so every node
computes the same integer rewards and penalties.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction

from consensus import pow
from consensus.chain_spec import ChainSpec
from consensus.pos.encoding import sha256
from consensus.types import ZERO_HASH, ZERO_KEY, Block, BlockHeader, Transaction

COIN = 100_000_000                 # the unit deposits are counted in for the interest's sqrt
SLASH_BOUNTY_QUOTIENT = 25         # the reporter gets deposit / 25 (EIP-1011 `slash`)
MINER_VOTE_REWARD_QUOTIENT = 8     # the including miner gets a vote's reward / 8 (`proc_reward`)
SLASH_FRACTION_MULTIPLIER = 3      # proportional slashing at withdrawal (`withdraw`)

_FRACTIONS = ("base_interest_factor", "base_penalty_factor")
_HYBRID_FIELDS = ("epoch_length", "validators", *_FRACTIONS, "min_deposit_size",
                  "non_revert_min_deposit", "dynasty_logout_delay", "withdrawal_delay_epochs",
                  "max_casper_bytes")


@dataclass(frozen=True)
class HybridSpec(ChainSpec):
    chain_id: str = "p2p-testnet-hybrid"
    epoch_length: int = 5
    validators: tuple[tuple[bytes, int], ...] = field(default=())    # genesis (pubkey, deposit)
    base_interest_factor: Fraction = Fraction(7, 1000)
    base_penalty_factor: Fraction = Fraction(1, 10_000)
    min_deposit_size: int = COIN
    non_revert_min_deposit: int = COIN
    dynasty_logout_delay: int = 2
    withdrawal_delay_epochs: int = 4
    max_casper_bytes: int = 1_000_000    # votes and evidence, apart from the transfers' space

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in _FRACTIONS:
            value = getattr(self, name)
            try:
                value = Fraction(value)
            except (ValueError, TypeError, ZeroDivisionError):
                raise ValueError(f"{name}: not a fraction: {value!r}") from None
            if value < 0:
                raise ValueError(f"{name}: must not be negative, got {value}")
            object.__setattr__(self, name, value)
        for name in ("epoch_length", "min_deposit_size", "max_casper_bytes"):
            if not _is_int(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be a positive integer, got {getattr(self, name)!r}")
        if self.epoch_length < 2:
            raise ValueError("epoch_length: must be at least 2 blocks")
        if not _is_int(self.dynasty_logout_delay) or self.dynasty_logout_delay < 2:
            raise ValueError("dynasty_logout_delay: must be at least 2 (EIP-1011's contract "
                             "asserts it)")
        for name in ("non_revert_min_deposit", "withdrawal_delay_epochs"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name}: must be a non-negative integer")
        seen: set[bytes] = set()
        for i, (pubkey, deposit) in enumerate(self.validators):
            if not isinstance(pubkey, bytes) or len(pubkey) != 32:
                raise ValueError(f"validators[{i}]: pubkey must be 32 bytes")
            if pubkey in seen:
                raise ValueError(f"validators[{i}]: duplicate pubkey {pubkey.hex()}")
            seen.add(pubkey)
            if not _is_int(deposit) or not self.min_deposit_size <= deposit < (1 << 63):
                raise ValueError(f"validators[{i}]: deposit {deposit!r} below the minimum "
                                 f"{self.min_deposit_size} or too large")

    def epoch_of(self, height: int) -> int:
        """The epoch a block at `height` belongs to (EIP-1011: `block.number // EPOCH_LENGTH`)."""
        return height // self.epoch_length

    def checkpoint_height(self, epoch: int) -> int:
        """Height of epoch `epoch`'s checkpoint: the last block of the epoch before (the contract's
        `blockhash(current_epoch * EPOCH_LENGTH - 1)`); genesis stands in for epoch 0's."""
        return max(0, epoch * self.epoch_length - 1)

    # ---- genesis ------------------------------------------------------------------------------
    def casper_digest(self) -> bytes:
        """SHA-256 of the canonical JSON of the Casper parameters and genesis validators."""
        data = {k: v for k, v in self.to_json().items() if k in _HYBRID_FIELDS}
        return sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode())

    def genesis_block(self) -> Block:
        """The PoW genesis, whose coinbase also commits to the Casper parameters (in its unused
        signature field, where every hybrid coinbase commits to its block's Casper body)."""
        plain = super().genesis_block()
        first = plain.transactions[0]
        coinbase = Transaction(first.sender, first.recipient, first.amount, first.fee,
                               first.nonce, self.casper_digest() + bytes(32))
        txs = (coinbase, *plain.transactions[1:])
        root = pow.merkle_root([tx.txid for tx in txs])
        header = BlockHeader(1, ZERO_HASH, root, self.genesis_time, self.genesis_bits, 0)
        return Block(header, txs)

    # ---- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> dict:
        out = super().to_json()
        out.update({
            "epoch_length": self.epoch_length,
            "validators": [{"pubkey": k.hex(), "deposit": d} for k, d in self.validators],
            "base_interest_factor": str(self.base_interest_factor),
            "base_penalty_factor": str(self.base_penalty_factor),
            "min_deposit_size": self.min_deposit_size,
            "non_revert_min_deposit": self.non_revert_min_deposit,
            "dynasty_logout_delay": self.dynasty_logout_delay,
            "withdrawal_delay_epochs": self.withdrawal_delay_epochs,
            "max_casper_bytes": self.max_casper_bytes,
        })
        return out

    @classmethod
    def from_json(cls, data: dict) -> HybridSpec:
        """Build from `to_json` output; raises ValueError naming the field that is wrong."""
        kwargs = dict(data)
        if "validators" in kwargs:
            try:
                kwargs["validators"] = tuple((bytes.fromhex(v["pubkey"]), int(v["deposit"]))
                                             for v in kwargs["validators"])
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"bad hybrid spec validators: {exc!r}") from None
        spec = super().from_json(kwargs)
        assert isinstance(spec, HybridSpec)
        return spec


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


__all__ = ["HybridSpec", "COIN", "SLASH_BOUNTY_QUOTIENT", "MINER_VOTE_REWARD_QUOTIENT",
           "SLASH_FRACTION_MULTIPLIER", "ZERO_KEY"]
