"""Scenario files: a cluster, a timeline of steps, and checks — validated whole before anything runs.

A scenario is YAML:

    name: partition-heal-pow
    cluster: {nodes: 4, consensus: pow, block_interval_s: 1}
    seed: 7
    steps:
      - wait: {height: 5}
      - partition: "0,1|2,3"
      - sleep: 15s
      - heal: true
      - wait: {converged: 60}
    checks:
      - converged_within: 60
      - max_reorg_depth: 20

Each step is a mapping with exactly one action key, plus optional `at` (run no earlier than this
offset from the start, e.g. `at: 30s`) and `label`. Errors name the step and the field:
`step 3 (partition): node 7 does not exist (nodes are 0..3)`.

`chaos` steps (Blockade's chaos, Jepsen's generators) are expanded here, with the scenario seed, into
plain steps; so the same file and seed always give the same fault schedule.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from testnet import grudge as grudges
from testnet.checkers import validate_check_spec
from testnet.manifest import ClusterManifest, ManifestError, validate_manifest
from testnet.units import parse_duration_s, parse_fraction, parse_rate_bps

ACTIONS = ("wait", "sleep", "partition", "heal", "link", "link_clear", "kill", "stop", "start",
           "pause", "resume", "restart", "skew", "role", "miner", "tx", "load", "chaos", "log")
PROCESS_ACTIONS = ("kill", "stop", "start", "pause", "resume", "restart")
WAIT_KEYS = {"height", "converged", "nodes", "timeout", "finalized_epoch", "finalized_epochs",
             "tx", "confirmations", "blocks", "epochs", "event"}
POW_ROLES = ("honest", "selfish-miner", "withhold")
POS_ROLES = ("honest", "silent", "double-propose", "double-vote", "surround-vote")
CHAOS_FAULTS = ("kill", "pause", "partition", "link")


class ScenarioError(ValueError):
    """A scenario file that cannot run; the message names the step and field."""


class ScenarioModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    cluster: dict = Field(default_factory=dict)
    seed: int = 0
    timeout: float = Field(default=600, gt=0)
    steps: list[dict] = Field(default_factory=list)
    checks: list[dict] = Field(default_factory=list)


class Step(BaseModel):
    """One normalised step: `action` with its `args`, at an optional time offset."""
    index: int
    action: str
    args: Any
    at_s: float | None = None
    label: str | None = None

    def describe(self) -> str:
        return f"step {self.index} ({self.action})"


class Scenario(BaseModel):
    name: str
    description: str
    manifest: ClusterManifest
    seed: int
    timeout: float
    steps: list[Step]
    checks: list[dict]
    source: str = ""

    def schedule(self) -> list[dict]:
        """The planned fault schedule (deterministic for a file and seed)."""
        return [{"step": s.index, "action": s.action, "args": s.args, "at_s": s.at_s,
                 "label": s.label} for s in self.steps]


def load_scenario(path: Path | str, seed: int | None = None) -> Scenario:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"scenario {path} is not valid YAML: {exc}") from None
    scenario = parse_scenario(raw, seed=seed)
    scenario.source = str(path)
    return scenario


def parse_scenario(raw: Any, seed: int | None = None) -> Scenario:
    if not isinstance(raw, dict):
        raise ScenarioError("a scenario is a mapping with name, cluster, steps and checks")
    try:
        model = ScenarioModel.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ScenarioError(f"{field}: {err['msg']}") from None
    run_seed = model.seed if seed is None else seed
    cluster = {"seed": run_seed, **model.cluster}
    if seed is not None:
        cluster["seed"] = seed
    try:
        manifest = validate_manifest(cluster)
    except ManifestError as exc:
        raise ScenarioError(f"cluster: {exc}") from None
    rng = random.Random(run_seed)
    steps: list[Step] = []
    for number, raw_step in enumerate(model.steps, start=1):
        for step in _parse_step(number, raw_step, manifest, rng):
            steps.append(step.model_copy(update={"index": len(steps) + 1}))
    labels = {s.label for s in steps if s.action == "tx" and s.label}
    for number, check in enumerate(model.checks, start=1):
        try:
            validate_check_spec(check)
        except ValueError as exc:
            raise ScenarioError(f"check {number}: {exc}") from None
        for key in ("tx_final", "tx_reversed"):
            if key in check:
                ref = check[key]["tx"] if isinstance(check[key], dict) else check[key]
                if ref not in labels:
                    raise ScenarioError(f"check {number} ({key}): no tx step is labelled {ref!r}")
    return Scenario(name=model.name, description=model.description, manifest=manifest,
                    seed=run_seed, timeout=model.timeout, steps=steps, checks=model.checks)


def _parse_step(number: int, raw: Any, manifest: ClusterManifest, rng: random.Random
                ) -> list[Step]:
    where = f"step {number}"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: a step is a mapping like {{partition: '0,1|2,3'}}")
    extra = {k: raw[k] for k in raw if k not in ("at", "label")}
    actions = [k for k in extra if k in ACTIONS]
    unknown = [k for k in extra if k not in ACTIONS]
    if unknown:
        raise ScenarioError(f"{where}: unknown action {unknown[0]!r} (actions: "
                            f"{', '.join(ACTIONS)})")
    if len(actions) != 1:
        raise ScenarioError(f"{where}: exactly one action per step, got {actions or 'none'}")
    action = actions[0]
    where = f"step {number} ({action})"
    at_s = None
    if "at" in raw:
        try:
            at_s = parse_duration_s(raw["at"])
        except ValueError as exc:
            raise ScenarioError(f"{where}: at: {exc}") from None
    label = raw.get("label")
    try:
        if action == "chaos":
            return _expand_chaos(number, raw[action], manifest, rng, at_s)
        args = _validate_args(action, raw[action], manifest, rng)
    except (ValueError, TypeError, KeyError) as exc:
        message = exc.args[0] if exc.args else str(exc)
        raise ScenarioError(f"{where}: {message}") from None
    return [Step(index=number, action=action, args=args, at_s=at_s, label=label)]


def _node(value: Any, manifest: ClusterManifest, field: str = "node") -> int:
    if isinstance(value, str) and value.startswith("node"):
        value = value[4:]
    try:
        index = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: not a node index: {value!r}") from None
    if not 0 <= index < manifest.nodes:
        raise ValueError(f"{field}: node {index} does not exist (nodes are 0..{manifest.nodes - 1})")
    return index


def _nodes(value: Any, manifest: ClusterManifest, field: str) -> list[int] | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else str(value).split(",")
    return [_node(v, manifest, field) for v in items]


def _validate_args(action: str, args: Any, manifest: ClusterManifest, rng: random.Random) -> Any:
    n = manifest.nodes
    if action in PROCESS_ACTIONS:
        if args == "random":
            return rng.randrange(n)
        return _node(args, manifest)
    if action == "sleep":
        return parse_duration_s(args)
    if action in ("heal", "link_clear"):
        return True
    if action == "log":
        return str(args)
    if action == "partition":
        grudge = grudges.from_spec(n, args, rng)
        return {str(k): sorted(v) for k, v in grudge.items()}
    if action == "wait":
        return _validate_wait(args, manifest)
    if action == "link":
        return _validate_link(args, manifest)
    if action == "skew":
        _require(args, {"node", "offset"})
        return {"node": _node(args["node"], manifest),
                "offset_s": parse_duration_s(args["offset"])}
    if action == "role":
        pos = manifest.consensus == "pos"
        if pos:
            _require(args, {"validator", "role"})
            roles = POS_ROLES
        else:
            _require(args, {"node", "role"})
            roles = POW_ROLES
        if args["role"] not in roles:
            raise ValueError(f"role: unknown {'validator' if pos else 'miner'} role "
                             f"{args['role']!r} (roles: {', '.join(roles)})")
        if pos:
            total = sum(manifest.node_validators(i) for i in range(manifest.nodes))
            validator = _positive_int(args["validator"], "validator")
            if validator >= total:
                raise ValueError(f"validator: v{validator} does not exist (validators are "
                                 f"0..{total - 1})")
            return {"validator": validator, "role": args["role"]}
        return {"node": _node(args["node"], manifest), "role": args["role"]}
    if action == "miner":
        _require(args, {"node"}, optional={"share", "hashrate", "enabled"})
        out: dict[str, Any] = {"node": _node(args["node"], manifest)}
        if "share" in args:
            share = parse_fraction(args["share"])
            if not 0 < share < 1:
                raise ValueError("share: must be between 0% and 100%")
            out["share"] = share
        if "hashrate" in args:
            out["hashrate"] = float(args["hashrate"])
        if "enabled" in args:
            out["enabled"] = bool(args["enabled"])
        return out
    if action == "tx":
        _require(args, {"amount"}, optional={"from", "to", "fee", "node", "conflicts_with",
                                              "wait"})
        return {"from": int(args.get("from", 0)), "to": args.get("to", 1),
                "amount": _positive_int(args["amount"], "amount"),
                "fee": int(args.get("fee", 1)), "node": _node(args.get("node", 0), manifest),
                "conflicts_with": args.get("conflicts_with")}
    if action == "load":
        _require(args, {"tps", "duration"}, optional={"nodes"})
        return {"tps": float(args["tps"]), "duration_s": parse_duration_s(args["duration"]),
                "nodes": _nodes(args.get("nodes"), manifest, "nodes")}
    raise ValueError(f"unknown action {action!r}")


def _validate_wait(args: Any, manifest: ClusterManifest) -> dict:
    if args == "converged":
        return {"converged": 60.0}
    if not isinstance(args, dict):
        raise ValueError("wait takes 'converged' or a mapping like {height: 10}")
    unknown = set(args) - WAIT_KEYS
    if unknown:
        raise ValueError(f"unknown wait field(s) {sorted(unknown)}; use {sorted(WAIT_KEYS)}")
    out: dict[str, Any] = {"timeout": parse_duration_s(args.get("timeout", 120))}
    if "height" in args:
        out["height"] = _positive_int(args["height"], "height")
    if "blocks" in args:
        out["blocks"] = _positive_int(args["blocks"], "blocks")
    if "converged" in args:
        value = args["converged"]
        out["converged"] = 60.0 if value is True else parse_duration_s(value)
        out["timeout"] = out["converged"]
    for key in ("finalized_epoch", "finalized_epochs", "epochs"):
        if key in args:
            if manifest.consensus != "pos":
                raise ValueError(f"{key}: epochs and finality exist on PoS clusters only")
            out[key] = _positive_int(args[key], key)
    if "tx" in args:
        out["tx"] = str(args["tx"])
        out["confirmations"] = _positive_int(args.get("confirmations", 1), "confirmations")
    if "event" in args:
        out["event"] = _event_spec(args["event"])
    out["nodes"] = _nodes(args.get("nodes"), manifest, "nodes")
    if not {"height", "converged", "finalized_epoch", "finalized_epochs", "epochs", "tx",
            "blocks", "event"} & set(out):
        raise ValueError("wait needs one of height, blocks, converged, finalized_epoch(s), "
                         "epochs, tx, event")
    return out


def _event_spec(value: Any) -> dict:
    """`event: {type: block_rejected, contains: "in the future"}` (or just the type): wait until
    a node (one of `nodes`, when given) emits it after the step starts."""
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, dict) or "type" not in value:
        raise ValueError(f"event takes a type or {{type: ..., contains: ...}}, got {value!r}")
    unknown = set(value) - {"type", "contains"}
    if unknown:
        raise ValueError(f"event: unknown field(s) {sorted(unknown)}; use type, contains")
    for key, text in value.items():
        if not isinstance(text, str) or not text:
            raise ValueError(f"event.{key} must be a non-empty string, got {text!r}")
    return dict(value)


def _validate_link(args: Any, manifest: ClusterManifest) -> dict:
    if not isinstance(args, dict):
        raise ValueError("link takes a mapping like {delay: 200ms, loss: 5%}")
    known = {"delay", "jitter", "loss", "duplicate", "reorder", "rate", "from", "to"}
    unknown = set(args) - known
    if unknown:
        raise ValueError(f"unknown link field(s) {sorted(unknown)}; use {sorted(known)}")
    rule: dict[str, Any] = {}
    if "delay" in args:
        rule["delay_ms"] = parse_duration_s(args["delay"], default_unit="ms") * 1000
    if "jitter" in args:
        rule["jitter_ms"] = parse_duration_s(args["jitter"], default_unit="ms") * 1000
    for key in ("loss", "duplicate", "reorder"):
        if key in args:
            rule[key] = parse_fraction(args[key])
    if "rate" in args:
        rule["bandwidth_bps"] = parse_rate_bps(args["rate"])
    if not rule:
        raise ValueError("link needs at least one of delay, jitter, loss, duplicate, reorder, rate")
    return {"rule": rule, "from": _nodes(args.get("from"), manifest, "from"),
            "to": _nodes(args.get("to"), manifest, "to")}


def _expand_chaos(number: int, args: Any, manifest: ClusterManifest, rng: random.Random,
                  at_s: float | None) -> list[Step]:
    """`chaos: {faults: [kill, pause, partition, link], count: 4, interval: 10s, duration: 5s}`:
    `count` rounds, each a seeded random fault on a seeded random target, held for `duration`,
    then cleared, `interval` apart."""
    if not isinstance(args, dict):
        raise ValueError("chaos takes a mapping like {faults: [kill, pause], count: 3}")
    _require(args, {"count"}, optional={"faults", "interval", "duration"})
    faults = args.get("faults", list(CHAOS_FAULTS))
    for fault in faults:
        if fault not in CHAOS_FAULTS:
            raise ValueError(f"faults: unknown chaos fault {fault!r} (use {list(CHAOS_FAULTS)})")
    interval = parse_duration_s(args.get("interval", "10s"))
    duration = parse_duration_s(args.get("duration", "5s"))
    steps: list[Step] = []
    n = manifest.nodes
    for _round in range(_positive_int(args["count"], "count")):
        fault = rng.choice(faults)
        target = rng.randrange(n)
        if fault == "kill":
            begin, end = ("kill", target), ("start", target)
        elif fault == "pause":
            begin, end = ("pause", target), ("resume", target)
        elif fault == "partition":
            grudge = grudges.halves(n, rng)
            begin = ("partition", {str(k): sorted(v) for k, v in grudge.items()})
            end = ("heal", True)
        else:
            rule = {"delay_ms": float(rng.choice([50, 100, 200])),
                    "loss": rng.choice([0.0, 0.05, 0.1])}
            begin = ("link", {"rule": rule, "from": [target], "to": None})
            end = ("link_clear", True)
        steps.append(Step(index=number, action=begin[0], args=begin[1], at_s=at_s,
                          label="chaos"))
        steps.append(Step(index=number, action="sleep", args=duration, label="chaos"))
        steps.append(Step(index=number, action=end[0], args=end[1], label="chaos"))
        steps.append(Step(index=number, action="sleep", args=interval, label="chaos"))
        at_s = None
    return steps


def _require(args: Any, required: set[str], optional: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    if not isinstance(args, dict):
        raise ValueError(f"expects a mapping with {sorted(required)}")
    missing = required - set(args)
    if missing:
        raise ValueError(f"missing field(s) {sorted(missing)}")
    unknown = set(args) - required - set(optional)
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}")


def _positive_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{field}: expected a non-negative integer, got {value!r}")
    return value
