"""Observers of a real node's `/events` stream: one that stops reading gets a bounded queue (the
node drops what does not fit, counts it in its metrics, keeps serving everyone else, and tells the
slow observer how much it missed when it reads again); an open stream does not keep a node that
is told to stop from stopping cleanly."""

from __future__ import annotations

import asyncio
import json
import re

import aiohttp
import pytest

from node.events import SUBSCRIBER_QUEUE_EVENTS
from testnet import LocalCluster
from testnet.waiting import wait_until

# Faults naming 40 (made-up) peers: ~3 KB events, so the socket buffers (a few MB on loopback)
# fill after ~1000 of them and the node's queue for the stalled reader after 2000 more.
PEERS = [f"{i:064x}" for i in range(40)]


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name}\{{[^}}]*\}} ([0-9.e+]+)$", text, re.M)
    assert found, f"{name} missing from /metrics"
    return float(found.group(1))


async def read_until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> list[dict]:
    events = []
    while True:
        msg = await ws.receive(timeout=20)
        assert msg.type == aiohttp.WSMsgType.TEXT, f"stream ended before {kind}: {msg}"
        events.append(json.loads(msg.data))
        if events[-1]["type"] == kind:
            return events


@pytest.mark.slow
async def test_an_observer_that_stops_reading_is_bounded_and_told_what_it_missed(tmp_path):
    async with LocalCluster(nodes=1, directory=tmp_path / "c", block_interval_s=30,
                            hashrate=20_000) as cluster:
        api = cluster.client(0).api
        async with aiohttp.ClientSession() as stalled_session, aiohttp.ClientSession() as session:
            stalled = await stalled_session.ws_connect(f"{api}/events")
            reader = await session.ws_connect(f"{api}/events")
            first = (await cluster.status(0))["events_seq"] + 1
            got: list[dict] = []

            async def keep_reading() -> None:
                async for msg in reader:
                    got.append(json.loads(msg.data))
            reading = asyncio.create_task(keep_reading())

            async def metrics() -> str:
                async with session.get(f"{api}/metrics") as resp:
                    return await resp.text()

            # The stalled observer never reads while faults are applied, event after event.
            emitted = queued_max = 0
            while metric(await metrics(), "testnet_events_missed_total") < 50:
                assert emitted < 20_000, "the node never dropped events for a stalled reader"
                for _ in range(50):
                    await cluster.admin(0, "POST", "/admin/partition", {"peers": PEERS})
                emitted += 50
                queued_max = max(queued_max, metric(await metrics(), "testnet_event_queue_max"))
            text = await metrics()
            assert queued_max <= SUBSCRIBER_QUEUE_EVENTS
            assert metric(text, "testnet_event_queue_max") == SUBSCRIBER_QUEUE_EVENTS
            assert metric(text, "testnet_event_subscribers") == 2
            await cluster.admin(0, "DELETE", "/admin/partition")
            last = (await cluster.status(0))["events_seq"]
            missed = metric(await metrics(), "testnet_events_missed_total")

            # The observer that kept reading lost nothing.
            await wait_until(lambda: bool(got) and got[-1]["seq"] >= last, 30,
                             f"the reading observer at event {last}",
                             last=lambda: got[-1]["seq"] if got else "nothing")
            reading.cancel()
            assert [e["seq"] for e in got][: last - first + 1] == list(range(first, last + 1))

            # The stalled one reads again: everything up to the gap in order, then, without
            # waiting for another event, the notice; then the stream goes on after the gap.
            before = await read_until(stalled, "events_missed")
            notice = before.pop()
            assert [e["seq"] for e in before] == list(range(first, first + len(before)))
            assert notice["count"] == missed
            assert notice["seq"] == before[-1]["seq"] + notice["count"]
            await cluster.admin(0, "POST", "/admin/partition", {"peers": PEERS[:1]})
            after = await read_until(stalled, "fault_applied")
            assert after[0]["seq"] == notice["seq"] + 1
            assert (await cluster.status(0))["events_seq"] >= last, "the node kept running"


@pytest.mark.slow
async def test_an_open_event_stream_does_not_hold_up_a_clean_stop(tmp_path):
    """SIGTERM must shut the node down cleanly even while an observer follows it (the stop
    would otherwise wait out its timeout and SIGKILL); the observer is told why it ends."""
    async with LocalCluster(nodes=1, directory=tmp_path / "c", block_interval_s=30,
                            hashrate=20_000) as cluster:
        async with aiohttp.ClientSession() as session:
            stream = await session.ws_connect(f"{cluster.client(0).api}/events")
            await asyncio.to_thread(cluster.stop, 0)
            closed = await stream.receive(timeout=20)
            assert closed.type == aiohttp.WSMsgType.CLOSE
            assert closed.data == aiohttp.WSCloseCode.GOING_AWAY
        log_text = (cluster.directory / "node0" / "node.log").read_text()
        assert "node node0 stopping" in log_text, "the node ran its shutdown, not a SIGKILL"
