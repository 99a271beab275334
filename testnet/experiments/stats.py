"""Intervals for the summary table: every figure goes out with n and its 95% interval.

Means get Student's t-interval (few runs per point, roughly normal figures); proportions (a
double spend succeeded or not) get Wilson's score interval, or Clopper-Pearson's exact one where
the theory comparison needs a guaranteed coverage. The method's name travels with each number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats as scipy_stats

CONFIDENCE = 0.95
T_METHOD = "t-interval"


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> dict:
    """mean, std (n-1), the t-interval and n of the non-missing `values`."""
    xs = [float(v) for v in values if v is not None and not _nan(v)]
    n = len(xs)
    if n == 0:
        return {"mean": None, "std": None, "ci_low": None, "ci_high": None, "n": 0,
                "ci_method": T_METHOD}
    mean = sum(xs) / n
    if n == 1:
        return {"mean": mean, "std": None, "ci_low": None, "ci_high": None, "n": 1,
                "ci_method": T_METHOD}
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(scipy_stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half, "n": n,
            "ci_method": T_METHOD}


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE
                    ) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    z = float(scipy_stats.norm.ppf((1 + confidence) / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def clopper_pearson(successes: int, n: int, confidence: float = CONFIDENCE
                    ) -> tuple[float, float]:
    """The exact binomial interval (Clopper and Pearson 1934), from the beta quantiles."""
    alpha = 1 - confidence
    low = 0.0 if successes == 0 else float(
        scipy_stats.beta.ppf(alpha / 2, successes, n - successes + 1))
    high = 1.0 if successes == n else float(
        scipy_stats.beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return (low, high)


def _nan(value: float) -> bool:
    return isinstance(value, float) and math.isnan(value)
