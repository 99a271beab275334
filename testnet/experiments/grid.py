"""The plan of an experiment as values: parameter points, runs, derived seeds.

A sweep's grid is the cartesian product of its parameters' values, in the order given. Each run
is (consensus, point, run number) and gets a seed derived from the experiment's seed and those
three, recorded in the plan, so a rerun or a resume replays the same seeds.

`apply_point` maps a parameter name onto what it changes: a name the scenario file declares
under `params:` fills its `${name}` templates; an alias in ALIASES sets a cluster field
(`block_interval=2` sets `cluster.block_interval_s: 2`); anything else is an error naming the
choices.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import Any

from testnet.errors import ScenarioError

# sweep name -> cluster field (a value in a sweep is parsed like the same value in YAML)
ALIASES = {
    "block_interval": "block_interval_s", "block_interval_s": "block_interval_s",
    "nodes": "nodes", "validators": "validators_per_node",
    "validators_per_node": "validators_per_node", "epoch_length": "epoch_length",
    "slots_per_epoch": "slots_per_epoch", "slot_duration_ms": "slot_duration_ms",
    "hashrate": "hashrate", "producers": "producers", "topology": "topology",
}


@dataclass(frozen=True)
class PlannedRun:
    consensus: str
    point: dict[str, Any]
    run: int
    seed: int

    @property
    def point_label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.point.items()) or "-"

    @property
    def folder(self) -> str:
        safe = "".join(c if c.isalnum() or c in "-_.=," else "_" for c in self.point_label)
        return f"{self.consensus}/{safe}/run{self.run}"

    def to_json(self) -> dict:
        return {"consensus": self.consensus, "point": self.point, "run": self.run,
                "seed": self.seed, "folder": self.folder}


def parse_value(text: str) -> Any:
    """`2` -> 2, `0.3` -> 0.3, `100ms` -> "100ms" (units stay text for the scenario to check)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_param(text: str) -> tuple[str, list[Any]]:
    """`link.delay=0ms,100ms` -> ("link.delay", ["0ms", "100ms"])."""
    name, sep, values = text.partition("=")
    if not sep or not name.strip() or not values.strip():
        raise ScenarioError(f"--param wants NAME=V1,V2,..., got {text!r}")
    return name.strip(), [parse_value(v.strip()) for v in values.split(",") if v.strip()]


def points(params: dict[str, list[Any]]) -> list[dict[str, Any]]:
    names = list(params)
    return [dict(zip(names, combo)) for combo in itertools.product(*params.values())] or [{}]


def derive_seed(seed: int, consensus: str, point: dict[str, Any], run: int) -> int:
    text = f"{seed}|{consensus}|{sorted(point.items())}|{run}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") % 1_000_000


def plan_runs(consensuses: list[str], params: dict[str, list[Any]], runs: int, seed: int
              ) -> list[PlannedRun]:
    return [PlannedRun(c, p, r, derive_seed(seed, c, p, r))
            for p in points(params) for c in consensuses for r in range(1, runs + 1)]


def hashrate_share(value: Any, cluster: dict[str, Any]) -> dict[str, Any]:
    """The last node (the attacker of the selfish-mining scenario) gets `value` of the total
    hashrate; the others keep the cluster's per-node hashrate."""
    share = float(value)
    if not 0 < share < 1:
        raise ScenarioError(f"hashrate_share: a share between 0 and 1, got {value!r}")
    nodes = int(cluster.get("nodes", 4))
    honest = float(cluster.get("hashrate", 20_000)) * (nodes - 1)
    overrides = dict(cluster.get("overrides") or {})
    overrides[nodes - 1] = {**overrides.get(nodes - 1, {}),
                            "hashrate": round(honest * share / (1 - share))}
    return {"overrides": overrides}


def apply_point(point: dict[str, Any], declared: dict[str, Any],
                cluster_raw: dict[str, Any] | None = None
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(scenario params, cluster fields) for one point; `cluster_raw` is the file's cluster,
    which a derived parameter (hashrate_share) is computed from."""
    from testnet.experiments.figures import COLUMNS
    params: dict[str, Any] = {}
    cluster: dict[str, Any] = {}
    for name, value in point.items():
        if name in declared and name in COLUMNS:
            raise ScenarioError(f"parameter {name!r} has the name of a runs.csv column; "
                                "rename it in the scenario's params")
        if name in declared:
            params[name] = value
        elif name == "hashrate_share":
            cluster.update(hashrate_share(value, {**(cluster_raw or {}), **cluster}))
        elif name in ALIASES:
            cluster[ALIASES[name]] = value
        else:
            raise ScenarioError(
                f"unknown parameter {name!r}: the scenario declares "
                f"{', '.join(sorted(declared)) or 'no params'}; cluster aliases are "
                f"{', '.join(sorted([*ALIASES, 'hashrate_share']))}")
    return params, cluster
