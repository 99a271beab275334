"""What a node does does not depend on PYTHONHASHSEED (issue 14: a simulation must replay byte for
byte). The same fault plan, run in processes with different hash seeds, changes the p2p host's
link rules in the same order.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
from node.link_faults import LinkFaults
from p2p.link_shaper import LinkRule

class RecordingHost:
    def __init__(self):
        self.calls = []
    def set_link_rule(self, peer, rule, direction):
        self.calls.append(("set", peer, direction))
    def clear_link_rules(self, peer):
        self.calls.append(("clear", peer))

host = RecordingHost()
faults = LinkFaults(host)
peers = [f"peer-{i:02d}-{'x' * (i % 5)}" for i in range(40)]
for peer in peers[::2]:
    faults.block(peer, "both")
faults.shape("*", "out", LinkRule(delay_ms=50))
for peer in peers[1::3]:
    faults.shape(peer, "in", LinkRule(delay_ms=20))
faults.clear_blocks()
faults.clear_shaping()
print(host.calls)
"""


def run_with_hash_seed(seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout


def test_link_fault_changes_reach_the_host_in_one_order_whatever_the_hash_seed():
    first = run_with_hash_seed("1")
    assert first.count("set") > 20
    assert run_with_hash_seed("2") == first
    assert run_with_hash_seed("3") == first
