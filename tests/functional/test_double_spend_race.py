"""The double-spend experiment's scenario as a user runs it: the attacker pre-mines exactly one
block holding the theft while the honest miners wait, the merchant is paid, and the race ends in
a decision that the final chains bear out (a published branch reversed the payment; an attacker
who gave up left it in place).

It runs on the simulation backend: there the attacker's publication follows its decision with no
time in between, as the model has it. (On real processes a loaded machine can let an honest block
in between, and then a published branch may lose; the experiment counts what the chains say.)"""

from __future__ import annotations

import json

import pytest
import yaml

from testnet.experiments.figures import double_spend_outcome
from testnet.history.readers import get_roles, observations
from tests.functional.test_scenarios import ROOT, run_scenario


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("seed", [1, 7], ids=["attacker-gives-up", "attacker-publishes"])
def test_a_double_spend_race_is_decided_and_the_chains_bear_it_out(seed, tmp_path):
    raw = yaml.safe_load((ROOT / "scenarios" / "experiments" / "double-spend.yaml").read_text())
    raw["params"]["give_up_behind"] = 2          # a short race: one confirmation, two behind
    path = tmp_path / "double-spend.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = run_scenario(path, tmp_path / "report", "--backend", "sim", "--seed", str(seed))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    history = [json.loads(line) for line in
               (tmp_path / "report" / "history.jsonl").read_text().splitlines()]
    started, = observations(history, "race_started")
    finished, = observations(history, "race_finished")
    assert started["premined"] == 1, "the attacker starts with one pre-mined block"
    outcome = double_spend_outcome(history, get_roles(history), [])
    assert finished["decision"] == ("gave_up" if seed == 1 else "published")   # one seed, one race
    if finished["decision"] == "gave_up":
        assert finished["honest_blocks"] - finished["attacker_blocks"] >= 2
        assert outcome == 0.0
    else:
        assert finished["decision"] == "published"
        assert finished["attacker_blocks"] > finished["honest_blocks"]
        assert outcome == 1.0
