"""Compose files for container networks: built as plain dicts by pure functions, then rendered.

Two kinds:
- a *network file* (`testnet compose`, and the repository's docker-compose.yml): self-contained,
  every node configured by environment variables (testnet/node_env.py), chains in named volumes.
  One file serves `docker compose up` (bridge network) and `docker stack deploy` (overlay network):
  the network names no driver, `depends_on` uses the list form swarm accepts, `deploy:` carries
  what swarm needs (one replica, DNS round robin -- no VIP, which needs IPVS -- and host-mode
  ports) and compose ignores it; `restart:` is for compose, swarm ignores it.
- a *cluster file* (the Docker and Swarm backends of the orchestrator): nodes run from the config
  files of a cluster folder, bind-mounted with their data, so the runner, `testnet logs` and the
  nemesis see the same folder as with local processes.

A network request is validated whole before anything is written (`validate_network_request`):
errors name the option and the node (`--stake 9=...: no node 9 (nodes are 0..7)`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from testnet.backends.container_config import CONTAINER_PORT, service_name
from testnet.backends.node_env import manifest_from_env, parse_node_values
from testnet.config.manifest import CONSENSUS, ROLES, has, validate_manifest
from testnet.config.topology import edges
from testnet.errors import ComposeSpecError, EnvConfigError, ManifestError, TopologyError

DEFAULT_IMAGE = "p2p-testnet:latest"
DEFAULT_BASE_PORT = 18441
NETWORK = "testnet"
IMAGE_UID = 10001  # the image's non-root user (Dockerfile)
COMPOSE_VERSION = "3.8"  # the newest format that docker-compose v1, v2 and `stack deploy` all read
CONSENSUS_CHOICES = CONSENSUS
# A node starts in one of config.manifest.ROLES: a PoW node's mining strategy, or the role of every
# validator of a PoS node; tests check the lists match the node's.


@dataclass(frozen=True)
class NetworkRequest:
    nodes: int
    consensus: str = "pow"
    topology: str = "full"
    seed: int = 0
    block_interval: int = 2
    hashrate: float = 20_000
    hashrates: dict[int, str] = field(default_factory=dict)  # node -> hashes/s or "off"
    stakes: dict[int, int] = field(default_factory=dict)
    roles: dict[int, str] = field(default_factory=dict)
    base_port: int = DEFAULT_BASE_PORT
    image: str = DEFAULT_IMAGE
    wait_healthy: bool = False  # depends_on waits for node0's healthcheck (compose only)
    command: str = ""  # the command line that generated the file, for its header


# ---- validation ----------------------------------------------------------------------------------
def validate_network_request(req: NetworkRequest) -> None:
    """Raise ComposeSpecError for anything a container would refuse, before a file is written."""
    if req.consensus not in CONSENSUS_CHOICES:
        raise ComposeSpecError(f"--consensus {req.consensus!r}: use one of "
                               f"{', '.join(CONSENSUS_CHOICES)}")
    if req.nodes < 1:
        raise ComposeSpecError(f"--nodes {req.nodes}: a network needs at least one node")
    for option, per_node in (("--hashrate", req.hashrates), ("--stake", req.stakes),
                             ("--role", req.roles)):
        for node, value in per_node.items():
            if not 0 <= node < req.nodes:
                raise ComposeSpecError(f"{option} {node}={value}: no node {node} "
                                       f"(nodes are 0..{req.nodes - 1})")
    if req.stakes and not has(req.consensus, "validators"):
        raise ComposeSpecError("--stake is for Proof of Stake and hybrid networks (--consensus "
                               "pos or hybrid)")
    for node, amount in req.stakes.items():
        if amount <= 0:
            raise ComposeSpecError(f"--stake {node}={amount}: stake must be positive")
    for node, role in req.roles.items():
        if role not in ROLES[req.consensus]:
            raise ComposeSpecError(f"--role {node}={role}: {req.consensus} roles are "
                                   f"{', '.join(ROLES[req.consensus])}")
    if not 1 <= req.base_port <= 65536 - req.nodes:
        raise ComposeSpecError(f"--base-port {req.base_port}: ports {req.base_port}.."
                               f"{req.base_port + req.nodes - 1} are not all valid")
    try:  # exactly what every container will check at start (testnet/node_env.py)
        manifest = validate_manifest(manifest_from_env(cluster_env(req, resolved=True)))
        edges(manifest.nodes, manifest.topology, random.Random(manifest.seed))
    except (ManifestError, EnvConfigError, TopologyError) as exc:
        raise ComposeSpecError(str(exc)) from None


def parse_assignments(option: str, values: tuple[str, ...]) -> dict[int, str]:
    """`("2=40000", "3=off")` -> {2: "40000", 3: "off"}; errors name the option."""
    try:
        return parse_node_values(option, ",".join(values))
    except EnvConfigError as exc:
        raise ComposeSpecError(str(exc)) from None


# ---- network files -------------------------------------------------------------------------------
def cluster_env(req: NetworkRequest, *, resolved: bool = False) -> dict[str, str]:
    """The variables every container of the network gets. `resolved` gives the values a container
    sees when no variable is set in the shell (for validation)."""
    env = {"NODES": str(req.nodes),
           "CONSENSUS": req.consensus if resolved else f"${{CONSENSUS:-{req.consensus}}}",
           "SEED": str(req.seed), "TOPOLOGY": req.topology,
           "BLOCK_INTERVAL": str(req.block_interval), "HASHRATE": _number(req.hashrate)}
    if req.hashrates:
        env["HASHRATES"] = ",".join(f"{n}={v}" for n, v in sorted(req.hashrates.items()))
    if req.stakes:
        env["STAKES"] = ",".join(f"{n}={v}" for n, v in sorted(req.stakes.items()))
    env["GENESIS_TIME"] = "" if resolved else "${GENESIS_TIME:-}"
    env["ADMIN_TOKEN"] = "" if resolved else "${ADMIN_TOKEN:-}"
    return env


def network_compose(req: NetworkRequest) -> dict:
    """The compose document of a self-contained network (see the module docstring)."""
    common = cluster_env(req)
    services = {}
    for i in range(req.nodes):
        env: dict = {MergeKey("<<"): common, "NODE_INDEX": str(i)}
        if req.roles.get(i, "honest") != "honest":
            env["ROLE"] = req.roles[i]
        service: dict = {
            "image": f"${{TESTNET_IMAGE:-{req.image}}}",
            "hostname": service_name(i),
            "environment": env,
            "ports": [{"target": CONTAINER_PORT, "published": req.base_port + i,
                       "protocol": "tcp", "mode": "host"}],
            "volumes": [f"{service_name(i)}-data:/data", "genesis:/genesis"],
            "networks": [NETWORK],
            "restart": "unless-stopped",
            "stop_grace_period": "10s",
            "deploy": {"replicas": 1, "endpoint_mode": "dnsrr",
                       "restart_policy": {"condition": "any"}},
        }
        if i > 0:
            service["depends_on"] = ({service_name(0): {"condition": "service_healthy"}}
                                     if req.wait_healthy else [service_name(0)])
        services[service_name(i)] = service
    return {
        "version": COMPOSE_VERSION,
        "x-cluster-env": common,
        "services": services,
        # No driver: a user-defined bridge under compose, an overlay network under swarm.
        "networks": {NETWORK: {}},
        "volumes": {"genesis": {}, **{f"{service_name(i)}-data": {} for i in range(req.nodes)}},
    }


def network_header(req: NetworkRequest) -> str:
    nodes = req.nodes
    last = req.base_port + nodes - 1
    swarm = ("# Swarm:   docker stack deploy -c FILE testnet   (depends_on is ignored there)\n"
             if not req.wait_healthy else
             "# Compose only: depends_on waits for node0's healthcheck, a form that\n"
             "# `docker stack deploy` rejects (generate without --wait-healthy for swarm).\n")
    return (
        f"# A {nodes}-node {req.consensus} p2p-testnet network"
        f"{' generated by: ' + req.command if req.command else ''}.\n"
        "# Build the image first: docker build -t p2p-testnet .  (offline: see the README)\n"
        "# Compose: docker compose up -d  (or docker-compose up -d); CONSENSUS=pos selects PoS,\n"
        "# CONSENSUS=hybrid PoW with Casper FFG finality (EIP-1011), CONSENSUS=dpos delegated\n"
        "# proof of stake (7 producers x 2 blocks x 0.5 s).\n"
        f"{swarm}"
        f"# Node APIs: http://127.0.0.1:{req.base_port}/status .. :{last}/status\n"
        "# Chains live in the named volumes: `docker compose down -v` starts a new network.\n")


# ---- cluster files (the orchestrator's backends) -------------------------------------------------
def cluster_compose(info: dict, directory: Path, *, image: str, swarm: bool = False,
                    user: str | None = None) -> dict:
    """Compose document running the nodes of the cluster folder `directory` from its files."""
    services = {}
    for node in info["nodes"]:
        i = node["index"]
        name = node["name"]
        service: dict = {
            "image": image,
            "command": ["--config", "/node/node.yaml"],
            "hostname": service_name(i),
            "environment": {"PORT": str(CONTAINER_PORT)},
            "volumes": [f"{directory / name}:/node",
                        f"{directory / 'genesis.json'}:/genesis.json:ro"],
            "networks": [NETWORK],
            "labels": {"p2p-testnet.cluster": str(directory), "p2p-testnet.node": str(i)},
            "stop_grace_period": "10s",
        }
        if user:
            service["user"] = user
        if swarm:
            service["ports"] = [{"target": CONTAINER_PORT, "published": node["port"],
                                 "protocol": "tcp", "mode": "host"}]
            service["deploy"] = {"replicas": 1, "endpoint_mode": "dnsrr",
                                 "restart_policy": {"condition": "none"}}
        else:
            service["container_name"] = f"{info['project']}-{name}"
            service["ports"] = [f"127.0.0.1:{node['port']}:{CONTAINER_PORT}"]
            service["cap_add"] = ["NET_ADMIN"]  # iptables for `partition --layer net`
        services[service_name(i)] = service
    network = {"driver": "overlay", "attachable": True} if swarm else {"driver": "bridge"}
    return {"version": COMPOSE_VERSION, "services": services, "networks": {NETWORK: network}}


# ---- rendering -----------------------------------------------------------------------------------
class MergeKey(str):
    """The YAML merge key `<<`, written plain so that parsers merge (PyYAML would quote it)."""


class _Dumper(yaml.SafeDumper):
    def generate_anchor(self, node: yaml.Node) -> str:
        return "cluster-env"  # the one shared mapping: the cluster-wide environment

    def ignore_aliases(self, data: object) -> bool:
        return not isinstance(data, dict)


_Dumper.add_representer(MergeKey, lambda dumper, _: dumper.represent_scalar(
    "tag:yaml.org,2002:merge", "<<"))


def render(document: dict, header: str = "") -> str:
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                              width=100)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
