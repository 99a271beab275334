"""The experiment machinery on known data: intervals, the Nakamoto coefficient and stale rate of
hand-built histories, the runs table's schema, the theory formulas against published values,
parameter templates, and what a resumed plan still has to run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from testnet.checks.fork_metrics import fork_metrics
from testnet.config.manifest import validate_manifest
from testnet.errors import ScenarioError
from testnet.experiments import theory
from testnet.experiments.figures import (
    BFT_THRESHOLD,
    COLUMNS,
    POW_THRESHOLD,
    nakamoto_coefficient,
    run_row,
)
from testnet.experiments.grid import apply_point, derive_seed, parse_param, plan_runs
from testnet.experiments.runner import ROW_FILE, Experiment
from testnet.experiments.stats import clopper_pearson, mean_interval, wilson_interval
from testnet.experiments.table import SUMMARY_COLUMNS, write_tables
from testnet.scenarios.spec import parse_scenario
from tests.testnet.histories import H

ROOT = Path(__file__).resolve().parents[2]


# ---- aggregation ------------------------------------------------------------------------------
def test_t_interval_on_known_data():
    ci = mean_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert ci["n"] == 5 and ci["mean"] == 3.0
    assert ci["std"] == pytest.approx(math.sqrt(2.5))
    # t(0.975, 4) = 2.776445; half width = 2.776445 * sqrt(2.5) / sqrt(5)
    assert ci["ci_low"] == pytest.approx(3 - 1.963243, abs=1e-5)
    assert ci["ci_high"] == pytest.approx(3 + 1.963243, abs=1e-5)
    assert ci["ci_method"] == "t-interval"


def test_missing_values_are_left_out_and_n_says_so():
    assert mean_interval([None, 2.0, float("nan")])["n"] == 1
    assert mean_interval([])["mean"] is None


def test_proportion_intervals():
    low, high = clopper_pearson(0, 10)
    assert low == 0 and high == pytest.approx(0.3084971, abs=1e-6)   # 1 - 0.025^(1/10)
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)


# ---- figures of hand-built histories ----------------------------------------------------------
def pow_history() -> list[dict]:
    """Three miners; node2's block b2 loses a race to node0's a2; node0 mines 3 of 5."""
    h = H().started(t=0)
    for n in ("node0", "node1", "node2"):
        h.node(n)
    h.node("node0").at(1).chain("a1", "a2", miner="k0")
    h.node("node2").at(2).block("b2", "a1", miner="k2", main=False)
    h.node("node1").at(3).chain("a3", parent="a2", miner="k1")
    h.node("node0").at(4).chain("a4", parent="a3", miner="k0")
    h.node("node2").at(5).chain("a5", parent="a4", miner="k2")
    for n in ("node0", "node1", "node2"):
        h.final(n, "a5", t=10)
    return h.roles(roles={"node0": "honest", "node1": "honest", "node2": "honest"},
                   hashrate={"node0": 1, "node1": 1, "node2": 1},
                   payout={"node0": "k0", "node1": "k1", "node2": "k2"}, t=10).build()


def test_nakamoto_coefficient_thresholds():
    assert nakamoto_coefficient([3, 1, 1], POW_THRESHOLD) == 1       # 3 of 5 >= 1/2
    assert nakamoto_coefficient([2, 2, 1], POW_THRESHOLD) == 2
    assert nakamoto_coefficient([8, 8, 8, 8], BFT_THRESHOLD) == 2    # 1/4 < 1/3 <= 2/4
    assert nakamoto_coefficient([1] * 21, BFT_THRESHOLD) == 7
    assert nakamoto_coefficient([0, 0], POW_THRESHOLD) is None


def test_row_of_a_hand_built_pow_run():
    history = pow_history()
    manifest = validate_manifest({"nodes": 3, "consensus": "pow"})
    row = run_row(history=history, metrics=fork_metrics(history), manifest=manifest,
                  consensus="pow", scenario="t", point="-", params={}, run=1, seed=5,
                  backend="local", passed=True, cpu_s=10.0, report="r", checks=[])
    assert row["main_chain_blocks"] == 5
    assert row["stale_rate"] == pytest.approx(1 / 6)      # b2 of six decided blocks
    assert row["nakamoto_coefficient"] == 1               # k0 mined a1, a2, a4: 3 of 5
    assert row["cpu_s_per_block"] == 2.0
    assert row["safety_violations"] is None and row["finality_s_p50"] is None
    assert row["duration_s"] == 10
    assert set(COLUMNS) <= set(row)


def test_gamma_is_the_honest_share_building_on_the_attackers_tied_block():
    h = H().started(t=0).node("node0").at(1).chain("a1", miner="k0")
    h.at(2).block("s2", "a1", miner="k3", main=False).block("b2", "a1", miner="k0")  # tie at 2
    h.at(3).block("c3", "b2", miner="k0").block("d3", "s2", miner="k1", main=False)
    h.block("e3", "s2", miner="k2", main=False)
    h.final("node0", "c3", t=10)
    history = h.roles(roles={"node0": "honest", "node1": "honest", "node2": "honest",
                             "node3": "selfish-miner"},
                      hashrate={f"node{i}": 1 for i in range(4)},
                      payout={f"node{i}": f"k{i}" for i in range(4)}, t=10).build()
    manifest = validate_manifest({"nodes": 4, "consensus": "pow"})
    row = run_row(history=history, metrics=fork_metrics(history), manifest=manifest,
                  consensus="pow", scenario="t", point="-", params={}, run=1, seed=5,
                  backend="local", passed=True, cpu_s=None, report="r", checks=[])
    assert row["gamma"] == pytest.approx(2 / 3, abs=1e-3)  # d3 and e3 built on s2, c3 on b2
    assert row["attacker_revenue_share"] == 0.0


# ---- tables -----------------------------------------------------------------------------------
def test_runs_csv_schema_and_summary(tmp_path):
    rows = [{"consensus": c, "scenario": "s", "point": "delay=0ms", "delay": "0ms", "run": r,
             "seed": r, "stale_rate": 0.1 * r, "passed": True}
            for c in ("pow", "pos") for r in (1, 2, 3)]
    runs, summary = write_tables(tmp_path, rows, ["delay"])
    header = (tmp_path / "runs.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["consensus", "scenario", "point", "delay", "run"]
    assert set(COLUMNS) <= set(header)
    assert len(runs) == 6
    assert list(summary.columns) == SUMMARY_COLUMNS
    stale = summary[(summary["figure"] == "stale_rate") & (summary["consensus"] == "pow")]
    assert stale.iloc[0]["n"] == 3 and stale.iloc[0]["mean"] == pytest.approx(0.2)
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 6


# ---- theory against published values ---------------------------------------------------------
def test_eyal_sirer_threshold_is_one_third_at_gamma_zero():
    assert theory.selfish_threshold(0) == pytest.approx(1 / 3)
    assert theory.selfish_revenue(1 / 3, 0) == pytest.approx(1 / 3)
    assert theory.selfish_revenue(0.25, 0) < 0.25 < theory.selfish_revenue(0.4, 0)
    assert theory.selfish_threshold(0.5) == pytest.approx(0.25)
    assert theory.selfish_revenue(0.5, 0) == pytest.approx(1.0)     # a majority takes all


@pytest.mark.parametrize("q,z,expected", [(0.1, 5, 0.0009137), (0.1, 10, 0.0000012),
                                          (0.3, 5, 0.1773523), (0.3, 10, 0.0416605)])
def test_nakamoto_table(q, z, expected):
    """Bitcoin whitepaper, section 11."""
    assert theory.nakamoto_double_spend(q, z) == pytest.approx(expected, abs=5e-7)


@pytest.mark.parametrize("q,needed", [(0.10, 6), (0.15, 9), (0.20, 13), (0.25, 20),
                                      (0.30, 32), (0.35, 58), (0.40, 133)])
def test_rosenfeld_confirmations_for_a_tenth_of_a_percent(q, needed):
    """Rosenfeld 2014, table 2: confirmations needed to keep the risk below 0.1%."""
    assert theory.rosenfeld_double_spend(q, needed) < 0.001
    assert theory.rosenfeld_double_spend(q, needed - 1) >= 0.001


def test_rosenfeld_one_confirmation_is_twice_q():
    assert theory.rosenfeld_double_spend(0.1, 1) == pytest.approx(0.2)


def test_stale_rate_formula():
    assert theory.stale_rate(0, 2) == 0
    assert theory.stale_rate(2, 2) == pytest.approx(1 - math.exp(-1))


# ---- the grid, templates and the plan ---------------------------------------------------------
def test_params_fill_templates_and_only_filters():
    raw = {"name": "t", "params": {"delay": "0ms"}, "cluster": {"nodes": 2},
           "steps": [{"link": {"delay": "${delay}"}}, {"sleep": "1s", "only": ["pos"]}],
           "checks": [{"chains_valid": True}]}
    scenario = parse_scenario(raw, params={"delay": "100ms"})
    assert [s.action for s in scenario.steps] == ["link"]
    assert scenario.params == {"delay": "100ms"}
    with pytest.raises(ScenarioError, match="unknown parameter 'nope'"):
        parse_scenario(raw, params={"nope": 1})
    with pytest.raises(ScenarioError, match="unknown parameter"):
        parse_scenario({**raw, "steps": [{"sleep": "${other}"}]})


def test_apply_point_maps_aliases_and_rejects_unknown_names():
    params, cluster = apply_point({"link.delay": "50ms", "block_interval": 5, "nodes": 8},
                                  {"link.delay": "0ms"})
    assert params == {"link.delay": "50ms"}
    assert cluster == {"block_interval_s": 5, "nodes": 8}
    with pytest.raises(ScenarioError, match="unknown parameter 'warp'"):
        apply_point({"warp": 9}, {})
    with pytest.raises(ScenarioError, match="name of a runs.csv column"):
        apply_point({"blocks": 9}, {"blocks": 1})
    assert parse_param("link.delay=0ms,100ms") == ("link.delay", ["0ms", "100ms"])
    assert parse_param("block_interval=1,2") == ("block_interval", [1, 2])


def test_plan_has_derived_recorded_seeds():
    plan = plan_runs(["pow", "pos"], {"block_interval": [1, 2]}, 3, seed=7)
    assert len(plan) == 12
    assert len({r.seed for r in plan}) == 12
    assert plan[0].seed == derive_seed(7, plan[0].consensus, plan[0].point, plan[0].run)


def test_resume_runs_only_what_has_no_row(tmp_path):
    experiment = Experiment(ROOT / "scenarios/compare-baseline.yaml", tmp_path,
                            ["pow", "pos"], runs=2, seed=3)
    experiment.prepare()
    planned = experiment.planned()
    done = planned[1]
    experiment.run_dir(done).mkdir(parents=True)
    (experiment.run_dir(done) / ROW_FILE).write_text(json.dumps({"passed": True}))
    assert experiment.pending() == [r for r in planned if r != done]
    other = Experiment(ROOT / "scenarios/compare-baseline.yaml", tmp_path, ["pow"], runs=2,
                       seed=3)
    with pytest.raises(ScenarioError, match="another experiment"):
        other.prepare()


def test_every_consensus_fills_the_baseline():
    experiment = Experiment(ROOT / "scenarios/compare-baseline.yaml", Path("unused"),
                            ["pow", "pos", "hybrid", "dpos"], runs=1)
    experiment.validate()


def test_a_step_that_makes_no_sense_for_a_consensus_is_named(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\ncluster: {nodes: 2}\nsteps:\n"
                        "  - wait: {finalized_epochs: 2}\n")
    experiment = Experiment(scenario, tmp_path / "out", ["pos", "pow"], runs=1)
    with pytest.raises(ScenarioError, match="^pow -: step 1 \\(wait\\): finalized_epochs"):
        experiment.validate()


def test_dpos_finality_comes_from_the_irreversible_block():
    h = H("dpos").started(t=0)
    for n in ("node0", "node1"):
        h.node(n)
    h.node("node0").at(1).chain("a1", "a2", "a3")
    h.node("node1").at(1.5).chain("a1", "a2", "a3")
    h.node("node0").at(6).event("lib_advanced", height=2, root="a2")
    h.node("node1").at(7).event("lib_advanced", height=2, root="a2")
    for n in ("node0", "node1"):
        h.final(n, "a3", t=10)
    history = h.build()
    manifest = validate_manifest({"nodes": 2, "consensus": "dpos"})
    row = run_row(history=history, metrics=fork_metrics(history), manifest=manifest,
                  consensus="dpos", scenario="t", point="-", params={}, run=1, seed=1,
                  backend="local", passed=True, cpu_s=None, report="r", checks=[])
    assert row["finality_s_p50"] == 4.0            # a1 born at 1, a2 at 2; LIB at 6
    assert row["safety_violations"] == 0
    assert row["liveness_stall_s"] == 6.0          # run start -> first LIB


def test_a_sweep_page_plots_bands_and_holds_points_against_theory(tmp_path):
    """Two delays x two intervals, two runs each, measured near 1 - exp(-d/T) but for one
    point four times too high: that point is outside, the others inside."""
    from testnet.experiments.page import write_page

    rows = []
    for delay_ms, interval in ((5, 1), (5, 2), (400, 1), (400, 2)):
        expected = theory.stale_rate(delay_ms / 1000, interval)
        factor = 4.0 if (delay_ms, interval) == (400, 2) else 1.0
        for run, wobble in ((1, 0.9), (2, 1.1)):
            rows.append({"consensus": "pow", "scenario": "s",
                         "point": f"link.delay={delay_ms}ms,block_interval={interval}",
                         "link.delay": f"{delay_ms}ms", "block_interval": interval,
                         "run": run, "seed": run, "passed": True, "blocks": 1000,
                         "main_chain_blocks": 900, "stale_rate": expected * factor * wobble,
                         "propagation_ms_p50": delay_ms, "block_interval_s": interval,
                         "report": f"runs/x{run}/index.html"})
    runs, summary = write_tables(tmp_path, rows, ["link.delay", "block_interval"])
    plan = {"kind": "sweep", "scenario": "s.yaml", "runs": 2, "seed": 0,
            "constants": {"watts_per_core": 10, "joules_per_hash": 1.75e-11}}
    write_page(tmp_path, plan, runs, summary, "stale-rate")
    verdict = json.loads((tmp_path / "theory.json").read_text())
    assert (verdict["inside"], verdict["outside"]) == (3, 1)
    outside = [p["point"] for p in verdict["points"] if not p["inside"]]
    assert outside == ["link.delay=400ms,block_interval=2"]
    page = (tmp_path / "index.html").read_text()
    assert "plots/theory-stale-rate.png" in page
    assert "plots/stale_rate-vs-link.delay.png" in page
    assert (tmp_path / "plots" / "stale_rate-vs-block_interval.png").exists()


def test_cpu_tally_keeps_each_process_at_its_largest_total():
    """A killed node's last sample still counts; a pid's counters never go down."""
    import os

    from testnet.observe.process_cpu import CpuTally, process_cpu_s

    assert process_cpu_s(os.getpid()) > 0
    assert process_cpu_s(2 ** 22 + 1) is None          # no such process
    tally = CpuTally()
    tally.add({10: 1.0, 11: 2.0})
    tally.add({10: 3.0})                                # 11 was killed: its 2.0 stays
    tally.add({10: 2.5})
    assert tally.cpu_s == 5.0
