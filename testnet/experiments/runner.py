"""Runs an experiment's plan: every (consensus, point, run) as a normal scenario run with its own
report, then the tables and the page.

DIR/experiment.json holds the plan (scenario, consensuses, grid, runs, seeds, constants). Each run
writes its report into DIR/runs/<consensus>/<point>/runN/ and, once judged, row.json there: a
resumed experiment (same DIR, same plan) skips every run that has its row.json and reruns the
others from scratch. A plan that differs from the folder's is an error, so two experiments never
mix in one table.

Runs go `jobs` at a time in one event loop (each cluster picks its own ports). A run that cannot
start its cluster gets a row with passed = False and the reason; the experiment goes on. Tables
and the page are written at the end whatever happened; `Experiment.run` returns the runs table
and whether every run passed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from testnet.errors import ScenarioError, TestnetError
from testnet.experiments.figures import JOULES_PER_HASH, WATTS_PER_CORE, run_row
from testnet.experiments.grid import PlannedRun, apply_point, plan_runs
from testnet.experiments.table import write_tables
from testnet.observe.process_cpu import cpu_sampler
from testnet.scenarios.runner import ScenarioRunner
from testnet.scenarios.spec import Scenario, load_scenario

ROW_FILE = "row.json"


@dataclass
class Experiment:
    scenario_file: Path
    out: Path
    consensus: list[str]
    params: dict[str, list[Any]] = field(default_factory=dict)
    runs: int = 3
    seed: int = 0
    backend: str = "local"
    jobs: int = 1
    kind: str = "compare"
    watts_per_core: float = WATTS_PER_CORE
    joules_per_hash: float = JOULES_PER_HASH
    progress: Callable[[str], None] = print

    def plan(self) -> dict:
        return {"kind": self.kind, "scenario": str(self.scenario_file),
                "consensus": self.consensus, "params": self.params, "runs": self.runs,
                "seed": self.seed, "backend": self.backend,
                "constants": {"watts_per_core": self.watts_per_core,
                              "joules_per_hash": self.joules_per_hash},
                "planned": [r.to_json() for r in self.planned()]}

    def planned(self) -> list[PlannedRun]:
        return plan_runs(self.consensus, self.params, self.runs, self.seed)

    def scenario_for(self, planned: PlannedRun) -> Scenario:
        """The scenario file filled for one run; validation errors name the consensus."""
        import yaml
        raw = yaml.safe_load(self.scenario_file.read_text()) or {}
        declared = raw.get("params") or {}
        params, cluster = apply_point(planned.point, declared, raw.get("cluster") or {})
        try:
            return load_scenario(self.scenario_file, seed=planned.seed, params=params,
                                 cluster={"consensus": planned.consensus, **cluster})
        except ScenarioError as exc:
            raise ScenarioError(f"{planned.consensus} {planned.point_label}: {exc}") from None

    def validate(self) -> None:
        """Every run's scenario, before anything starts."""
        for planned in {(r.consensus, r.point_label): r for r in self.planned()}.values():
            self.scenario_for(planned)

    def pending(self) -> list[PlannedRun]:
        """The runs without a row.json yet (what a resume runs)."""
        return [r for r in self.planned() if not (self.run_dir(r) / ROW_FILE).exists()]

    def run_dir(self, planned: PlannedRun) -> Path:
        return self.out / "runs" / planned.folder

    def prepare(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        plan_file = self.out / "experiment.json"
        plan = self.plan()
        if plan_file.exists():
            old = json.loads(plan_file.read_text())
            if {k: v for k, v in old.items() if k != "started"} != plan:
                raise ScenarioError(f"{self.out} holds another experiment (its experiment.json "
                                    "differs); use a new --report folder")
        plan_file.write_text(json.dumps({**plan, "started": time.time()}, indent=2,
                                        default=str) + "\n")

    async def run(self) -> tuple[pd.DataFrame, bool]:
        self.validate()
        self.prepare()
        pending = self.pending()
        total = len(self.planned())
        done = total - len(pending)
        if done:
            self.progress(f"resuming: {done} of {total} runs already finished")
        started = time.monotonic()
        finished = 0
        gate = asyncio.Semaphore(max(1, self.jobs))

        async def one(planned: PlannedRun) -> None:
            nonlocal finished
            async with gate:
                t0 = time.monotonic()
                row = await self.run_one(planned)
            finished += 1
            left = len(pending) - finished
            per_run = (time.monotonic() - started) / finished
            eta = per_run * left / max(1, self.jobs)
            self.progress(f"[{done + finished}/{total}] {planned.consensus} "
                          f"{planned.point_label} run {planned.run} (seed {planned.seed}): "
                          f"{'passed' if row['passed'] else 'FAILED'} in "
                          f"{time.monotonic() - t0:.0f} s; ETA {eta / 60:.1f} min")
        await asyncio.gather(*(one(p) for p in pending))
        return self.finish()

    async def run_one(self, planned: PlannedRun) -> dict:
        folder = self.run_dir(planned)
        scenario = self.scenario_for(planned)
        cpu_file = folder.parent / f"{folder.name}.cpu.json"
        folder.parent.mkdir(parents=True, exist_ok=True)
        runner = ScenarioRunner(scenario, folder, backend=self.backend,
                                companions=[cpu_sampler(cpu_file)])
        base = {"consensus": planned.consensus, "scenario": scenario.name,
                "point": planned.point_label, "params": planned.point, "run": planned.run,
                "seed": planned.seed, "backend": self.backend,
                "report": str(folder.relative_to(self.out) / "index.html")}
        try:
            result = await runner.run()
        except TestnetError as exc:
            row = {**{k: v for k, v in base.items() if k != "params"},
                   **scenario.params, **planned.point,
                   "nodes": scenario.manifest.nodes, "passed": False, "error": str(exc)}
            folder.mkdir(parents=True, exist_ok=True)
            (folder / ROW_FILE).write_text(json.dumps(row, default=str) + "\n")
            return row
        cpu = json.loads(cpu_file.read_text()).get("cpu_s") if cpu_file.exists() else None
        checks = json.loads((folder / "checks.json").read_text())
        row = run_row(history=result.history, metrics=result.metrics,
                      manifest=scenario.manifest, consensus=planned.consensus,
                      scenario=scenario.name, point=planned.point_label,
                      params={**scenario.params, **planned.point},
                      run=planned.run, seed=planned.seed, backend=self.backend,
                      passed=result.passed, cpu_s=cpu, report=base["report"], checks=checks,
                      watts_per_core=self.watts_per_core, joules_per_hash=self.joules_per_hash)
        (folder / ROW_FILE).write_text(json.dumps(row, default=str) + "\n")
        return row

    def rows(self) -> list[dict]:
        return [json.loads((self.run_dir(r) / ROW_FILE).read_text()) for r in self.planned()
                if (self.run_dir(r) / ROW_FILE).exists()]

    def finish(self) -> tuple[pd.DataFrame, bool]:
        """The tables and the page from every row.json present; whether all runs passed."""
        rows = self.rows()
        runs, summary = write_tables(self.out, rows, list(self.params))
        from testnet.experiments.page import write_page
        write_page(self.out, self.plan(), runs, summary, self.theory())
        complete = len(rows) == len(self.planned())
        return runs, complete and all(bool(r.get("passed")) for r in rows)

    def theory(self) -> str | None:
        import yaml
        raw = yaml.safe_load(self.scenario_file.read_text()) or {}
        return raw.get("theory")
