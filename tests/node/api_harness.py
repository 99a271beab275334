"""An in-process node for HTTP tests: a real `Node` serving its real aiohttp app on loopback.

`serve_node` builds the node from a config file as `testnet` writes one (PoW or PoS, an admin
token, funded accounts) and serves `Node.make_runner()` -- the same app, middlewares and server
logger as a node process -- on a free port. The node's p2p host, miner and validators are not
started: requests reach the handlers and the node's state, and nothing dials out.

`raw_http` speaks HTTP/1.1 by hand over a socket, so a test can send what no client library
would: bytes that are not UTF-8 in a header, a broken request line, any body.
`LogWatch` collects the log records a test must never see: ERROR and above, and tracebacks.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from consensus.chain_spec import ChainSpec
from consensus.dpos.spec import DposSpec
from consensus.hybrid.spec import HybridSpec
from consensus.keys import derive_private_key, public_key
from consensus.pos.spec import PosSpec
from node.app import Node
from node.config import NodeConfig

ADMIN_TOKEN = "test-admin-token"
FUNDS = 1_000_000


def account_key(i: int) -> bytes:
    return derive_private_key("api-harness", f"account/{i}")


def validator_key(i: int) -> bytes:
    return derive_private_key("api-harness", f"validator/{i}")


def write_config(directory: Path, consensus: str = "pow") -> NodeConfig:
    """A one-node network in `directory`: genesis.json with two funded accounts, and its config.
    (DPoS: the four validator keys form the schedule; account 0 also has stake, so it may vote.)"""
    directory.mkdir(parents=True, exist_ok=True)
    allocations = tuple((public_key(account_key(i)), FUNDS) for i in range(2))
    validators = tuple((public_key(validator_key(i)), 32_0000_0000) for i in range(4))
    spec: ChainSpec | PosSpec | DposSpec
    if consensus == "dpos":
        spec = DposSpec(chain_id="api-harness-dpos", producers=4, allocations=allocations,
                        schedule=tuple(pk for pk, _stake in validators),
                        stakes=((allocations[0][0], FUNDS),))
    elif consensus == "hybrid":
        spec = HybridSpec(chain_id="api-harness-hybrid", allocations=allocations,
                          validators=validators)
    elif consensus == "pos":
        spec = PosSpec(
            chain_id="api-harness-pos",
            allocations=allocations,
            validators=validators,
        )
    else:
        spec = ChainSpec(chain_id="api-harness", allocations=allocations)
    (directory / "genesis.json").write_text(json.dumps(spec.to_json()))
    return NodeConfig(
        node_id="api0",
        consensus=consensus,
        data_dir=directory / "data",
        genesis=directory / "genesis.json",
        port=1,
        node_key=derive_private_key("api-harness", "node").hex(),
        admin_token=ADMIN_TOKEN,
    )


@dataclass
class ServedNode:
    node: Node
    port: int
    app: web.Application

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def serve_node(directory: Path, consensus: str = "pow") -> AsyncIterator[ServedNode]:
    node = Node(write_config(directory, consensus))
    try:
        node.service.load()
        runner = node.make_runner()
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            yield ServedNode(node, runner.addresses[0][1], runner.app)
        finally:
            await runner.cleanup()
    finally:
        node.close()


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def build_request(
    method: str, target: str, *, body: bytes = b"", headers: dict[str, bytes] | None = None
) -> bytes:
    """An HTTP/1.1 request; header values are raw bytes, sent as they are."""
    lines = [
        f"{method} {target} HTTP/1.1".encode(),
        b"Host: 127.0.0.1",
        b"Connection: close",
        b"Content-Length: " + str(len(body)).encode(),
    ]
    lines += [name.encode() + b": " + value for name, value in (headers or {}).items()]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def raw_http(port: int, request: bytes, timeout: float = 10.0) -> HttpReply:
    """Send `request` as it is and read the reply until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(timeout):
            data = await reader.read()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass  # the server may close first; the reply is read already
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise AssertionError(f"not an HTTP reply: {data[:200]!r}")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return HttpReply(int(parts[1]), headers, body)


class LogWatch(logging.Handler):
    """Collects records at ERROR and above, and any record carrying a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info or record.stack_info:
            self.records.append(record)

    def problems(self) -> list[str]:
        return [
            f"{r.levelname} {r.name}: {r.getMessage()}"
            + (" (with traceback)" if r.exc_info else "")
            for r in self.records
        ]


@contextmanager
def watching_logs() -> Iterator[LogWatch]:
    """A LogWatch on the root logger for the duration of the block."""
    watch = LogWatch()
    root = logging.getLogger()
    root.addHandler(watch)
    try:
        yield watch
    finally:
        root.removeHandler(watch)
