"""The double-spend experiment's machinery on known data: Rosenfeld's formula with the race cut
off, the attacker's decision rule, a run's outcome from a hand-built history, and the page's
comparison of measured rates with the formula."""

from __future__ import annotations

import json

import pytest

from testnet.experiments import theory
from testnet.experiments.figures import double_spend_outcome
from testnet.scenarios.double_spend_race import RaceView
from tests.testnet.histories import H


# ---- the formula --------------------------------------------------------------------------------
@pytest.mark.parametrize("q", [0.1, 0.2, 0.3, 0.4])
@pytest.mark.parametrize("z", [1, 2, 3, 6])
def test_a_far_cut_off_is_rosenfeld(q, z):
    assert theory.rosenfeld_double_spend_cutoff(q, z, 400) == pytest.approx(
        theory.rosenfeld_double_spend(q, z), abs=1e-9)


def test_giving_up_earlier_only_loses_races():
    values = [theory.rosenfeld_double_spend_cutoff(0.4, 2, d) for d in (2, 4, 8, 16)]
    assert values == sorted(values)
    assert values[-1] < theory.rosenfeld_double_spend(0.4, 2)


def test_one_confirmation_against_a_tenth_of_the_hashrate():
    # Rosenfeld's attacker has one block when paid: it wins at once with q (it finds the next
    # block first), else from 0 behind it must gain 1 net: (q/p)^1, cut off 10 blocks behind.
    q, p = 0.1, 0.9
    ruin = (q / p - (q / p) ** 11) / (1 - (q / p) ** 11)
    assert theory.rosenfeld_double_spend_cutoff(q, 1, 10) == pytest.approx(q + p * ruin)


def test_a_cut_off_before_the_confirmations_is_refused():
    with pytest.raises(ValueError, match="give_up_behind"):
        theory.rosenfeld_double_spend_cutoff(0.3, 3, 2)


# ---- the attacker's rule ------------------------------------------------------------------------
def view(attacker: int, honest: int, confirmations: int) -> RaceView:
    return RaceView(attacker_blocks=attacker, honest_blocks=honest, attacker_work=attacker,
                    honest_work=honest, confirmations=confirmations)


def test_the_attacker_publishes_only_once_the_merchant_has_confirmed():
    assert view(3, 1, confirmations=1).decision(2, 10) is None       # ahead, not yet confirmed
    assert view(3, 2, confirmations=2).decision(2, 10) == "published"


def test_a_tie_is_not_a_win():
    assert view(2, 2, confirmations=2).decision(2, 10) is None


def test_the_attacker_gives_up_d_blocks_behind():
    assert view(1, 10, confirmations=10).decision(2, 10) is None
    assert view(1, 11, confirmations=11).decision(2, 10) == "gave_up"


# ---- a run's outcome ----------------------------------------------------------------------------
def raced(premined: int, payment_on: dict[str, bool]) -> list[dict]:
    h = H().started(t=0)
    h.observe("race_started", txid="pay", premined=premined, fork_height=2)
    for node, on_chain in payment_on.items():
        h.observe("tx_status", txid="pay", node=node, in_main_chain=not on_chain)  # a stale view
        h.observe("tx_status", txid="pay", node=node, in_main_chain=on_chain)
    return h.build()


ROLES = {"roles": {"node0": "honest", "node1": "honest", "node3": "withhold"}}


def test_the_payment_off_every_honest_chain_is_a_success():
    history = raced(1, {"node0": False, "node1": False, "node3": True})
    assert double_spend_outcome(history, ROLES, []) == 1.0


def test_the_payment_on_an_honest_chain_is_a_failure():
    history = raced(1, {"node0": False, "node1": True})
    assert double_spend_outcome(history, ROLES, []) == 0.0


def test_a_race_with_two_premined_blocks_is_not_a_trial():
    assert double_spend_outcome(raced(2, {"node0": False}), ROLES, []) is None


def test_without_a_race_the_reversal_check_decides():
    history = H().started(t=0).build()
    assert double_spend_outcome(history, ROLES, [{"name": "tx_reversed", "passed": True}]) == 1.0
    assert double_spend_outcome(history, ROLES, []) is None


# ---- the page -----------------------------------------------------------------------------------
def test_measured_rates_are_held_against_the_cut_off_formula(tmp_path):
    """z = 1: 18 of 30 at q = 0.3 holds 0.6 in its 99% interval; 20 of 30 at q = 0.1 is far
    from 0.2."""
    from testnet.experiments.page import write_page
    from testnet.experiments.table import write_tables

    rows = []
    for share, wins in ((0.3, 18), (0.1, 20)):
        for run in range(30):
            rows.append({"consensus": "pow", "scenario": "double-spend",
                         "point": f"hashrate_share={share}", "hashrate_share": share, "z": 1,
                         "give_up_behind": 10, "run": run + 1, "seed": run, "passed": True,
                         "double_spend_succeeded": float(run < wins), "report": "r"})
    runs, summary = write_tables(tmp_path, rows, ["hashrate_share"])
    plan = {"kind": "sweep", "scenario": "s.yaml", "runs": 30, "seed": 0,
            "constants": {"watts_per_core": 10, "joules_per_hash": 1.75e-11}}
    write_page(tmp_path, plan, runs, summary, "double-spend")
    verdict = json.loads((tmp_path / "theory.json").read_text())
    by_q = {p["q"]: p for p in verdict["points"]}
    assert by_q[0.3]["inside"] and not by_q[0.1]["inside"]
    assert by_q[0.3]["theory"] == pytest.approx(
        theory.rosenfeld_double_spend_cutoff(0.3, 1, 10))
    assert (tmp_path / "plots" / "theory-double-spend.png").exists()
