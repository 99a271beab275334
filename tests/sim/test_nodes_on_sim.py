"""Real nodes on the virtual-time loop (issue 14): sampled PoW miners and PoS validator duties run
on virtual time through the node's seams (NodeRuntime), and one seed gives one history, byte for
byte, whatever PYTHONHASHSEED is. Each run is a fresh process (tests/sim/nodes_on_sim.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def history(consensus: str, seed: int, seconds: float, hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "tests.sim.nodes_on_sim", consensus, str(seed),
                           str(seconds)], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def events_of(text: str, kind: str) -> list[dict]:
    return [e for e in map(json.loads, text.splitlines()) if e["type"] == kind]


@pytest.mark.parametrize("consensus, seconds", [("pow", 60), ("pos", 40)])
def test_one_seed_gives_one_history_whatever_the_hash_seed(consensus, seconds):
    first = history(consensus, 3, seconds, "1")
    assert history(consensus, 3, seconds, "2") == first
    assert history(consensus, 4, seconds, "1") != first
    heads = events_of(first, "head_changed")
    assert heads, "the chain grew"
    # events carry virtual timestamps: from the virtual epoch on, never the host's clock
    times = [e["ts"] for e in map(json.loads, first.splitlines())]
    assert min(times) >= 1_767_225_600.0 and max(times) <= 1_767_225_600.0 + seconds + 5


def test_pos_validators_propose_and_finalize_on_virtual_time():
    text = history("pos", 3, 40, "1")          # 10 epochs of 4 one-second slots
    heights = [e["height"] for e in events_of(text, "head_changed")]
    assert max(heights) >= 30, "most slots got their block"
    assert events_of(text, "finalized"), "a checkpoint was finalized"
