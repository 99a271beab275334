#!/usr/bin/env python3
"""Flood benchmark (issue 17 findings 1-4, issue 11): what one handshaked peer can make a node do.

A 4-node PoW cluster (`--block-interval 1`, about 4 transfers/s) runs; one attacker with a fresh
Ed25519 key completes a real handshake with node0 (p2p/handshake.py over a websocket, as any
client) and floods it for `--seconds` per kind:

- inv:        `inv` of 1024 random (unknown) block ids per frame;
- get_blocks: `get_blocks` requests whose locator is 128 unknown ids (the protocol maximum);
- duplicates: the push and the `inv` of a block node0 already has;
- unsolicited: `data`, `notfound` and `resp` nobody asked for;
- new_ids:    fresh peer ids from one address, each sending junk until it is refused.

Per kind it reports the attacker's achieved frame rate, the time until node0 closed the link (or
null), the bytes node0 sent to the attacker, honest block propagation p50/p95 during the flood
against a quiet baseline (from the nodes' events.jsonl, as scripts/bench.py measures it), node0's
RSS before / at its peak during / 60 s after the flood, and the lines node0's log gained.
`--cluster-up 48` instead times a 48-node local cluster from start to connected and agreeing.

Figures are for reports, never asserted in tests. Usage: scripts/bench_flood.py [--json] [--help]
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import click
from aiohttp import WSMsgType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench import feed_transactions, percentile  # noqa: E402

from consensus.pow import hash_from_hex  # noqa: E402
from p2p.errors import HandshakeError  # noqa: E402
from p2p.handshake import ChainParams, perform_handshake  # noqa: E402
from p2p.identity import Identity  # noqa: E402
from p2p.wire import PROTOCOL_VERSION, decode_envelope, encode_frame  # noqa: E402
from testnet import LocalCluster  # noqa: E402
from testnet.observe.node_resources import proc_kb  # noqa: E402

KINDS = ("inv", "get_blocks", "duplicates", "unsolicited", "new_ids")
BLOCK_TOPIC = "block"
MAX_FRAMES_PER_S = 10_000
RECOVERY_S = 60.0
TRANSFERS_PER_S = 4


def rss_kb(pid: int) -> int:
    return proc_kb(pid, "status", "VmRSS") or 0


def progress(message: str) -> None:
    click.echo(f"[{time.strftime('%H:%M:%S')}] {message}", err=True)


class WsChannel:
    """p2p's HandshakeChannel over a bare client websocket: the attacker's side of the link."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._sending: set[asyncio.Task] = set()

    def send(self, msg_type: str, body: dict) -> bool:
        task = asyncio.ensure_future(self.ws.send_bytes(encode_frame(msg_type, body)))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        return True

    async def next_handshake_frame(self) -> tuple[int, str, dict]:
        while True:
            msg = await self.ws.receive()
            if msg.type is not WSMsgType.BINARY:
                raise HandshakeError(f"link closed during handshake: {msg.type!r}",
                                     category="connection closed")
            version, msg_type, body = decode_envelope(msg.data, version=None)
            if msg_type in ("hello", "auth", "bye"):
                return version, msg_type, body


@dataclass
class Attacker:
    """One handshaked attacker link; a reader counts what node0 sends until it closes."""

    session: aiohttp.ClientSession
    ws: aiohttp.ClientWebSocketResponse
    identity: Identity
    bytes_in: int = 0
    frames_in: int = 0
    closed_at: float | None = None
    first_frames: list[tuple[str, dict]] = field(default_factory=list)
    reader: asyncio.Task | None = None

    @classmethod
    async def connect(cls, url: str, params: ChainParams, identity: Identity | None = None,
                      ) -> Attacker:
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(url, max_msg_size=0)
            identity = identity or Identity.from_seed(os.urandom(32))
            await perform_handshake(WsChannel(ws), identity, params, timeout=5.0)
        except BaseException:
            await session.close()
            raise
        attacker = cls(session, ws, identity)
        attacker.reader = asyncio.create_task(attacker._read())
        return attacker

    async def _read(self) -> None:
        while True:
            msg = await self.ws.receive()
            if msg.type is not WSMsgType.BINARY:
                self.closed_at = time.monotonic()
                return
            self.bytes_in += len(msg.data)
            self.frames_in += 1
            if len(self.first_frames) < 16:
                _, msg_type, body = decode_envelope(msg.data)
                self.first_frames.append((msg_type, body))

    @property
    def closed(self) -> bool:
        return self.closed_at is not None or self.ws.closed

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        await self.ws.close()
        await self.session.close()


Frames = Callable[[int], bytes]


async def flood(attacker: Attacker, make_frame: Frames, seconds: float) -> dict:
    """Send frames as fast as the link takes them (at most MAX_FRAMES_PER_S) until `seconds`
    pass or node0 closes the link."""
    start = time.monotonic()
    deadline = start + seconds
    sent = 0
    while time.monotonic() < deadline and not attacker.closed:
        batch_start = time.monotonic()
        for _ in range(100):
            try:
                await attacker.ws.send_bytes(make_frame(sent))
            except (ConnectionError, RuntimeError):
                attacker.closed_at = attacker.closed_at or time.monotonic()
                break
            sent += 1
        await asyncio.sleep(max(0.0, 100 / MAX_FRAMES_PER_S - (time.monotonic() - batch_start)))
    elapsed = time.monotonic() - start
    if attacker.closed_at is None:  # node0 may close right after our last frame
        try:
            await asyncio.wait_for(asyncio.shield(attacker.reader), 1.0)  # type: ignore[arg-type]
        except (TimeoutError, asyncio.CancelledError):
            pass
    disconnect = attacker.closed_at - start if attacker.closed_at is not None else None
    return {"frames_sent": sent, "rate_frames_per_s": round(sent / elapsed, 1),
            "disconnected_after_s": round(disconnect, 2) if disconnect is not None else None}


def frames_for(kind: str, known_block: tuple[bytes, bytes]) -> Frames:
    block_id, block = known_block
    if kind == "inv":
        return lambda n: encode_frame("inv", {"topic": BLOCK_TOPIC,
                                              "ids": [os.urandom(32) for _ in range(1024)]})
    if kind == "get_blocks":
        return lambda n: encode_frame("req", {"id": n, "method": "get_blocks", "body": {
            "locator": [os.urandom(32) for _ in range(128)], "limit": 500}})
    if kind == "duplicates":
        push = encode_frame("gossip", {"topic": BLOCK_TOPIC, "id": block_id, "payload": block})
        inv = encode_frame("inv", {"topic": BLOCK_TOPIC, "ids": [block_id]})
        return lambda n: push if n % 2 else inv
    if kind == "unsolicited":
        def unsolicited(n: int) -> bytes:
            if n % 3 == 0:
                return encode_frame("data", {"topic": BLOCK_TOPIC, "id": os.urandom(32),
                                             "payload": os.urandom(200)})
            if n % 3 == 1:
                return encode_frame("notfound", {"topic": BLOCK_TOPIC, "ids": [os.urandom(32)]})
            return encode_frame("resp", {"id": n, "ok": True, "body": {"blocks": []}})
        return unsolicited
    raise ValueError(f"unknown flood kind {kind!r}")


async def known_block(attacker: Attacker) -> tuple[bytes, bytes]:
    """node0's tip block (from its status), fetched over the attacker's own link to replay it."""
    tip = None
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        for msg_type, body in attacker.first_frames:
            if msg_type == "status" and tip is None:
                tip = body["tip"]
                await attacker.ws.send_bytes(
                    encode_frame("getdata", {"topic": BLOCK_TOPIC, "ids": [tip]}))
            elif msg_type == "data" and body["id"] == tip:
                return tip, body["payload"]
        await asyncio.sleep(0.05)
    raise RuntimeError("node0 did not serve its tip block")


async def flood_new_ids(url: str, params: ChainParams, seconds: float) -> dict:
    """Fresh peer ids from this address, 8 at a time, each sending junk until it is dropped."""
    admitted = refused = sent = 0
    deadline = time.monotonic() + seconds

    async def one_id() -> None:
        nonlocal admitted, refused, sent
        try:
            attacker = await Attacker.connect(url, params)
        except (HandshakeError, aiohttp.ClientError, OSError, TimeoutError):
            refused += 1
            return
        try:
            await asyncio.sleep(0.2)  # admitted peers get node0's status; refused ones a bye
            if attacker.closed or not any(t == "status" for t, _ in attacker.first_frames):
                refused += 1
                return
            admitted += 1
            junk = os.urandom(100)  # not msgpack: a malformed frame
            while not attacker.closed and time.monotonic() < deadline:
                await attacker.ws.send_bytes(junk)
                sent += 1
                await asyncio.sleep(0.001)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            await attacker.close()

    async def worker() -> None:
        while time.monotonic() < deadline:
            await one_id()

    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(8)))
    return {"ids_admitted": admitted, "ids_refused": refused, "frames_sent": sent,
            "rate_frames_per_s": round(sent / (time.monotonic() - start), 1)}


async def propagation(cluster: LocalCluster, start: float, end: float) -> dict:
    """Honest block propagation to all nodes for blocks mined in [start, end] (wall clock)."""
    accepted: dict[str, dict[str, float]] = {}
    origin: dict[str, float] = {}
    for i in range(cluster.size):
        for event in await cluster.events(i):
            if event["type"] != "block_accepted":
                continue
            accepted.setdefault(event["hash"], {})[event["node"]] = event["ts"]
            if event["peer"] == "local":
                origin[event["hash"]] = event["ts"]
    delays = sorted((max(seen.values()) - origin[h]) * 1000 for h, seen in accepted.items()
                    if h in origin and start <= origin[h] <= end and len(seen) == cluster.size)
    return {"blocks": len(delays), "p50_ms": round(percentile(delays, 50), 2) if delays else None,
            "p95_ms": round(percentile(delays, 95), 2) if delays else None}


class Rss:
    """Samples node0's VmRSS every half second while the flood runs; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._task: asyncio.Task | None = None

    def mb(self) -> float:
        return round(rss_kb(self.pid) / 1024, 1)

    def __enter__(self) -> Rss:
        async def sample() -> None:
            while True:
                self.peak_kb = max(self.peak_kb, rss_kb(self.pid))
                await asyncio.sleep(0.5)
        self._task = asyncio.create_task(sample())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


def log_lines(cluster: LocalCluster) -> tuple[int, int]:
    text = (cluster.directory / "node0" / "node.log").read_bytes()
    return text.count(b"\n"), len(text)


async def run_kind(cluster: LocalCluster, kind: str, seconds: float, baseline: dict,
                   recovery: float) -> dict:
    node = cluster.info["nodes"][0]
    params = chain_params(cluster)
    pid = cluster.backend.pid(0)
    assert pid is not None
    lines0, bytes0 = log_lines(cluster)
    rss = Rss(pid)
    before_mb = rss.mb()
    peers_before = (await cluster.status(0))["peers"]
    wall_start = time.time()
    progress(f"{kind}: flooding node0 for {seconds:g} s (RSS {before_mb} MB)")
    with rss:
        if kind == "new_ids":
            result = await flood_new_ids(node["p2p"], params, seconds)
        else:
            attacker = await Attacker.connect(node["p2p"], params)
            try:
                block = await known_block(attacker)
                result = await flood(attacker, frames_for(kind, block), seconds)
                result["bytes_out_to_attacker"] = attacker.bytes_in
                result["frames_out_to_attacker"] = attacker.frames_in
                result["reconnect_refused"] = await reconnect_refused(node["p2p"], params,
                                                                      attacker.identity)
            finally:
                await attacker.close()
        remaining = seconds - (time.time() - wall_start)
        if remaining > 0:  # keep measuring honest propagation for the whole window
            await asyncio.sleep(remaining)
    wall_end = time.time()
    during = await propagation(cluster, wall_start, wall_end)
    progress(f"{kind}: {result}; waiting {recovery:g} s for RSS to settle")
    await asyncio.sleep(recovery)
    lines1, bytes1 = log_lines(cluster)
    p95, base95 = during["p95_ms"], baseline["p95_ms"]
    return {
        "kind": kind, **result, "propagation_during": during,
        "p95_vs_baseline": round(p95 / base95, 2) if p95 and base95 else None,
        "rss_mb": {"before": before_mb, "peak_during": round(rss.peak_kb / 1024, 1),
                   "after_recovery": rss.mb(), "recovery_s": recovery},
        "peers_before": peers_before,
        "log_lines_gained": lines1 - lines0, "log_bytes_gained": bytes1 - bytes0,
    }


async def reconnect_refused(url: str, params: ChainParams, identity: Identity) -> bool | None:
    """After a disconnect: does the same peer id get back in? True if refused."""
    try:
        again = await Attacker.connect(url, params, identity)
    except (HandshakeError, aiohttp.ClientError, OSError, TimeoutError):
        return True
    try:
        await asyncio.sleep(0.3)
        return again.closed or not any(t == "status" for t, _ in again.first_frames)
    finally:
        await again.close()


def chain_params(cluster: LocalCluster) -> ChainParams:
    return ChainParams(chain_id=cluster.info["chain_id"],
                       genesis_hash=hash_from_hex(cluster.info["genesis"]),
                       version=PROTOCOL_VERSION)


async def bench_floods(kinds: list[str], seconds: float, recovery: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="flood-") as tmp:
        async with LocalCluster(nodes=4, directory=Path(tmp) / "c", block_interval_s=1,
                                hashrate=20_000, accounts=4) as cluster:
            stop = asyncio.Event()
            feeder = asyncio.create_task(feed_transactions(cluster, TRANSFERS_PER_S, stop))
            try:
                progress(f"baseline: {seconds:g} s without an attacker")
                start = time.time()
                await asyncio.sleep(seconds)
                baseline = await propagation(cluster, start, time.time())
                progress(f"baseline: {baseline}")
                results = [await run_kind(cluster, kind, seconds, baseline, recovery)
                           for kind in kinds]
                await cluster.converged(timeout=60)
            finally:
                stop.set()
                await feeder
    return {"baseline": baseline, "floods": results}


async def bench_cluster_up(nodes: int, timeout: float = 600.0) -> dict:
    """Seconds from starting `nodes` local PoW nodes (full mesh) until all answer /status, until
    each has all its topology peers, and until all agree on a head above genesis. Started by hand
    rather than `async with LocalCluster` so that a loaded machine gets more than its 30 s."""
    progress(f"cluster-up: starting {nodes} nodes")
    with tempfile.TemporaryDirectory(prefix="flood-up-") as tmp:
        cluster = LocalCluster(nodes=nodes, directory=Path(tmp) / "c", block_interval_s=2,
                               hashrate=max(500, 40_000 // nodes))
        try:
            start = time.monotonic()
            await asyncio.to_thread(cluster.start_all)
            await cluster.healthy(timeout=timeout)
            healthy = time.monotonic() - start
            await cluster.connected(timeout=timeout)
            connected = time.monotonic() - start
            await cluster.converged(timeout=timeout, min_height=1)
            agreed = time.monotonic() - start
        finally:
            await cluster.__aexit__(None, None, None)
    result = {"nodes": nodes, "healthy_s": round(healthy, 1), "connected_s": round(connected, 1),
              "agreed_s": round(agreed, 1)}
    progress(f"cluster-up: {result}")
    return result


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def run_all(kinds: list[str], seconds: float, recovery: float,
                  cluster_up: int | None) -> dict:
    report: dict = {"host": platform.node(), "cores": os.cpu_count(),
                    "load_before": load_average(), "seconds_per_flood": seconds}
    if kinds:
        report.update(await bench_floods(kinds, seconds, recovery))
    if cluster_up:
        report["load_before_cluster_up"] = load_average()
        report["cluster_up"] = await bench_cluster_up(cluster_up)
    report["load_after"] = load_average()
    return report


@click.command(help=__doc__)
@click.option("--seconds", default=30.0, show_default=True, help="Length of each flood.")
@click.option("--recovery", default=RECOVERY_S, show_default=True,
              help="Seconds after each flood before node0's RSS is read again.")
@click.option("--kinds", default=",".join(KINDS), show_default=True,
              help="Comma-separated flood kinds to run (empty: none).")
@click.option("--cluster-up", type=int, default=None,
              help="Also time a cluster of this many nodes coming up (e.g. 48).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def main(seconds: float, recovery: float, kinds: str, cluster_up: int | None,
         as_json: bool) -> None:
    chosen = [k for k in kinds.split(",") if k]
    unknown = set(chosen) - set(KINDS)
    if unknown:
        raise click.BadParameter(f"unknown kinds {sorted(unknown)}; choose from {KINDS}")
    report = asyncio.run(run_all(chosen, seconds, recovery, cluster_up))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"load average before {report['load_before']}, after {report['load_after']}")
    if "cluster_up" in report:
        click.echo(f"cluster up: {report['cluster_up']}")
    if "baseline" in report:
        click.echo(f"baseline propagation: {report['baseline']}")
        for row in report["floods"]:
            click.echo(json.dumps(row))

if __name__ == "__main__":
    main()
