"""The dashboard server without a browser: a real aiohttp server on a free port, over a real
Collector whose union tree is fed synthetic node events (tests/testnet/tree_events.py) instead of
live nodes. The cluster folder is real; its nodes are never started.

Covers: the snapshot endpoint's window and its validation, the websocket's window messages, a
client that stops reading (the server's buffer for it stays bounded; when it reads again it is
told what it missed and resynced), the fault endpoints' validation, and the union tree window at
16 nodes and 3000 blocks.
"""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest

from testnet import LocalCluster
from testnet.history.block_tree import UnionTree
from testnet.observe.collector import Collector
from testnet.observe.dashboard import STATE, dashboard_app, dashboard_site, running_site
from testnet.waiting import wait_until
from tests.testnet.tree_events import ForkHistory, fork_history

log = logging.getLogger("test")


def feed(collector: Collector, events: list[dict]) -> None:
    """Hands events to the collector as if its node streams had delivered them."""
    for event in events:
        collector.ingest(event)   # the intake the node streams use


@pytest.fixture
def cluster(tmp_path):
    return LocalCluster(nodes=2, directory=tmp_path / "c")   # files only: never entered


@pytest.fixture
def history():
    h = ForkHistory(nodes=2, seed=3)
    h.extend(300, fork_every=10)
    return h


async def test_snapshot_endpoint_serves_the_window_and_refuses_bad_ones(cluster, history):
    collector = Collector(cluster)
    feed(collector, history.events)
    async with dashboard_site(cluster, collector, port=0) as url, aiohttp.ClientSession() as http:
        async with http.get(url + "api/snapshot", params={"top": "100", "size": "20"}) as resp:
            assert resp.status == 200
            frame = await resp.json()
        tree = frame["tree"]
        assert (tree["top"], tree["bottom"], tree["max_height"]) == (100, 81, 300)
        assert tree["blocks"] and all(81 <= b["height"] <= 100 for b in tree["blocks"])
        assert {b["state"] for b in tree["blocks"]} == {"canonical", "stale"}
        assert frame["window"] == {"top": 100, "size": 20, "follow": False}
        assert [n["name"] for n in frame["nodes"]] == ["node0", "node1"]
        assert any(e["type"] == "reorg" for e in frame["timeline"])
        async with http.get(url + "api/snapshot") as resp:
            assert (await resp.json())["tree"]["top"] == 300, "no top: follow the tip"
        for query, message in [({"size": "abc"}, "bad size: 'abc'"),
                               ({"size": "0"}, "bad size: '0'"),
                               ({"size": "100000"}, "bad size: '100000'"),
                               ({"top": "-3"}, "bad top: '-3'"),
                               ({"top": "x1"}, "bad top: 'x1'")]:
            async with http.get(url + "api/snapshot", params=query) as resp:
                assert resp.status == 400, query
                assert message in (await resp.json())["error"]


async def test_the_page_and_its_assets_are_served(cluster):
    collector = Collector(cluster)
    async with dashboard_site(cluster, collector, port=0) as url, aiohttp.ClientSession() as http:
        for path, kind in [("", "text/html"), ("static/dashboard.js", "javascript"),
                           ("static/dashboard.css", "text/css")]:
            async with http.get(url + path) as resp:
                assert resp.status == 200 and kind in resp.content_type, path
        async with http.get(url + "static/../dashboard.py") as resp:
            assert resp.status in (403, 404)


async def test_websocket_sends_snapshot_then_updates_and_scrolls_back(cluster, history):
    collector = Collector(cluster)
    feed(collector, history.events)
    async with dashboard_site(cluster, collector, port=0, push_interval=0.05) as url, \
            aiohttp.ClientSession() as http, http.ws_connect(url + "ws") as ws:
        first = await ws.receive_json(timeout=5)
        assert first["type"] == "snapshot" and first["tree"]["top"] == 300
        log.info("New blocks arrive as updates with the tree and the new events")
        history.extend(2)
        feed(collector, history.events[-8:])
        update = await ws.receive_json(timeout=5)
        assert update["type"] == "update" and update["tree"]["max_height"] == 302
        assert [e["type"] for e in update["events"]].count("block_accepted") >= 2
        log.info("Scroll back to heights 41..50, then ask for something invalid")
        await ws.send_json({"type": "window", "top": 50, "size": 10})
        update = await ws.receive_json(timeout=5)
        assert (update["tree"]["top"], update["tree"]["bottom"]) == (50, 41)
        assert update["window"]["follow"] is False
        await ws.send_json({"type": "window", "top": 50, "size": 0})
        error = await ws.receive_json(timeout=5)
        assert error["type"] == "error" and "size" in error["error"]
        await ws.send_json({"type": "window", "top": None, "size": 30})
        update = await ws.receive_json(timeout=5)
        assert update["window"]["follow"] is True and update["tree"]["top"] == 302


async def test_nothing_is_sent_while_nothing_changes(cluster, history):
    collector = Collector(cluster)
    feed(collector, history.events)
    async with dashboard_site(cluster, collector, port=0, push_interval=0.02) as url, \
            aiohttp.ClientSession() as http, http.ws_connect(url + "ws") as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "snapshot"
        with pytest.raises(TimeoutError):
            await ws.receive_json(timeout=0.5)


async def test_a_client_that_stops_reading_is_bounded_then_told_and_resynced(cluster):
    """The client does not read while the tree changes 100 times a second with ~300 kB frames:
    the server's per-client state stays bounded (its listener queue and at most one pending
    frame), then on reading again the client gets `missed` followed by a fresh snapshot."""
    history = ForkHistory(nodes=2, seed=5)
    history.extend(1000)
    collector = Collector(cluster)
    feed(collector, history.events)
    queue_max = 32
    app = dashboard_app(cluster, collector, push_interval=0.01, client_queue=queue_max)
    app_state = app[STATE]
    async with running_site(app, port=0) as url, aiohttp.ClientSession() as http:
        # compress=0: frames as large on the wire as in memory, so the socket fills quickly.
        async with http.ws_connect(url + "ws", compress=0, max_msg_size=0) as ws:
            await ws.send_json({"type": "window", "top": None, "size": 1000})
            assert (await ws.receive_json(timeout=5))["type"] == "snapshot"
            log.info("Stop reading; keep the tree changing until the server holds back")
            worst: dict = {}

            async def held_back() -> dict | None:
                history.extend(1)
                feed(collector, history.events[-4:])
                await asyncio.sleep(0.005)
                (stats,) = [c.stats() for c in app_state.clients]
                for key in ("queued", "write_buffer_bytes", "sending_bytes"):
                    worst[key] = max(worst.get(key, 0), stats[key])
                assert stats["queued"] <= queue_max
                return stats if stats["dropping"] > 50 and stats["sending_bytes"] else None
            stats = await wait_until(held_back, 30, "the server to hold back", interval=0,
                                     last=lambda: worst)
            log.info("held back after %d frames: %s (worst %s)", stats["frames_sent"], stats,
                     worst)
            frame_bytes = stats["sending_bytes"]
            assert worst["queued"] <= queue_max
            assert worst["write_buffer_bytes"] <= 64 * 1024 + 2 * frame_bytes, worst
            log.info("Read again: the client is told it missed updates, then resynced")
            kinds = []
            while "missed" not in kinds:
                msg = json.loads((await ws.receive(timeout=10)).data)
                kinds.append(msg["type"])
                assert len(kinds) < 10_000
            resync = await ws.receive_json(timeout=10)
            assert resync["type"] == "snapshot"
            assert resync["tree"]["max_height"] == history.height
            assert msg["count"] > 50
            log.info("read %d frames before `missed` (count %d)", len(kinds) - 1, msg["count"])
        await wait_until(lambda: not app_state.clients, 5, "the client is unregistered",
                         interval=0.02)
        assert not collector._listeners  # noqa: SLF001 - its listener went with it


async def test_fault_endpoints_validate_and_record(cluster):
    collector = Collector(cluster)
    async with dashboard_site(cluster, collector, port=0) as url, aiohttp.ClientSession() as http:
        async def post(path: str, body: object = None, **kw: object) -> tuple[int, dict]:
            async with http.post(url + path, json=body, **kw) as resp:  # type: ignore[arg-type]
                return resp.status, await resp.json()
        assert await post("api/partition", {"groups": "0|5"}) == (
            400, {"error": "no node '5' in this cluster (nodes 0..1)"})
        status, body = await post("api/partition", {"groups": [["node0"], ["node0"]]})
        assert status == 400 and "two groups" in body["error"]
        status, body = await post("api/partition", {"groups": 3})
        assert status == 400 and body["error"].startswith("groups")
        status, body = await post("api/partition", {"groups": "0|1", "extra": 1})
        assert status == 400 and "extra" in body["error"]
        async with http.post(url + "api/heal", data="x") as resp:
            assert resp.status == 400 and "application/json" in (await resp.json())["error"]
        status, body = await post("api/heal", {}, headers={"Origin": "http://evil.example"})
        assert status == 403 and "cross-origin" in body["error"]
        assert (await post("api/node/node7/kill", {}))[0] == 404
        status, body = await post("api/node/node0/explode", {})
        assert status == 400 and "explode" in body["error"]
        status, body = await post("api/node/node0/kill", {})
        assert status == 409 and "not running" in body["error"]
        log.info("A partition of stopped nodes is still recorded (they get it when they start)")
        status, body = await post("api/partition", {"groups": "node0|node1"})
        assert status == 200 and body["entry"]["fault"] == "partition"
        assert (await post("api/heal", {}))[0] == 200
    log_lines = (cluster.directory / "nemesis.jsonl").read_text().splitlines()
    assert [json.loads(line)["fault"] for line in log_lines] == ["partition", "heal"]


def test_union_tree_window_is_bounded_at_16_nodes_and_3000_blocks():
    big, small = UnionTree(), UnionTree()
    for event in fork_history(nodes=16, blocks=3000):
        big.on_event(event)
    for event in fork_history(nodes=16, blocks=300):
        small.on_event(event)
    assert big.max_height == 3002 and len(big.blocks) > 3100
    window = big.window(None, 120)
    heights = [b["height"] for b in window["blocks"]]
    assert (window["top"], window["bottom"]) == (3002, 2883)
    assert min(heights) >= 2883 and max(heights) == 3002
    assert len(window["blocks"]) == sum(1 for b in big.blocks.values() if b.height >= 2883)
    assert len(window["blocks"]) < 150, "only the window's blocks, not the tree's"
    assert {b["lane"] for b in window["blocks"] if not b["canonical"]} >= {1}
    assert len(set(window["heads"].values())) == 2, "a live fork at the tip"
    scrolled = big.window(1500, 50)
    assert all(1451 <= b["height"] <= 1500 for b in scrolled["blocks"])
    capped = big.window(None, 10**6)
    assert capped["bottom"] == 3002 - 2000 + 1, "a client cannot ask for the whole tree"
    ratio = len(json.dumps(window)) / len(json.dumps(small.window(None, 120)))
    assert ratio < 1.2, f"the window's JSON grows with the tree: x{ratio:.2f}"


async def test_controls_come_from_the_action_table(cluster):
    """The page's buttons and the generic endpoint are the action table's: a verb declared
    there is offered and validated here with no dashboard code of its own."""
    collector = Collector(cluster)
    async with dashboard_site(cluster, collector, port=0) as url, aiohttp.ClientSession() as http:
        async with http.get(url + "api/actions") as resp:
            offered = await resp.json()
        assert offered["node"] == ["kill", "start", "restart", "pause", "resume"]
        assert {"partition", "heal", "link", "skew", "role", "miner"} <= set(offered["cluster"])
        assert "wait" not in offered["cluster"], "run-only verbs are not controls"
        async with http.get(url + "api/snapshot") as resp:
            assert (await resp.json())["actions"]["node"] == offered["node"]

        async def post(path: str, body: object) -> tuple[int, dict]:
            async with http.post(url + path, json=body) as resp:
                return resp.status, await resp.json()
        status, body = await post("api/action/link", {"loss": "150%"})
        assert status == 400 and "between 0% and 100%" in body["error"]
        status, body = await post("api/action/skew", {"node": "node9", "offset": "5s"})
        assert status == 400 and "no node 'node9'" in body["error"]
        status, body = await post("api/action/wait", {"height": 3})
        assert status == 400 and "bad action: 'wait'" in body["error"]
        status, body = await post("api/action/link", {"delay": "50ms", "from": [0]})
        assert status == 409 and "did not take" in body["error"], "no node runs to take it"
