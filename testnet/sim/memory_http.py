"""HTTP and websockets between in-process aiohttp apps and clients, without sockets.

The simulation backend runs every node's aiohttp app in one process. The orchestrator still talks
to them through its ordinary `aiohttp.ClientSession` (NodeClient, the collector's event streams,
the dashboard): only the session's connector differs. `MemoryConnector` hands each request a pair
of in-memory transports whose far end is the node's own `web.Server` protocol, so requests and
websocket frames go through aiohttp's real parsers and writers, handlers and middlewares -- the
node cannot tell it from TCP.

Bytes written on one end reach the other end's protocol on the next turn of the event loop, in
order (`loop.call_soon` is FIFO); closing one end delivers EOF and `connection_lost` to the other.
No time passes in transit: the API is the orchestrator's window into the simulation, not part of
the simulated network (that is the p2p transport's job).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler

ServerFactory = Callable[[], asyncio.Protocol]


class MemoryEnd(asyncio.Transport):
    """One end of an in-memory stream: what it writes, its peer's protocol receives."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, name: tuple[str, int],
                 peer_name: tuple[str, int]) -> None:
        super().__init__()
        self._loop = loop
        self._name = name
        self._peer_name = peer_name
        self.peer: MemoryEnd | None = None
        self.protocol: asyncio.Protocol | None = None
        self._closing = False
        self._lost = False

    # -- asyncio.Transport -------------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self.peer is None or not data:
            return
        self._loop.call_soon(self.peer._receive, bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(bytes(d) for d in list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._loop.call_soon(self._connection_lost)
        if self.peer is not None:
            self._loop.call_soon(self.peer._peer_closed)

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._peer_name
        if name == "sockname":
            return self._name
        return default

    def pause_reading(self) -> None:
        """Nothing to pause: a simulated stream holds what it was sent until it is read."""

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return not self._closing

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    # -- delivery ----------------------------------------------------------------------------------
    def _receive(self, data: bytes) -> None:
        if self.protocol is not None and not self._lost:
            self.protocol.data_received(data)

    def _peer_closed(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self.protocol is not None and not self._lost:
            self.protocol.eof_received()
        self._connection_lost()

    def _connection_lost(self) -> None:
        if self._lost:
            return
        self._lost = True
        if self.protocol is not None:
            self.protocol.connection_lost(None)


def memory_pair(loop: asyncio.AbstractEventLoop, client: asyncio.Protocol,
                server: asyncio.Protocol, *, client_name: tuple[str, int],
                server_name: tuple[str, int]) -> tuple[MemoryEnd, MemoryEnd]:
    """Connect two protocols through a pair of in-memory ends (server side first, as a
    listening socket would accept before the client sees the connection)."""
    client_end = MemoryEnd(loop, name=client_name, peer_name=server_name)
    server_end = MemoryEnd(loop, name=server_name, peer_name=client_name)
    client_end.peer, server_end.peer = server_end, client_end
    client_end.protocol, server_end.protocol = client, server
    server.connection_made(server_end)
    client.connection_made(client_end)
    return client_end, server_end


class MemoryConnector(aiohttp.BaseConnector):
    """Connects a ClientSession to in-process servers by (host, port).

    `servers` maps an address to a protocol factory, e.g. a `web.AppRunner`'s `server` after
    `setup()`; it is read at each connection, so nodes may come and go (a stopped node's address
    refuses connections like a closed port)."""

    def __init__(self, servers: Mapping[tuple[str, int], ServerFactory], **kwargs: Any) -> None:
        # No cap on open connections (aiohttp's default is 100): the collector holds one event
        # stream per node, and a thousand simulated nodes would leave no connection for requests.
        kwargs.setdefault("limit", 0)
        super().__init__(**kwargs)
        self._servers = servers
        self._client_ports = itertools.cycle(range(40000, 60000))   # what a server sees as peer

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> ResponseHandler:
        address = (req.host, req.port)
        factory = self._servers.get(address)
        if factory is None:
            raise aiohttp.ClientConnectorError(
                req.connection_key, ConnectionRefusedError(111, "no simulated server listens "
                                                                f"on {req.host}:{req.port}"))
        loop = asyncio.get_running_loop()
        client = ResponseHandler(loop)
        memory_pair(loop, client, factory(), client_name=("127.0.0.1", next(self._client_ports)),
                    server_name=address)
        return client
