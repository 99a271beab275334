"""Test harness for p2p/: real hosts on 127.0.0.1 websockets, a raw-frame peer, and waits.

`TestNetwork` starts P2PHosts each on its own aiohttp app (as node/ mounts them), wires them
into lines and meshes, and stops them all at teardown; `split_network`/`join_network` partition
and heal them with link rules. `RawPeer` speaks frames by hand for bad input and protocol corner
cases. `wait_until` waits for a condition with a deadline and names the condition when it times
out -- tests never sleep to let the network settle.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from p2p import ChainStatus, GossipMessage, LinkRule, P2PHost, Verdict
from p2p.handshake import compute_auth_message
from p2p.identity import Identity
from p2p.wire import PROTOCOL_VERSION, decode_envelope, encode_frame
from testnet import waiting

CHAIN_ID = "p2p-test"
GENESIS = hashlib.sha256(b"genesis").digest()


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0,
                     what: str | None = None) -> None:
    """Wait until `predicate()` is true; fail naming the predicate after `timeout` seconds (the
    orchestrator's one wait, on this loop's clock)."""
    await waiting.wait_until(predicate, timeout, what or _describe(predicate), interval=0.005)


def _describe(predicate: Callable[[], bool]) -> str:
    try:
        return inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        return repr(predicate)


class FakeClock:
    """A host clock that moves only when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def seed_for(name: str) -> bytes:
    return hashlib.sha256(f"key-{name}".encode()).digest()


def msg_id_of(payload: bytes) -> bytes:
    return hashlib.sha256(payload).digest()


@dataclass
class TestNode:
    name: str
    host: P2PHost
    runner: web.AppRunner
    port: int
    task: asyncio.Task
    received: dict[str, list[GossipMessage]] = field(default_factory=dict)
    verdicts: dict[str, Callable[[GossipMessage], Verdict]] = field(default_factory=dict)

    __test__ = False  # not a pytest test class

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/p2p"

    @property
    def peer_id(self) -> str:
        return self.host.peer_id

    def peer_ids(self) -> set[str]:
        return {p.peer_id for p in self.host.peers()}

    def add_topic(self, topic: str, *, announce: bool = False, fetch: Any = None,
                  verdict: Callable[[GossipMessage], Verdict] | None = None,
                  **options: Any) -> None:
        """Register a topic whose validator records each message and answers `verdict` (accept)."""
        self.received[topic] = []
        self.verdicts[topic] = verdict or (lambda msg: Verdict.accept())

        async def validate(msg: GossipMessage) -> Verdict:
            self.received[topic].append(msg)
            return self.verdicts[topic](msg)

        self.host.add_topic(topic, validate, announce=announce, fetch=fetch, **options)

    def count(self, topic: str, msg_id: bytes) -> int:
        return sum(1 for m in self.received[topic] if m.msg_id == msg_id)


class TestNetwork:
    """Starts hosts on free loopback ports and stops them all at the end."""

    __test__ = False

    def __init__(self) -> None:
        self.nodes: list[TestNode] = []

    async def start(self, name: str, *, port: int = 0, peers: list[str] = (),
                    seed: bytes | None = None, chain_id: str = CHAIN_ID, genesis: bytes = GENESIS,
                    **host_kwargs: Any) -> TestNode:
        host_kwargs.setdefault("rng", random.Random(name))
        host = P2PHost(
            private_key=seed or seed_for(name),
            chain_id=chain_id,
            genesis_hash=genesis,
            peers=list(peers),
            logger=logging.getLogger(f"p2p.{name}"),
            **host_kwargs,
        )
        app = web.Application()
        app.router.add_get("/p2p", host.handle_inbound)
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        bound_port = runner.addresses[0][1]
        task = asyncio.create_task(host.run(), name=f"p2p-{name}")
        await host.started.wait()
        node = TestNode(name=name, host=host, runner=runner, port=bound_port, task=task)
        self.nodes.append(node)
        return node

    async def stop(self, node: TestNode) -> None:
        """Cancel the host's run() (it closes its connections), then stop its web server."""
        if node in self.nodes:
            self.nodes.remove(node)
        node.task.cancel()
        try:
            await node.task
        except asyncio.CancelledError:
            pass
        await node.runner.cleanup()

    async def stop_all(self) -> None:
        for node in list(self.nodes):
            await self.stop(node)

    async def line(self, names: list[str], **kwargs: Any) -> list[TestNode]:
        """Start hosts and connect each to the next: names[0] - names[1] - ..."""
        nodes = [await self.start(name, **kwargs) for name in names]
        for left, right in zip(nodes, nodes[1:]):
            left.host.add_peer(right.url)
        for i, node in enumerate(nodes):
            expected = {n.peer_id for n in nodes[max(0, i - 1):i + 2] if n is not node}
            await wait_until(lambda node=node, expected=expected: node.peer_ids() == expected,
                             what=f"{node.name} connected to its line neighbours")
        return nodes

    async def mesh(self, names: list[str], **kwargs: Any) -> list[TestNode]:
        """Start hosts and connect every pair (each pair dialed from one side)."""
        nodes = [await self.start(name, **kwargs) for name in names]
        for i, node in enumerate(nodes):
            for other in nodes[i + 1:]:
                node.host.add_peer(other.url)
        for node in nodes:
            expected = {n.peer_id for n in nodes if n is not node}
            await wait_until(lambda node=node, expected=expected: node.peer_ids() == expected,
                             what=f"{node.name} connected to the whole mesh")
        return nodes


class RawPeer:
    """A peer driven by hand, frame by frame, over a real websocket."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse,
                 identity: Identity) -> None:
        self.session = session
        self.ws = ws
        self.identity = identity

    @classmethod
    async def connect(cls, url: str, *, name: str = "raw",
                      max_msg_size: int = 64 * 1024 * 1024) -> RawPeer:
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(url, max_msg_size=max_msg_size)
        except BaseException:
            await session.close()
            raise
        return cls(session, ws, Identity.from_seed(seed_for(name)))

    @property
    def peer_id(self) -> str:
        return self.identity.peer_id

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()

    async def send(self, msg_type: str, body: dict, *, version: int = PROTOCOL_VERSION) -> None:
        await self.ws.send_bytes(encode_frame(msg_type, body, version=version))

    def write_and_hang_up(self, data: bytes) -> None:
        """Write raw websocket bytes (client frames are masked) and close the TCP connection at
        once, without a close handshake: a peer that vanishes mid-conversation."""
        transport = self.ws._response.connection.transport  # aiohttp has no public handle on it
        transport.write(data)
        transport.close()

    async def recv(self, timeout: float = 5.0) -> tuple[str, dict]:
        """Next frame; raises AssertionError if the link closes instead."""
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type is WSMsgType.BINARY, \
            f"expected a binary frame, got {msg.type!r} {msg.data!r}"
        _, msg_type, body = decode_envelope(msg.data)
        return msg_type, body

    async def recv_type(self, wanted: str, timeout: float = 5.0) -> dict:
        """Skip frames (status, ...) until one of type `wanted` arrives."""
        while True:
            msg_type, body = await self.recv(timeout)
            if msg_type == wanted:
                return body

    async def wait_closed(self, timeout: float = 5.0) -> tuple[int | None, list[tuple[str, dict]]]:
        """Read until the host closes the link; returns (close code, frames seen meanwhile)."""
        frames = []
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.ws.receive()
                if msg.type is WSMsgType.BINARY:
                    _, msg_type, body = decode_envelope(msg.data)
                    frames.append((msg_type, body))
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                                  WSMsgType.ERROR):
                    return self.ws.close_code, frames

    async def handshake(self, *, chain_id: str = CHAIN_ID, genesis: bytes = GENESIS) -> dict:
        """Complete the handshake as a well-behaved peer; returns the host's hello."""
        hello = await self.recv_type("hello")
        await self.send("hello", {
            "chain_id": chain_id, "genesis": genesis, "version": PROTOCOL_VERSION,
            "pubkey": self.identity.pubkey, "challenge": b"\x01" * 32,
        })
        sig = self.identity.sign(compute_auth_message(hello["challenge"], self.identity.pubkey))
        await self.send("auth", {"sig": sig})
        await self.recv_type("auth")
        return hello


class ListChain:
    """A toy SyncSource: a list of byte strings; score = length; ids are sha256 of the items."""

    def __init__(self, items: list[bytes] | None = None) -> None:
        self.items = list(items or [])
        self.ingested_batches: list[int] = []

    def status(self) -> ChainStatus:
        tip = msg_id_of(self.items[-1]) if self.items else b""
        return ChainStatus(tip=tip, score=len(self.items), height=len(self.items))

    def locator(self) -> list[bytes]:
        # tip-first, dense for 10 entries then exponentially sparser, like Bitcoin's
        indexes, step, i = [], 1, len(self.items) - 1
        while i >= 0:
            indexes.append(i)
            if len(indexes) >= 10:
                step *= 2
            i -= step
        return [msg_id_of(self.items[i]) for i in indexes]

    def blocks_after(self, locator: list[bytes], limit: int) -> list[bytes]:
        positions = {msg_id_of(item): n for n, item in enumerate(self.items)}
        start = next((positions[i] + 1 for i in locator if i in positions), 0)
        return self.items[start:start + limit]

    async def ingest(self, peer_id: str, payloads: list[bytes]) -> None:
        self.ingested_batches.append(len(payloads))
        for payload in payloads:
            expected = f"item-{len(self.items)}".encode()
            if payload == expected:
                self.items.append(payload)


def make_items(n: int, start: int = 0) -> list[bytes]:
    return [f"item-{i}".encode() for i in range(start, start + n)]


def masked_ping(payload: bytes = b"") -> bytes:
    """A websocket PING frame as a client sends it (RFC 6455 5.5.2; all-zero mask)."""
    assert len(payload) < 126
    return bytes([0x89, 0x80 | len(payload)]) + b"\x00" * 4 + payload


def log_problems(caplog, logger: str | None = None) -> list[str]:
    """Records at ERROR or above, or carrying a traceback, of `logger` (and its children)."""
    return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records
            if (r.levelno >= logging.ERROR or r.exc_info)
            and (logger is None or r.name == logger or r.name.startswith(logger + "."))]


def split_network(groups: list[list[TestNode]]) -> None:
    """Partition the hosts into `groups`: every host blocks both directions with every host of
    another group (a Jepsen "complete grudge"), so their links close and stay closed."""
    for group in groups:
        for node in group:
            for other_group in groups:
                if other_group is not group:
                    for other in other_group:
                        node.host.set_link_rule(other.peer_id, LinkRule(block=True))


def join_network(nodes: list[TestNode]) -> None:
    """Heal every link fault on these hosts; their dialers retry at once."""
    for node in nodes:
        node.host.clear_link_rules()
