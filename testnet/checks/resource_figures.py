"""A soak's resource figures from its samples (testnet/observe/node_resources.py): per node, the
resident memory at the end of warm-up, at 10 minutes and at the end, its growth, the open file
descriptors at the start and the end, and the fullest event queue seen.

Warm-up is the first 10% of the run, at most 5 minutes: caches and pools fill there, so growth
is measured from 10 minutes on (from the end of warm-up when the run is shorter, and the figures
say which). A node that was killed and restarted in between is a new process: its growth says
nothing about a leak and is left out of the summary (`same_process` says so per node). Pure: the
figures can be recomputed from a soak's JSON.
"""

from __future__ import annotations

from collections.abc import Iterable

from testnet.checks.fork_metrics import percentile

WARMUP_SHARE = 0.10
WARMUP_MAX_S = 300.0
STEADY_FROM_S = 600.0     # "at 10 min"


def warmup_s(duration_s: float) -> float:
    return min(duration_s * WARMUP_SHARE, WARMUP_MAX_S)


def first_at(samples: list[dict], t_s: float) -> dict | None:
    """The first sample taken at or after `t_s` (samples in time order)."""
    return next((s for s in samples if s["t_s"] >= t_s), None)


def growth_pct(before: int | None, after: int | None) -> float | None:
    if not before or after is None:
        return None
    return round((after - before) / before * 100, 1)


def node_figures(samples: list[dict], duration_s: float) -> dict:
    """One node's figures from its samples in time order."""
    with_rss = [s for s in samples if s.get("rss_kb") is not None]
    warm = first_at(with_rss, warmup_s(duration_s))
    steady = first_at(with_rss, STEADY_FROM_S) if duration_s >= STEADY_FROM_S else None
    end = with_rss[-1] if with_rss else None
    base, base_name = (steady, "10min") if steady is not None else (warm, "warmup")
    with_fds = [s for s in samples if s.get("fds") is not None]
    queues = [s["testnet_event_queue_max"] for s in samples if "testnet_event_queue_max" in s]
    pids = {s.get("pid") for s in samples if s.get("pid") is not None}
    return {
        "rss_kb_warmup": warm and warm["rss_kb"],
        "rss_kb_10min": steady and steady["rss_kb"],
        "rss_kb_end": end and end["rss_kb"],
        "pss_kb_end": end and end.get("pss_kb"),
        "children_rss_kb_end": end and end.get("children_rss_kb"),
        "growth_from": base_name,
        "rss_growth_pct": growth_pct(base and base["rss_kb"], end and end["rss_kb"]),
        "same_process": bool(base and end and base.get("pid") == end.get("pid")),
        "processes": len(pids),
        "fds_start": with_fds[0]["fds"] if with_fds else None,
        "fds_end": with_fds[-1]["fds"] if with_fds else None,
        "event_queue_max": max(queues, default=None),
        "events_missed_total": next((s["testnet_events_missed_total"] for s in reversed(samples)
                                     if "testnet_events_missed_total" in s), None),
        "samples": len(samples),
    }


def soak_figures(samples: Iterable[dict], duration_s: float) -> dict:
    """Per node figures, and a summary over the nodes that kept one process throughout."""
    by_node: dict[str, list[dict]] = {}
    for s in sorted(samples, key=lambda s: s["t_s"]):
        by_node.setdefault(s["node"], []).append(s)
    nodes = {name: node_figures(rows, duration_s) for name, rows in sorted(by_node.items())}
    steady = [f["rss_growth_pct"] for f in nodes.values()
              if f["same_process"] and f["rss_growth_pct"] is not None]
    fds = [(f["fds_end"] or 0) - (f["fds_start"] or 0) for f in nodes.values()
           if f["same_process"] and f["fds_start"] is not None]
    queues = [f["event_queue_max"] for f in nodes.values() if f["event_queue_max"] is not None]
    return {
        "duration_s": round(duration_s, 1),
        "warmup_s": round(warmup_s(duration_s), 1),
        "nodes": nodes,
        "summary": {
            "nodes_same_process": len(steady),
            "restarted_nodes": sorted(n for n, f in nodes.items() if f["processes"] > 1),
            "rss_growth_pct_p50": percentile(steady, 50),
            "rss_growth_pct_max": max(steady, default=None),
            "fds_growth_max": max(fds, default=None),
            "event_queue_max": max(queues, default=None),
        },
    }
