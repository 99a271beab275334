"""Start one node of a container network from environment variables (the image's entrypoint).

Every container of a network gets the same cluster-wide variables and its own NODE_INDEX. From
them each derives, with the same code as `testnet up` (testnet/config/cluster_files.py), the same
genesis, accounts, node keys, peer ids and validator keys: no file has to be shared. It writes
DATA_DIR/node.yaml and DATA_DIR/genesis.json, then becomes the node (`exec_node`).

    cluster-wide  NODES (required), CONSENSUS=pow|pos|hybrid|dpos, SEED=0, TOPOLOGY=full,
                  BLOCK_INTERVAL=2, HASHRATE=20000 (per node, hashes/s),
                  HASHRATES="2=40000,3=off" (per node),
                  STAKES="1=6400000000" (PoS, hybrid: stake of each of that node's validators),
                  VALIDATORS="3=0" (PoS: validators a node runs),
                  MANIFEST_<FIELD>=value (any other field of the cluster manifest, e.g.
                  MANIFEST_SLOTS_PER_EPOCH=8, MANIFEST_PRESET=eosio), GENESIS_TIME (unix
                  seconds)
    per node      NODE_INDEX (required), ROLE (e.g. selfish-miner), ADMIN_TOKEN (enables /admin),
                  PORT=18444, PEER_HOST=node{index} (how peers are named), PEERS (comma-separated
                  ws:// URLs instead of the topology's), DATA_DIR=/data, GENESIS_DIR=/genesis,
                  LOG_LEVEL=INFO

Genesis time: all nodes must agree on it. GENESIS_TIME fixes it. Without it, the first node to
start writes its genesis to GENESIS_DIR (a volume every container of the host mounts) under a file
lock, and the others adopt it -- so a plain `docker compose up` needs no variable. On a multi-host
swarm the volumes are per host: set GENESIS_TIME there.

`python -m testnet.backends.node_env --config FILE` runs a node from a mounted config file instead
(what the orchestrator's Docker backend does); `--print` writes the files and prints the config.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from secrets import token_hex
from typing import NoReturn

import aiohttp
import yaml

from testnet.backends.container_config import CONTAINER_PORT, SERVICE_PATTERN, readdress_config
from testnet.client import NodeClient
from testnet.config.cluster_files import write_cluster
from testnet.config.manifest import MINER_ROLES, validate_manifest
from testnet.errors import EnvConfigError, ManifestError, NodeAPIError, NodeUnreachable, WaitTimeout
from testnet.waiting import wait_until

# Environment variable -> manifest field, for the short names.
SCALARS = {"NODES": "nodes", "CONSENSUS": "consensus", "SEED": "seed", "TOPOLOGY": "topology",
           "BLOCK_INTERVAL": "block_interval_s", "HASHRATE": "hashrate"}
# Environment variable -> per-node override field.
PER_NODE = {"HASHRATES": "hashrate", "STAKES": "stake", "VALIDATORS": "validators"}
MANIFEST_PREFIX = "MANIFEST_"
GENESIS_TIME_FIELDS = {"genesis_time": 1, "genesis_time_ms": 1000}  # field -> units per second
ROLE_TIMEOUT_S = 120.0


# ---- parsing ------------------------------------------------------------------------------------
def parse_node_values(name: str, text: str) -> dict[int, str]:
    """`"2=40000,3=off"` -> {2: "40000", 3: "off"}."""
    out: dict[int, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        node, sep, value = item.partition("=")
        if not sep or not node.strip().isdigit() or not value.strip():
            raise EnvConfigError(f"{name}: {item!r} is not NODE=VALUE (e.g. {name}=2=40000)")
        out[int(node)] = value.strip()
    return out


def manifest_from_env(env: Mapping[str, str]) -> dict:
    """The cluster manifest (as a dict) the cluster-wide variables describe."""
    if not env.get("NODES"):
        raise EnvConfigError("NODES is required: the number of nodes of the network")
    manifest: dict = {}
    for var, field in SCALARS.items():
        if env.get(var, "") != "":
            manifest[field] = env[var]
    for var, value in env.items():
        if var.startswith(MANIFEST_PREFIX) and value != "":
            manifest[var[len(MANIFEST_PREFIX):].lower()] = value
    overrides: dict[int, dict] = {}
    for var, field in PER_NODE.items():
        for node, value in parse_node_values(var, env.get(var, "")).items():
            entry = overrides.setdefault(node, {})
            if field == "hashrate" and value.lower() in ("off", "0", "none"):
                entry["mine"] = False
            else:
                entry[field] = value
    if overrides:
        manifest["overrides"] = overrides
    return manifest


def validated_manifest(env: Mapping[str, str]):  # type: ignore[no-untyped-def]
    try:
        return validate_manifest(manifest_from_env(env))
    except ManifestError as exc:
        raise EnvConfigError(_env_names(str(exc))) from None


def _env_names(message: str) -> str:
    """Name the variables, not the manifest fields, in a manifest error."""
    for var, field in SCALARS.items():
        message = message.replace(f"{field}:", f"{var} ({field}):")
    return message


def node_index(env: Mapping[str, str], nodes: int) -> int:
    text = env.get("NODE_INDEX", "")
    if not text.isdigit():
        raise EnvConfigError(f"NODE_INDEX must be this node's index, 0..{nodes - 1}; got {text!r}")
    index = int(text)
    if index >= nodes:
        raise EnvConfigError(f"NODE_INDEX {index}: the network has nodes 0..{nodes - 1}")
    return index


def genesis_time(env: Mapping[str, str]) -> int | None:
    text = env.get("GENESIS_TIME", "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise EnvConfigError(f"GENESIS_TIME must be unix seconds (date +%s); got {text!r}")
    return int(text)


# ---- the node's files ---------------------------------------------------------------------------
def derive_node_files(env: Mapping[str, str]) -> tuple[dict, dict]:
    """(node config, genesis JSON) for this node; the same genesis in every container."""
    manifest = validated_manifest(env)
    index = node_index(env, manifest.nodes)
    port = _int(env, "PORT", CONTAINER_PORT)
    with tempfile.TemporaryDirectory(prefix="testnet-env-") as tmp:
        folder = Path(tmp)
        cluster = write_cluster(folder, manifest, ports=list(range(port, port + manifest.nodes)),
                                backend="container")
        config = yaml.safe_load((folder / f"node{index}" / "node.yaml").read_text())
        genesis = json.loads((folder / "genesis.json").read_text())
    config = readdress_config(config, index, cluster["edges"], port=port,
                              host_pattern=env.get("PEER_HOST", SERVICE_PATTERN))
    if env.get("PEERS"):
        config["peers"] = [url.strip() for url in env["PEERS"].split(",") if url.strip()]
    config["admin_token"] = env.get("ADMIN_TOKEN") or None
    if env.get("LOG_LEVEL"):
        config["log_level"] = env["LOG_LEVEL"].upper()
    fixed = genesis_time(env)
    if fixed is not None:
        genesis = with_genesis_time(genesis, fixed)
    return config, genesis


def with_genesis_time(genesis: dict, seconds: int) -> dict:
    for field, scale in GENESIS_TIME_FIELDS.items():
        if field in genesis:
            return {**genesis, field: seconds * scale}
    raise EnvConfigError("the genesis has no genesis time field to set")


def _without_time(genesis: dict) -> dict:
    return {k: v for k, v in genesis.items() if k not in GENESIS_TIME_FIELDS}


def shared_genesis(directory: Path, derived: dict) -> dict:
    """The genesis the first node of this host wrote to `directory`, or `derived`, written there.

    Under an exclusive lock, so nodes starting together agree. A shared genesis that differs in
    more than its time means the containers were given different settings: an error.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "genesis.json"
    with open(directory / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            shared = json.loads(path.read_text())
            if _without_time(shared) != _without_time(derived):
                raise EnvConfigError(
                    f"{path} was written for other settings (another SEED, NODES, CONSENSUS...) "
                    "than this node's; give every container the same cluster-wide variables, or "
                    "start over with fresh volumes (docker compose down -v)")
            return shared
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(derived, indent=2) + "\n")
        tmp.rename(path)
        return derived


def write_node_files(env: Mapping[str, str]) -> Path:
    """Write DATA_DIR/node.yaml and DATA_DIR/genesis.json; return the config path."""
    config, genesis = derive_node_files(env)
    if genesis_time(env) is None:
        genesis = shared_genesis(Path(env.get("GENESIS_DIR", "/genesis")), genesis)
    data_dir = Path(env.get("DATA_DIR", "/data"))
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "genesis.json").write_text(json.dumps(genesis, indent=2) + "\n")
    config = {**config, "data_dir": str(data_dir), "genesis": str(data_dir / "genesis.json")}
    path = data_dir / "node.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "")
    if text == "":
        return default
    if not text.isdigit():
        raise EnvConfigError(f"{name} must be a whole number; got {text!r}")
    return int(text)


# ---- role at startup ----------------------------------------------------------------------------
def apply_role_when_ready(port: int, token: str, role: str,
                          timeout: float = ROLE_TIMEOUT_S) -> None:
    """Switch the node's role through its admin API once it answers (the same switch as
    `testnet role`): a PoW node's mining strategy, or the role of every validator a PoS node runs
    (a hybrid node: its mining strategy for a miner role, else its validators').
    Runs in a daemon thread; reports on stderr, and gives up after `timeout`."""
    try:
        asyncio.run(_apply_role(port, token, role, timeout))
    except WaitTimeout:
        print(f"node_env: role {role!r} not applied: the node did not answer in {timeout:.0f} s",
              file=sys.stderr)
        return
    except NodeAPIError as exc:
        print(f"node_env: role {role!r} refused: {exc.message}", file=sys.stderr)
        return
    except NodeUnreachable as exc:
        print(f"node_env: could not apply role {role!r}: {exc}", file=sys.stderr)
        return
    print(f"node_env: role {role} applied", file=sys.stderr)


async def _apply_role(port: int, token: str, role: str, timeout: float) -> None:
    async with aiohttp.ClientSession() as session:
        client = NodeClient(f"http://127.0.0.1:{port}", session, 2.0, admin_token=token,
                            name="this node")

        async def answering() -> dict | None:
            try:
                return await client.status()
            except (NodeUnreachable, NodeAPIError):
                return None
        status = await wait_until(answering, timeout, "the node to answer /status", interval=0.5)
        # a hybrid node has both kinds; a DPoS node lists its producers under local_producers
        signers = ((status.get("validators") or {}).get("validators")
                   or (status.get("local_producers") or {}).get("producers"))
        validators = (signers or [None]) if role not in MINER_ROLES else [None]
        for validator in validators:
            body = {"role": role} if validator is None else {"role": role, "validator": validator}
            await client.admin("POST", "/admin/role", body)


def run_from_env(env: Mapping[str, str]) -> int:
    role = env.get("ROLE", "honest") or "honest"
    if role != "honest" and not env.get("ADMIN_TOKEN"):
        env = {**env, "ADMIN_TOKEN": token_hex(16)}  # the role switch goes through /admin
    try:
        path = write_node_files(env)
    except EnvConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if role == "honest":
        exec_node(path)
    threading.Thread(target=apply_role_when_ready, daemon=True,
                     args=(_int(env, "PORT", CONTAINER_PORT), env["ADMIN_TOKEN"], role)).start()
    from node.app import main as node_main
    return node_main(path)


def exec_node(config: Path | str) -> NoReturn:
    """Become `python -m node --config FILE` (same pid: the container's signals reach the node).
    What this process imported to write the node's files -- the manifest's pydantic models, the
    cluster files, the HTTP client -- leaves with it: a node holds only a node's modules (idle
    memory, issue 11). A non-honest role keeps this process, whose thread switches the role."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "node", "--config", str(config)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testnet.backends.node_env",
                                     description="Run one node from environment variables.")
    parser.add_argument("--config", help="run from this node config file instead of the env")
    parser.add_argument("--print", action="store_true", dest="print_only",
                        help="write the node's files, print its config and exit")
    args = parser.parse_args(argv)
    if args.config:
        exec_node(args.config)
    if args.print_only:
        try:
            path = write_node_files(os.environ)
        except EnvConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        sys.stdout.write(path.read_text())
        return 0
    return run_from_env(os.environ)


if __name__ == "__main__":
    sys.exit(main())
