"""The network seam of p2p/: how a host dials peers and how peers' links reach it.

A Connection (connection.py) needs only a `FrameSocket`: the part of an aiohttp websocket it
uses -- `send_bytes`, `receive()` returning a message with `.type` (a WSMsgType), `.data` and
`.extra`, `close(code=, message=)`, `closed`, `close_code` and `exception()`. A `Transport`
gives a host those sockets:

- `dial(url, max_frame_bytes)` opens a link to the host listening at `url` (raises OSError,
  TimeoutError or aiohttp.ClientError when it cannot);
- `open(accept, max_frame_bytes)` is the context the host runs in: while it is entered, dials
  may be made and every inbound link (frames capped at `max_frame_bytes`) is handed to
  `accept(socket, remote_address)`, which serves it until it closes.

`WebSocketTransport` (here) is the real network: aiohttp websockets with heartbeat, frame cap
and close timeout; its inbound links come from the aiohttp route node/ mounts
(`P2PHost.handle_inbound`), so its `open` only holds the client session. `MemoryTransport`
(memory_transport.py) links hosts of one process through a simulated network.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Protocol

import aiohttp
from aiohttp import WSMsgType

DIAL_CONNECT_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 1.0  # time to flush the queue, then time for the close handshake
HEARTBEAT_S = 5.0  # websocket ping interval; a peer silent for 1.5x this is dropped


class FrameMessage(Protocol):
    """One received message: aiohttp's WSMessage (type, data, extra)."""

    @property
    def type(self) -> WSMsgType: ...

    @property
    def data(self) -> Any: ...

    @property
    def extra(self) -> Any: ...


class FrameSocket(Protocol):
    """One open link carrying binary frames, with the websocket close protocol."""

    @property
    def closed(self) -> bool: ...

    @property
    def close_code(self) -> int | None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def receive(self) -> FrameMessage: ...

    async def close(self, *, code: int = ..., message: bytes = ...) -> bool: ...

    def exception(self) -> BaseException | None: ...


# Serves one inbound link until it closes; remote_address is "host:port" of the dialer.
Accept = Callable[[FrameSocket, str], Coroutine[Any, Any, None]]


class Transport(Protocol):
    def open(self, accept: Accept,
             max_frame_bytes: int) -> contextlib.AbstractAsyncContextManager[None]: ...

    async def dial(self, url: str, max_frame_bytes: int) -> FrameSocket: ...


class WebSocketTransport:
    """Websockets over TCP through aiohttp: one client session while the host runs."""

    def __init__(self, *, connect_timeout: float = DIAL_CONNECT_TIMEOUT_S,
                 heartbeat: float = HEARTBEAT_S, close_timeout: float = CLOSE_TIMEOUT_S) -> None:
        self._connect_timeout = connect_timeout
        self._heartbeat = heartbeat
        self._close_timeout = close_timeout
        self._session: aiohttp.ClientSession | None = None

    @contextlib.asynccontextmanager
    async def open(self, accept: Accept, max_frame_bytes: int) -> AsyncIterator[None]:
        """Hold the client session; inbound links arrive through the aiohttp app, not here."""
        timeout = aiohttp.ClientTimeout(total=None, connect=self._connect_timeout,
                                        sock_connect=self._connect_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self._session = session
            try:
                yield
            finally:
                self._session = None

    async def dial(self, url: str, max_frame_bytes: int) -> FrameSocket:
        if self._session is None:
            raise RuntimeError("WebSocketTransport.dial() outside open()")
        return await self._session.ws_connect(
            url,
            max_msg_size=max_frame_bytes,
            heartbeat=self._heartbeat,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=self._close_timeout),
        )
