"""A PoW network's chain spec: the parameters every node must share, and the genesis block they
imply.

The genesis block commits to the allocations (as zero-sender outputs after its coinbase), so two
clusters with different funding have different genesis hashes and refuse each other's handshake.

`proof_of_work` is "hash" on every real network. "sampled" is for simulations only (issue 14,
`--backend sim`): miners draw the time to their next block instead of hashing
(node/sampled_miner.py), so a block's hash does not meet its target, and the one rule skipped is
that hash-vs-target check. Its bits must still be the retargeting's, its timestamp, merkle root,
size and transactions valid: the chain is the same chain, found faster. A node of one mode refuses
every mined block of the other mode's network, so a network shares the mode as it shares the
genesis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus import pow
from consensus.types import ZERO_HASH, ZERO_KEY, Block, BlockHeader, Transaction, make_coinbase

REGTEST_POW_LIMIT = 0x7FFFFF << 232          # Bitcoin regtest's limit (compact 0x207fffff)
PROOF_OF_WORK_MODES = ("hash", "sampled")


@dataclass(frozen=True)
class ChainSpec:
    chain_id: str = "p2p-testnet"
    genesis_time: int = 1_700_000_000
    genesis_bits: int = 0x1F0FFFFF
    pow_limit: int = REGTEST_POW_LIMIT
    target_block_interval_s: int = 2
    retarget_window: int = 10
    block_reward: int = 50_0000_0000
    max_block_bytes: int = 1_000_000
    max_future_block_time_s: int = 15
    median_time_span: int = 11
    allocations: tuple[tuple[bytes, int], ...] = field(default=())
    proof_of_work: str = "hash"     # "sampled": simulations only, no hash-vs-target check

    def __post_init__(self) -> None:
        if self.proof_of_work not in PROOF_OF_WORK_MODES:
            raise ValueError(f"proof_of_work must be one of {', '.join(PROOF_OF_WORK_MODES)}, "
                             f"got {self.proof_of_work!r}")
        if self.retarget_window < 2:
            raise ValueError("retarget_window must be at least 2 blocks")
        if self.target_block_interval_s < 1:
            raise ValueError("target_block_interval_s must be at least 1 second")
        target = pow.bits_to_target(self.genesis_bits)
        if not 0 < target <= self.pow_limit:
            raise ValueError(f"genesis bits {self.genesis_bits:#010x} exceed the pow limit")
        for key, amount in self.allocations:
            if len(key) != 32 or not 0 < amount < (1 << 63):
                raise ValueError(f"bad allocation {key.hex()}: {amount}")

    def check_work(self, block_hash: bytes, bits: int) -> str | None:
        """This network's proof-of-work rule: None when the header passes, else the reason.
        "hash": the hash meets the target its bits encode; "sampled": the bits encode a valid
        target (their value is the retargeting rule's business, checked apart)."""
        if self.proof_of_work == "sampled":
            return pow.check_target(bits, self.pow_limit)
        return pow.check_proof_of_work(block_hash, bits, self.pow_limit)

    @property
    def target_timespan_s(self) -> int:
        return self.target_block_interval_s * self.retarget_window

    def genesis_block(self) -> Block:
        txs = [make_coinbase(ZERO_KEY, 0, 0)]
        txs += [Transaction(ZERO_KEY, key, amount, 0, i + 1) for i, (key, amount) in
                enumerate(self.allocations)]
        root = pow.merkle_root([tx.txid for tx in txs])
        header = BlockHeader(1, ZERO_HASH, root, self.genesis_time, self.genesis_bits, 0)
        return Block(header, tuple(txs))

    def to_json(self) -> dict:
        return {
            "chain_id": self.chain_id, "genesis_time": self.genesis_time,
            "genesis_bits": f"{self.genesis_bits:08x}", "pow_limit": f"{self.pow_limit:064x}",
            "target_block_interval_s": self.target_block_interval_s,
            "retarget_window": self.retarget_window, "block_reward": self.block_reward,
            "max_block_bytes": self.max_block_bytes,
            "max_future_block_time_s": self.max_future_block_time_s,
            "allocations": [{"account": k.hex(), "amount": a} for k, a in self.allocations],
            # only when sampled: a real network's spec (and genesis file) is as it always was
            **({"proof_of_work": self.proof_of_work} if self.proof_of_work != "hash" else {}),
        }

    @classmethod
    def from_json(cls, data: dict) -> ChainSpec:
        """Build from `to_json` output; raises ValueError naming the field that is wrong."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown chain spec field(s): {', '.join(sorted(unknown))}")
        kwargs = dict(data)
        try:
            if "genesis_bits" in kwargs:
                kwargs["genesis_bits"] = int(str(kwargs["genesis_bits"]), 16)
            if "pow_limit" in kwargs:
                kwargs["pow_limit"] = int(str(kwargs["pow_limit"]), 16)
            if "allocations" in kwargs:
                kwargs["allocations"] = tuple((bytes.fromhex(a["account"]), int(a["amount"]))
                                              for a in kwargs["allocations"])
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"bad chain spec: {exc}") from None
        return cls(**kwargs)


def bits_for_hashrate(total_hashes_per_s: float, interval_s: float, pow_limit: int) -> int:
    """Compact bits that make one block every `interval_s` at the given total hashrate."""
    expected_hashes = max(1.0, total_hashes_per_s * interval_s)
    target = min(pow_limit, int((1 << 256) / expected_hashes) - 1)
    return pow.target_to_bits(target)
