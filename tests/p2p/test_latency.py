"""Blocks cross a line of 4 host processes (3 hops) on loopback, all of them and in order."""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import aiohttp

from tests.p2p.p2p_harness import msg_id_of

log = logging.getLogger("test")
REPO_ROOT = Path(__file__).resolve().parents[2]
BLOCKS = 200
BLOCK_BYTES = 50_000


async def start_process(name: str, peers: list[str]) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.p2p.latency_node", name, *peers,
        cwd=REPO_ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=15)
    assert line.startswith(b"READY "), f"{name} did not start: {line!r}"
    return proc, f"127.0.0.1:{int(line.split()[1])}"


async def stop_process(proc: asyncio.subprocess.Process) -> None:
    proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), timeout=5)
    except TimeoutError:
        proc.kill()
        await proc.wait()
    assert proc.returncode == 0


async def test_blocks_cross_a_line_of_4_processes_complete_and_in_order(net):
    origin = await net.start("origin")
    origin.add_topic("blocks")
    procs, addresses = [], []
    try:
        previous = origin.url
        for name in ["p1", "p2", "p3"]:  # a line: origin - p1 - p2 - p3
            proc, address = await start_process(name, [previous])
            procs.append(proc)
            addresses.append(address)
            previous = f"ws://{address}/p2p"
        async with aiohttp.ClientSession() as http:
            async def peer_count(address: str) -> int:
                async with http.get(f"http://{address}/peers") as resp:
                    return len(await resp.json())

            for address, expected in zip(addresses, [2, 2, 1]):
                deadline = time.monotonic() + 10
                while await peer_count(address) != expected:
                    assert time.monotonic() < deadline, f"{address} never got {expected} peers"
                    await asyncio.sleep(0.02)

            sent = {}
            for i in range(BLOCKS):
                payload = i.to_bytes(4, "big") + os.urandom(BLOCK_BYTES - 4)
                msg_id = msg_id_of(payload)
                sent[msg_id.hex()] = time.monotonic()
                origin.host.publish("blocks", msg_id, payload)
                await asyncio.sleep(0.005)  # pace the load: one block every 5 ms

            async def timings(address: str) -> dict:
                async with http.get(f"http://{address}/timings") as resp:
                    return await resp.json()

            last = {}
            deadline = time.monotonic() + 10
            while len(last) < BLOCKS:
                assert time.monotonic() < deadline, \
                    f"only {len(last)} of {BLOCKS} blocks reached p3"
                last = await timings(addresses[-1])
                await asyncio.sleep(0.02)
    finally:
        for proc in procs:
            await stop_process(proc)
    delays_ms = sorted((last[k] - sent[k]) * 1000 for k in sent)
    p50, p95 = statistics.median(delays_ms), delays_ms[int(0.95 * len(delays_ms)) - 1]
    # Timing is reported, never asserted: these machines are shared and noisy (scripts/bench.py
    # measures propagation). What must hold is that every block crossed all three hops, in order.
    log.info("3-hop propagation of %d-byte blocks: p50 %.2f ms, p95 %.2f ms, max %.2f ms",
             BLOCK_BYTES, p50, p95, delays_ms[-1])
    arrival_order = sorted(last, key=last.get)
    assert arrival_order == list(sent), "blocks overtook each other on a line of single links"
