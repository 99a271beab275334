"""Writes a cluster's folder from a manifest: genesis, keys, one config per node, and cluster.json.

Layout of DIR:
  cluster.json      what the other commands read: nodes, their API URLs, the backend, the manifest
  genesis.json      the chain spec every node loads
  accounts.json     funded genesis accounts with their private keys (testnet only!)
  node<i>/node.yaml node config;  node<i>/data/  chain store and event log;  node<i>/node.log
Keys derive from the manifest's seed, so the same seed gives the same identities and accounts.
"""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import yaml

from consensus.chain_spec import REGTEST_POW_LIMIT, ChainSpec, bits_for_hashrate
from consensus.dpos.spec import DposSpec, spec_for_preset
from consensus.hybrid.spec import HybridSpec
from consensus.keys import derive_private_key, public_key
from consensus.pos.spec import PosSpec, get_genesis_block
from consensus.pow import hash_hex
from testnet.clock import wall_time
from testnet.config.manifest import ClusterManifest
from testnet.config.topology import edges
from testnet.errors import ClusterNotFound

CLUSTER_FILE = "cluster.json"


@dataclass(frozen=True)
class NodeInfo:
    index: int
    name: str
    host: str
    port: int
    peer_id: str

    @property
    def api(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def p2p_url(self) -> str:
        return f"ws://{self.host}:{self.port}/p2p"


def account_keys(seed: int, count: int) -> list[bytes]:
    return [derive_private_key(str(seed), f"account/{i}") for i in range(count)]


def validator_keys(manifest: ClusterManifest) -> list[list[bytes]]:
    """Per node, the private keys of the validators it runs (derived from the seed)."""
    out, k = [], 0
    for i in range(manifest.nodes):
        count = manifest.node_validators(i)
        out.append([derive_private_key(str(manifest.seed), f"validator/{k + j}")
                    for j in range(count)])
        k += count
    return out


def pos_spec(manifest: ClusterManifest, accounts: list[bytes], now_ms: int) -> PosSpec:
    keys = validator_keys(manifest)
    validators = tuple((public_key(key), manifest.node_stake(i))
                       for i, node_keys in enumerate(keys) for key in node_keys)
    return PosSpec(chain_id=f"p2p-testnet-pos-{manifest.seed}",
                   genesis_time_ms=now_ms + manifest.genesis_delay_ms,
                   slot_duration_ms=manifest.slot_duration_ms,
                   slots_per_epoch=manifest.slots_per_epoch, validators=validators,
                   allocations=tuple((public_key(k), manifest.balance) for k in accounts),
                   inactivity_leak_after_epochs=manifest.inactivity_leak_after_epochs,
                   inactivity_leak_rate=Fraction(manifest.inactivity_leak_rate))


def dpos_spec(manifest: ClusterManifest, accounts: list[bytes], now_ms: int) -> DposSpec:
    """The preset's DPoS chain: the first `schedule_size` producer keys form the genesis schedule
    (in key order), the rest are candidates; every genesis account has `stake` staked (its vote
    weight) besides its balance."""
    keys = [public_key(k) for node_keys in validator_keys(manifest) for k in node_keys]
    size = manifest.schedule_size
    overrides: dict = {}
    if manifest.repetitions:
        overrides["repetitions"] = manifest.repetitions
    if manifest.dpos_slot_ms:
        overrides["slot_duration_ms"] = manifest.dpos_slot_ms
    return spec_for_preset(
        manifest.preset, chain_id=f"p2p-testnet-dpos-{manifest.seed}",
        genesis_time_ms=now_ms + manifest.genesis_delay_ms, producers=size,
        schedule=tuple(keys[:size]), candidates=tuple(keys[size:]),
        stakes=tuple((public_key(k), manifest.stake) for k in accounts),
        allocations=tuple((public_key(k), manifest.balance) for k in accounts),
        update_interval_blocks=manifest.update_interval_blocks,
        unstake_delay_slots=manifest.unstake_delay_slots,
        slash_double_production=manifest.slash_double_production,
        vote_weight_doubling_slots=manifest.vote_weight_doubling_slots, **overrides)


def _pow_fields(manifest: ClusterManifest, accounts: list[bytes]) -> dict:
    return dict(
        genesis_time=int(wall_time()) - 60,
        genesis_bits=bits_for_hashrate(manifest.total_hashrate() or manifest.hashrate,
                                       manifest.block_interval_s, REGTEST_POW_LIMIT),
        target_block_interval_s=manifest.block_interval_s,
        retarget_window=manifest.retarget_window,
        max_future_block_time_s=manifest.max_future_block_time_s,
        allocations=tuple((public_key(k), manifest.balance) for k in accounts),
    )


def pow_spec(manifest: ClusterManifest, accounts: list[bytes]) -> ChainSpec:
    return ChainSpec(chain_id=f"p2p-testnet-{manifest.seed}", **_pow_fields(manifest, accounts))


def hybrid_spec(manifest: ClusterManifest, accounts: list[bytes]) -> HybridSpec:
    """The PoW chain of `pow_spec` with Casper FFG: every node's validator keys deposited at
    genesis with their node's stake (EIP-1011's other parameters at their defaults)."""
    keys = validator_keys(manifest)
    validators = tuple((public_key(key), manifest.node_stake(i))
                       for i, node_keys in enumerate(keys) for key in node_keys)
    return HybridSpec(chain_id=f"p2p-testnet-hybrid-{manifest.seed}",
                      epoch_length=manifest.epoch_length, validators=validators,
                      **_pow_fields(manifest, accounts))


def write_cluster(directory: Path, manifest: ClusterManifest, *, ports: list[int],
                  backend: str = "local") -> dict:
    """Writes the folder for `manifest`, node i listening on ports[i] (the backend chose them)."""
    if len(ports) != manifest.nodes:
        raise ValueError(f"{len(ports)} ports for {manifest.nodes} nodes")   # a caller's bug
    directory.mkdir(parents=True, exist_ok=True)
    seed = manifest.seed
    accounts = account_keys(seed, manifest.account_count)
    spec: ChainSpec | PosSpec | DposSpec
    if manifest.has_producers:
        spec = dpos_spec(manifest, accounts, int(wall_time() * 1000))
        genesis_hex = spec.genesis_block().root.hex()
    elif not manifest.has_mining:
        spec = pos_spec(manifest, accounts, int(wall_time() * 1000))
        genesis_hex = get_genesis_block(spec).root.hex()
    else:
        spec = (hybrid_spec(manifest, accounts) if manifest.has_validators
                else pow_spec(manifest, accounts))
        genesis_hex = hash_hex(spec.genesis_block().hash)
    vkeys = (validator_keys(manifest) if manifest.has_validators or manifest.has_producers
             else [[] for _ in range(manifest.nodes)])
    (directory / "genesis.json").write_text(json.dumps(spec.to_json(), indent=2) + "\n")
    (directory / "accounts.json").write_text(json.dumps(
        [{"index": i, "account": public_key(k).hex(), "private_key": k.hex()}
         for i, k in enumerate(accounts)], indent=2) + "\n")
    node_keys = [derive_private_key(str(seed), f"node/{i}") for i in range(manifest.nodes)]
    infos = [NodeInfo(i, f"node{i}", manifest.host, ports[i], public_key(node_keys[i]).hex())
             for i in range(manifest.nodes)]
    links = edges(manifest.nodes, manifest.topology, random.Random(seed))
    admin_token = secrets.token_hex(16)
    for info in infos:
        node_dir = directory / info.name
        node_dir.mkdir(exist_ok=True)
        hashrate = manifest.node_hashrate(info.index)
        config = {
            "node_id": info.name, "consensus": manifest.consensus, "data_dir": "data",
            "genesis": "../genesis.json", "host": info.host, "port": info.port,
            "peers": [infos[b].p2p_url for a, b in links if a == info.index],
            "node_key": node_keys[info.index].hex(), "seed": seed * 1000 + info.index,
            "peer_ids": [n.peer_id for n in infos if n.index != info.index],
            "admin_token": admin_token,
            # a head update to each peer every 2 s, or every tenth of a slow chain's interval
            "status_interval_s": max(2.0, manifest.block_interval_s / 10),
            "miner": {"enabled": hashrate is not None and manifest.has_mining,
                      "hashrate": hashrate},
        }
        if vkeys[info.index]:
            config["validator_keys"] = [k.hex() for k in vkeys[info.index]]
        (node_dir / "node.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    first_validator = [sum(len(k) for k in vkeys[:i]) for i in range(manifest.nodes)]
    cluster = {
        "backend": backend, "created": wall_time(), "manifest": manifest.model_dump(mode="json"),
        "chain_id": spec.chain_id, "genesis": genesis_hex, "consensus": manifest.consensus,
        "admin_token": admin_token, "edges": links,
        "nodes": [{"index": n.index, "name": n.name, "host": n.host, "port": n.port,
                   "api": n.api, "p2p": n.p2p_url, "peer_id": n.peer_id,
                   "config": f"{n.name}/node.yaml",
                   "validators": list(range(first_validator[n.index],
                                            first_validator[n.index] + len(vkeys[n.index])))}
                  for n in infos],
    }
    (directory / CLUSTER_FILE).write_text(json.dumps(cluster, indent=2) + "\n")
    return cluster


def read_cluster(directory: Path) -> dict:
    path = directory / CLUSTER_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ClusterNotFound(f"no cluster in {directory} (no {CLUSTER_FILE}); "
                              f"start one with `testnet up --dir {directory}`") from None
