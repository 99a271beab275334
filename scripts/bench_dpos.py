"""DPoS figures for scripts/bench.py (`--only dpos`), from the events of a real local cluster:

- slot accuracy: per block, from its slot's start until it is accepted on every node (the max of
  the nodes' `block_accepted.delay_ms`), p50/p95/max;
- head-to-LIB gap: at every head change once the LIB moves, the head's height minus the node's
  LIB (blocks), with the range the rule predicts: (T - 2) R + r, r in 1..R,
  T = floor(2N/3) + 1 (docs/dpos-design.md);
- time-to-irreversible: per block, from its slot's start until every node's LIB is at or above
  its height (p50/p95);
- missed slots after the first block (a loaded host makes producers late: they show up here;
  the slots before the nodes started are not counted).

Never asserted in tests; every figure comes with the run's size and the host load average.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from testnet import LocalCluster
from testnet.waiting import wait_until


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def predicted_gap(producers: int, repetitions: int) -> list[int]:
    threshold = producers * 2 // 3 + 1
    return [(threshold - 2) * repetitions + 1, (threshold - 1) * repetitions]


async def bench_dpos(nodes: int = 4, preset: str = "eosio", lib_turns: int = 4) -> dict:
    """Run a `preset` cluster until its LIB moved `lib_turns` producer turns past its first
    advance, then read every node's events."""
    with tempfile.TemporaryDirectory(prefix="bench-dpos-") as tmp:
        async with LocalCluster(nodes=nodes, consensus="dpos", preset=preset,
                                directory=Path(tmp) / "c", genesis_delay_ms=2000) as c:
            spec = c.manifest
            from consensus.dpos.spec import PRESETS
            reps = PRESETS[preset]["repetitions"]
            slot_s = PRESETS[preset]["slot_duration_ms"] / 1000
            size = spec.schedule_size
            target = (lib_turns + 1) * reps

            async def lib_reached() -> bool:
                statuses = await c.statuses()
                return all(s and s["finalized"]["height"] >= target for s in statuses)
            expected_s = (predicted_gap(size, reps)[1] + target) * slot_s
            await wait_until(lib_reached, expected_s * 3 + 60, f"LIB at height {target}")
            histories = [await c.events(i) for i in range(nodes)]
    return summarize(histories, nodes, preset, size, reps)


def summarize(histories: list[list[dict]], nodes: int, preset: str, size: int,
              reps: int) -> dict:
    delays: dict[int, list[float]] = {}
    slot_start: dict[int, float] = {}
    libs: list[list[tuple[int, float]]] = []
    gaps: list[int] = []
    missed: set[int] = set()
    first_slot = min((e["slot"] for h in histories for e in h if e["type"] == "block_accepted"),
                     default=0)
    for history in histories:
        node_libs: list[tuple[int, float]] = []
        lib = 0
        for e in history:
            if e["type"] == "block_accepted" and e["main_chain"]:
                delays.setdefault(e["height"], []).append(e["delay_ms"])
                slot_start.setdefault(e["height"], e["ts"] - e["delay_ms"] / 1000)
            elif e["type"] == "lib_advanced":
                node_libs.append((e["height"], e["ts"]))
                lib = e["height"]
            elif e["type"] == "head_changed" and lib:
                gaps.append(e["height"] - lib)
            elif e["type"] == "producer_missed" and e["slot"] > first_slot:
                missed.add(e["slot"])
        libs.append(node_libs)
    complete = sorted(max(d) for d in delays.values() if len(d) == nodes)
    to_irreversible = []
    for height, start in slot_start.items():
        per_node = [min((ts for h, ts in node if h >= height), default=None) for node in libs]
        if all(t is not None for t in per_node):
            to_irreversible.append(max(t for t in per_node if t is not None) - start)
    to_irreversible.sort()
    gaps.sort()
    return {
        "nodes": nodes, "preset": preset, "producers": size, "repetitions": reps,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "slot_to_all_nodes": {"blocks": len(complete),
                              "p50_ms": round(percentile(complete, 50), 1),
                              "p95_ms": round(percentile(complete, 95), 1),
                              "max_ms": round(complete[-1], 1) if complete else None},
        "head_to_lib_gap": {"heads": len(gaps), "min": gaps[0] if gaps else None,
                            "p50": percentile(gaps, 50), "max": gaps[-1] if gaps else None,
                            "predicted": predicted_gap(size, reps)},
        "time_to_irreversible": {"blocks": len(to_irreversible),
                                 "p50_s": round(percentile(to_irreversible, 50), 2),
                                 "p95_s": round(percentile(to_irreversible, 95), 2)},
        "missed_slots": len(missed), "blocks": len(slot_start),
    }


def print_dpos(results: list[dict]) -> None:
    print("DPoS (slot start -> block on all nodes; head-to-LIB gap; time to irreversible)")
    for r in results:
        s, g, t = r["slot_to_all_nodes"], r["head_to_lib_gap"], r["time_to_irreversible"]
        print(f"  {r['preset']} {r['producers']}x{r['repetitions']} on {r['nodes']} nodes "
              f"(load {r['load_average']}): slot->all p50 {s['p50_ms']} ms p95 {s['p95_ms']} ms "
              f"({s['blocks']} blocks); gap {g['min']}..{g['max']} (p50 {g['p50']}, predicted "
              f"{g['predicted'][0]}..{g['predicted'][1]}, {g['heads']} heads); "
              f"irreversible p50 {t['p50_s']} s p95 {t['p95_s']} s; missed slots "
              f"{r['missed_slots']} of {r['blocks'] + r['missed_slots']}")
