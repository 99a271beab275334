"""The experiment's tables: DIR/runs.csv (+ runs.jsonl), one row per run, and DIR/summary.csv,
per consensus and parameter point the mean, standard deviation, 95% interval and n of each
figure (testnet/experiments/stats.py names the interval's method in each row). The CSVs are
the source of every plot on the page."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from testnet.experiments.figures import COLUMNS, FIGURES
from testnet.experiments.stats import mean_interval

SUMMARY_COLUMNS = ["consensus", "point", "figure", "mean", "std", "ci_low", "ci_high", "n",
                   "ci_method"]


def runs_frame(rows: list[dict], param_names: list[str]) -> pd.DataFrame:
    """The rows in COLUMNS order, the point's parameters after `point`."""
    head = COLUMNS[:3] + param_names + COLUMNS[3:]
    extra = sorted({k for r in rows for k in r} - set(head))
    return pd.DataFrame(rows, columns=head + extra)


def summary_frame(runs: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (consensus, point), group in runs.groupby(["consensus", "point"], sort=False):
        for figure in FIGURES:
            if figure not in group:
                continue
            values = [None if pd.isna(v) else float(v) for v in group[figure]]
            out.append({"consensus": consensus, "point": point, "figure": figure,
                        **mean_interval(values)})
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


def write_tables(out: Path, rows: list[dict], param_names: list[str]
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = runs_frame(rows, param_names)
    runs.to_csv(out / "runs.csv", index=False)
    (out / "runs.jsonl").write_text("".join(json.dumps(r, default=str) + "\n" for r in rows))
    summary = summary_frame(runs)
    summary.to_csv(out / "summary.csv", index=False)
    return runs, summary
