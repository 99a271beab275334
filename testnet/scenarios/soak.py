"""A soak as a scenario: background transfers for the whole time, and a seeded chaos schedule
(kills, pauses, partitions, link delay and loss) with transfer bursts in between, played by the
scenario runner and judged by its checks. scripts/soak.py runs it with a resource sampler beside
it (testnet/observe/node_resources.py) and sums up what the nodes held over time.

Nothing here writes faults anew: each chaos round is a `chaos` step of count 1, expanded by the
scenario parser (testnet/scenarios/spec.py) with the scenario seed into the action table's verbs
and their clearing step; bursts are `load` steps. Rounds are pinned to their planned offsets
(`at`), so a slow restart delays one round, not the whole schedule. The same seed, minutes and
cluster give the same schedule.

At the end every standing fault is cleared, every node started, and the nodes must agree: the
checks are convergence after the last fault, every chain valid from genesis, stored blocks kept
across the kills, and on PoS no conflicting finality and no honest validator slashed.
"""

from __future__ import annotations

import random
from typing import Any

from testnet.config.manifest import has
from testnet.scenarios.spec import Scenario, parse_scenario

CLUSTER = {"pow": {"block_interval_s": 1, "hashrate": 20_000},
           "pos": {"slot_duration_ms": 1000, "validators_per_node": 8}}
BASE_TPS = 2.0
BURST = {"tps": 15, "duration": "10s"}
BURST_SHARE = 0.25
FAULT_S = (3, 10)       # how long a fault holds
GAP_S = (5, 15)         # quiet time after it is cleared
CONVERGE_S = 120


def soak_steps(nodes: int, seconds: float, seed: int) -> list[dict]:
    """The steps of a soak of about `seconds`: rounds until the time is used up."""
    rng = random.Random(seed)
    steps: list[dict[str, Any]] = [{"wait": {"height": 2, "timeout": 120}},
                                   {"load": {"tps": BASE_TPS, "duration": f"{seconds:.0f}s"}}]
    at = 5.0
    while True:
        hold, gap = rng.randint(*FAULT_S), rng.randint(*GAP_S)
        if at + hold + gap > seconds:
            break
        if rng.random() < BURST_SHARE:
            steps.append({"load": dict(BURST), "at": f"{at:.0f}s", "label": "burst"})
        else:
            steps.append({"chaos": {"count": 1, "duration": f"{hold}s", "interval": f"{gap}s"},
                          "at": f"{at:.0f}s"})
        at += hold + gap
    steps += [{"heal": True}, {"link_clear": True}]
    steps += [{"start": i} for i in range(nodes)]
    steps.append({"wait": {"converged": CONVERGE_S}})
    return steps


def soak_scenario(consensus: str, nodes: int, minutes: float, seed: int) -> Scenario:
    """The soak of `minutes` on `nodes` nodes of `consensus`, validated whole."""
    seconds = minutes * 60
    raw = {"name": f"soak-{consensus}", "seed": seed,
           "description": f"{minutes:g} min of seeded chaos and transfers on {nodes} nodes",
           "cluster": {"nodes": nodes, "consensus": consensus, "accounts": 2 * nodes,
                       **CLUSTER[consensus]},
           "timeout": seconds + 900,
           "steps": soak_steps(nodes, seconds, seed),
           "checks": [{"converged_within": {"seconds": CONVERGE_S, "after": "last_fault"}},
                      {"chains_valid": True}]}
    if has(consensus, "finality"):
        raw["checks"].append({"no_conflicting_finality": True})
    if has(consensus, "validators"):
        raw["checks"].append({"no_honest_slashing": True})
    scenario = parse_scenario(raw)
    if any(step.action == "kill" for step in scenario.steps):   # else there is no restart
        raw["checks"].append({"stored_blocks_kept": True})      # to judge: unknown, not a pass
        scenario = parse_scenario(raw)
    return scenario
