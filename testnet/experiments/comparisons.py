"""Measured points against theory (testnet/experiments/theory.py), one comparison per kind.

Filled in by the theory comparisons; until a kind is known here the page says so.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

COMPARISONS: dict[str, object] = {}


def compare_theory(out: Path, runs: pd.DataFrame, theory: str) -> str:
    if theory not in COMPARISONS:
        return f"<p>No comparison named {html.escape(theory)} is known.</p>"
    return ""
