"""DIR/index.html: an experiment a student can read.

The side-by-side table (one column per consensus, PoW | PoS | hybrid | DPoS, mean and 95%
interval with n), a bar chart with error bars per figure, for sweeps the figure against each
parameter with its CI band, the theory comparison when the scenario names one
(testnet/experiments/comparisons.py), a plain-language paragraph per figure, and links to every
run's own report. Everything is drawn from runs.csv and summary.csv.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from testnet.experiments.figures import CONFIRM_DEPTH, FIGURES  # noqa: E402

log = logging.getLogger(__name__)
ORDER = ["pow", "pos", "hybrid", "dpos"]
EXPLAIN = {
    "duration_s": "Wall-clock length of the run, from its start to the final observations.",
    "blocks": "Blocks any node accepted, on any branch.",
    "main_chain_blocks": "Blocks on the final main chain (genesis excluded).",
    "stale_rate": "Share of decided blocks that ended off the final main chain.",
    "reorgs": "Head switches to another branch, summed over nodes.",
    "max_reorg_depth": "Deepest reorganisation any node made, in blocks.",
    "confirm_s_p50": f"Median time from submitting a transfer until it is {CONFIRM_DEPTH}-deep "
                     "(PoW) or finalized / irreversible (PoS, hybrid, DPoS) on every up node.",
    "confirm_s_p95": "The 95th percentile of the same confirmation time.",
    "finality_s_p50": "Median time from a block's first acceptance to a finalized checkpoint "
                      "covering it (empty for PoW: it has no finality).",
    "tx_per_s": "Transfers included in the final main chain per second of run.",
    "cpu_s_per_block": "CPU seconds of all node and miner processes (from /proc) per main-chain "
                       "block.",
    "energy_j_per_block_est": "An estimate: CPU seconds x watts per core, plus for PoW the hashes "
                              "x joules per hash of an ASIC-era miner (constants below).",
    "nakamoto_coefficient": "Fewest producers that together reach the threshold: 1/2 of the "
                            "main-chain blocks (PoW), 1/3 of the stake (PoS, hybrid) or of the "
                            "producers (DPoS).",
    "safety_violations": "Conflicting finalized checkpoints or reverted final blocks (should "
                         "be 0; empty for PoW).",
    "liveness_stall_s": "Longest time without progress: without a new main-chain block (PoW), "
                        "without a new finalized checkpoint (PoS, hybrid) or irreversible block "
                        "(DPoS).",
    "attacker_revenue_share": "Share of main-chain blocks that the adversarial roles mined.",
    "double_spend_succeeded": "1 when the scenario's double spend reversed the payment.",
    "slashed_stake": "Stake of validators slashed during the run.",
    "propagation_ms_p50": "Median delay from a block's first acceptance to each other node's.",
    "gamma": "Of the honest blocks built on a tie between an attacker's and an honest block, "
             "the share built on the attacker's block (Eyal-Sirer's gamma).",
}


def cell(row: pd.Series | None) -> str:
    if row is None or pd.isna(row["mean"]):
        return "—"
    text = f"{row['mean']:.4g}"
    if not pd.isna(row["ci_low"]):
        text += f" [{row['ci_low']:.3g}, {row['ci_high']:.3g}]"
    return text + f" <small>n={int(row['n'])}</small>"


def side_by_side(summary: pd.DataFrame, point: str) -> str:
    here = summary[summary["point"] == point]
    cons = [c for c in ORDER if c in set(here["consensus"])] + sorted(
        set(here["consensus"]) - set(ORDER))
    head = "".join(f"<th>{html.escape(c.upper() if c != 'hybrid' else c)}</th>" for c in cons)
    body = []
    for figure in FIGURES:
        cells = []
        for c in cons:
            match = here[(here["consensus"] == c) & (here["figure"] == figure)]
            cells.append(f"<td>{cell(match.iloc[0] if len(match) else None)}</td>")
        body.append(f"<tr><th title='{html.escape(EXPLAIN.get(figure, ''))}'>{figure}</th>"
                    f"{''.join(cells)}</tr>")
    return f"<table><tr><th>figure</th>{head}</tr>{''.join(body)}</table>"


def bar_chart(summary: pd.DataFrame, figure: str, path: Path) -> bool:
    data = summary[(summary["figure"] == figure) & summary["mean"].notna()]
    if data.empty:
        return False
    labels = [f"{c}\n{p}" if p != "-" else c for c, p in zip(data["consensus"], data["point"])]
    err = [(m - lo) if pd.notna(lo) else 0 for m, lo in zip(data["mean"], data["ci_low"])]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(labels, data["mean"], yerr=err, capsize=4, color="#4878a8")
    ax.set_title(f"{figure} (mean, 95% CI)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def sweep_plot(runs: pd.DataFrame, summary: pd.DataFrame, param: str, figure: str,
               path: Path) -> bool:
    """figure vs one parameter (other parameters as separate lines), with the CI band."""
    if param not in runs or figure not in runs:
        return False
    point_values = runs.drop_duplicates("point").set_index("point")
    data = summary[summary["figure"] == figure].copy()
    if data["mean"].notna().sum() < 2:
        return False
    data["x"] = [point_values.loc[p, param] for p in data["point"]]
    others = [c for c in point_values.columns if c in runs.columns and c != param
              and c in _params(runs)]
    data["line"] = [",".join(f"{o}={point_values.loc[p, o]}" for o in others) or c
                    for p, c in zip(data["point"], data["consensus"])]
    fig, ax = plt.subplots(figsize=(5, 3))
    for (consensus, line), group in data.groupby(["consensus", "line"]):
        group = group.sort_values("x", key=_sort_key)
        xs = [str(x) for x in group["x"]]
        ax.plot(xs, group["mean"], marker="o", label=f"{consensus} {line}")
        if group["ci_low"].notna().any():
            ax.fill_between(xs, group["ci_low"].astype(float), group["ci_high"].astype(float),
                            alpha=0.2)
    ax.set_xlabel(param)
    ax.set_title(f"{figure} vs {param} (mean, 95% CI band)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _params(runs: pd.DataFrame) -> list[str]:
    cols = list(runs.columns)
    return cols[cols.index("point") + 1: cols.index("run")]


def _sort_key(series: pd.Series) -> pd.Series:
    return series.map(lambda v: float("".join(ch for ch in str(v) if ch.isdigit() or ch == ".")
                                      or 0))


def write_page(out: Path, plan: dict, runs: pd.DataFrame, summary: pd.DataFrame,
               theory: str | None) -> None:
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    parts = [f"<h1>{html.escape(plan['kind'])}: {html.escape(plan['scenario'])}</h1>",
             f"<p>{len(runs)} runs of {plan['runs']} per consensus and point; seeds derived "
             f"from {plan['seed']} (experiment.json). Intervals are 95% t-intervals of the "
             "mean over runs; n is the number of runs with the figure. Source tables: "
             "<a href='runs.csv'>runs.csv</a>, <a href='summary.csv'>summary.csv</a>.</p>",
             f"<p>Energy constants: {plan['constants']['watts_per_core']} W per core, "
             f"{plan['constants']['joules_per_hash']} J per hash.</p>"]
    if theory:
        parts.append(theory_section(out, runs, theory))
    for point in dict.fromkeys(summary["point"]):
        parts.append(f"<h2>Side by side ({html.escape(str(point))})</h2>")
        parts.append(side_by_side(summary, point))
    parts.append("<h2>Figures</h2>")
    for figure in FIGURES:
        images = []
        try:
            if bar_chart(summary, figure, plots / f"{figure}.png"):
                images.append(f"plots/{figure}.png")
            for param in _params(runs):
                name = f"{figure}-vs-{param}.png"
                if sweep_plot(runs, summary, param, figure, plots / name):
                    images.append(f"plots/{name}")
        except Exception:  # noqa: BLE001  one bad picture must not cost the page
            log.exception("plot of %s failed", figure)
        if images:
            parts.append(f"<h3>{figure}</h3><p>{html.escape(EXPLAIN.get(figure, ''))}</p>"
                         + "".join(f"<img src='{i}'>" for i in images))
    parts.append("<h2>Runs</h2><ul>" + "".join(
        f"<li><a href='runs/{html.escape(str(r['report']).removeprefix('runs/'))}'>"
        f"{html.escape(str(r['consensus']))} {html.escape(str(r['point']))} run {r['run']}</a>"
        f" (seed {r['seed']}, {'passed' if r['passed'] else 'FAILED'})</li>"
        for _, r in runs.iterrows()) + "</ul>")
    style = ("<style>body{font-family:sans-serif;max-width:70em;margin:auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px}"
             "img{max-width:48%}</style>")
    (out / "index.html").write_text(f"<!doctype html><html><head><meta charset='utf-8'>"
                                    f"<title>experiment</title>{style}</head><body>"
                                    + "\n".join(parts) + "</body></html>\n")


def theory_section(out: Path, runs: pd.DataFrame, theory: str) -> str:
    from testnet.experiments.comparisons import compare_theory
    try:
        return compare_theory(out, runs, theory)
    except Exception as exc:  # noqa: BLE001  the measurement stands without its comparison
        log.exception("theory comparison %s failed", theory)
        return f"<p>theory comparison {html.escape(theory)} failed: {html.escape(str(exc))}</p>"
