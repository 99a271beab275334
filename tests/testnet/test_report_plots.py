"""Report pictures and index.html from a hand-built history whose tree is known block by block."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from testnet.checks.fork_metrics import fork_metrics
from testnet.checks.specs import check_from_spec
from testnet.report import plots as report_plots
from testnet.report.block_tree_svg import block_tree_layout, block_tree_svg
from testnet.report.page import ReportSummary, write_report_pages
from testnet.report.plots import INSTALL_HINT, fault_intervals, height_steps
from testnet.scenarios.outcome import RunResult, write_report
from testnet.scenarios.spec import load_scenario
from tests.testnet.histories import H

SVG = "{http://www.w3.org/2000/svg}"
ROOT = Path(__file__).resolve().parents[2]
MAIN = ["a1", "a2", "c3", "c4", "c5", "c6"]
STALE = ["b3", "b4"]


def split_and_heal() -> H:
    """node0 and node1 share a1 and a2; split at 3, node0 mines b3 b4 and node1 c3 c4 c5; after
    the heal at 8 node0 reorgs 2 deep (b4 -> c5) onto node1's longer branch and node1 mines c6."""
    h = H().started(seed=7, name="split", t=0).roles(
        hashrate={"node0": 1, "node1": 1}, payout={"node0": "k0", "node1": "k1"}, t=0)
    h.node("node0").block("a1", "g", miner="k0", t=1.0)
    h.node("node1").block("a1", "g", miner="k0", peer="p", t=1.1)
    h.node("node1").block("a2", "a1", miner="k1", t=2.0)
    h.node("node0").block("a2", "a1", miner="k1", peer="p", t=2.1)
    h.partition(["node0"], ["node1"], t=3)
    h.node("node0").at(4).chain("b3", "b4", parent="a2", miner="k0")
    h.node("node1").at(4).chain("c3", "c4", "c5", parent="a2", miner="k1")
    h.heal(t=8)
    (h.node("node0").at(8.5).block("c3", "a2", miner="k1", peer="p", main=False)
     .block("c4", "c3", miner="k1", peer="p", main=False)
     .block("c5", "c4", miner="k1", peer="p").reorg("b4", "c5", 2, common="a2"))
    (h.node("node1").at(8.6).block("b3", "a2", miner="k0", peer="p", main=False)
     .block("b4", "b3", miner="k0", peer="p", main=False))
    h.node("node1").block("c6", "c5", miner="k1", t=9.0)
    h.node("node0").block("c6", "c5", miner="k1", peer="p", t=9.2)
    return h.at(10).final("node0", "c6").final("node1", "c6")


CHECK_SPECS = [{"converged_within": 5}, {"max_reorg_depth": 1}, {"chains_valid": True}]
SUMMARY = ReportSummary(name="split <&> heal", description="two halves <script>x()</script>",
                        seed=7, nodes=2, consensus="pow", passed=False,
                        failed_steps=[{"step": 3, "action": "wait", "reason": "timeout <60s>"}])


def checks_json(history: list[dict]) -> list[dict]:
    results = [check_from_spec(history, spec) for spec in CHECK_SPECS]
    return [{**r.to_json(), "passed": r.passed} for r in results]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    history = split_and_heal().build()
    write_report_pages(out, history, fork_metrics(history), checks_json(history), SUMMARY)
    return out


def blocks_in(svg_text: str) -> dict[str, ET.Element]:
    tree = ET.fromstring(svg_text)   # also proves the SVG is well-formed XML
    return {g.get("data-hash"): g for g in tree.iter(f"{SVG}g")
            if "block" in (g.get("class") or "").split()}


class Page(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag == "a":
            self.links.append(dict(attrs)["href"])


def test_every_picture_and_the_page_are_written(report):
    for name in ("heights.png", "heights.svg", "block_tree.svg", "convergence.png",
                 "convergence.svg", "index.html"):
        assert (report / name).stat().st_size > 0, name
    assert (report / "heights.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_block_tree_holds_exactly_the_run_blocks_with_stale_ones_marked(report):
    blocks = blocks_in((report / "block_tree.svg").read_text())
    assert sorted(blocks) == sorted(MAIN + STALE)
    for hash_, g in blocks.items():
        assert g.get("class") == f"block {'stale' if hash_ in STALE else 'main'}", hash_
        assert g.find(f"{SVG}title").text.startswith(hash_)
    assert blocks["b3"].get("data-parent") == "a2" and blocks["c6"].get("data-height") == "6"
    assert "mined by node1" in blocks["c5"].find(f"{SVG}title").text


def test_block_tree_lanes_and_labels():
    history = split_and_heal().build()
    lanes = {b.hash: b.lane for b in block_tree_layout(history)}
    assert {h: lanes[h] for h in MAIN} == dict.fromkeys(MAIN, 0)
    assert lanes["b3"] == lanes["b4"] == 1
    tree = ET.fromstring(block_tree_svg(history))
    labels = [t.text for t in tree.iter(f"{SVG}text") if t.get("class") == "fork-label"]
    assert labels == ["b3"]   # only the first block of the stale branch is labelled


def test_block_tree_marks_each_node_final_head(report):
    tree = ET.fromstring((report / "block_tree.svg").read_text())
    heads = {g.get("data-hash"): g.get("data-nodes") for g in tree.iter(f"{SVG}g")
             if g.get("class") == "head"}
    assert heads == {"c6": "node0 node1"}


def test_block_tree_heads_of_split_and_down_nodes():
    h = (H().node("node0").node("node1").node("node2").at(1).chain("a1")
         .node("node0").at(1).chain("a1", "a2").node("node1").at(1).chain("b1")
         .final("node0", "a2").final("node1", "b1").final("node2", None, up=False))
    tree = ET.fromstring(block_tree_svg(h.build()))
    heads = {g.get("data-hash"): g.get("data-nodes") for g in tree.iter(f"{SVG}g")
             if g.get("class") == "head"}
    assert heads == {"a2": "node0", "b1": "node1", "a1": "node2 (down)"}


def test_pos_checkpoints_are_marked(tmp_path):
    h = (H().node("node0").at(1).chain("a1", "a2", "a3", "a4")
         .justified(1, "a2", t=6).finalized(1, "a2", t=8).justified(2, "a4", t=9)
         .final("node0", "a4"))
    history = h.build()
    tree = ET.fromstring(block_tree_svg(history))
    marks = {(g.get("class"), g.get("data-hash"), g.get("data-epoch"))
             for g in tree.iter(f"{SVG}g") if "checkpoint" in (g.get("class") or "")}
    assert marks == {("checkpoint justified", "a2", "1"), ("checkpoint finalized", "a2", "1"),
                     ("checkpoint justified", "a4", "2")}
    outcomes = report_plots.write_plots(tmp_path, history, fork_metrics(history))
    assert outcomes["heights"].files == ["heights.png", "heights.svg"]
    assert outcomes["convergence"].files  # finality lag, though no heal


def test_index_shows_checks_metrics_and_pictures(report):
    text = (report / "index.html").read_text()
    page = Page(text)
    assert page.images == ["heights.svg", "block_tree.svg", "convergence.svg"]
    assert {"report.md", "metrics.json", "history.jsonl", "heights.png"} <= set(page.links)
    rows = text.split("<h2>Checks</h2>")[1].split("</table>")[0]
    for name, verdict in (("converged_within", "valid"), ("max_reorg_depth", "invalid"),
                          ("chains_valid", "unknown")):
        assert f"<td>{name}</td><td><span class=\"{verdict}\">{verdict}</span></td>" in rows
    assert "FAILED" in text and "seed 7" in text
    assert "2 of 8 seen (stale rate 25.0%)" in text
    assert "1 in total, deepest 2" in text
    assert "heal 1: 0.5 s" in text   # node0 takes c5 at 8.5; node1 has had it since 6


def test_index_escapes_text_from_the_scenario_and_history(report):
    text = (report / "index.html").read_text()
    assert "<script>" not in text and "&lt;script&gt;x()&lt;/script&gt;" in text
    assert "split &lt;&amp;&gt; heal" in text and "timeout &lt;60s&gt;" in text


def test_heights_are_on_the_host_clock():
    # node1's clock runs 30 s ahead; the collector's rx_ts says when the host saw its events.
    history = split_and_heal().build()
    for e in history:
        if e.get("node") == "node1":
            e["rx_ts"], e["ts"] = e["ts"], e["ts"] + 30
    steps = height_steps(history)
    assert list(steps) == ["node0", "node1"]
    assert steps["node1"][:3] == [(0.0, 0), (1.1, 1), (2.0, 2)]
    assert steps["node0"][-1] == (10.0, 6)   # held to the end of the run


def test_fault_intervals_pair_each_fault_with_what_ends_it():
    h = (H().node("node0").at(0).partition(["node0"], ["node1"], t=1).heal(t=3)
         .nemesis("fault_applied", "kill", ["node1"], t=4)
         .nemesis("fault_cleared", "start", ["node1"], t=6)
         .nemesis("fault_applied", "skew", ["node0"], t=5, offset_s=30)
         .nemesis("fault_applied", "restart", ["node0"], t=7)
         .nemesis("fault_applied", "pause", ["node1"], t=8)
         .event("head_changed", t=12, head="g", height=0, previous="g"))
    spans = [(s.kind, s.label, s.start, s.end, s.instant) for s in fault_intervals(h.build())]
    assert spans == [("partition", "partition", 1, 3, False),
                     ("kill", "kill node1", 4, 6, False),
                     ("skew", "skew node0 +30s", 5, 12, False),   # never cleared: to the end
                     ("restart", "restart node0", 7, 7, True),
                     ("pause", "pause node1", 8, 12, False)]


@pytest.mark.parametrize("history", [[], H().node("node0").at(2).final("node0", "g").build()],
                         ids=["empty", "no-blocks"])
def test_a_history_without_blocks_still_gets_a_page(tmp_path, history):
    write_report_pages(tmp_path, history, fork_metrics(history), [], SUMMARY)
    text = (tmp_path / "index.html").read_text()
    assert "nothing to plot" in text and "names no checks" in text
    assert not (tmp_path / "convergence.png").exists()
    assert blocks_in((tmp_path / "block_tree.svg").read_text()) == {}


def test_without_matplotlib_the_page_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # `import matplotlib` now fails
    history = split_and_heal().build()
    write_report_pages(tmp_path, history, fork_metrics(history), [], SUMMARY)
    text = (tmp_path / "index.html").read_text()
    assert INSTALL_HINT.replace("`", "") in text.replace("`", "")
    assert not list(tmp_path.glob("*.png"))
    assert (tmp_path / "block_tree.svg").exists()   # hand-written: no matplotlib needed


def test_a_failing_plot_costs_nothing_else(tmp_path, monkeypatch):
    def boom(*args):
        raise RuntimeError("no <luck>")
    monkeypatch.setattr(report_plots, "write_heights", boom)
    history = split_and_heal().build()
    scenario = load_scenario(ROOT / "scenarios" / "partition-heal-pow.yaml")
    checks = [check_from_spec(history, spec) for spec in CHECK_SPECS]
    result = RunResult(scenario, tmp_path, checks, [c.passed for c in checks], [],
                       fork_metrics(history), history)
    write_report(result)
    for name in ("history.jsonl", "schedule.json", "faults.json", "checks.json", "metrics.json",
                 "report.md", "block_tree.svg", "convergence.png", "index.html"):
        assert (tmp_path / name).exists(), name
    assert "[index.html](index.html)" in (tmp_path / "report.md").read_text()
    text = (tmp_path / "index.html").read_text()
    assert "The heights plot failed: RuntimeError: no &lt;luck&gt;" in text
    assert "heights.svg" not in Page(text).images


def test_a_thousand_blocks_stay_a_small_svg():
    h = H().node("node0").at(1)
    h.chain(*[f"m{i}" for i in range(1, 901)])
    for fork in range(10, 900, 9):   # 99 one-block forks and a few longer ones
        h.block(f"s{fork}", f"m{fork}", main=False)
    h.chain("t1", "t2", parent="m500", main=False)
    h.final("node0", "m900")
    svg = block_tree_svg(h.build())
    blocks = blocks_in(svg)
    assert len(blocks) == 900 + 99 + 2
    assert sum(g.get("class") == "block stale" for g in blocks.values()) == 101
    assert len(svg) < 400_000
