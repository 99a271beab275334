"""Experiments: one scenario run many times, under several consensuses and over a parameter
grid, every figure reported with n and its interval and held against theory (issue 15).

    from testnet.experiments import compare, sweep
    runs = compare("scenarios/compare-baseline.yaml", consensus=["pow", "pos"], runs=3)
    runs = sweep("scenarios/experiments/stale-rate.yaml",
                 params={"link.delay": ["0ms", "200ms"], "block_interval": [2, 5]}, runs=2)

Both return the runs table (a pandas DataFrame, the same as DIR/runs.csv). The modules:
grid (plan, seeds, parameter aliases), figures (one run's row), stats (intervals), theory
(formulas), comparisons (measurement vs formula), table (CSVs), page (index.html), runner.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pandas as pd

from testnet.experiments.runner import Experiment


def compare(scenario: str | Path, consensus: list[str], runs: int = 3, seed: int = 0,
            report_dir: str | Path | None = None, jobs: int = 1, backend: str = "local",
            **kw: Any) -> pd.DataFrame:
    return sweep(scenario, params={}, consensus=consensus, runs=runs, seed=seed,
                 report_dir=report_dir, jobs=jobs, backend=backend, kind="compare", **kw)


def sweep(scenario: str | Path, params: dict[str, list[Any]], consensus: list[str] | None = None,
          runs: int = 3, seed: int = 0, report_dir: str | Path | None = None, jobs: int = 1,
          backend: str = "local", kind: str = "sweep", **kw: Any) -> pd.DataFrame:
    path = Path(scenario)
    out = Path(report_dir) if report_dir else Path("reports") / f"{kind}-{path.stem}"
    experiment = Experiment(path, out, consensus or ["pow"], params, runs, seed, backend, jobs,
                            kind, **kw)
    table, _passed = asyncio.run(experiment.run())
    return table


__all__ = ["Experiment", "compare", "sweep"]
