"""Scenario files are validated whole before anything starts; errors name the step and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from testnet.scenarios.spec import ScenarioError, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = sorted((ROOT / "scenarios").glob("*.yaml"))


def base(**extra) -> dict:
    return {"name": "t", "cluster": {"nodes": 4}, "steps": [{"wait": {"height": 2}}], **extra}


@pytest.mark.parametrize("path", LIBRARY, ids=[p.stem for p in LIBRARY])
def test_every_library_scenario_is_valid(path):
    scenario = load_scenario(path)
    assert scenario.steps and scenario.checks


@pytest.mark.parametrize("steps, message", [
    ([{"wait": {"height": 2}}, {"partition": "0,1|2,9"}], r"step 2 \(partition\): .*node 9"),
    ([{"kill": 7}], r"step 1 \(kill\): node: node 7 does not exist"),
    ([{"link": {"loss": "150%"}}], r"step 1 \(link\): .*between 0% and 100%"),
    ([{"link": {"delay": "fast"}}], r"step 1 \(link\): not a duration"),
    ([{"wait": {"heigth": 3}}], r"step 1 \(wait\): unknown wait field"),
    ([{"explode": True}], r"step 1: unknown action 'explode'"),
    ([{"kill": 1, "pause": 2}], r"step 1: exactly one action"),
    ([{"role": {"node": 1, "role": "wizard"}}],
     r"step 1 \(role\): role: unknown miner role 'wizard'"),
    ([{"skew": {"node": 1}}], r"step 1 \(skew\): missing field"),
    ([{"wait": {"event": {"contains": "x"}}}], r"step 1 \(wait\): event takes a type"),
    ([{"wait": {"event": {"type": "reorg", "depth": 2}}}], r"event: unknown field"),
    ([{"wait": {"event": {"type": ""}}}], r"event.type must be a non-empty string"),
])
def test_bad_steps_are_named(steps, message):
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(base(steps=steps))


def test_a_wait_for_an_event_takes_a_type_or_a_type_and_text():
    steps = [{"wait": {"event": "reorg", "nodes": [1]}},
             {"wait": {"event": {"type": "block_rejected", "contains": "in the future"},
                       "timeout": "90s"}}]
    first, second = parse_scenario(base(steps=steps)).steps
    assert (first.args["event"], first.args["nodes"]) == ({"type": "reorg"}, [1])
    assert second.args["event"] == {"type": "block_rejected", "contains": "in the future"}
    assert second.args["timeout"] == 90


def test_bad_check_and_unknown_label_are_named():
    with pytest.raises(ScenarioError, match=r"check 1"):
        parse_scenario(base(checks=[{"no_such_check": 1}]))
    with pytest.raises(ScenarioError, match=r"no tx step is labelled 'pay'"):
        parse_scenario(base(checks=[{"tx_final": "pay"}]))


def test_bad_cluster_is_named():
    with pytest.raises(ScenarioError, match=r"cluster: .*nodes"):
        parse_scenario({"name": "t", "cluster": {"nodes": 0}, "steps": []})


def test_same_seed_same_schedule_and_another_seed_differs():
    raw = base(steps=[{"chaos": {"count": 6, "faults": ["kill", "pause", "partition", "link"]}},
                      {"partition": {"halves": True}}])
    first = parse_scenario(raw, seed=11).schedule()
    again = parse_scenario(raw, seed=11).schedule()
    other = parse_scenario(raw, seed=12).schedule()
    assert first == again
    assert first != other


def test_cli_rejects_a_malformed_file_before_starting_anything(tmp_path):
    from click.testing import CliRunner

    from testnet.cli import main
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(base(steps=[{"wait": {"height": 2}}, {"kill": "x"}])))
    result = CliRunner().invoke(main, ["run", str(path), "--report", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "step 2 (kill)" in result.output
    assert not (tmp_path / "r").exists()


def test_a_link_step_gives_the_node_the_rule_it_takes():
    """Units become the node's fields: ms, fractions, and whole bytes per second."""
    (step,) = parse_scenario(base(steps=[{"link": {"delay": "200ms", "loss": "5%",
                                                   "rate": "200kB/s", "from": "0,1"}}])).steps
    assert step.args == {"rule": {"delay_ms": 200.0, "loss": 0.05, "bandwidth_bps": 200_000},
                         "from": [0, 1], "to": None}
    assert isinstance(step.call.rule["bandwidth_bps"], int)
