"""A standalone p2p host process for the latency test: relays topic "blocks", records arrivals.

Usage: python -m tests.p2p.latency_node NAME PEER_URL...
Prints "READY <port>" once serving; GET /timings returns {msg_id hex: arrival time.monotonic()}.
Runs until killed (SIGTERM) or stdin closes.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time

from aiohttp import web

from p2p import GossipMessage, P2PHost, Verdict
from tests.p2p.p2p_harness import CHAIN_ID, GENESIS, seed_for


async def main(name: str, peers: list[str]) -> None:
    arrivals: dict[str, float] = {}

    async def validate(msg: GossipMessage) -> Verdict:
        arrivals[msg.msg_id.hex()] = time.monotonic()
        # [REJECT] the id is the hash of the payload (what a block validator checks first)
        if hashlib.sha256(msg.payload).digest() != msg.msg_id:
            return Verdict.reject("id is not the payload hash")
        return Verdict.accept()

    host = P2PHost(private_key=seed_for(name), chain_id=CHAIN_ID, genesis_hash=GENESIS, peers=peers)
    host.add_topic("blocks", validate)
    async def timings(request: web.Request) -> web.Response:
        return web.json_response(arrivals)

    async def peers_(request: web.Request) -> web.Response:
        return web.json_response([p.peer_id for p in host.peers()])

    app = web.Application()
    app.router.add_get("/p2p", host.handle_inbound)
    app.router.add_get("/timings", timings)
    app.router.add_get("/peers", peers_)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    async with asyncio.TaskGroup() as task_group:
        run = task_group.create_task(host.run())
        await host.started.wait()
        print(f"READY {runner.addresses[0][1]}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes
        run.cancel()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
