"""The report's index.html: the verdicts, the fork metrics and the pictures on one page.

Self-contained (inline CSS, no scripts, no external assets) so a report folder can be mailed or
archived as it is; every text taken from the scenario or the history is HTML-escaped. A page that
cannot be rendered still says where the rest of the report is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from testnet.report.names import short
from testnet.report.plots import PlotOutcome, write_plots

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportSummary:
    """What index.html says about the run beyond the history: the scenario and its outcome."""
    name: str
    description: str
    seed: int
    nodes: int
    consensus: str
    passed: bool
    failed_steps: list[dict] = field(default_factory=list)
    variants: tuple[str, ...] = ()      # the scenario's variants, run into variants/<name>/



PAGE_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;"
    "color:#1a202c}table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #cbd5e0;padding:.25em .6em;text-align:left;vertical-align:top}"
    ".valid{color:#2f855a}.invalid{color:#c53030}.unknown{color:#b7791f}"
    ".badge{padding:.1em .5em;border-radius:4px}.PASSED{background:#c6f6d5}"
    ".FAILED{background:#fed7d7}.note{color:#744210}img{max-width:100%}"
    ".scroll{overflow-x:auto;border:1px solid #e2e8f0}.scroll img{max-width:none}")
LINKS = ("report.md", "metrics.json", "checks.json", "history.jsonl", "faults.json",
         "schedule.json")


def _num(value, fmt: str = "{:.2f}", unit: str = "") -> str:
    return "n/a" if value is None else fmt.format(value) + unit


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Cells are already HTML."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _verdict_badge(verdict: str) -> str:
    return f'<span class="{escape(verdict)}">{escape(verdict)}</span>'


def _checks_table(checks: list[dict]) -> str:
    if not checks:
        return "<p>This scenario names no checks.</p>"
    rows = [[escape(str(c.get("name"))),
             _verdict_badge(str(c.get("verdict"))),
             escape(str(c.get("expected") or "valid")), "PASS" if c.get("passed") else "FAIL",
             escape(str(c.get("message", "")))] for c in checks]
    return _table(["check", "verdict", "expected", "result", "message"], rows)


def _metrics_rows(metrics: dict, consensus: str) -> list[list[str]]:
    reorgs, blocks = metrics.get("reorgs") or {}, metrics.get("blocks") or {}
    on_final = ", ".join(blocks.get("final_head_nodes") or [])
    prop, fin = metrics.get("propagation") or {}, metrics.get("finality") or {}
    per_node = "; ".join(f"{n}: {v['count']}" for n, v in (reorgs.get("per_node") or {}).items())
    heals = [f"heal {i + 1}: " + (_num(h["convergence_s"], "{:.3g}", " s")
                                 if h.get("convergence_s") is not None else "did not converge")
             for i, h in enumerate(metrics.get("convergence") or [])]
    rows = [
        ["reorgs", f"{reorgs.get('total', 0)} in total, deepest {reorgs.get('max_depth', 0)}; "
                   f"by depth {reorgs.get('depth_distribution') or {}}; per node: {per_node}"],
        ["stale blocks", f"{blocks.get('stale', 0)} of {blocks.get('seen', 0)} seen "
                         f"(stale rate {_num(blocks.get('stale_rate'), '{:.1%}')}"
                         + (f"; {blocks['after_final_head']} mined on the final head after the "
                            f"last look, not counted" if blocks.get("after_final_head") else "")
                         + ")"],
        ["final head", f"{short(blocks.get('final_head'))} at height "
                       f"{blocks.get('final_height')} on {on_final or 'no node'}"],
        ["time to converge after each heal", "; ".join(heals) or "no heal in this run"],
        ["block propagation to all nodes", f"p50 {_num(prop.get('p50_ms'), '{:.0f}', ' ms')}, "
         f"p95 {_num(prop.get('p95_ms'), '{:.0f}', ' ms')} over {prop.get('blocks', 0)} blocks"
         + (f" (skewed nodes left out: {', '.join(prop['excluded_skewed_nodes'])})"
            if prop.get("excluded_skewed_nodes") else "")],
    ]
    if consensus == "pos" or fin.get("checkpoints"):
        rows.append(["finality lag", f"{fin.get('checkpoints', 0)} checkpoints, "
                     f"{fin.get('finalized_blocks', 0)} blocks finalized; p50 "
                     f"{_num(fin.get('p50_s'), unit=' s')}, "
                     f"p95 {_num(fin.get('p95_s'), unit=' s')}"])
    return [[label, escape(text)] for label, text in rows]


def _miners_table(metrics: dict) -> str:
    miners = metrics.get("miners") or {}
    rows = [[escape(m), str(v["main_chain_blocks"]), str(v["stale_blocks"]),
             _num(v.get("block_share"), "{:.1%}"), _num(v.get("hashrate_share"), "{:.1%}")]
            for m, v in sorted(miners.items())]
    if not rows:
        return ""
    return "<h3>Miners: share of main-chain blocks vs hashrate share</h3>" + _table(
        ["miner", "main-chain blocks", "stale blocks", "block share", "hashrate share"], rows)


def _figures(plots: dict[str, PlotOutcome]) -> str:
    parts = []
    for name, outcome in plots.items():
        if outcome.failed:
            parts.append(f'<p class="note">The {name} plot failed: {escape(outcome.note)}</p>')
            continue
        if not outcome.files:
            parts.append(f'<p class="note">{name}: {escape(outcome.note)}</p>')
            continue
        svg = next((f for f in outcome.files if f.endswith(".svg")), outcome.files[0])
        others = " ".join(f'<a href="{f}">{f}</a>' for f in outcome.files)
        img = f'<img src="{svg}" alt="{name}">'
        if name == "block tree":
            img = f'<div class="scroll">{img}</div>'
        parts.append(f"<figure>{img}<figcaption>{name}: {others}</figcaption></figure>")
    return "\n".join(parts)


def index_html(summary: ReportSummary, checks: list[dict], metrics: dict,
               plots: dict[str, PlotOutcome]) -> str:
    """A self-contained page (inline CSS, no scripts, no external assets); every text taken from
    the scenario or the history is HTML-escaped."""
    result = "PASSED" if summary.passed else "FAILED"
    failed = "".join(f"<li>step {escape(str(f.get('step')))} ({escape(str(f.get('action')))}): "
                     f"{escape(str(f.get('reason')))}</li>" for f in summary.failed_steps)
    links = " | ".join(f'<a href="{name}">{name}</a>' for name in LINKS)
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(summary.name)}: {result}</title><style>{PAGE_CSS}</style></head><body>",
        f'<h1>{escape(summary.name)} <span class="badge {result}">{result}</span></h1>',
        f"<p>{escape(summary.description)}</p>",
        f"<p>seed {escape(str(summary.seed))}; {summary.nodes} nodes; "
        f"{escape(summary.consensus)}</p>", f"<p>{links}</p>", _variant_links(summary),
        "<h2>Checks</h2>", _checks_table(checks),
        f"<h2>Failed steps</h2><ul>{failed}</ul>" if failed else "",
        "<h2>Fork metrics</h2>", _table(["metric", "value"],
                                        _metrics_rows(metrics, summary.consensus)),
        _miners_table(metrics), "<h2>Plots</h2>", _figures(plots), "</body></html>", ""])


def _variant_links(summary: ReportSummary) -> str:
    if not summary.variants:
        return ""
    runs = ", ".join(f'<a href="variants/{escape(v)}/index.html">{escape(v)}</a>'
                     for v in summary.variants)
    return (f'<p>The same steps on other clusters: {runs}; all runs <a href="compare.html">side '
            f"by side</a>.</p>")


def write_report_pages(out: Path, history: list[dict], metrics: dict, checks: list[dict],
                       summary: ReportSummary) -> dict[str, PlotOutcome]:
    """The pictures and index.html. `checks` are checks.json's entries."""
    outcomes = write_plots(out, history, metrics)
    try:
        page = index_html(summary, checks, metrics, outcomes)
    except Exception as exc:  # noqa: BLE001  still say where the rest of the report is
        log.exception("index.html could not be rendered")
        page = (f"<!DOCTYPE html><html><body><h1>{escape(summary.name)}</h1><p>This page could "
                f"not be rendered: {escape(f'{type(exc).__name__}: {exc}')}. See "
                f'<a href="report.md">report.md</a>.</p></body></html>\n')
    (out / "index.html").write_text(page)
    return outcomes
