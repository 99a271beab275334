"""The action table is the one place a verb is declared: scenarios, the CLI and the dashboard all
read it. The example in docs/faults-and-scenarios.md is run here, so the one-file claim holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from testnet.config.manifest import ROLES
from testnet.faults import actions, verbs
from testnet.faults.actions import all_actions
from testnet.scenarios.spec import parse_scenario

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def throttle_declared(monkeypatch):
    """The docs' example verb, declared in verbs.py's namespace; the table restored after."""
    text = (ROOT / "docs" / "faults-and-scenarios.md").read_text()
    section = text[text.index("## Adding a fault verb"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.setattr(actions, "ACTIONS", dict(all_actions()))
    exec(compile(code, "docs/faults-and-scenarios.md", "exec"), dict(vars(verbs)))  # noqa: S102
    return all_actions()["throttle"]


def test_the_documented_verb_reaches_scenarios_cli_and_dashboard(throttle_declared):
    from testnet.cli.faults import fault_command
    from testnet.observe.dashboard import actions_offered

    scenario = parse_scenario({"name": "t", "cluster": {"nodes": 3},
                               "steps": [{"throttle": {"node": 2, "rate": "20kB/s"}},
                                         {"throttle": "node1"}]})
    assert [s.args for s in scenario.steps] == [{"node": 2, "rate_bps": 20_000},
                                                {"node": 1, "rate_bps": 50_000}]
    with pytest.raises(Exception, match=r"step 1 \(throttle\): node: node 5 does not exist"):
        parse_scenario({"name": "t", "cluster": {"nodes": 3}, "steps": [{"throttle": 5}]})
    help_text = CliRunner().invoke(fault_command(throttle_declared), ["--help"]).output
    assert "Cap what a node sends" in help_text and "--rate" in help_text
    assert "throttle" in actions_offered()["node"]


def test_every_verb_has_a_summary_and_the_table_names_the_node_roles():
    table = all_actions()
    assert {"partition", "heal", "link", "link_clear", "kill", "stop", "start", "pause",
            "resume", "restart", "skew", "role", "miner", "wait", "sleep", "tx", "load",
            "log"} <= set(table)
    assert all(a.summary.strip() for a in table.values())
    from node.mining_strategy import ROLES as MINER_ROLES
    assert ROLES["pow"] == MINER_ROLES
    assert set(verbs.ALL_ROLES) == set(ROLES["pow"]) | set(ROLES["pos"]) | set(ROLES["dpos"])
