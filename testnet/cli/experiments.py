"""`testnet compare` and `testnet sweep`: a scenario run many times per consensus and grid point,
with tables, intervals, plots and theory (testnet/experiments/). Exit 1 when any run's checks
fail (the tables are written anyway), 2 when the scenario or the grid is invalid."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from testnet.backends.base import run_on_backend_loop
from testnet.cli.common import console
from testnet.errors import ScenarioError

CONSENSUSES = ("pow", "pos", "hybrid", "dpos")


def _consensus_list(text: str) -> list[str]:
    names = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in names if c not in CONSENSUSES]
    if bad or not names:
        raise click.BadParameter(f"{bad or text!r}: use a comma list of {', '.join(CONSENSUSES)}")
    return names


def _options(f: Any) -> Any:
    for option in reversed([
        click.argument("scenario_file", type=click.Path(dir_okay=False, exists=True,
                                                        path_type=Path)),
        click.option("--runs", type=click.IntRange(1), default=3, show_default=True,
                     help="Runs per consensus (and parameter point)."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="The experiment seed; each run's seed is derived from it."),
        click.option("--backend", type=click.Choice(["local", "docker", "sim"]), default="local",
                     show_default=True),
        click.option("--report", "report_dir", type=click.Path(file_okay=False,
                                                               path_type=Path),
                     default=None, help="Experiment folder (rerun it to resume)."),
        click.option("--jobs", type=click.IntRange(1), default=1, show_default=True,
                     help="Runs at a time."),
        click.option("--watts-per-core", type=float, default=None,
                     help="Energy estimate: W per busy core (default 10)."),
        click.option("--joules-per-hash", type=float, default=None,
                     help="Energy estimate: J per hash (default 1.75e-11, ASIC-era)."),
    ]):
        f = option(f)
    return f


def _execute(kind: str, scenario_file: Path, consensus: list[str], params: dict,
             runs: int, seed: int, backend: str, report_dir: Path | None, jobs: int,
             watts: float | None, joules: float | None) -> None:
    from testnet.experiments.runner import Experiment
    out = report_dir or Path("reports") / f"{kind}-{scenario_file.stem}"
    constants = {k: v for k, v in (("watts_per_core", watts), ("joules_per_hash", joules))
                 if v is not None}
    started = time.monotonic()
    experiment = Experiment(scenario_file, out, consensus, params, runs, seed, backend, jobs,
                            kind, progress=lambda m: console.print(
                                f"[dim]{time.monotonic() - started:7.1f}s[/dim] {m}"),
                            **constants)
    total = len(experiment.planned())
    console.print(f"{kind} [bold]{scenario_file}[/bold]: {total} runs "
                  f"({', '.join(consensus)}; {runs} each"
                  + (f"; grid {params}" if params else "") + f"); folder {out}")
    try:
        outcome = run_on_backend_loop(backend, experiment.run())
        assert outcome is not None, "an experiment runs to its end (no virtual deadline)"
        table, passed = outcome
    except ScenarioError as exc:
        click.echo(f"invalid experiment: {exc}", err=True)
        sys.exit(2)
    console.print(f"Tables: {out}/runs.csv ({len(table)} rows), {out}/summary.csv; "
                  f"page: {out}/index.html")
    if not passed:
        console.print("[red]FAILED[/red]: some runs failed their checks (see runs.csv, passed)")
        sys.exit(1)
    console.print("[green]PASSED[/green]")


@click.command()
@_options
@click.option("--consensus", "consensus", default="pow,pos", show_default=True,
              help="Comma list of pow, pos, hybrid, dpos.")
def compare(scenario_file: Path, runs: int, seed: int, backend: str, report_dir: Path | None,
            jobs: int, watts_per_core: float | None, joules_per_hash: float | None,
            consensus: str) -> None:
    """Run SCENARIO_FILE RUNS times per consensus and compare the figures side by side."""
    _execute("compare", scenario_file, _consensus_list(consensus), {}, runs, seed, backend,
             report_dir, jobs, watts_per_core, joules_per_hash)


@click.command()
@_options
@click.option("--param", "param_specs", multiple=True, required=True,
              help="NAME=V1,V2,... (repeatable; the grid is their product).")
@click.option("--consensus", "consensus", default="pow", show_default=True,
              help="Comma list of pow, pos, hybrid, dpos.")
def sweep(scenario_file: Path, runs: int, seed: int, backend: str, report_dir: Path | None,
          jobs: int, watts_per_core: float | None, joules_per_hash: float | None,
          param_specs: tuple[str, ...], consensus: str) -> None:
    """Run SCENARIO_FILE over a parameter grid, RUNS times per point."""
    from testnet.experiments.grid import parse_param
    try:
        params = dict(parse_param(p) for p in param_specs)
    except ScenarioError as exc:
        raise click.BadParameter(str(exc)) from None
    _execute("sweep", scenario_file, _consensus_list(consensus), params, runs, seed, backend,
             report_dir, jobs, watts_per_core, joules_per_hash)
