"""A scenario's runs side by side: the scenario and each of its variants (the same steps on
another cluster), one column each -- the verdict of every check, and the facts that tell the runs
apart (testnet/checks/run_facts.py). Written as compare.md and compare.html (self-contained, every
text HTML-escaped) in the scenario's report folder, each column linking to its run's own page."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path

from testnet.report.page import PAGE_CSS


@dataclass(frozen=True)
class RunColumn:
    label: str                 # "hybrid", "pow": the variant, or the scenario's consensus
    consensus: str
    passed: bool
    page: str                  # its index.html, relative to the comparison
    checks: list[dict]         # checks.json entries
    facts: dict[str, str]


def _cells(columns: list[RunColumn]) -> tuple[list[str], list[list[str]]]:
    """Row labels and plain-text cells, one column per run."""
    rows: list[str] = ["consensus", "result"]
    cells = [[c.consensus, "PASSED" if c.passed else "FAILED"] for c in columns]
    names = list(dict.fromkeys(k for c in columns for k in c.facts))
    for name in names:
        rows.append(name)
        for column, out in zip(columns, cells):
            out.append(column.facts.get(name, "-"))
    checks = list(dict.fromkeys(ch["name"] for c in columns for ch in c.checks))
    for name in checks:
        rows.append(f"check {name}")
        for column, out in zip(columns, cells):
            found = [ch for ch in column.checks if ch["name"] == name]
            out.append("; ".join(f"{ch['verdict']} (expected {ch.get('expected') or 'valid'}, "
                                 f"{'pass' if ch.get('passed') else 'FAIL'}): {ch['message']}"
                                 for ch in found) or "-")
    return rows, cells


def comparison_markdown(name: str, description: str, columns: list[RunColumn]) -> str:
    rows, cells = _cells(columns)
    head = "| | " + " | ".join(f"[{c.label}]({c.page})" for c in columns) + " |"
    lines = [f"# {name}: side by side", "", description, "", head,
             "|" + " --- |" * (len(columns) + 1)]
    for i, row in enumerate(rows):
        values = [cells[j][i].replace("|", "/") for j in range(len(columns))]
        lines.append(f"| {row} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def comparison_html(name: str, description: str, columns: list[RunColumn]) -> str:
    rows, cells = _cells(columns)
    head = "".join(f'<th><a href="{escape(c.page)}">{escape(c.label)}</a></th>' for c in columns)
    body = []
    for i, row in enumerate(rows):
        tds = "".join(f"<td>{escape(cells[j][i])}</td>" for j in range(len(columns)))
        body.append(f"<tr><th>{escape(row)}</th>{tds}</tr>")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(name)}: side by side</title><style>{PAGE_CSS}</style></head><body>",
        f"<h1>{escape(name)}: side by side</h1>", f"<p>{escape(description)}</p>",
        f"<table><tr><th></th>{head}</tr>{''.join(body)}</table>", "</body></html>", ""])


def write_comparison(out: Path, name: str, description: str, columns: list[RunColumn]) -> None:
    (out / "compare.md").write_text(comparison_markdown(name, description, columns))
    (out / "compare.html").write_text(comparison_html(name, description, columns))
