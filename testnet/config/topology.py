"""Who dials whom: pure functions from a topology name to undirected edges between node indices.

Each edge (i, j) has i < j and is dialed by the lower index, so every pair has one connection.
"""

from __future__ import annotations

import random
import re

from testnet.errors import TopologyError

TOPOLOGY_PATTERN = re.compile(r"^(full|ring|line|star|random:(\d+)|groups:[\d,|]+)$")


def parse_topology(text: str) -> str:
    if not TOPOLOGY_PATTERN.match(text):
        raise TopologyError(f"unknown topology {text!r}: use full, ring, line, star, random:K or "
                            "groups:0,1|2,3 (full mesh inside each group, no links between)")
    return text


def edges(n: int, topology: str, rng: random.Random) -> list[tuple[int, int]]:
    """Undirected edges for `n` nodes; `random:K` gives each node at least K neighbours (capped at
    n-1) on top of a random spanning path, so the graph is always connected."""
    parse_topology(topology)
    if n < 2:
        return []
    if topology == "full":
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    if topology == "line":
        return [(i, i + 1) for i in range(n - 1)]
    if topology == "ring":
        out = {(i, i + 1) for i in range(n - 1)}
        if n > 2:
            out.add((0, n - 1))
        return sorted(out)
    if topology.startswith("groups:"):
        groups = [[int(x) for x in g.split(",") if x] for g in topology[7:].split("|")]
        for g in groups:
            for x in g:
                if not 0 <= x < n:
                    raise TopologyError(f"topology {topology!r} names node {x}, but nodes are "
                                        f"0..{n - 1}")
        return sorted({(min(a, b), max(a, b)) for g in groups for a in g for b in g if a != b})
    if topology == "star":
        return [(0, j) for j in range(1, n)]
    k = min(int(topology.split(":")[1]), n - 1)
    order = list(range(n))
    rng.shuffle(order)
    out = {tuple(sorted((order[i], order[i + 1]))) for i in range(n - 1)}
    degree = {i: 0 for i in range(n)}
    for a, b in out:
        degree[a] += 1
        degree[b] += 1
    for i in range(n):
        others = [j for j in range(n) if j != i and tuple(sorted((i, j))) not in out]
        rng.shuffle(others)
        while degree[i] < k and others:
            j = others.pop()
            out.add(tuple(sorted((i, j))))
            degree[i] += 1
            degree[j] += 1
    return sorted(out)  # type: ignore[arg-type]


def neighbours(n: int, edge_list: list[tuple[int, int]]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {i: [] for i in range(n)}
    for a, b in edge_list:
        out[a].append(b)
        out[b].append(a)
    return out
