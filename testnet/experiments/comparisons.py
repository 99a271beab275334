"""Measured points against theory (testnet/experiments/theory.py), one comparison per kind.

Each comparison takes the runs table, groups it by parameter point, states its bound, says per
point whether the measurement is inside it, writes DIR/theory.json (the verdicts, with n) and a
plot of measurement (mean, 95% interval) next to the formula, and returns the page's section.

Bounds (docs/experiments.md):
- stale-rate: the measured stale rate is within a factor of 2 of 1 - exp(-d/T) (d the measured
  median propagation, T the block interval), or the formula lies inside the 95% Clopper-Pearson
  interval of the pooled stale count (small rates: a factor says nothing about 0 of 60 blocks);
  and the measured rate rises with d/T.
- selfish-mining: |measured revenue share - R(alpha, gamma)| <= 0.03, gamma measured (0 when no
  tie race happened). Eyal and Sirer's bound assumes >= 2000 blocks per point; n says how many.
- double-spend: Rosenfeld's r(q, z) inside the 99% Clopper-Pearson interval of the empirical
  success rate (Nakamoto's value shown beside it).
- finality-epochs: median block-to-finality between 2 and 3 epochs.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from testnet.experiments import theory  # noqa: E402
from testnet.experiments.stats import clopper_pearson, mean_interval  # noqa: E402

SELFISH_TOLERANCE = 0.03
SELFISH_MIN_BLOCKS = 2000
STALE_FACTOR = 2.0


def _num(value: object) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)  # type: ignore[arg-type]


def stale_rate_points(runs: pd.DataFrame) -> list[dict]:
    out = []
    for point, group in runs.groupby("point", sort=False):
        rates = [_num(v) for v in group["stale_rate"]]
        prop = mean_interval([_num(v) for v in group["propagation_ms_p50"]])["mean"]
        interval = _num(group["block_interval_s"].iloc[0])
        if prop is None or not interval:
            continue
        d_s = prop / 1000
        expected = theory.stale_rate(d_s, interval)
        ci = mean_interval(rates)
        decided = [int(b) for b in group["blocks"] if _num(b) is not None]
        stale = sum(round((r or 0) * b) for r, b in zip(rates, decided))
        low, high = clopper_pearson(stale, sum(decided)) if decided else (0.0, 1.0)
        measured = ci["mean"]
        factor_ok = (measured is not None and expected > 0 and
                     expected / STALE_FACTOR <= measured <= expected * STALE_FACTOR)
        out.append({"point": point, "d_over_T": d_s / interval, "d_ms": prop, "T_s": interval,
                     "measured": measured, "ci_low": ci["ci_low"], "ci_high": ci["ci_high"],
                     "n": ci["n"], "blocks": sum(decided), "stale_blocks": stale,
                     "cp_low": low, "cp_high": high, "theory": expected,
                     "inside": bool(factor_ok or low <= expected <= high)})
    out.sort(key=lambda p: p["d_over_T"])
    measured = [p["measured"] for p in out if p["measured"] is not None]
    monotone = all(a <= b for a, b in zip(measured, measured[1:]))
    for p in out:
        p["monotone_overall"] = monotone
    return out


def selfish_points(runs: pd.DataFrame) -> list[dict]:
    out = []
    for point, group in runs.groupby("point", sort=False):
        alpha = _num(group["hashrate_share"].iloc[0]) if "hashrate_share" in group else None
        if alpha is None:
            continue
        ci = mean_interval([_num(v) for v in group["attacker_revenue_share"]])
        gamma = mean_interval([_num(v) for v in group["gamma"]])["mean"] or 0.0
        expected = theory.selfish_revenue(alpha, gamma)
        blocks = int(sum(_num(v) or 0 for v in group["main_chain_blocks"]))
        measured = ci["mean"]
        out.append({"point": point, "alpha": alpha, "gamma": gamma, "measured": measured,
                    "ci_low": ci["ci_low"], "ci_high": ci["ci_high"], "n": ci["n"],
                    "blocks": blocks, "theory": expected,
                    "theory_gamma0": theory.selfish_revenue(alpha, 0.0),
                    "enough_blocks": blocks >= SELFISH_MIN_BLOCKS,
                    "inside": measured is not None
                    and abs(measured - expected) <= SELFISH_TOLERANCE})
    return sorted(out, key=lambda p: p["alpha"])


def double_spend_points(runs: pd.DataFrame) -> list[dict]:
    out = []
    for point, group in runs.groupby("point", sort=False):
        share = "q" if "q" in group else "hashrate_share"   # the attacker's share of hashrate
        if share not in group or "z" not in group:
            continue
        q, z = float(group[share].iloc[0]), int(group["z"].iloc[0])
        wins = [v for v in (_num(x) for x in group["double_spend_succeeded"]) if v is not None]
        low, high = clopper_pearson(int(sum(wins)), len(wins), confidence=0.99)
        behind = _num(group["give_up_behind"].iloc[0]) if "give_up_behind" in group else None
        rosenfeld = theory.rosenfeld_double_spend(q, z)
        expected = (theory.rosenfeld_double_spend_cutoff(q, z, int(behind)) if behind
                    else rosenfeld)
        out.append({"point": point, "q": q, "z": z, "give_up_behind": behind,
                    "rosenfeld": rosenfeld, "measured": sum(wins) / len(wins)
                    if wins else None, "n": len(wins), "cp99_low": low, "cp99_high": high,
                    "theory": expected, "nakamoto": theory.nakamoto_double_spend(q, z),
                    "inside": bool(wins) and low <= expected <= high})
    return out


def finality_points(runs: pd.DataFrame) -> list[dict]:
    out = []
    for point, group in runs.groupby(["consensus", "point"], sort=False):
        epoch = _num(group["epoch_s"].iloc[0]) if "epoch_s" in group else None
        if not epoch:
            continue
        ci = mean_interval([(_num(v) or math.nan) / epoch for v in group["finality_s_p50"]
                            if _num(v) is not None])
        measured = ci["mean"]
        out.append({"point": " ".join(point), "epoch_s": epoch, "measured": measured,
                    "ci_low": ci["ci_low"], "ci_high": ci["ci_high"], "n": ci["n"],
                    "theory": "2-3 epochs",
                    "inside": measured is not None and 2 <= measured <= 3})
    return out


def _plot(path: Path, points: list[dict], x: str, xlabel: str, ylabel: str,
          curve: Callable[[float], float] | None, extra: list[tuple[str, Callable]] = ()
          ) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = [p[x] for p in points]
    means = [p["measured"] for p in points]
    err = [[(m - p["ci_low"]) if p.get("ci_low") is not None else 0 for m, p in
            zip(means, points)],
           [(p["ci_high"] - m) if p.get("ci_high") is not None else 0 for m, p in
            zip(means, points)]]
    ax.errorbar(xs, means, yerr=err, fmt="o", capsize=4, label="measured (mean, 95% CI)")
    if curve is not None and xs:
        lo, hi = min(xs), max(xs)
        grid = [lo + (hi - lo) * i / 100 for i in range(101)] if hi > lo else [lo]
        ax.plot(grid, [curve(g) for g in grid], label="theory")
    for label, line in extra:
        lo, hi = (min(xs), max(xs)) if xs else (0, 1)
        grid = [lo + (hi - lo) * i / 100 for i in range(101)] if hi > lo else [lo]
        ax.plot(grid, [line(g) for g in grid], linestyle="--", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_double_spend(path: Path, points: list[dict]) -> None:
    """Success rate vs attacker share q, one colour per z: measured with its 99% Clopper-Pearson
    interval, Rosenfeld's r(q, z) solid, Nakamoto's approximation dashed."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for z in sorted({p["z"] for p in points}):
        mine = sorted((p for p in points if p["z"] == z and p["measured"] is not None),
                      key=lambda p: p["q"])
        qs = [p["q"] for p in mine]
        bars = ax.errorbar(qs, [p["measured"] for p in mine],
                           yerr=[[p["measured"] - p["cp99_low"] for p in mine],
                                 [p["cp99_high"] - p["measured"] for p in mine]],
                           fmt="o", capsize=4, label=f"z={z} measured (99% CP)")
        if not qs:
            continue
        lo, hi = min(qs + [0.05]), max(qs + [0.45])
        grid = [lo + (hi - lo) * i / 100 for i in range(101)]
        colour = bars[0].get_color()
        ax.plot(grid, [theory.rosenfeld_double_spend(q, z) for q in grid], color=colour,
                label=f"z={z} Rosenfeld")
        ax.plot(grid, [theory.nakamoto_double_spend(q, z) for q in grid], color=colour,
                linestyle="--", label=f"z={z} Nakamoto")
    ax.set_xlabel("attacker hashrate share q")
    ax.set_ylabel("double-spend success rate")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def compare_theory(out: Path, runs: pd.DataFrame, kind: str) -> str:
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    picture = plots / f"theory-{kind}.png"
    if kind == "stale-rate":
        points = stale_rate_points(runs)
        _plot(picture, points, "d_over_T", "d/T (median propagation / block interval)",
              "stale rate", lambda r: 1 - math.exp(-r),
              [("theory x2", lambda r: min(1.0, 2 * (1 - math.exp(-r)))),
               ("theory /2", lambda r: (1 - math.exp(-r)) / 2)])
        bound = ("within a factor of 2 of 1 - exp(-d/T), or the formula inside the 95% "
                 "Clopper-Pearson interval of the pooled stale count; rising with d/T")
    elif kind == "selfish-mining":
        points = selfish_points(runs)
        gamma = points[0]["gamma"] if points else 0.0
        _plot(picture, points, "alpha", "attacker hashrate share alpha",
              "attacker revenue share", lambda a: theory.selfish_revenue(a, gamma),
              [("R(alpha, 0)", lambda a: theory.selfish_revenue(a, 0.0)),
               ("honest (revenue = alpha)", lambda a: a)])
        bound = (f"|measured - R(alpha, gamma)| <= {SELFISH_TOLERANCE}; the bound assumes >= "
                 f"{SELFISH_MIN_BLOCKS} blocks per point (threshold 1/3 at gamma = 0)")
    elif kind == "double-spend":
        points = double_spend_points(runs)
        _plot_double_spend(picture, points)
        bound = ("Rosenfeld's r(q, z) (one pre-mined block; with the race cut off D blocks "
                 "behind, the cut-off value) inside the 99% Clopper-Pearson interval of the rate")
    elif kind == "finality-epochs":
        points = finality_points(runs)
        bound = "median block-to-finality between 2 and 3 epochs"
        if points:
            for i, p in enumerate(points):
                p["index"] = i
            _plot(picture, points, "index", "point", "epochs to finality", None,
                  [("2 epochs", lambda _x: 2.0), ("3 epochs", lambda _x: 3.0)])
    else:
        return f"<p>No comparison named {html.escape(kind)} is known.</p>"
    inside = sum(1 for p in points if p["inside"])
    (out / "theory.json").write_text(json.dumps(
        {"kind": kind, "bound": bound, "inside": inside, "outside": len(points) - inside,
         "points": points}, indent=2, default=str) + "\n")
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(p.get(k)))}</td>" for k in
                                     ("point", "measured", "theory", "n", "inside"))
                   + "</tr>" for p in points)
    image = (f"<img src='plots/{picture.name}'>" if picture.exists() else "")
    return (f"<h2>Theory: {html.escape(kind)}</h2><p>Bound: {html.escape(bound)}. "
            f"{inside} of {len(points)} points inside, {len(points) - inside} outside "
            "(theory.json has every number).</p>"
            f"<table><tr><th>point</th><th>measured</th><th>theory</th><th>n</th>"
            f"<th>inside</th></tr>{rows}</table>{image}")


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
