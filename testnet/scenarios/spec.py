"""Scenario files: a cluster, a timeline of steps, and checks -- validated whole before anything
runs.

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

`variants` run the same steps again on another cluster, to show two outcomes side by side (the
same 51% attack on a hybrid and on a plain PoW chain): each names the cluster fields it changes
and, when they differ, its own checks; it is validated like the scenario itself.

    variants:
      pow: {cluster: {consensus: pow}, checks: [{tx_reversed: payment}]}

`chaos` steps (Blockade's chaos, Jepsen's generators) are expanded here, with the scenario seed,
into plain steps; so the same file and seed always give the same fault schedule. Every other step
is a verb of the action table (testnet/faults/actions.py), validated against the scenario's
cluster before anything starts.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from testnet.checks.specs import validate_check_spec
from testnet.config.manifest import ClusterManifest, validate_manifest
from testnet.errors import ActionError, CheckSpecError, ManifestError, ScenarioError, UnitError
from testnet.faults import grudge as grudges
from testnet.faults.actions import ActionArgs, all_actions, validate_action
from testnet.faults.targets import PlanTarget, non_negative_int, require
from testnet.scenarios.params import fill_templates, keep_for, resolve_params, strip_only
from testnet.units import parse_duration_s

CHAOS_FAULTS = ("kill", "pause", "partition", "link")


def step_actions() -> tuple[str, ...]:
    """What a step may do: every verb of the action table, and chaos (expanded here)."""
    return (*all_actions(), "chaos")


class ScenarioModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    cluster: dict = Field(default_factory=dict)
    seed: int = 0
    timeout: float = Field(default=600, gt=0)
    steps: list[dict] = Field(default_factory=list)
    checks: list[dict] = Field(default_factory=list)
    variants: dict[str, dict] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    theory: str | None = None


class VariantModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""
    cluster: dict = Field(default_factory=dict)
    checks: list[dict] | None = None


class Step(BaseModel):
    """One normalised step: `action` with its validated arguments, at an optional time offset.
    `args` is their plain JSON form (what schedule.json shows); `call` what the runner performs."""
    model_config = ConfigDict(arbitrary_types_allowed=True)
    index: int
    action: str
    args: Any
    call: ActionArgs = Field(exclude=True)
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
    variant: str | None = None              # this run's variant name (None: the scenario)
    params: dict[str, Any] = Field(default_factory=dict)   # the filled parameter values
    theory: str | None = None               # the comparison an experiment makes (experiments/)
    variants: list[Scenario] = Field(default_factory=list)

    @property
    def label(self) -> str:
        """How reports name this run: the variant, else the consensus."""
        return self.variant or self.manifest.consensus

    def schedule(self) -> list[dict]:
        """The planned fault schedule (deterministic for a file and seed)."""
        return [{"step": s.index, "action": s.action, "args": s.args, "at_s": s.at_s,
                 "label": s.label} for s in self.steps]


def load_scenario(path: Path | str, seed: int | None = None, *,
                  params: dict[str, Any] | None = None,
                  cluster: dict[str, Any] | None = None) -> Scenario:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"scenario {path} is not valid YAML: {exc}") from None
    scenario = parse_scenario(raw, seed=seed, params=params, cluster=cluster)
    scenario.source = str(path)
    return scenario


def parse_scenario(raw: Any, seed: int | None = None, *, params: dict[str, Any] | None = None,
                   cluster: dict[str, Any] | None = None) -> Scenario:
    """`params` fill the file's `${name}` templates (over its declared defaults); `cluster`
    overrides cluster fields (an experiment's consensus and grid point); steps and checks whose
    `only:` leaves out the cluster's consensus are dropped."""
    if not isinstance(raw, dict):
        raise ScenarioError("a scenario is a mapping with name, cluster, steps and checks")
    raw = _specialise(raw, params, cluster)
    try:
        model = ScenarioModel.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ScenarioError(f"{field}: {err['msg']}") from None
    scenario = _parse_model(model, seed)
    for name, variant_raw in model.variants.items():
        try:
            variant = VariantModel.model_validate(variant_raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise ScenarioError(f"variant {name}: {field}: {err['msg']}") from None
        derived = model.model_copy(update={
            "description": variant.description or model.description,
            "cluster": {**model.cluster, **variant.cluster},
            "checks": model.checks if variant.checks is None else variant.checks,
            "variants": {}})
        try:
            run = _parse_model(derived, seed)
        except ScenarioError as exc:
            raise ScenarioError(f"variant {name}: {exc}") from None
        scenario.variants.append(run.model_copy(update={"variant": name}))
    return scenario


def _parse_model(model: ScenarioModel, seed: int | None) -> Scenario:
    run_seed = model.seed if seed is None else seed
    cluster = {"seed": run_seed, **model.cluster}
    if seed is not None:
        cluster["seed"] = seed
    try:
        manifest = validate_manifest(cluster)
    except ManifestError as exc:
        raise ScenarioError(f"cluster: {exc}") from None
    target = PlanTarget(manifest, random.Random(run_seed))
    steps: list[Step] = []
    for number, raw_step in enumerate(model.steps, start=1):
        for step in _parse_step(number, raw_step, target):
            steps.append(step.model_copy(update={"index": len(steps) + 1}))
    labels = {s.label for s in steps if s.action == "tx" and s.label}
    for number, check in enumerate(model.checks, start=1):
        try:
            validate_check_spec(check)
        except CheckSpecError as exc:
            raise ScenarioError(f"check {number}: {exc}") from None
        for key in ("tx_final", "tx_reversed"):
            if key in check:
                ref = check[key]["tx"] if isinstance(check[key], dict) else check[key]
                if ref not in labels:
                    raise ScenarioError(f"check {number} ({key}): no tx step is labelled {ref!r}")
    return Scenario(name=model.name, description=model.description, manifest=manifest,
                    seed=run_seed, timeout=model.timeout, steps=steps, checks=model.checks,
                    params=model.params, theory=model.theory)


def _specialise(raw: dict, params: dict[str, Any] | None,
                cluster: dict[str, Any] | None) -> dict:
    """The raw scenario for one parameter point and consensus (testnet/scenarios/params.py)."""
    declared = raw.get("params") or {}
    if not isinstance(declared, dict):
        raise ScenarioError("params: a mapping of parameter names to default values")
    values = resolve_params(declared, params)
    filled = fill_templates({k: v for k, v in raw.items() if k != "params"}, values)
    filled["params"] = values
    if cluster:
        filled["cluster"] = {**(filled.get("cluster") or {}), **cluster}
    consensus = (filled.get("cluster") or {}).get("consensus", "pow")
    for key in ("steps", "checks"):
        entries = filled.get(key) or []
        if isinstance(entries, list):
            filled[key] = [strip_only(e) for n, e in enumerate(entries, start=1)
                           if keep_for(e, consensus, f"{key[:-1]} {n}")]
    return filled


def _parse_step(number: int, raw: Any, target: PlanTarget) -> list[Step]:
    where = f"step {number}"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: a step is a mapping like {{partition: '0,1|2,3'}}")
    known = step_actions()
    extra = {k: raw[k] for k in raw if k not in ("at", "label")}
    actions = [k for k in extra if k in known]
    unknown = [k for k in extra if k not in known]
    if unknown:
        raise ScenarioError(f"{where}: unknown action {unknown[0]!r} (actions: "
                            f"{', '.join(known)})")
    if len(actions) != 1:
        raise ScenarioError(f"{where}: exactly one action per step, got {actions or 'none'}")
    action = actions[0]
    where = f"step {number} ({action})"
    at_s = None
    if "at" in raw:
        try:
            at_s = parse_duration_s(raw["at"])
        except UnitError as exc:
            raise ScenarioError(f"{where}: at: {exc}") from None
    label = raw.get("label")
    if label is not None and not isinstance(label, str):
        raise ScenarioError(f"{where}: label must be a text, got {label!r}")
    try:
        if action == "chaos":
            return _expand_chaos(number, raw[action], target, at_s)
        return [_step(number, action, raw[action], target, at_s, label)]
    except (ActionError, UnitError, grudges.PartitionSpecError) as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def _step(number: int, action: str, raw: Any, target: PlanTarget, at_s: float | None = None,
          label: str | None = None) -> Step:
    call = validate_action(action, raw, target)
    return Step(index=number, action=action, args=call.plain(), call=call, at_s=at_s,
                label=label)


def _expand_chaos(number: int, args: Any, target: PlanTarget, at_s: float | None) -> list[Step]:
    """`chaos: {faults: [kill, pause, partition, link], count: 4, interval: 10s, duration: 5s}`:
    `count` rounds, each a seeded random fault on a seeded random target, held for `duration`,
    then cleared, `interval` apart."""
    if not isinstance(args, dict):
        raise ActionError("chaos takes a mapping like {faults: [kill, pause], count: 3}")
    require(args, {"count"}, {"faults", "interval", "duration"})
    faults = args.get("faults", list(CHAOS_FAULTS))
    if not isinstance(faults, list) or not faults:
        raise ActionError(f"faults: a list of {list(CHAOS_FAULTS)}, got {faults!r}")
    for fault in faults:
        if fault not in CHAOS_FAULTS:
            raise ActionError(f"faults: unknown chaos fault {fault!r} (use {list(CHAOS_FAULTS)})")
    interval = parse_duration_s(args.get("interval", "10s"))
    duration = parse_duration_s(args.get("duration", "5s"))
    rng, n = target.rng, target.nodes
    steps: list[Step] = []
    for _round in range(non_negative_int(args["count"], "count")):
        fault = rng.choice(faults)
        node = rng.randrange(n)
        begin: tuple[str, Any]
        if fault == "kill":
            begin, end = ("kill", node), ("start", node)
        elif fault == "pause":
            begin, end = ("pause", node), ("resume", node)
        elif fault == "partition":
            grudge = grudges.halves(n, rng)
            begin = ("partition", {"grudge": {str(k): sorted(v) for k, v in grudge.items()}})
            end = ("heal", True)
        else:
            delay = rng.choice([50, 100, 200])
            loss = rng.choice([0.0, 0.05, 0.1])
            begin = ("link", {"delay": f"{delay}ms", "loss": loss, "from": [node]})
            end = ("link_clear", True)
        steps.append(_step(number, begin[0], begin[1], target, at_s, "chaos"))
        steps.append(_step(number, "sleep", duration, target, label="chaos"))
        steps.append(_step(number, end[0], end[1], target, label="chaos"))
        steps.append(_step(number, "sleep", interval, target, label="chaos"))
        at_s = None
    return steps
