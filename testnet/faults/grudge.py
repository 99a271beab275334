"""Partitions as values (Jepsen's "grudges"): pure functions from a partition spec to a grudge.

A grudge maps each node index to the set of node indices whose messages it drops. Applying one is
a separate mechanism (testnet/nemesis.py): a pair that drops each other both ways becomes a
firewall between them (the connection is closed and refused, so the split is visible in peer
counts); a pair where only one side drops the other is an asymmetric link (A hears B, B does not
hear A).
"""

from __future__ import annotations

import random

from testnet.errors import PartitionSpecError

Grudge = dict[int, set[int]]


def complete(n: int, groups: list[list[int]]) -> Grudge:
    """Nodes talk only within their group; nodes named in no group form one more group."""
    seen: set[int] = set()
    for group in groups:
        for node in group:
            if not 0 <= node < n:
                raise PartitionSpecError(f"node {node} does not exist (nodes are 0..{n - 1})")
            if node in seen:
                raise PartitionSpecError(f"node {node} appears in two groups")
            seen.add(node)
    rest = [i for i in range(n) if i not in seen]
    components = [list(g) for g in groups if g] + ([rest] if rest else [])
    if len(components) < 2:
        raise PartitionSpecError("a partition needs at least two non-empty groups")
    member = {node: k for k, group in enumerate(components) for node in group}
    return {i: {j for j in range(n) if member[j] != member[i]} for i in range(n)}


def isolate(n: int, node: int) -> Grudge:
    return complete(n, [[node]])


def halves(n: int, rng: random.Random | None = None) -> Grudge:
    """Two halves (the first one smaller for odd n); shuffled when an rng is given."""
    order = list(range(n))
    if rng is not None:
        rng.shuffle(order)
    return complete(n, [order[: n // 2], order[n // 2:]])


def majorities_ring(n: int, rng: random.Random | None = None) -> Grudge:
    """Every node sees a majority, but no two nodes see the same majority (Jepsen's ring)."""
    if n < 3:
        raise PartitionSpecError("a majorities ring needs at least 3 nodes")
    order = list(range(n))
    if rng is not None:
        rng.shuffle(order)
    majority = n // 2 + 1
    reach = majority // 2  # neighbours on each side; window = 2 * reach + 1 >= majority
    position = {node: k for k, node in enumerate(order)}
    grudge: Grudge = {}
    for node in range(n):
        k = position[node]
        visible = {order[(k + d) % n] for d in range(-reach, reach + 1)}
        grudge[node] = set(range(n)) - visible
    return grudge


def bridge(n: int, rng: random.Random | None = None) -> Grudge:
    """Two sides that only one node (the bridge) connects; the sides cannot talk directly."""
    if n < 3:
        raise PartitionSpecError("a bridge needs at least 3 nodes")
    order = list(range(n))
    if rng is not None:
        rng.shuffle(order)
    middle = n // 2
    left, right = order[:middle], order[middle + 1:]  # order[middle] is the bridge
    grudge: Grudge = {i: set() for i in range(n)}
    for a in left:
        grudge[a] |= set(right)
    for b in right:
        grudge[b] |= set(left)
    return grudge


def one_way(n: int, cuts: list[tuple[int, int]]) -> Grudge:
    """Each (a, b) cuts the direction a -> b: b stops hearing a; a still hears b."""
    grudge: Grudge = {i: set() for i in range(n)}
    for a, b in cuts:
        for node in (a, b):
            if not 0 <= node < n:
                raise PartitionSpecError(f"node {node} does not exist (nodes are 0..{n - 1})")
        if a == b:
            raise PartitionSpecError(f"cannot cut node {a} from itself")
        grudge[b].add(a)
    return grudge


def parse_groups(text: str) -> list[list[int]]:
    """`0,1|2,3,4` (or separate CLI arguments joined by `|`) -> [[0, 1], [2, 3, 4]]."""
    groups = []
    for part in text.split("|"):
        part = part.strip()
        if not part:
            raise PartitionSpecError(f"empty group in {text!r}")
        try:
            groups.append([int(x) for x in part.split(",") if x.strip()])
        except ValueError:
            raise PartitionSpecError(f"groups are comma-separated node indices: {text!r}") from None
    return groups


def parse_one_way(text: str) -> list[tuple[int, int]]:
    """`0>1` or `0>1,2>3`: the listed directions are cut."""
    cuts = []
    for part in text.split(","):
        try:
            a, b = part.split(">")
            cuts.append((int(a), int(b)))
        except ValueError:
            raise PartitionSpecError(f"one-way cuts look like 0>1 (0 no longer reaches 1): "
                                     f"{part!r}") from None
    return cuts


def from_spec(n: int, spec: dict | str, rng: random.Random | None = None) -> Grudge:
    """Build from a scenario/CLI spec: "0,1|2,3", {"groups": [[0,1],[2,3]]}, {"isolate": 3},
    {"halves": true}, {"majorities_ring": true}, {"bridge": true}, {"one_way": "0>1"},
    {"grudge": {0: [2, 3], ...}}."""
    if isinstance(spec, str):
        return complete(n, parse_groups(spec))
    if not isinstance(spec, dict) or len(spec) != 1:
        raise PartitionSpecError(f"a partition is one of groups/isolate/halves/majorities_ring/"
                                 f"bridge/one_way, got {spec!r}")
    (kind, value), = spec.items()
    if kind == "groups":
        groups = parse_groups(value) if isinstance(value, str) else value
        return complete(n, [[int(x) for x in g] for g in groups])
    if kind == "isolate":
        return isolate(n, int(value))
    if kind == "halves":
        return halves(n, rng)
    if kind == "majorities_ring":
        return majorities_ring(n, rng)
    if kind == "bridge":
        return bridge(n, rng)
    if kind == "grudge":   # explicit: node -> the nodes it drops
        return {i: {int(b) for b in value.get(i, value.get(str(i), []))} for i in range(n)}
    if kind == "one_way":
        cuts = parse_one_way(value) if isinstance(value, str) else [tuple(c) for c in value]
        return one_way(n, cuts)  # type: ignore[arg-type]
    raise PartitionSpecError(f"unknown partition kind {kind!r}")


def link_blocks(grudge: Grudge) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """Split a grudge into symmetric cuts {(a, b): a < b} and one-way cuts {(a, b): b drops a}."""
    symmetric, one_way_cuts = set(), set()
    for b, dropped in grudge.items():
        for a in dropped:
            if b in grudge.get(a, set()):
                symmetric.add((min(a, b), max(a, b)))
            else:
                one_way_cuts.add((a, b))
    return symmetric, one_way_cuts


def describe(grudge: Grudge) -> str:
    symmetric, one_way_cuts = link_blocks(grudge)
    parts = [f"{a}x{b}" for a, b in sorted(symmetric)] + [f"{a}>{b}" for a, b in
                                                             sorted(one_way_cuts)]
    return ", ".join(parts) or "no cuts"
