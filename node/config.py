"""A node's configuration file, validated whole (node/schema.py) before anything starts.

The file is YAML (JSON is valid YAML too). Relative paths are resolved against the file's folder.
`load_config` raises `ConfigError` whose message names each bad field and why, so
`testnet node --config FILE` can exit non-zero with something a user can act on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml

from consensus.chain_spec import ChainSpec
from consensus.orphan_pool import DEFAULT_MAX_ORPHANS
from node.errors import NodeError
from node.schema import (
    Field,
    SchemaError,
    boolean,
    choice,
    file_path,
    integer,
    list_of,
    nested,
    number,
    optional,
    text,
    validate,
)

if TYPE_CHECKING:
    from consensus.dpos.spec import DposSpec
    from consensus.pos.spec import PosSpec


class ConfigError(NodeError, ValueError):
    """A configuration file that cannot be used; the message names the field and the reason."""


HEX_KEY = r"^[0-9a-fA-F]{64}$"
# ws:// and wss:// for a node process; mem:// for a simulated node on an in-memory network
# (p2p/memory_transport.py): the transport the runtime gives the node decides which it can dial
PEER_URL = r"^(wss?|mem)://"
PEER_URL_MEANS = "a ws://, wss:// or mem:// URL"


@dataclass
class MinerConfig:
    enabled: bool = True
    hashrate: float | None = None      # cap in hashes/s; None = no cap
    payout: str | None = None          # hex public key paid by the coinbase
    chunk: int = 4096                  # nonces per scheduling slice


MINER_FIELDS = {
    "enabled": Field(boolean, True),
    "hashrate": Field(optional(number(gt=0)), None),
    "payout": Field(optional(text(pattern=HEX_KEY, means="a 64-digit hex public key")), None),
    "chunk": Field(integer(ge=64, le=1 << 20), 4096),
}


@dataclass(kw_only=True)
class NodeConfig:
    node_id: str
    consensus: Literal["pow", "pos", "hybrid", "dpos"] = "pow"
    data_dir: Path
    genesis: Path                      # chain spec JSON shared by every node of the network
    host: str = "127.0.0.1"
    port: int
    advertise_url: str | None = None
    peers: list[str] = field(default_factory=list)
    peer_ids: list[str] = field(default_factory=list)  # hex ids of the cluster's nodes (faults)
    node_key: str                      # 64-digit hex Ed25519 private key of the node identity
    miner: MinerConfig = field(default_factory=MinerConfig)
    # PoS, hybrid: the validators run here; DPoS: the producers (hex private keys)
    validator_keys: list[str] = field(default_factory=list)
    admin_token: str | None = None
    seed: int = 0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_orphans: int = DEFAULT_MAX_ORPHANS
    mempool_max: int = 10_000
    # how often the node tells each peer its head (p2p status); longer for slow chains
    status_interval_s: float = 2.0

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


NODE_FIELDS = {
    "node_id": Field(text(1, 64, r"^[A-Za-z0-9_.-]+$", "letters, digits, '_', '.' or '-'")),
    "consensus": Field(choice("pow", "pos", "hybrid", "dpos"), "pow"),
    "data_dir": Field(file_path),
    "genesis": Field(file_path),
    "host": Field(text(), "127.0.0.1"),
    "port": Field(integer(ge=1, le=65535)),
    "advertise_url": Field(optional(text()), None),
    "peers": Field(list_of(text(pattern=PEER_URL, means=PEER_URL_MEANS)), list),
    "peer_ids": Field(list_of(text()), list),
    "node_key": Field(text(pattern=HEX_KEY,
                           means="64 hex digits (a 32-byte Ed25519 private key)")),
    "miner": Field(nested(MINER_FIELDS, MinerConfig), MinerConfig),
    "validator_keys": Field(list_of(text(pattern=HEX_KEY, means="64 hex digits")), list),
    "admin_token": Field(optional(text()), None),
    "seed": Field(integer(), 0),
    "log_level": Field(choice("DEBUG", "INFO", "WARNING", "ERROR"), "INFO"),
    "max_orphans": Field(integer(ge=1), DEFAULT_MAX_ORPHANS),
    "mempool_max": Field(integer(ge=1), 10_000),
    "status_interval_s": Field(number(ge=0.1, le=3600), 2.0),
}


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
        config = NodeConfig(**validate(NODE_FIELDS, raw))
    except SchemaError as exc:
        raise ConfigError("\n  ".join([f"invalid config {path}:", *exc.lines()])) from None
    config.chain_spec()  # fail now, not after the node has started
    return config
