"""Container addressing: how a cluster folder's node configs change when each node is a container.

On loopback every node listens on its own port of 127.0.0.1. In a container network each node has
its own network stack, so every node listens on 0.0.0.0:CONTAINER_PORT and dials its peers by
service name (`ws://node2:18444/p2p`): Docker's DNS on a user-defined bridge or overlay network
resolves the name to the container. The orchestrator still reaches each API on a published port
of the host, so `cluster.json` keeps its `api` URLs and only the p2p URLs change.

Pure functions of a node config (a dict, as in node.yaml) and the cluster's edges, used both by the
Docker backend (on the host) and by `testnet.backends.node_env` (inside a container).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

CONTAINER_PORT = 18444
BIND_HOST = "0.0.0.0"
SERVICE_PATTERN = "node{index}"


def service_name(index: int) -> str:
    return SERVICE_PATTERN.format(index=index)


def p2p_url(index: int, port: int = CONTAINER_PORT, host_pattern: str = SERVICE_PATTERN) -> str:
    return f"ws://{host_pattern.format(index=index)}:{port}/p2p"


def dialed_peers(index: int, edges: list[list[int]] | list[tuple[int, int]]) -> list[int]:
    """The nodes `index` dials: each edge is dialed by its lower index
    (testnet/config/topology.py)."""
    return [b for a, b in edges if a == index]


def readdress_config(config: dict, index: int, edges: list, *, port: int = CONTAINER_PORT,
                     bind_host: str = BIND_HOST, host_pattern: str = SERVICE_PATTERN) -> dict:
    """A copy of a node config that listens on `bind_host:port` and dials peers by name."""
    return {**config, "host": bind_host, "port": port,
            "peers": [p2p_url(peer, port, host_pattern) for peer in dialed_peers(index, edges)]}


def containerize_cluster(directory: Path, port: int = CONTAINER_PORT) -> dict:
    """Rewrite a cluster folder written by `write_cluster` for containers; returns cluster.json.

    The node configs keep their relative `data_dir` and `genesis` (a container mounts its node
    folder at /node and genesis.json at /genesis.json); the `api` URLs keep the host ports that
    `write_cluster` chose, which the containers publish.
    """
    info = json.loads((directory / "cluster.json").read_text())
    for node in info["nodes"]:
        path = directory / node["config"]
        config = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump(readdress_config(config, node["index"], info["edges"],
                                                        port=port), sort_keys=False))
        node["p2p"] = p2p_url(node["index"], port)
        node["container_port"] = port
    (directory / "cluster.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
