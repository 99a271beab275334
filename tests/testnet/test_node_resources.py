"""What the soak reads about a node without a cluster: /proc of this very process, Prometheus
text, tracebacks in a log, and the soak's schedule."""

from __future__ import annotations

import os

from testnet.history.node_logs import find_tracebacks, read_tracebacks
from testnet.observe.node_resources import parse_metrics, process_figures
from testnet.scenarios.soak import soak_scenario, soak_steps

METRICS = """# HELP testnet_event_queue_max Events queued for the slowest /events stream
# TYPE testnet_event_queue_max gauge
testnet_event_queue_max{consensus="pow",node="node0"} 12.0
testnet_event_subscribers{consensus="pow",node="node0"} 2.0
# TYPE testnet_events_missed counter
testnet_events_missed_total{consensus="pow",node="node0"} 3.0
testnet_head_height{consensus="pow",node="node0"} 40.0
"""


def test_process_figures_of_a_live_process():
    figures = process_figures(os.getpid())
    assert figures["rss_kb"] > 1000 and figures["fds"] >= 3
    assert figures["pss_kb"] is None or figures["pss_kb"] > 0


def test_process_figures_of_a_gone_process_are_empty():
    assert process_figures(2 ** 22 + 1) == {"rss_kb": None, "pss_kb": None,
                                            "children_rss_kb": 0, "fds": None}


def test_parse_metrics_takes_the_queue_figures():
    assert parse_metrics(METRICS) == {"testnet_event_queue_max": 12.0,
                                      "testnet_event_subscribers": 2.0,
                                      "testnet_events_missed_total": 3.0}


LOG = """2026-12-02 14:08:26,131 node0 INFO node: node node0 (pow) loaded 0 stored blocks
2026-12-02 14:09:01,001 node0 ERROR p2p: callback failed
Traceback (most recent call last):
  File "/x/p2p/host.py", line 10, in deliver
    handler(payload)
ValueError: bad payload

2026-12-02 14:09:02,001 node0 INFO p2p: connected to 7cbc453b64ee
Traceback (most recent call last):
  File "/x/node/app.py", line 1, in run
"""


def test_tracebacks_are_found_with_their_exception_and_context(tmp_path):
    found = find_tracebacks(LOG)
    assert found[0] == {"line": 3, "exception": "ValueError: bad payload",
                        "context": "2026-12-02 14:09:01,001 node0 ERROR p2p: callback failed"}
    assert found[1]["exception"] == "(log ends)"
    assert find_tracebacks("all quiet\n") == []
    assert read_tracebacks(tmp_path / "missing.log") == []


def test_the_soak_schedule_fills_the_time_and_depends_only_on_the_seed():
    steps = soak_steps(4, 600, seed=3)
    assert steps == soak_steps(4, 600, seed=3) and steps != soak_steps(4, 600, seed=4)
    rounds = [s for s in steps if "at" in s]
    offsets = [float(s["at"].rstrip("s")) for s in rounds]
    assert offsets == sorted(offsets) and offsets[-1] < 600 and len(rounds) > 20
    assert any("chaos" in s for s in rounds) and any(s.get("label") == "burst" for s in rounds)
    assert steps[-1] == {"wait": {"converged": 120}}


def test_the_soak_scenario_validates_and_checks_what_the_consensus_has():
    pos = soak_scenario("pos", 4, 5, seed=1)
    names = {next(iter(c)) for c in pos.checks}
    assert {"converged_within", "chains_valid", "no_conflicting_finality",
            "no_honest_slashing"} <= names
    assert ("stored_blocks_kept" in names) == any(s.action == "kill" for s in pos.steps)
    pow_ = soak_scenario("pow", 4, 5, seed=1)
    assert "no_honest_slashing" not in {next(iter(c)) for c in pow_.checks}
    assert {s.action for s in pow_.steps} >= {"load", "heal", "start", "wait"}
