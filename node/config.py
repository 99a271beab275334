"""A node's configuration file, validated whole by pydantic before anything starts.

The file is YAML (JSON is valid YAML too). Relative paths are resolved against the file's folder.
`load_config` raises `ConfigError` whose message names each bad field and why, so
`testnet node --config FILE` can exit non-zero with something a user can act on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from consensus.chain_spec import ChainSpec
from consensus.orphan_pool import DEFAULT_MAX_ORPHANS
from node.errors import NodeError

if TYPE_CHECKING:
    from consensus.dpos.spec import DposSpec
    from consensus.pos.spec import PosSpec


class ConfigError(NodeError, ValueError):
    """A configuration file that cannot be used; the message names the field and the reason."""


class MinerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    hashrate: float | None = Field(default=None, gt=0, description="cap in hashes/s; None = no cap")
    payout: str | None = Field(default=None, description="hex public key paid by the coinbase")
    chunk: int = Field(default=4096, ge=64, le=1 << 20, description="nonces per scheduling slice")

    @field_validator("payout")
    @classmethod
    def _hex_key(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 64 or not _is_hex(value)):
            raise ValueError("must be a 64-digit hex public key")
        return value


class NodeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    consensus: Literal["pow", "pos", "hybrid", "dpos"] = "pow"
    data_dir: Path
    genesis: Path = Field(description="chain spec JSON shared by every node of the network")
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    advertise_url: str | None = None
    peers: list[str] = Field(default_factory=list)
    peer_ids: list[str] = Field(default_factory=list,
                                description="hex ids of every node of the cluster (for faults)")
    node_key: str = Field(description="64-digit hex Ed25519 private key of the node identity")
    miner: MinerConfig = Field(default_factory=MinerConfig)
    validator_keys: list[str] = Field(
        default_factory=list,
        description="PoS, hybrid: the validators run here; DPoS: the producers (hex private "
                    "keys)")
    admin_token: str | None = None
    seed: int = 0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_orphans: int = Field(default=DEFAULT_MAX_ORPHANS, ge=1)
    mempool_max: int = Field(default=10_000, ge=1)

    @field_validator("node_key")
    @classmethod
    def _key(cls, value: str) -> str:
        if len(value) != 64 or not _is_hex(value):
            raise ValueError("must be 64 hex digits (a 32-byte Ed25519 private key)")
        return value

    @field_validator("peers")
    @classmethod
    def _peer_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("ws://", "wss://")):
                raise ValueError(f"peer {url!r} must be a ws:// or wss:// URL")
        return value

    @field_validator("validator_keys")
    @classmethod
    def _validator_keys(cls, value: list[str]) -> list[str]:
        for i, key in enumerate(value):
            if len(key) != 64 or not _is_hex(key):
                raise ValueError(f"validator_keys[{i}] must be 64 hex digits")
        return value

    def chain_spec(self) -> ChainSpec | PosSpec | DposSpec:
        """The ChainSpec (PoW), PosSpec (PoS), HybridSpec (a ChainSpec) or DposSpec in the
        genesis file."""
        try:
            data = json.loads(self.genesis.read_text())
            if self.consensus == "dpos":
                from consensus.dpos.spec import DposSpec
                return DposSpec.from_json(data)
            if self.consensus == "hybrid":
                from consensus.hybrid.spec import HybridSpec
                return HybridSpec.from_json(data)
            if self.consensus == "pos":
                from consensus.pos.spec import PosSpec
                return PosSpec.from_json(data)
            return ChainSpec.from_json(data)
        except OSError as exc:
            raise ConfigError(f"genesis: cannot read {self.genesis}: {exc.strerror}") from None
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"genesis: {self.genesis}: {exc}") from None


def load_config(path: Path | str) -> NodeConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must be a mapping of fields")
    for key in ("data_dir", "genesis"):
        if isinstance(raw.get(key), str) and not Path(raw[key]).is_absolute():
            raw[key] = str(path.parent / raw[key])
    try:
        config = NodeConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc)) from None
    config.chain_spec()  # fail now, not after the node has started
    return config


def format_validation_error(path: Path, exc: ValidationError) -> str:
    lines = [f"invalid config {path}:"]
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"  {field}: {err['msg']}")
    return "\n".join(lines)


def _is_hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True
