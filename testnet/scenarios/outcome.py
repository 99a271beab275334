"""What a scenario run leaves behind: its result, and the files of its report folder.

`write_history` comes first, before any checker runs, so a run always keeps its record;
`write_report` then writes the schedule, faults, checks and metrics as JSON, report.md, and the
page with its pictures (testnet/report/).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from testnet.checks.fork_metrics import fork_metrics
from testnet.checks.result import CheckResult
from testnet.checks.run_facts import run_facts
from testnet.checks.specs import run_checks
from testnet.report.compare import RunColumn, write_comparison
from testnet.report.page import ReportSummary, write_report_pages
from testnet.report.summary import miner_summary
from testnet.scenarios.spec import Scenario

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    scenario: Scenario
    report_dir: Path
    checks: list[CheckResult]
    passed_checks: list[bool]
    failed_steps: list[dict]
    metrics: dict
    history: list[dict] = field(repr=False, default_factory=list)

    @property
    def passed(self) -> bool:
        return all(self.passed_checks) and not self.failed_steps

    def miner_summary(self) -> list[str]:
        return miner_summary(self.metrics, self.history, self.scenario.manifest.has_mining)


def write_history(out: Path, history: list[dict]) -> None:
    (out / "history.jsonl").write_text(
        "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in history))


def judge_run(scenario: Scenario, out: Path, history: list[dict],
              failed_steps: list[dict]) -> RunResult:
    """Writes the history, then judges it and writes the report. Nothing after the first line
    can lose the run: each checker is guarded (a raising one is `unknown`), so are the metrics
    and the pictures."""
    write_history(out, history)
    checks = run_checks(history, scenario.checks)
    try:
        metrics = fork_metrics(history)
    except Exception as exc:  # noqa: BLE001  like a checker: a metrics bug costs no report
        log.exception("fork metrics failed; the report says so")
        metrics = {"error": f"{type(exc).__name__}: {exc}"}
    result = RunResult(scenario, out, checks, [c.passed for c in checks], failed_steps, metrics,
                       history)
    write_report(result)
    return result


def write_report(result: RunResult) -> None:
    out = result.report_dir
    if not (out / "history.jsonl").exists():
        write_history(out, result.history)
    (out / "schedule.json").write_text(json.dumps(result.scenario.schedule(), indent=2) + "\n")
    faults = [{k: e[k] for k in ("type", "fault", "nodes", "params", "step") if k in e}
              for e in result.history if e.get("source") == "nemesis"]
    (out / "faults.json").write_text(json.dumps(faults, indent=2) + "\n")
    checks = [{**c.to_json(), "passed": p} for c, p in zip(result.checks, result.passed_checks)]
    (out / "checks.json").write_text(json.dumps(checks, indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(result.metrics, indent=2, default=str) + "\n")
    lines = [f"# {result.scenario.name}", "", result.scenario.description, "",
             f"seed {result.scenario.seed}; {result.scenario.manifest.nodes} nodes; "
             f"result: {'PASSED' if result.passed else 'FAILED'}", "",
             "Plots (head heights, block tree, convergence) and this summary as a page: "
             "[index.html](index.html)", "", "## Checks", ""]
    for check, ok in zip(result.checks, result.passed_checks):
        lines.append(f"- {'PASS' if ok else 'FAIL'} {check.name}: {check.verdict} — "
                     f"{check.message}")
    if result.failed_steps:
        lines += ["", "## Failed steps", ""]
        lines += [f"- step {f['step']} ({f['action']}): {f['reason']}" for f in result.failed_steps]
    if result.scenario.variants:
        lines += ["", "## Variants", "", "The same steps on other clusters: "
                  + ", ".join(f"[{v.label}]({VARIANTS_DIR}/{v.label}/report.md)"
                              for v in result.scenario.variants)
                  + "; all runs side by side: [compare.md](compare.md)."]
    lines += result.miner_summary()
    lines += ["", "## Fork metrics", "", "```json",
              json.dumps(result.metrics, indent=2, default=str), "```", ""]
    (out / "report.md").write_text("\n".join(lines))
    summary = ReportSummary(result.scenario.name, result.scenario.description,
                            result.scenario.seed, result.scenario.manifest.nodes,
                            result.scenario.manifest.consensus, result.passed, result.failed_steps,
                            tuple(v.label for v in result.scenario.variants))
    try:  # written last: a plotting error must not cost the files above
        write_report_pages(out, result.history, result.metrics, checks, summary)
    except Exception:  # noqa: BLE001  report/plots.py already isolates each picture; this is a bug
        log.exception("index.html could not be written; the rest of the report stands")


VARIANTS_DIR = "variants"


def variant_dir(out: Path, variant: str) -> Path:
    """Where a variant's run writes its report, inside the scenario's folder."""
    return out / VARIANTS_DIR / variant


def write_variant_comparison(out: Path, results: list[RunResult]) -> None:
    """compare.md and compare.html: the scenario's run and its variants' runs side by side."""
    columns = []
    for result in results:
        scenario = result.scenario
        page = ("index.html" if scenario.variant is None
                else f"{VARIANTS_DIR}/{scenario.variant}/index.html")
        checks = [{**c.to_json(), "passed": p} for c, p in zip(result.checks,
                                                              result.passed_checks)]
        columns.append(RunColumn(scenario.label, scenario.manifest.consensus, result.passed,
                                 page, checks, run_facts(result.history, result.metrics)))
    main = results[0].scenario
    write_comparison(out, main.name, main.description, columns)
