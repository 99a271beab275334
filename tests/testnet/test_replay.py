"""Replaying a recorded run (testnet/observe/replay_state.py, replay.py): the dashboard's state at a
time t of a hand-built history (tests/testnet/histories.py), whatever the way there (checkpoints,
steps forward, jumps back), and the same pictures a live collector draws from the same entries;
the /api/replay endpoint and its validation; the standing faults read from nemesis actions; and
`testnet replay`'s errors for a folder it cannot replay.
"""

from __future__ import annotations

import json
import logging
import math

import aiohttp
import pytest
from click.testing import CliRunner

from testnet import LocalCluster
from testnet.cli.main import main
from testnet.errors import DashboardError, HistoryFileError
from testnet.history.history_file import read_history
from testnet.history.standing_faults import apply_fault, no_faults, node_faults
from testnet.observe.collector import Collector
from testnet.observe.dashboard import running_site
from testnet.observe.dashboard_frames import TreeFrames, snapshot_frame
from testnet.observe.replay import load_replay, recorded_cluster, replay_app
from testnet.observe.replay_state import RecordedNode, Replay, ReplayState
from tests.testnet.histories import H
from tests.testnet.tree_events import ForkHistory

log = logging.getLogger("test")

NODES = [RecordedNode(f"node{i}", i) for i in range(3)]


def split_and_heal() -> list[dict]:
    """Three nodes agree on a1; node0 is cut off at 2 and mines b2; node1 and node2 build c2, c3;
    the heal at 5 brings node0 over to c3 (a reorg of depth 1) at 6; b2 is left stale."""
    h = H().started(t=0, name="split-and-heal")
    h.at(0).node("node0").node("node1").node("node2")
    h.at(1).node("node0").block("a1", "g").node("node1").block("a1", "g", peer="p0")
    h.node("node2").block("a1", "g", peer="p0")
    h.at(2).partition(["node0"], ["node1", "node2"])
    h.at(3).node("node0").block("b2", "a1")
    h.at(3.5).node("node1").block("c2", "a1").node("node2").block("c2", "a1", peer="p1")
    h.at(4).node("node1").block("c3", "c2").node("node2").block("c3", "c2", peer="p1")
    h.at(5).heal()
    h.at(6).node("node0").block("c2", "a1", main=False, peer="p1").block("c3", "c2", peer="p1")
    h.reorg("b2", "c3", 1, common="a1")
    h.at(7).final("node0", "c3").final("node1", "c3").final("node2", "c3")
    return h.build()


def replay_of(history: list[dict], every: int = 1000) -> Replay:
    return Replay(history, name="split-and-heal", consensus="pow", nodes=NODES,
                  checkpoint_every=every)


def picture(replay: Replay, top: int | None = None, size: int = 50) -> dict:
    """The frame the dashboard would send now (without the clock)."""
    frame = snapshot_frame(replay.state, TreeFrames(replay.state), top, size)
    return {k: v for k, v in frame.items() if k != "time"}


def block_states(frame: dict) -> dict[str, str]:
    return {b["hash"]: b["state"] for b in frame["tree"]["blocks"]}


# ---- the state at a time ------------------------------------------------------------------------
def test_the_state_at_each_moment_is_what_the_history_says():
    replay = replay_of(split_and_heal())
    assert (replay.start, replay.end) == (0.0, 7.0)
    assert replay.state.t == 7.0, "a replay starts at the end of the run"

    replay.seek(1.5)
    frame = picture(replay)
    assert frame["tree"]["heads"] == {"node0": "a1", "node1": "a1", "node2": "a1"}
    assert not frame["partition"]["partitioned"]
    assert frame["replay"]["t"] == 1.5

    log.info("During the partition: two branches, each side's heads on its own")
    replay.seek(4.5)
    frame = picture(replay)
    assert frame["tree"]["heads"] == {"node0": "b2", "node1": "c3", "node2": "c3"}
    assert frame["tree"]["head_heights"] == {"node0": 2, "node1": 3, "node2": 3}
    assert block_states(frame) == {"a1": "canonical", "b2": "fork", "c2": "canonical",
                                   "c3": "canonical"}
    assert frame["partition"]["groups"] == [["node0"], ["node1", "node2"]]
    assert frame["partition"]["cuts"] == [["node0", "node1"], ["node0", "node2"]]
    cards = {n["name"]: n for n in frame["nodes"]}
    assert cards["node0"]["faults"]["blocked_peers"] == 2
    assert cards["node1"]["faults"]["blocked_peers"] == 1
    assert cards["node0"]["height"] == 2 and cards["node1"]["height"] == 3
    assert [e["type"] for e in frame["timeline"]].count("fault_applied") == 1

    log.info("After the heal and the reorg: one head, the lost block stale")
    replay.seek(6.5)
    frame = picture(replay)
    assert set(frame["tree"]["heads"].values()) == {"c3"}
    assert block_states(frame)["b2"] == "stale"
    assert frame["tree"]["reorgs"] == 1
    assert {n["name"]: n["reorgs"] for n in frame["nodes"]}["node0"] == 1
    assert not frame["partition"]["partitioned"]
    assert all(n["faults"]["blocked_peers"] == 0 for n in frame["nodes"])


def test_an_entry_is_in_from_its_own_time_on():
    replay = replay_of(split_and_heal())
    replay.seek(2.0)
    assert replay.state.partition()["partitioned"], "the partition at t=2 is in at t=2"
    replay.seek(math.nextafter(2.0, 0))
    assert not replay.state.partition()["partitioned"]
    replay.seek(0.0)
    assert replay.position()["index"] == 4      # run_started and three node_started at t=0
    assert replay.state.tree.heads == {"node0": "g", "node1": "g", "node2": "g"}


@pytest.mark.parametrize("every", [1, 2, 7, 1000])
def test_any_way_to_a_moment_gives_the_same_picture(every):
    """Jumps back, short steps forward (sent as live updates) and long jumps (from a checkpoint)
    all end in the picture a fresh replay draws for that moment."""
    history = split_and_heal()
    replay = replay_of(history, every)
    times = [6.5, 0.0, 3.2, 3.6, 4.0, 1.0, 7.0, 5.0, 2.5, 2.5, 6.0]
    for t in times:
        replay.seek(t)
        fresh = replay_of(history, 1000)
        fresh.seek(t)
        got, want = picture(replay), picture(fresh)
        got["replay"].pop("checkpoint_every")
        want["replay"].pop("checkpoint_every")
        assert got == want, f"t={t} (checkpoint every {every})"


def test_a_jump_in_a_long_run_starts_from_the_nearest_checkpoint(monkeypatch):
    history = ForkHistory(nodes=4, seed=5)
    history.extend(1500, fork_every=10)
    replay = Replay(history.events, name="long", consensus="pow",
                    nodes=[RecordedNode(f"node{i}", i) for i in range(4)], checkpoint_every=500)
    assert len(replay.checkpoints) == math.ceil(len(history.events) / 500)
    ingested = []
    monkeypatch.setattr(ReplayState, "ingest",
                        lambda self, e, real=ReplayState.ingest: (ingested.append(e),
                                                                  real(self, e)))
    for fraction in (0.1, 0.9, 0.5, 0.2, 0.95):
        ingested.clear()
        t = replay.start + fraction * (replay.end - replay.start)
        replay.seek(t)
        assert len(ingested) < 500, f"{len(ingested)} entries ingested to reach {fraction:.0%}"
        want = max(e["height"] for e in history.events
                   if e["type"] == "block_accepted" and e["rx_ts"] <= t)
        assert replay.state.tree.max_height == want


async def test_the_replayed_tree_is_the_live_collectors(tmp_path):
    """The live collector, handed the node events and nemesis actions up to t as its streams and
    the nemesis log would, holds the same tree and timeline: the replay goes through its intake."""
    history = split_and_heal()
    cluster = LocalCluster(nodes=3, directory=tmp_path / "c")     # files only: never entered
    for t in (1.0, 4.5, 7.0):
        collector = Collector(cluster)
        for entry in history:
            if entry["ts"] <= t and entry["source"] != "runner":
                collector.ingest(entry)
        replay = replay_of(history, 2)
        replay.seek(t)
        assert replay.state.tree.window(None, 50) == collector.tree.window(None, 50), t
        assert replay.state.timeline == collector.timeline


# ---- standing faults -----------------------------------------------------------------------------
def test_standing_faults_fold_like_the_nemesis_keeps_them():
    index = {f"node{i}": i for i in range(3)}
    state = no_faults()
    link = {"source": "nemesis", "type": "fault_applied", "fault": "link", "nodes": ["node1"],
            "params": {"rule": {"delay": "200ms"}, "targets": [0, 2]}}
    skew = {"source": "nemesis", "type": "fault_applied", "fault": "skew", "nodes": ["node2"],
            "params": {"offset_s": 30}}
    role = {"source": "nemesis", "type": "fault_applied", "fault": "role", "nodes": ["node0"],
            "params": {"role": "selfish-miner"}}
    kill = {"source": "nemesis", "type": "fault_applied", "fault": "kill", "nodes": ["node0"],
            "params": {"signal": "SIGKILL"}}
    for entry in (link, skew, role):
        assert apply_fault(state, entry, index)
    assert not apply_fault(state, kill, index), "a kill leaves no standing fault"
    assert state["links"] == [{"sources": [1], "rule": {"delay": "200ms"}, "targets": [0, 2]}]
    assert state["skew"] == {"2": 30} and state["roles"] == {"0": "selfish-miner"}
    assert node_faults(state, 1) == {"blocked_peers": 0, "shaped_links": 2, "clock_offset_s": 0}
    assert node_faults(state, 2)["clock_offset_s"] == 30
    clear_one = {"source": "nemesis", "type": "fault_cleared", "fault": "link_clear",
                 "nodes": ["node1"], "params": {}}
    apply_fault(state, clear_one, index)
    assert state["links"], "clearing one node's links keeps the rules (as the nemesis does)"
    apply_fault(state, {**clear_one, "nodes": list(index)}, index)
    assert state["links"] == []


def test_a_killed_node_is_down_until_started():
    h = H().at(0).node("node0").node("node1")
    h.at(1).nemesis("fault_applied", "kill", ["node1"])
    h.at(3).nemesis("fault_cleared", "start", ["node1"])
    replay = Replay(h.build(), name="k", consensus="pow", nodes=NODES[:2])
    replay.seek(2)
    assert [n.up for n in replay.state.nodes] == [True, False]
    replay.seek(3)
    assert [n.up for n in replay.state.nodes] == [True, True]


def test_cards_show_finality_as_a_nodes_status_does():
    h = H("dpos").at(0).node("node0").block("a1", "g").block("a2", "a1")
    h.at(1).event("lib_advanced", height=1, root="a1", slot=1, gap=1, slot_start_ts=0.0,
                  irreversible_after_s=1.0)
    h.at(2).node("node1").justified(3, "a2").finalized(2, "a1")
    replay = Replay(h.build(), name="f", consensus="dpos", nodes=NODES[:2])
    cards = {n["name"]: n for n in picture(replay)["nodes"]}
    assert cards["node0"]["finalized"] == {"height": 1, "root": "a1"}, "a LIB: no epoch"
    assert cards["node1"]["finalized"] == {"epoch": 2, "root": "a1"}
    assert cards["node1"]["justified"] == {"epoch": 3, "root": "a2"}
    assert picture(replay)["tree"]["finalized"]["node0"]["root"] == "a1"


# ---- the endpoint -------------------------------------------------------------------------------
def test_times_outside_the_run_or_not_numbers_are_refused():
    replay = replay_of(split_and_heal())
    for raw in ("abc", "", "nan", "inf", "-1", "7.01", True, None, "1e400"):
        with pytest.raises(DashboardError, match="bad t"):
            replay.parse_time(raw)
    assert replay.parse_time("3.5") == 3.5 and replay.parse_time(0) == 0.0


async def test_the_replay_endpoint_moves_the_frames_and_refuses_bad_times():
    replay = replay_of(split_and_heal(), every=3)
    app = replay_app(replay, push_interval=0.02)
    async with running_site(app, port=0) as url, aiohttp.ClientSession() as http:
        async with http.get(url + "api/replay") as resp:
            assert (await resp.json())["t"] == 7.0
        for bad in ("abc", "-5", "8", "nan"):
            async with http.get(url + "api/replay", params={"t": bad}) as resp:
                assert resp.status == 400, bad
                error = (await resp.json())["error"]
                assert f"bad t: '{bad}'" in error and "0.0 .. 7.0" in error
        async with http.ws_connect(url + "ws") as ws:
            first = await ws.receive_json(timeout=5)
            assert first["type"] == "snapshot" and first["controls"] is False
            assert first["replay"]["end"] == 7.0
            assert set(first["tree"]["heads"].values()) == {"c3"}

            log.info("Back to the partition: a fresh snapshot of that moment")
            async with http.get(url + "api/replay", params={"t": "4.5"}) as resp:
                assert resp.status == 200 and (await resp.json())["t"] == 4.5
            frame = await _next_of_type(ws, "snapshot")
            assert frame["tree"]["heads"]["node0"] == "b2" and frame["replay"]["t"] == 4.5
            async with http.get(url + "api/snapshot") as resp:
                snap = await resp.json()
            assert snap["partition"]["partitioned"] and snap["time"] == 4.5

            log.info("A step forward arrives as an update with the new entries")
            async with http.get(url + "api/replay", params={"t": "6.0"}) as resp:
                assert resp.status == 200
            update = await _next_of_type(ws, "update")
            assert update["replay"]["t"] == 6.0
            assert "reorg" in [e["type"] for e in update["events"]]
            assert set(update["tree"]["heads"].values()) == {"c3"}
        for path in ("api/heal", "api/node/node0/kill", "api/action/kill"):
            async with http.post(url + path, json={"node": "node0"}) as resp:
                assert resp.status == 403, path
                assert "replay" in (await resp.json())["error"]


async def _next_of_type(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict:
    while True:
        frame = await ws.receive_json(timeout=5)
        if frame["type"] == kind:
            return frame


# ---- the report folder and the CLI ---------------------------------------------------------------
def write_report(folder, history: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in history))


def test_a_report_without_cluster_json_takes_its_nodes_from_the_history(tmp_path):
    write_report(tmp_path / "r", split_and_heal())
    replay = load_replay(tmp_path / "r")
    assert [n.name for n in replay.state.nodes] == ["node0", "node1", "node2"]
    assert replay.state.name == "split-and-heal"
    history = read_history(tmp_path / "r")
    (tmp_path / "r" / "cluster").mkdir()
    (tmp_path / "r" / "cluster" / "cluster.json").write_text(json.dumps(
        {"consensus": "pos", "nodes": [{"name": f"node{i}", "index": i, "peer_id": f"p{i}"}
                                       for i in range(3)]}))
    consensus, nodes = recorded_cluster(tmp_path / "r", history)
    assert consensus == "pos" and nodes[1] == RecordedNode("node1", 1, "p1")


@pytest.mark.parametrize("lines, message", [
    (['{"ts": 1, "source": "runner"}', '{"ts": 2,'], "history.jsonl line 2: not JSON"),
    (['{"ts": 1, "source": "runner"}', "", "[1, 2]"], "history.jsonl line 3: not a JSON object"),
    (['{"ts": "noon", "source": "runner"}'], "history.jsonl line 1: bad ts: \"noon\""),
    (['{"ts": 1, "rx_ts": null, "source": "node"}'], "line 1: bad rx_ts: null"),
    (['{"ts": 1}'], "history.jsonl line 1: no \"source\""),
    (['{"ts": 1, "source": "node", "node": "node0", "type": "block_accepted", "height": 1}'],
     "line 1: a block_accepted event without hash"),
    (['{"ts": 1, "source": "node", "type": "reorg"}'], "line 1: a node event without a \"node\""),
    (['{"ts": 1, "source": "nemesis", "fault": "kill", "nodes": "node0"}'],
     "line 1: bad nodes of a nemesis action"),
    ([], "holds no entries"),
])
def test_cli_names_the_bad_line(tmp_path, lines, message):
    (tmp_path / "history.jsonl").write_text("".join(line + "\n" for line in lines))
    with pytest.raises(HistoryFileError, match="line|entries"):
        read_history(tmp_path)
    result = CliRunner().invoke(main, ["replay", str(tmp_path), "--port", "0"])
    assert result.exit_code == 1 and message in result.output, result.output


def test_cli_refuses_a_folder_without_a_history(tmp_path):
    for target, message in [(tmp_path, "holds no history.jsonl"),
                            (tmp_path / "missing", "is not a folder")]:
        result = CliRunner().invoke(main, ["replay", str(target)])
        assert result.exit_code == 1 and message in result.output, result.output
    result = CliRunner().invoke(main, ["replay", "--help"])
    assert result.exit_code == 0 and "time scrubber" in result.output
