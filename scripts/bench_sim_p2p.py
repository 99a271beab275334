#!/usr/bin/env python3
"""Simulated network benchmark: N real P2PHosts on the virtual-time loop (never asserted in tests).

Measures what the simulation backend's network layer costs, below any node: p2p/ hosts (handshake,
gossip, status) over p2p/memory_transport.py's MemoryNetwork with SimBlock's region latencies
(testnet/sim/network_model.py), on testnet/sim/loop.py. For each size N:

1. connect: every host dials K random peers (a random:K topology from the seed); wall time until
   every host has at least K/2 peers plus SETTLE_S virtual seconds, and the virtual time;
2. gossip: M messages of S bytes published from M hosts at once; wall time until every host
   validated every message, the virtual propagation time (last delivery), data frames and bytes
   carried, and frames per wall second (the scheduler's sustained rate at this size);
3. idle: V virtual seconds with nothing to do but status messages; wall time (the speed-up over
   real time of a quiet network);
4. resident memory (VmHWM) of the process, per host.

Usage: scripts/bench_sim_p2p.py [--sizes 100,400,1000] [--peers 8] [--messages 20]
                                [--size 1000] [--idle 100] [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2p import GossipMessage, P2PHost, Verdict  # noqa: E402
from p2p.memory_transport import MemoryNetwork, url_of  # noqa: E402
from testnet.sim.loop import run  # noqa: E402
from testnet.sim.network_model import RegionLinks, assign_regions  # noqa: E402

SETTLE_S = 5.0


def random_peers(names: list[str], k: int, rng: random.Random) -> dict[str, list[str]]:
    """Each host dials k others drawn at random (links may also come in from others)."""
    return {name: sorted(rng.sample([n for n in names if n != name], min(k, len(names) - 1)))
            for name in names}


async def bench_one(n: int, args: argparse.Namespace) -> dict:
    loop = asyncio.get_running_loop()
    names = [f"n{i}" for i in range(n)]
    network = MemoryNetwork(RegionLinks(assign_regions(names, args.seed), seed=args.seed),
                            seed=args.seed)
    dials = random_peers(names, args.peers, random.Random(f"{args.seed}/topology"))
    validated = 0

    async def validate(msg: GossipMessage) -> Verdict:
        nonlocal validated
        validated += 1
        return Verdict.accept()

    hosts = []
    for name in names:
        host = P2PHost(private_key=hashlib.sha256(name.encode()).digest(), chain_id="bench",
                       genesis_hash=bytes(32), peers=[url_of(p) for p in dials[name]],
                       rng=random.Random(f"{args.seed}/{name}"),
                       challenge_source=random.Random(f"{args.seed}/{name}/c").randbytes,
                       transport=network.transport(name), logger=logging.getLogger("p2p.bench"))
        host.add_topic("bench", validate)
        hosts.append(host)
    result: dict = {"nodes": n, "peers": args.peers}
    wall = time.perf_counter()
    async with asyncio.TaskGroup() as task_group:
        tasks = [task_group.create_task(host.run()) for host in hosts]
        # every host has at least half its dials through (mutual dials merge into one link),
        # then a few virtual seconds for the last handshakes: gossip floods the links that
        # exist when it is published, and a host with none would never hear it
        least = max(1, min(args.peers, n - 1) // 2)
        await wait_for(lambda: all(len(h.peers()) >= least for h in hosts), timeout=120)
        await asyncio.sleep(SETTLE_S)
        result["connect_wall_s"] = round(time.perf_counter() - wall, 2)
        result["connect_virtual_s"] = round(loop.time(), 3)
        result["mean_peers"] = round(sum(len(h.peers()) for h in hosts) / n, 2)

        frames_before = network.stats["frames"]
        bytes_before = network.stats["bytes"]
        start_virtual, wall = loop.time(), time.perf_counter()
        payload = b"x" * args.size
        for index in range(args.messages):
            msg_id = hashlib.sha256(f"msg-{index}".encode()).digest()
            hosts[index % n].publish("bench", msg_id, payload)
        expected = args.messages * (n - 1)
        await wait_for(lambda: validated >= expected, timeout=600)
        gossip_wall = time.perf_counter() - wall
        frames = network.stats["frames"] - frames_before
        result.update({
            "gossip_wall_s": round(gossip_wall, 2),
            "gossip_virtual_s": round(loop.time() - start_virtual, 3),
            "gossip_frames": frames,
            "gossip_mb": round((network.stats["bytes"] - bytes_before) / 1e6, 2),
            "frames_per_wall_s": round(frames / gossip_wall),
        })

        wall = time.perf_counter()
        await asyncio.sleep(args.idle)
        idle_wall = time.perf_counter() - wall
        result["idle_virtual_s"] = args.idle
        result["idle_wall_s"] = round(idle_wall, 2)
        result["idle_speedup"] = round(args.idle / idle_wall) if idle_wall > 0 else None
        result["timers_scheduled"] = loop.timers_scheduled  # type: ignore[attr-defined]
        for task in tasks:
            task.cancel()
    result["vm_hwm_mb"] = peak_rss_mb()
    return result


async def wait_for(predicate, timeout: float) -> None:
    """Poll in virtual time (every 10 ms) until `predicate()`; fail after `timeout` virtual s."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def peak_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,400")
    parser.add_argument("--peers", type=int, default=8)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--size", type=int, default=1000, help="gossip payload bytes")
    parser.add_argument("--idle", type=float, default=100.0, help="virtual seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    results = []
    for n in (int(size) for size in args.sizes.split(",")):
        result = run(bench_one(n, args))
        results.append(result)
        if not args.json:
            print(" ".join(f"{key}={value}" for key, value in (result or {}).items()), flush=True)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
