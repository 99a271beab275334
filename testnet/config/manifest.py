"""A cluster description, validated whole before anything starts.

Errors name the field (and the node, for per-node settings) so a user can fix the file or flags.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from consensus.dpos.spec import PRESETS
from testnet.config.topology import parse_topology
from testnet.errors import ManifestError

COIN = 100_000_000
CONSENSUS = ("pow", "pos", "hybrid", "dpos")
Consensus = Literal["pow", "pos", "hybrid", "dpos"]
DPOS_PRESETS = ("default", "eosio", "graphene", "tron")     # consensus/dpos/spec.py PRESETS
# What a node can be told to play (`testnet role`, scenario `role` steps, compose `--role`): the
# names node/mining_strategy.py (PoW miners), node/validator_duties.py (PoS validators),
# node/hybrid_validators.py (hybrid validators) and node/producer_duties.py (DPoS producers,
# addressed like validators: `v3`) know.
MINER_ROLES = ("honest", "selfish-miner", "withhold")
VALIDATOR_ROLES: dict[str, tuple[str, ...]] = {
    "pos": ("honest", "silent", "double-propose", "double-vote", "surround-vote"),
    "hybrid": ("honest", "silent", "double-vote", "surround-vote"),
    "dpos": ("honest", "producer-offline", "double-produce", "censor"),
}
# What each consensus has: the one place the orchestrator decides by consensus. Everything else
# asks a capability (`manifest.has_mining`, ...), never `consensus == "pos"`.
CAPABILITIES: dict[str, frozenset[str]] = {
    "pow": frozenset({"mining"}),
    "pos": frozenset({"validators", "finality", "slots"}),
    "hybrid": frozenset({"mining", "validators", "finality"}),
    "dpos": frozenset({"producers", "slots", "irreversibility"}),
}
ROLES: dict[str, tuple[str, ...]] = {
    consensus: tuple(dict.fromkeys(
        (MINER_ROLES if "mining" in CAPABILITIES[consensus] else ())
        + VALIDATOR_ROLES.get(consensus, ())))
    for consensus in CONSENSUS
}


def has(consensus: str, capability: str) -> bool:
    """Whether a consensus has a capability: "mining", "validators", "finality", "slots",
    "producers", "irreversibility"."""
    return capability in CAPABILITIES.get(consensus, frozenset())


class NodeOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hashrate: float | None = Field(default=None, gt=0)
    mine: bool = True
    validators: int | None = Field(default=None, ge=0, le=256,
                                   description="PoS, hybrid: keys it runs")
    stake: int | None = Field(default=None, gt=0,
                              description="PoS, hybrid: stake of each of its keys")


class ClusterManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nodes: int = Field(default=4, ge=1, le=2000,
                       description="processes and containers: at most 64 (the backend checks)")
    consensus: Consensus = "pow"
    topology: str = "full"
    seed: int = 0
    block_interval_s: int = Field(default=2, ge=1, le=600)
    retarget_window: int = Field(default=10, ge=2)
    hashrate: float = Field(default=20_000, gt=0, description="per-node cap, hashes/s")
    accounts: int | None = Field(default=None, ge=1, le=1000)
    balance: int = Field(default=1_000_000 * COIN, gt=0)
    max_future_block_time_s: int = Field(default=15, ge=1)
    host: str = "127.0.0.1"
    network: Literal["uniform", "regions"] = Field(
        default="uniform", description="sim: 5 ms hops, or SimBlock's 2019 region latencies")
    overrides: dict[int, NodeOverride] = Field(default_factory=dict)
    # Proof of stake
    validators_per_node: int = Field(default=8, ge=0, le=256)
    stake: int = Field(default=32 * COIN, gt=0, description="stake of each genesis validator")
    slot_duration_ms: int = Field(default=1000, ge=100, le=60_000)
    slots_per_epoch: int = Field(default=8, ge=2, le=64)
    inactivity_leak_after_epochs: int = Field(default=4, ge=0)
    inactivity_leak_rate: str = Field(default="1/64", pattern=r"^\d+(/\d+)?$")
    genesis_delay_ms: int = Field(default=3000, ge=0, description="PoS genesis after generation")
    # Hybrid (PoW + Casper FFG, EIP-1011)
    epoch_length: int = Field(default=5, ge=2, le=1000, description="hybrid: blocks per epoch")
    # Delegated proof of stake (EOSIO / Graphene); `stake` is each genesis account's stake
    preset: Literal["default", "eosio", "graphene", "tron"] = "default"
    producers: int | None = Field(default=None, ge=1, le=101,
                                  description="dpos: schedule size (default: the preset's)")
    candidates: int = Field(default=0, ge=0, le=200,
                            description="dpos: genesis candidates besides the schedule")
    repetitions: int | None = Field(default=None, ge=1, le=100,
                                    description="dpos: blocks per turn (default: the preset's)")
    dpos_slot_ms: int | None = Field(default=None, ge=100, le=60_000,
                                     description="dpos: slot time (default: the preset's)")
    update_interval_blocks: int = Field(default=0, ge=0, description="dpos: 0 = every round")
    unstake_delay_slots: int = Field(default=120, ge=0)
    slash_double_production: bool = False
    vote_weight_doubling_slots: int = Field(default=0, ge=0,
                                            description="dpos: EOSIO vote weighting; 0 = off")

    @field_validator("topology")
    @classmethod
    def _topology(cls, value: str) -> str:
        return parse_topology(value)

    @model_validator(mode="after")
    def _overrides_name_real_nodes(self) -> ClusterManifest:
        for index in self.overrides:
            if not 0 <= index < self.nodes:
                raise ValueError(f"override for node {index}, but the cluster has nodes "
                                 f"0..{self.nodes - 1}")
        producers = self.has_mining or any(self.node_validators(i) for i in range(self.nodes))
        if not producers:   # nothing would make blocks: PoS proposers are its validators
            raise ValueError("a PoS cluster needs at least one validator")
        return self

    def node_validators(self, index: int) -> int:
        """PoS, hybrid: validator keys node `index` runs. DPoS: producer keys (schedule and
        candidates, spread evenly over the nodes in genesis order, a node's keys adjacent)."""
        if self.has_producers:
            total, nodes = self.producer_keys, self.nodes
            return total // nodes + (1 if index < total % nodes else 0)
        override = self.overrides.get(index)
        if override and override.validators is not None:
            return override.validators
        return self.validators_per_node

    def node_stake(self, index: int) -> int:
        override = self.overrides.get(index)
        return override.stake if override and override.stake else self.stake

    @property
    def schedule_size(self) -> int:
        """DPoS: producers in the schedule (the preset's unless `producers` says)."""
        return self.producers or PRESETS[self.preset]["producers"]

    @property
    def producer_keys(self) -> int:
        """DPoS: genesis producer keys, the schedule first, then the other candidates."""
        return self.schedule_size + self.candidates

    @property
    def account_count(self) -> int:
        return self.accounts or self.nodes

    def node_hashrate(self, index: int) -> float | None:
        override = self.overrides.get(index)
        if override and not override.mine:
            return None
        if override and override.hashrate:
            return override.hashrate
        return self.hashrate

    def total_hashrate(self) -> float:
        return sum(h for i in range(self.nodes) if (h := self.node_hashrate(i)))

    def hashrate_for_share(self, index: int, share: float) -> float:
        """The cap that gives node `index` this share of the cluster's hashrate, the other nodes
        keeping their configured rates: r / (r + others) = share."""
        if not 0 < share < 1:
            raise ManifestError(f"a hashrate share is between 0% and 100%, got {share:.0%}")
        others = sum(self.node_hashrate(i) or 0 for i in range(self.nodes) if i != index)
        return others * share / (1 - share)

    def roles(self) -> tuple[str, ...]:
        """The roles this cluster's consensus knows (miner roles, validator roles, or both)."""
        return ROLES[self.consensus]

    # ---- what this cluster's consensus has ----------------------------------------------------
    @property
    def has_mining(self) -> bool:
        """Nodes mine blocks by proof of work (PoW, hybrid): hashrates, miner roles."""
        return has(self.consensus, "mining")

    @property
    def has_validators(self) -> bool:
        """Staked validators vote (PoS, hybrid): validator roles, `testnet stake`."""
        return has(self.consensus, "validators")

    @property
    def has_finality(self) -> bool:
        """Checkpoints are justified and finalized (PoS, hybrid): epochs, finality waits."""
        return has(self.consensus, "finality")

    @property
    def has_producers(self) -> bool:
        """Elected producers take turns (DPoS): producer roles (`v3`), `testnet dpos`."""
        return has(self.consensus, "producers")

    @property
    def has_irreversibility(self) -> bool:
        """Blocks become irreversible by height (DPoS LIB): `finalized {height, root}`."""
        return has(self.consensus, "irreversibility")

    @property
    def has_slots(self) -> bool:
        """Time is slots on a clock (PoS); otherwise epochs are counted in blocks (hybrid)."""
        return has(self.consensus, "slots")

    def miner_roles(self) -> tuple[str, ...]:
        return MINER_ROLES if self.has_mining else ()

    def validator_roles(self) -> tuple[str, ...]:
        return VALIDATOR_ROLES.get(self.consensus, ())


def validate_manifest(data: dict) -> ClusterManifest:
    try:
        return ClusterManifest.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "cluster"
            lines.append(f"{field}: {err['msg']}")
        raise ManifestError("invalid cluster description: " + "; ".join(lines)) from None
