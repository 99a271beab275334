"""A crash campaign's figures from its round records: survivals, losses, slashings, and the
rejoin times as p50/p95 with n."""

from __future__ import annotations

import json

from testnet.checks.crash_figures import (
    RoundRecord,
    VictimRecord,
    campaign_figures,
    campaign_passed,
    spread,
)
from testnet.checks.result import result


def calm_rounds() -> list[RoundRecord]:
    return [RoundRecord(1, False, [VictimRecord("node1", accepted=10, healthy_s=0.5)],
                        converged_s=1.0),
            RoundRecord(2, True, [VictimRecord("node0", accepted=12, healthy_s=0.7),
                                  VictimRecord("node3", accepted=11, healthy_s=0.9)],
                        converged_s=3.0)]


def test_a_clean_campaign_passes_with_its_figures():
    figures = campaign_figures(calm_rounds(), None)
    assert json.loads(json.dumps(figures)) == figures
    assert (figures["rounds"], figures["minority_rounds"], figures["node_kills"]) == (2, 1, 3)
    assert figures["kills_survived"] == 3 and figures["blocks_checked"] == 33
    assert figures["blocks_lost"] == 0 and figures["honest_slashings"] == 0
    assert figures["restart_to_healthy"] == {"n": 3, "p50_s": 0.7, "p95_s": 0.9, "max_s": 0.9}
    # one figure per restarted node: both victims of the minority round waited 3.0 s
    assert figures["restart_to_converged"]["n"] == 3
    assert figures["restart_to_converged"]["p50_s"] == 3.0
    assert campaign_passed(figures)


def test_a_lost_block_fails_the_campaign_and_names_it():
    rounds = calm_rounds()
    rounds[1].victims[1].lost = [{"hash": "ab", "height": 7, "seq": 40, "peer": "local",
                                  "main_chain": True, "why": "absent"}]
    figures = campaign_figures(rounds, None)
    assert figures["blocks_lost"] == 1 and figures["kills_survived"] == 2
    assert (figures["lost"][0]["round"], figures["lost"][0]["node"]) == (2, "node3")
    assert figures["lost"][0]["hash"] == "ab"
    assert figures["failures"] == [{"round": 2, "node": "node3",
                                    "reason": "lost 1 accepted block(s)"}]
    assert not campaign_passed(figures)


def test_a_node_that_did_not_come_back_or_rejoin_is_not_a_survived_kill():
    rounds = calm_rounds()
    rounds[0].converged_s = None
    rounds[0].error = "timed out waiting for nodes to agree"
    rounds[1].victims[0].healthy_s = None
    figures = campaign_figures(rounds, None)
    assert figures["kills_survived"] == 1
    reasons = {f["node"]: f["reason"] for f in figures["failures"]}
    assert reasons == {"node1": "timed out waiting for nodes to agree",
                       "node0": "did not come back healthy"}
    assert not campaign_passed(figures)


def test_honest_slashings_count_validators_from_events_and_from_state():
    slashed = result("no_honest_slashing", "invalid", "honest validator 3 was slashed",
                     slashed=[{"validator": 3, "reason": "double vote", "seen_by": ["node0"]}])
    figures = campaign_figures(calm_rounds(), slashed, slashed_in_state=[3, 12])
    assert figures["honest_slashings"] == 2 and figures["slashed_validators"] == [3, 12]
    assert not campaign_passed(figures)
    clean = result("no_honest_slashing", "valid", "no honest validator slashed")
    assert campaign_passed(campaign_figures(calm_rounds(), clean, slashed_in_state=[]))


def test_an_undecided_slashing_check_or_an_aborted_plan_is_not_a_pass():
    unknown = result("no_honest_slashing", "unknown", "event streams lost events")
    assert not campaign_passed(campaign_figures(calm_rounds(), unknown, []))
    figures = campaign_figures(calm_rounds(), None)
    figures["aborted"] = "round 3: a victim did not come back"
    assert not campaign_passed(figures)


def test_a_lost_signing_record_is_not_a_survived_kill():
    rounds = calm_rounds()
    rounds[0].victims[0].signing_record = False
    figures = campaign_figures(rounds, None)
    assert figures["failures"][0]["reason"].startswith("its signing record")


def test_spread_of_nothing_says_so():
    assert spread([]) == {"n": 0, "p50_s": None, "p95_s": None, "max_s": None}
