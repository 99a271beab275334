"""`testnet run SCENARIO`: a scripted experiment with checks and a report."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.table import Table

from testnet.backends.base import BACKENDS, PROCESS_BACKENDS, run_on_backend_loop
from testnet.cli.common import console, fail
from testnet.errors import ScenarioError, TestnetError
from testnet.scenarios.outcome import RunResult, variant_dir, write_variant_comparison
from testnet.scenarios.spec import load_scenario


@click.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=int, default=None, help="Override the scenario's seed.")
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True,
              help="Run the scenario's nodes as local processes or as containers.")
@click.option("--image", default=None,
              help="docker/swarm: the node image (default p2p-testnet:latest).")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Report folder (default: reports/<name>-seed<S>).")
@click.option("--check-only", is_flag=True, help="Validate the file and print the schedule.")
@click.option("--keep", is_flag=True, help="Leave the cluster running after the run.")
@click.option("--dashboard", "dashboard_port", type=click.IntRange(0, 65535), default=None,
              help="Serve the live web dashboard (read-only) on this port during the run "
                   "(0: any free port; the URL is printed).")
def run(scenario_file: Path, seed: int | None, backend: str, image: str | None,
        report_dir: Path | None, check_only: bool, keep: bool, dashboard_port: int | None
        ) -> None:
    """Run a scenario file: faults on a timeline, then checks; exits 1 when a check fails."""
    from testnet.scenarios.runner import ScenarioRunner
    try:
        scenario = load_scenario(scenario_file, seed=seed)
    except ScenarioError as exc:
        click.echo(f"invalid scenario {scenario_file}: {exc}", err=True)
        sys.exit(2)
    if check_only:
        click.echo(json.dumps(scenario.schedule(), indent=2))
        return
    if backend not in PROCESS_BACKENDS and (keep or dashboard_port is not None):
        fail(f"--backend {backend}: the simulated cluster lives only inside the run, so there is "
             "nothing to --keep or to watch live; replay the report with `testnet replay DIR`")
    target = report_dir or Path("reports") / f"{scenario.name}-seed{scenario.seed}"
    console.print(f"Running [bold]{scenario.name}[/bold] (seed {scenario.seed}, "
                  f"{len(scenario.steps)} steps, {scenario.manifest.nodes} nodes, "
                  f"backend {backend}); report in {target}")
    started = time.monotonic()

    def progress(message: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:7.1f}s[/dim] {message}")
    results: list[RunResult] = []
    for run_scenario in (scenario, *scenario.variants):
        folder = target if run_scenario.variant is None else variant_dir(target,
                                                                          run_scenario.variant)
        if run_scenario.variant is not None:
            console.print(f"Running variant [bold]{run_scenario.variant}[/bold] "
                          f"({run_scenario.manifest.consensus}); report in {folder}")
        runner = ScenarioRunner(run_scenario, folder, progress=progress, keep_cluster=keep,
                                backend=backend, dashboard_port=dashboard_port, image=image)
        try:
            result = run_on_backend_loop(backend, runner.run())
        except TestnetError as exc:   # the cluster could not start: there is no run to judge
            fail(str(exc))
        _print_result(result)
        results.append(result)
    if scenario.variants:
        write_variant_comparison(target, results)
        console.print(f"Side by side: {target}/compare.md")
    console.print(f"Report: {target}/report.md")
    failed_runs = [r for r in results if not r.passed]
    for result in failed_runs:
        failed = [c.name for c, ok in zip(result.checks, result.passed_checks) if not ok]
        which = f" ({result.scenario.label})" if scenario.variants else ""
        console.print(f"[red]FAILED[/red]{which}: {', '.join(failed) or 'steps failed'}")
    if failed_runs:
        sys.exit(1)
    console.print("[green]PASSED[/green]")


def _print_result(result: RunResult) -> None:
    scenario = result.scenario
    title = scenario.name + (f" [{scenario.variant}]" if scenario.variant else "")
    table = Table(title=f"{title}: checks")
    for col in ("check", "verdict", "expected", "result", "why"):
        table.add_column(col, overflow="fold")
    for check, ok, spec in zip(result.checks, result.passed_checks, scenario.checks):
        colour = "green" if ok else "red"
        table.add_row(check.name, check.verdict, spec.get("expect", "valid"),
                      f"[{colour}]{'pass' if ok else 'FAIL'}[/{colour}]", check.message)
    console.print(table)
    for failure in result.failed_steps:
        console.print(f"[red]step {failure['step']} ({failure['action']}) failed:[/red] "
                      f"{failure['reason']}")
    summary = result.miner_summary()
    if any("selfish" in line or "withhold" in line for line in summary):
        console.print("\n".join(summary))
