"""What an action's arguments are checked against, and the small parsers they share.

An action is validated either against a *plan* (a scenario's manifest, before any process exists:
`PlanTarget`) or against a *live* cluster (the CLI and the dashboard: `LiveTarget`). Both answer
the same questions -- how many nodes, which consensus, how many validators, which node a name
means -- and carry the random source that `random` targets and shuffled partitions draw from (the
scenario seed, so one file and seed give one schedule).

Helpers raise ActionError (a ValueError, so pydantic validators may raise it) with the message a
user sees after `step N (action): `; the action table
turns them into ActionError.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationInfo

from testnet.config.manifest import ClusterManifest
from testnet.errors import ActionError, UnknownNode

if TYPE_CHECKING:
    from testnet.cluster import Cluster


class Target(Protocol):
    manifest: ClusterManifest
    rng: random.Random

    @property
    def nodes(self) -> int: ...

    @property
    def validators(self) -> int: ...

    def node(self, value: Any, field: str = "node") -> int: ...


def _total_validators(manifest: ClusterManifest) -> int:
    return sum(manifest.node_validators(i) for i in range(manifest.nodes))


@dataclass
class PlanTarget:
    """A cluster that does not run yet: a scenario's manifest and seed."""
    manifest: ClusterManifest
    rng: random.Random = field(default_factory=random.Random)

    @property
    def nodes(self) -> int:
        return self.manifest.nodes

    @property
    def validators(self) -> int:
        return _total_validators(self.manifest)

    def node(self, value: Any, field: str = "node") -> int:
        if isinstance(value, str) and value.startswith("node"):
            value = value[4:]
        if isinstance(value, bool):
            raise ActionError(f"{field}: not a node index: {value!r}")
        try:
            index = int(value)
        except (TypeError, ValueError):
            raise ActionError(f"{field}: not a node index: {value!r}") from None
        if not 0 <= index < self.nodes:
            raise ActionError(f"{field}: node {index} does not exist (nodes are "
                             f"0..{self.nodes - 1})")
        return index


@dataclass
class LiveTarget:
    """A running cluster: names resolve as `testnet` commands resolve them (2, "2", "node2")."""
    cluster: Cluster
    rng: random.Random = field(default_factory=random.Random)

    @property
    def manifest(self) -> ClusterManifest:
        return self.cluster.manifest

    @property
    def nodes(self) -> int:
        return self.cluster.size

    @property
    def validators(self) -> int:
        return _total_validators(self.manifest)

    def node(self, value: Any, field: str = "node") -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ActionError(f"{field}: not a node index or name: {value!r}")
        try:
            return self.cluster.node_index(value)
        except UnknownNode as exc:
            raise ActionError(str(exc)) from None


def target_of(info: ValidationInfo) -> Target:
    context = info.context or {}
    if "target" not in context:   # a bug: every validation names what it is checked against
        raise RuntimeError("action arguments validated without a target")
    return context["target"]


# ---- shared parsers ------------------------------------------------------------------------------
def require(args: Any, required: set[str], optional: set[str] | frozenset[str] = frozenset()
            ) -> dict:
    if not isinstance(args, dict):
        raise ActionError(f"expects a mapping with {sorted(required)}")
    missing = required - set(args)
    if missing:
        raise ActionError(f"missing field(s) {sorted(missing)}")
    unknown = set(args) - required - set(optional)
    if unknown:
        raise ActionError(f"unknown field(s) {sorted(unknown)}")
    return args


def non_negative_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ActionError(f"{field}: expected a non-negative integer, got {value!r}")
    return value


def integer(value: Any, field: str) -> int:
    """An integer from YAML or a CLI string ("3")."""
    if isinstance(value, bool):
        raise ActionError(f"{field}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    raise ActionError(f"{field}: expected an integer, got {value!r}")


def number(value: Any, field: str) -> float:
    if isinstance(value, bool):
        raise ActionError(f"{field}: expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ActionError(f"{field}: expected a number, got {value!r}") from None


def node_list(value: Any, target: Target, field: str) -> list[int] | None:
    """`0,1`, `[0, "node1"]` or None (meaning: all)."""
    if value is None:
        return None
    items = value if isinstance(value, list) else str(value).split(",")
    return [target.node(v.strip() if isinstance(v, str) else v, field) for v in items]
