"""`testnet replay` end to end: a real 3-node PoW scenario (node0 cut off, then healed) runs with
`testnet run`, and its report is replayed over HTTP at two moments: just before the heal the
isolated node's head differs from the other two, at the end all three agree -- each node's head
and height being the ones the history says it had then (testnet/history/readers.py).
"""

from __future__ import annotations

import json
import logging
import math

import aiohttp
import pytest
import yaml

from testnet.history.history_file import read_history
from testnet.history.readers import (
    head_at,
    head_timelines,
    host_ts,
    nemesis_actions,
    observations,
)
from testnet.history.standing_faults import apply_fault, no_faults
from testnet.observe.dashboard import running_site
from testnet.observe.replay import load_replay, replay_app
from tests.functional.test_scenarios import run_scenario

log = logging.getLogger("test")

TINY = {
    "name": "tiny-partition-heal",
    "description": "node0 alone against node1 and node2, then healed",
    "cluster": {"nodes": 3, "consensus": "pow", "block_interval_s": 1, "hashrate": 20000},
    "seed": 5,
    "timeout": 150,
    "steps": [{"wait": {"height": 2}},
              {"partition": "0|1,2"},
              {"wait": {"blocks": 3, "timeout": 60}},
              {"heal": True},
              {"wait": {"converged": 60}}],
    "checks": [{"chains_valid": True}],
}


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_replay_of_a_real_run_shows_the_split_then_one_chain(tmp_path):
    scenario, report = tmp_path / "tiny.yaml", tmp_path / "report"
    scenario.write_text(yaml.safe_dump(TINY))
    log.info("Run the scenario: split node0 off, let both sides mine, heal")
    result = run_scenario(scenario, report, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]

    history = read_history(report)
    # The last moment of the partition: before the heal step began (the nemesis records its
    # entry once the nodes have taken the heal, and they may reconnect before that).
    heal = next(e["ts"] for e in observations(history, "step_started")
                if e.get("action") == "heal")
    split_moment = math.nextafter(heal, -math.inf)
    lines = head_timelines(history)
    nodes = ["node0", "node1", "node2"]
    replay = load_replay(report, checkpoint_every=16)   # several checkpoints on a short run
    assert len(replay.checkpoints) > 2
    app = replay_app(replay)
    async with running_site(app, port=0) as url, aiohttp.ClientSession() as http:
        async def at(t: float) -> dict:
            async with http.get(url + "api/replay", params={"t": repr(t)}) as resp:
                assert resp.status == 200, await resp.text()
            async with http.get(url + "api/snapshot", params={"size": "1000"}) as resp:
                return await resp.json()

        log.info("Just before the heal: node0 on its own head, apart from the other two")
        split = await at(split_moment)
        assert split["tree"]["heads"] == {n: head_at(lines[n], split_moment) for n in nodes}
        assert split["tree"]["head_heights"] == heights_at(history, split_moment)
        heads = split["tree"]["heads"]
        assert heads["node0"] not in (heads["node1"], heads["node2"])
        assert split["partition"]["groups"] == [["node0"], ["node1", "node2"]]
        cards = {c["name"]: c for c in split["nodes"]}
        assert not {"node1", "node2"} & set(cards["node0"]["peers"]), cards["node0"]
        assert "node0" not in cards["node1"]["peers"], cards["node1"]

        log.info("At the end: every head on one chain (a block mined as the run stopped may not "
                 "have reached every node), the partition healed")
        end = await at(replay.end)
        assert end["tree"]["heads"] == {n: head_at(lines[n], replay.end) for n in nodes}
        assert end["tree"]["head_heights"] == heights_at(history, replay.end)
        parents = {b["hash"]: b["parent"] for b in end["tree"]["blocks"]}
        top = max(end["tree"]["heads"].values(), key=lambda h: len(chain_of(h, parents)))
        assert all(h in chain_of(top, parents) for h in end["tree"]["heads"].values())
        assert end["tree"]["heads"] != heads and not end["partition"]["partitioned"]
        assert end["tree"]["max_height"] >= split["tree"]["max_height"]

    log.info("The standing faults read from the history end as the nemesis left faults.json")
    standing = no_faults()
    for entry in nemesis_actions(history):
        apply_fault(standing, entry, {n: i for i, n in enumerate(nodes)})
    kept = json.loads((report / "cluster" / "faults.json").read_text())
    assert {k: standing[k] for k in ("grudge", "links", "skew", "roles")} == \
        {k: kept[k] for k in ("grudge", "links", "skew", "roles")}


def heights_at(history: list[dict], t: float) -> dict[str, int]:
    """Each node's head height at t, as its own events last reported it."""
    heights = {}
    for entry in history:
        if host_ts(entry) <= t and entry.get("source") == "node" \
                and entry.get("type") in ("node_started", "head_changed"):
            heights[entry["node"]] = entry["height"]
    return heights


def chain_of(head: str, parents: dict[str, str | None]) -> set[str]:
    """`head` and its ancestors in the tree window."""
    chain = set()
    block: str | None = head
    while block is not None and block not in chain:
        chain.add(block)
        block = parents.get(block)
    return chain
