"""A soak's resource figures from hand-made samples: warm-up, 10 min and end, growth from the
right baseline, restarted nodes left out of the summary."""

from __future__ import annotations

import json

from testnet.checks.resource_figures import growth_pct, soak_figures, warmup_s


def sample(node: str, t: float, rss: int, pid: int = 100, fds: int = 20, queue: float = 0.0,
           **extra) -> dict:
    return {"t_s": t, "node": node, "pid": pid, "rss_kb": rss, "pss_kb": rss // 2,
            "children_rss_kb": 15_000, "fds": fds, "testnet_event_queue_max": queue,
            "testnet_events_missed_total": 0.0, **extra}


def test_warmup_is_a_tenth_of_the_run_at_most_five_minutes():
    assert warmup_s(300) == 30 and warmup_s(3600) == 300 and warmup_s(0) == 0


def test_an_hour_long_node_grows_from_its_ten_minute_figure():
    rows = [sample("node0", t, rss) for t, rss in
            [(0, 50_000), (300, 60_000), (600, 62_000), (1800, 63_000), (3600, 65_100)]]
    figures = soak_figures(rows, 3600)
    node = figures["nodes"]["node0"]
    assert (node["rss_kb_warmup"], node["rss_kb_10min"], node["rss_kb_end"]) == (
        60_000, 62_000, 65_100)
    assert node["growth_from"] == "10min" and node["rss_growth_pct"] == 5.0
    assert node["same_process"] and node["processes"] == 1
    assert figures["summary"]["rss_growth_pct_p50"] == 5.0
    assert json.loads(json.dumps(figures)) == figures


def test_a_short_run_grows_from_the_end_of_warm_up_and_has_no_ten_minute_figure():
    rows = [sample("node0", t, rss) for t, rss in [(0, 50_000), (30, 60_000), (300, 61_200)]]
    node = soak_figures(rows, 300)["nodes"]["node0"]
    assert node["rss_kb_10min"] is None and node["growth_from"] == "warmup"
    assert node["rss_growth_pct"] == 2.0


def test_a_restarted_node_is_named_and_left_out_of_the_growth_summary():
    rows = [sample("node0", 0, 50_000), sample("node0", 30, 60_000),
            sample("node0", 300, 40_000, pid=200),
            sample("node1", 0, 50_000), sample("node1", 30, 60_000), sample("node1", 300, 66_000)]
    figures = soak_figures(rows, 300)
    assert not figures["nodes"]["node0"]["same_process"]
    assert figures["nodes"]["node0"]["processes"] == 2
    assert figures["summary"]["restarted_nodes"] == ["node0"]
    assert figures["summary"]["nodes_same_process"] == 1
    assert figures["summary"]["rss_growth_pct_max"] == 10.0


def test_fds_and_event_queues():
    rows = [sample("node0", 0, 50_000, fds=18), sample("node0", 30, 50_000, fds=25, queue=7),
            sample("node0", 60, 50_000, fds=21, queue=2)]
    figures = soak_figures(rows, 60)
    node = figures["nodes"]["node0"]
    assert (node["fds_start"], node["fds_end"], node["event_queue_max"]) == (18, 21, 7)
    assert figures["summary"]["fds_growth_max"] == 3
    assert figures["summary"]["event_queue_max"] == 7


def test_samples_a_down_node_could_not_give_are_skipped():
    rows = [sample("node0", 0, 50_000), {"t_s": 30, "node": "node0", "pid": None,
                                         "metrics_error": "refused"},
            sample("node0", 60, 51_000)]
    node = soak_figures(rows, 60)["nodes"]["node0"]
    assert node["rss_kb_end"] == 51_000 and node["samples"] == 3


def test_growth_needs_a_baseline():
    assert growth_pct(None, 10) is None and growth_pct(0, 10) is None
    assert growth_pct(100, 90) == -10.0
