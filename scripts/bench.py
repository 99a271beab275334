#!/usr/bin/env python3
"""Benchmarks, reported as ratios and percentiles in one run (never asserted in tests):

1. mining: the real miner process (`node.miner_worker`) in hashes/s per core against a bare hashlib
   double-SHA-256 loop in a process of its own (ratio; target >= 0.9), and two miners at once
   against one (both cores usable: ~2x on 2 cores).
2. propagation: time from a block's acceptance on the node that mined it until it is accepted on
   every node, for local 4- and 16-node clusters, under a load of transfers filling blocks with up
   to 100 transactions (p50/p95; target p95 < 10 ms). Node clocks are the same host clock.
3. memory: resident memory (VmRSS) and proportional set size (PSS, /proc/PID/smaps_rollup: shared
   pages split between the processes sharing them) of each idle node process, and the RSS of its
   miner process (target: node VmRSS <= 60 MB).
4. PoS: gossip attestations validated per second against the raw Ed25519 verify rate (ratio), and
   the time from a slot's start until its block is on every node of a 4-node network (p50/p95).
5. hybrid: gossip FFG votes validated per second against the raw Ed25519 verify rate (ratio;
   target >= 0.8), and the time from a block being mined until a checkpoint at or above it is
   finalized on every node of a 4-node network (p50/p95).
6. DPoS (`--only dpos`, scripts/bench_dpos.py): slot start -> block on all nodes (p50/p95), the
   head-to-LIB gap against the rule's prediction, and time-to-irreversible, for the eosio preset
   (21 producers x 12) on 4 and 16 nodes (`--sizes`).

Usage: scripts/bench.py [--json] [--quick] [--sizes 4,16] [--blocks 30] [--only hybrid|dpos]
       scripts/bench.py --only propagation --sizes 16 --trials 5   (each trial and the medians)
       scripts/bench.py --only memory [--nodes 4]                  (idle VmRSS and PSS per node)

The machine may be shared: every propagation trial and memory reading carries the 1-minute load
average before and after it, and repeated trials give the median with the range.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgpack

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from consensus.types import sign_transaction  # noqa: E402
from scripts.bench_dpos import bench_dpos, print_dpos  # noqa: E402
from testnet import LocalCluster  # noqa: E402
from testnet.observe.node_resources import process_figures  # noqa: E402
from testnet.waiting import wait_until  # noqa: E402

BARE_LOOP = """
import hashlib, struct, sys, time
sha = hashlib.sha256
header = bytearray(80)
pack_into = struct.Struct("<I").pack_into
n, deadline = 0, time.perf_counter() + float(sys.argv[1])
start = time.perf_counter()
while time.perf_counter() < deadline:
    for nonce in range(n, n + 20000):
        pack_into(header, 76, nonce)
        sha(sha(header).digest()).digest()
    n += 20000
print(n / (time.perf_counter() - start))
"""


def bare_rate(seconds: float) -> float:
    out = subprocess.run([sys.executable, "-c", BARE_LOOP, str(seconds)], capture_output=True,
                         text=True, check=True)
    return float(out.stdout)


def miner_rates(seconds: float, workers: int = 1) -> list[float]:
    """Hashes/s of `workers` real miner processes run at once, on a target nothing meets."""
    procs = [subprocess.Popen([sys.executable, "-m", "node.miner_worker"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, cwd=ROOT) for _ in range(workers)]
    job = {"job": 1, "header76": bytes(76), "target": bytes(32), "hashrate": None,
           "chunk": 20000}
    for p in procs:
        p.stdin.write(msgpack.packb(job))
        p.stdin.flush()
    time.sleep(seconds)
    rates = []
    for p in procs:
        p.stdin.write(msgpack.packb({"stop": True}))
        p.stdin.flush()
        p.stdin.close()
        data = p.stdout.read()
        p.wait()
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(data)
        reports = [m["hashes"] for m in unpacker]
        # The first report covers a partial second of warm-up; use the steady ones.
        steady = reports[1:] or reports
        rates.append(sum(steady) / max(1, len(steady)))
    return rates


def bench_mining(seconds: float) -> dict:
    bare, miner = [], []
    for _ in range(3):  # interleaved, best of three: the machine is shared and noisy
        bare.append(bare_rate(seconds))
        miner.append(miner_rates(seconds + 1.0)[0])
    both = miner_rates(seconds + 1.0, workers=2)
    best_miner, best_bare = max(miner), max(bare)
    return {
        "miner_hashes_per_s": round(best_miner), "bare_hashes_per_s": round(best_bare),
        "ratio": round(best_miner / best_bare, 3),
        "two_miners_hashes_per_s": round(sum(both)),
        "two_miner_scaling": round(sum(both) / best_miner, 2),
        "cores": os.cpu_count(),
    }


def load_average() -> float:
    """The 1-minute load average: how busy the shared machine was around a figure."""
    return round(os.getloadavg()[0], 2)


async def feed_transactions(cluster: LocalCluster, per_second: int, stop: asyncio.Event) -> int:
    """Transfers from every genesis account, round robin over the nodes."""
    accounts = cluster.accounts()
    keys = [bytes.fromhex(a["private_key"]) for a in accounts]
    nonces = [0] * len(keys)
    sent = 0
    recipient = bytes.fromhex(accounts[0]["account"])
    while not stop.is_set():
        started = time.monotonic()
        batch = []
        for _ in range(per_second):
            i = sent % len(keys)
            tx = sign_transaction(keys[i], recipient, 1, 1, nonces[i])
            nonces[i] += 1
            batch.append(cluster.client(sent % cluster.size).post_tx({"raw": tx.serialize().hex()}))
            sent += 1
        await asyncio.gather(*batch, return_exceptions=True)
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    return sent


async def bench_propagation(nodes: int, blocks: int, tx_per_block: int) -> dict:
    interval = 2
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        async with LocalCluster(nodes=nodes, directory=Path(tmp) / "c", block_interval_s=interval,
                                hashrate=max(2_000, 80_000 // nodes), accounts=nodes) as cluster:
            idle = await idle_memory(cluster)
            stop = asyncio.Event()
            feeder = asyncio.create_task(
                feed_transactions(cluster, tx_per_block // interval, stop))
            start_height = (await cluster.status(0))["height"]
            await cluster.wait_for_height(start_height + blocks, timeout=blocks * interval * 6)
            stop.set()
            sent = await feeder
            await cluster.converged(timeout=60)
            histories = [await cluster.events(i) for i in range(nodes)]
    accepted: dict[str, dict[str, float]] = {}
    origin: dict[str, float] = {}
    tx_counts: dict[str, int] = {}
    for history in histories:
        for event in history:
            if event["type"] != "block_accepted":
                continue
            accepted.setdefault(event["hash"], {})[event["node"]] = event["ts"]
            tx_counts[event["hash"]] = event["txs"] - 1
            if event["peer"] == "local":
                origin[event["hash"]] = event["ts"]
    delays = [max(seen.values()) - origin[h] for h, seen in accepted.items()
              if h in origin and len(seen) == nodes]
    delays_ms = sorted(d * 1000 for d in delays)
    return {
        "nodes": nodes, "blocks_measured": len(delays_ms), "transactions_sent": sent,
        "max_txs_in_block": max(tx_counts.values(), default=0),
        "mean_txs_per_block": round(statistics.mean(tx_counts.values()), 1) if tx_counts else 0,
        "p50_ms": round(percentile(delays_ms, 50), 2),
        "p95_ms": round(percentile(delays_ms, 95), 2),
        "max_ms": round(delays_ms[-1], 2) if delays_ms else None, "idle_memory": idle,
        "load_before": load_before, "load_after": load_average(),
    }


def propagation_trials(nodes: int, trials: int, blocks: int, tx_per_block: int) -> dict:
    """`trials` fresh clusters of `nodes`, one after the other: each trial's figures, and the
    median p50/p95 over the trials with their range (one trial on a shared machine can swing)."""
    runs = []
    for trial in range(trials):
        run = asyncio.run(bench_propagation(nodes, blocks, tx_per_block))
        print(f"  trial {trial + 1}/{trials}: {nodes} nodes, {run['blocks_measured']} blocks, "
              f"p50 {run['p50_ms']} ms, p95 {run['p95_ms']} ms, max {run['max_ms']} ms "
              f"(load {run['load_before']} -> {run['load_after']})", file=sys.stderr)
        runs.append(run)
    summary: dict = {"nodes": nodes, "trials": trials, "runs": runs}
    for key in ("p50_ms", "p95_ms", "max_ms"):
        values = [r[key] for r in runs if r[key] is not None]
        summary[f"median_{key}"] = round(statistics.median(values), 2) if values else None
        summary[f"range_{key}"] = [min(values), max(values)] if values else None
    return summary


async def idle_memory(cluster: LocalCluster) -> dict:
    """VmRSS and PSS of every node process (and its miner's RSS) a few seconds after start-up."""
    await asyncio.sleep(2.0)  # let start-up garbage settle before reading RSS
    figures = [process_figures(cluster.backend.pid(i) or 0) for i in range(cluster.size)]
    rss = [f["rss_kb"] / 1024 for f in figures if f["rss_kb"]]
    pss = [f["pss_kb"] / 1024 for f in figures if f["pss_kb"]]
    return {"node_rss_mb": [round(x, 1) for x in rss], "node_pss_mb": [round(x, 1) for x in pss],
            "node_rss_mb_max": round(max(rss), 1),
            "node_rss_mb_mean": round(statistics.mean(rss), 1),
            "node_pss_mb_max": round(max(pss), 1) if pss else None,
            "node_pss_mb_mean": round(statistics.mean(pss), 1) if pss else None,
            "miner_rss_mb_max": round(max(f["children_rss_kb"] for f in figures) / 1024, 1),
            "load": load_average()}


async def bench_idle_memory(nodes: int) -> dict:
    """Idle nodes: a PoW cluster without transfers, its memory read once the nodes are connected."""
    with tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp:
        async with LocalCluster(nodes=nodes, directory=Path(tmp) / "c", block_interval_s=2,
                                hashrate=max(2_000, 80_000 // nodes), accounts=nodes) as cluster:
            return {"nodes": nodes, **await idle_memory(cluster)}


def bench_attestations(validators: int = 1024) -> dict:
    """Gossip attestations fully validated per second (`PosChain.on_attestation`: duty, target,
    signature...) against the raw Ed25519 verify rate of `cryptography` on the same messages."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from consensus.keys import derive_private_key, public_key
    from consensus.pos.chain import PosChain
    from consensus.pos.spec import PosSpec
    keys = [derive_private_key("bench", f"v/{i}") for i in range(validators)]
    spec = PosSpec(genesis_time_ms=0, validators=tuple((public_key(k), 32) for k in keys))
    chain = PosChain(spec)
    atts = []
    for slot in range(spec.slots_per_epoch):
        for index in chain.get_attesters(slot):
            atts.append(chain.make_attestation(slot, index, keys[index]))
    now_ms = spec.slot_start_ms(spec.slots_per_epoch - 1) + 100
    started = time.perf_counter()
    accepted = sum(chain.on_attestation(att, now_ms).outcome == "accept" for att in atts)
    pipeline = len(atts) / (time.perf_counter() - started)
    pubs = [Ed25519PublicKey.from_public_bytes(spec.validators[a.validator_index][0]) for a in atts]
    messages = [a.signing_root for a in atts]
    started = time.perf_counter()
    for pub, att, message in zip(pubs, atts, messages):
        pub.verify(att.signature, message)
    raw = len(atts) / (time.perf_counter() - started)
    return {"attestations": len(atts), "accepted": accepted,
            "verified_per_s": round(pipeline), "raw_ed25519_verify_per_s": round(raw),
            "ratio": round(pipeline / raw, 3)}


async def bench_pos_propagation(nodes: int = 4, slots: int = 32) -> dict:
    """Time from a slot's start until its block is accepted on every node (p50/p95)."""
    with tempfile.TemporaryDirectory(prefix="bench-pos-") as tmp:
        async with LocalCluster(nodes=nodes, consensus="pos", directory=Path(tmp) / "c") as c:
            start = (await c.status(0))["slot"]
            await wait_until(_slot_reached(c, start + slots), slots * 2 + 30, "slots to pass")
            histories = [await c.events(i) for i in range(nodes)]
    delays: dict[str, list[float]] = {}
    for history in histories:
        for event in history:
            if event["type"] == "block_accepted":
                delays.setdefault(event["hash"], []).append(event["delay_ms"])
    complete = sorted(max(d) for d in delays.values() if len(d) == nodes)
    return {"nodes": nodes, "blocks_measured": len(complete),
            "p50_ms": round(percentile(complete, 50), 2),
            "p95_ms": round(percentile(complete, 95), 2)}


def _slot_reached(cluster: LocalCluster, slot: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        status = await cluster.status(0)
        return bool(status and status["slot"] >= slot)
    return check


def bench_votes(validators: int = 1024, trials: int = 9) -> dict:
    """Gossip votes fully validated per second (`Operations.on_vote`: epoch, signature, the
    slashing detector, `_votable`, the pool), each vote fresh from its wire bytes, against the
    raw Ed25519 verify rate of `cryptography` on the same signatures and messages, alternating
    every 32 votes so the shared machine's load hits both alike; the median of the trials (a
    fresh node each), with the range."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from consensus.block_builder import solve
    from consensus.hybrid.builder import build_block, make_vote
    from consensus.hybrid.chain import HybridChain
    from consensus.hybrid.operations import CasperPool, Operations
    from consensus.hybrid.spec import COIN, HybridSpec
    from consensus.hybrid.types import HybridVote
    from consensus.keys import derive_private_key, public_key
    keys = [derive_private_key("bench", f"v/{i}") for i in range(validators)]
    spec = HybridSpec(genesis_bits=0x207FFFFF,
                      validators=tuple((public_key(k), 32 * COIN) for k in keys))

    def node_in_epoch_1() -> Operations:
        chain = HybridChain(spec)
        while chain.head.height < spec.epoch_length:     # into epoch 1: votes 0 -> 1
            block = solve(build_block(chain, CasperPool(), bytes(32), (), chain.head.time + 1))
            chain.on_block(block, block.header.time)
        return Operations(chain)
    state = node_in_epoch_1().next_state()
    wire = [make_vote(state, i, keys[i]).serialize() for i in range(validators)]
    pubs = [Ed25519PublicKey.from_public_bytes(pk) for pk, _deposit in spec.validators]
    chunk = 32      # pipeline and raw alternate every 32 votes: load bursts hit both alike
    ratios, rates, raw_rates = [], [], []
    accepted = 0
    for _ in range(trials):
        ops = node_in_epoch_1()
        votes = [HybridVote.deserialize(raw_vote) for raw_vote in wire]
        pipeline_s = raw_s = 0.0
        accepted = 0
        for start in range(0, len(votes), chunk):
            part = votes[start:start + chunk]
            started = time.perf_counter()
            accepted += sum(ops.on_vote(vote).outcome == "accept" for vote in part)
            pipeline_s += time.perf_counter() - started
            signed = [(pubs[v.validator_index], v.signature, v.signing_root) for v in part]
            started = time.perf_counter()
            for pub, signature, message in signed:
                pub.verify(signature, message)
            raw_s += time.perf_counter() - started
        ratios.append(raw_s / pipeline_s)
        rates.append(len(votes) / pipeline_s)
        raw_rates.append(len(votes) / raw_s)
    return {"votes": validators, "trials": trials, "accepted": accepted,
            "verified_per_s": round(statistics.median(rates)),
            "raw_ed25519_verify_per_s": round(statistics.median(raw_rates)),
            "ratio": round(statistics.median(ratios), 3),
            "ratio_min_max": [round(min(ratios), 3), round(max(ratios), 3)]}


async def bench_hybrid_finality(nodes: int = 4, epochs: int = 12) -> dict:
    """Per main-chain block: from its acceptance on the node that mined it until every node has
    finalized a checkpoint at or above its height (one chain: the checks compare roots)."""
    with tempfile.TemporaryDirectory(prefix="bench-hybrid-") as tmp:
        async with LocalCluster(nodes=nodes, consensus="hybrid", directory=Path(tmp) / "c",
                                block_interval_s=1) as c:
            async def finalized() -> bool:
                statuses = await c.statuses()
                return all(s and s["finalized"]["epoch"] >= epochs for s in statuses)
            await wait_until(finalized, epochs * 5 * 6 + 60, f"epoch {epochs} finalized")
            histories = [await c.events(i) for i in range(nodes)]
            epoch_length = c.manifest.epoch_length
    mined: dict[int, float] = {}
    final_at: list[list[tuple[int, float]]] = []
    for history in histories:
        heights = []
        for event in history:
            if event["type"] == "block_accepted" and event["peer"] == "local" and \
                    event["main_chain"]:
                mined.setdefault(event["height"], event["ts"])
            elif event["type"] == "finalized":
                heights.append((event["height"], event["ts"]))
        final_at.append(heights)
    latencies = []
    for height, t0 in mined.items():
        per_node = [min((ts for h, ts in node if h >= height), default=None)
                    for node in final_at]
        if all(t is not None for t in per_node):
            latencies.append(max(per_node) - t0)    # type: ignore[type-var]
    latencies.sort()
    return {"nodes": nodes, "epoch_length": epoch_length, "blocks_measured": len(latencies),
            "p50_s": round(percentile(latencies, 50), 2),
            "p95_s": round(percentile(latencies, 95), 2)}


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="shorter runs (noisier figures)")
    parser.add_argument("--sizes", default="4,16", help="cluster sizes for propagation")
    parser.add_argument("--blocks", type=int, default=30, help="blocks per propagation run")
    parser.add_argument("--txs", type=int, default=100, help="transactions per block interval")
    parser.add_argument("--only", choices=("hybrid", "propagation", "memory", "dpos"),
                        default=None, help="run one section only")
    parser.add_argument("--trials", type=int, default=1,
                        help="--only propagation: fresh clusters per size (median and range)")
    parser.add_argument("--nodes", type=int, default=4, help="--only memory: cluster size")
    parser.add_argument("--preset", default="eosio", help="dpos: the preset to measure")
    args = parser.parse_args()
    if args.only == "propagation":
        sizes = [int(s) for s in args.sizes.split(",")]
        blocks = 10 if args.quick else args.blocks
        print(json.dumps({"propagation": [propagation_trials(size, args.trials, blocks, args.txs)
                                          for size in sizes]}, indent=2))
        return
    if args.only == "memory":
        print(json.dumps({"idle_memory": asyncio.run(bench_idle_memory(args.nodes))}, indent=2))
        return
    if args.only == "dpos":
        dpos = [asyncio.run(bench_dpos(int(n), args.preset, 2 if args.quick else 4))
                for n in args.sizes.split(",")]
        if args.json:
            print(json.dumps({"dpos": dpos}, indent=2))
        else:
            print_dpos(dpos)
        return
    if args.only == "hybrid":
        hybrid = {"votes": bench_votes(), "mined_to_finalized": asyncio.run(
            bench_hybrid_finality(4, 6 if args.quick else 12))}
        print(json.dumps({"hybrid": hybrid}, indent=2))
        return
    seconds = 1.0 if args.quick else 3.0
    blocks = 10 if args.quick else args.blocks
    result = {"mining": bench_mining(seconds), "propagation": []}
    for size in (int(s) for s in args.sizes.split(",")):
        result["propagation"].append(asyncio.run(bench_propagation(size, blocks, args.txs)))
    result["pos"] = {"attestations": bench_attestations(),
                     "slot_to_all_nodes": asyncio.run(bench_pos_propagation(
                         4, 16 if args.quick else 32))}
    result["hybrid"] = {"votes": bench_votes(),
                        "mined_to_finalized": asyncio.run(bench_hybrid_finality(
                            4, 6 if args.quick else 12))}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    m = result["mining"]
    print("mining (per core)")
    print(f"  miner process   {m['miner_hashes_per_s']:>12,} H/s")
    print(f"  bare hashlib    {m['bare_hashes_per_s']:>12,} H/s")
    print(f"  ratio           {m['ratio']:>12}   (target >= 0.9)")
    print(f"  two miners      {m['two_miners_hashes_per_s']:>12,} H/s  = {m['two_miner_scaling']}x "
          f"one miner on {m['cores']} cores")
    print("block propagation to all nodes (blocks with transfers; target p95 < 10 ms)")
    print(f"  {'nodes':>5} {'blocks':>6} {'max txs':>7} {'mean txs':>8} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'max ms':>8} {'node RSS MB (max)':>18} {'PSS MB (max)':>12} "
          f"{'miner RSS MB':>12}")
    for p in result["propagation"]:
        mem = p["idle_memory"]
        print(f"  {p['nodes']:>5} {p['blocks_measured']:>6} {p['max_txs_in_block']:>7} "
              f"{p['mean_txs_per_block']:>8} {p['p50_ms']:>8} {p['p95_ms']:>8} {p['max_ms']:>8} "
              f"{mem['node_rss_mb_max']:>18} {mem['node_pss_mb_max']!s:>12} "
              f"{mem['miner_rss_mb_max']:>12}")
    print("idle node memory target: <= 60 MB")
    a = result["pos"]["attestations"]
    print("PoS")
    print(f"  attestations validated  {a['verified_per_s']:>8,}/s  vs raw Ed25519 verify "
          f"{a['raw_ed25519_verify_per_s']:,}/s  ratio {a['ratio']}  ({a['attestations']} votes)")
    p = result["pos"]["slot_to_all_nodes"]
    print(f"  slot start -> block on all {p['nodes']} nodes: p50 {p['p50_ms']} ms, "
          f"p95 {p['p95_ms']} ms ({p['blocks_measured']} blocks)")
    v = result["hybrid"]["votes"]
    print("hybrid (PoW + Casper FFG)")
    print(f"  votes validated  {v['verified_per_s']:>8,}/s  vs raw Ed25519 verify "
          f"{v['raw_ed25519_verify_per_s']:,}/s  ratio {v['ratio']}  (target >= 0.8; "
          f"{v['votes']} votes)")
    f = result["hybrid"]["mined_to_finalized"]
    print(f"  block mined -> finalized on all {f['nodes']} nodes: p50 {f['p50_s']} s, "
          f"p95 {f['p95_s']} s ({f['blocks_measured']} blocks, {f['epoch_length']}-block "
          f"epochs, 1 s blocks)")


if __name__ == "__main__":
    main()
