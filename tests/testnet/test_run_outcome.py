"""A run is judged after its history is on disk, and a checker's bug never costs the run: it is
`unknown` with the exception, the other checks keep their verdicts, the report is written."""

from __future__ import annotations

import json

from testnet.checks import specs
from testnet.scenarios.outcome import judge_run
from testnet.scenarios.spec import parse_scenario
from tests.testnet.histories import H


def two_nodes_agree() -> list[dict]:
    h = H().started(t=0).roles(hashrate={"node0": 1, "node1": 1},
                               payout={"node0": "k0", "node1": "k1"}, t=0)
    h.node("node0").at(1).chain("a1", "a2")
    h.at(1.5).node("node1").chain("a1", "a2")
    h.at(3).heal()
    h.chain_check("node0").chain_check("node1")
    return h.at(4).final("node0", "a2").final("node1", "a2").build()


SCENARIO = parse_scenario({
    "name": "checker-bug", "cluster": {"nodes": 2},
    "steps": [{"wait": {"height": 2}}],
    "checks": [{"converged_within": 5}, {"max_reorg_depth": 1}, {"chains_valid": True}]})


def test_a_checker_that_raises_is_unknown_and_the_run_keeps_its_report(tmp_path, monkeypatch):
    def broken_checker(history, **kwargs):
        raise KeyError("depth")   # a bug in a checker, as a real one would surface
    monkeypatch.setitem(specs.CHECKS, "max_reorg_depth", broken_checker)

    result = judge_run(SCENARIO, tmp_path, two_nodes_agree(), failed_steps=[])

    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert len(lines) == len(result.history) and json.loads(lines[0])["ts"] == 0
    for name in ("checks.json", "metrics.json", "report.md", "index.html", "block_tree.svg"):
        assert (tmp_path / name).exists(), name
    verdicts = {c.name: c.verdict for c in result.checks}
    assert verdicts == {"converged_within": "valid", "max_reorg_depth": "unknown",
                        "chains_valid": "valid"}
    broken = next(c for c in result.checks if c.name == "max_reorg_depth")
    assert "KeyError" in broken.message and "depth" in broken.message
    assert not result.passed, "an unknown verdict where valid was expected fails the run"
    written = {c["name"]: c for c in json.loads((tmp_path / "checks.json").read_text())}
    assert written["max_reorg_depth"]["verdict"] == "unknown"
    assert "KeyError" in written["max_reorg_depth"]["evidence"]["exception"]


def test_metrics_that_raise_are_reported_not_fatal(tmp_path, monkeypatch):
    from testnet.scenarios import outcome

    def broken_metrics(history):
        raise ZeroDivisionError("no blocks")
    monkeypatch.setattr(outcome, "fork_metrics", broken_metrics)
    result = judge_run(SCENARIO, tmp_path, two_nodes_agree(), failed_steps=[])
    assert result.metrics == {"error": "ZeroDivisionError: no blocks"}
    assert [c.verdict for c in result.checks] == ["valid", "valid", "valid"]
    assert (tmp_path / "index.html").exists()
