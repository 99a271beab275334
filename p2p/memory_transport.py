"""An in-memory network for many hosts of one process: links with latency, bandwidth, loss.

`MemoryNetwork` is the registry of the hosts that listen, by URL (`mem://<name>`), and the
physics of the links between them; `network.transport(name)` is the Transport (transport.py)
one host uses. A dial reaches the listener after the one-way latency (ConnectionRefusedError if
nobody listens there then), hands it the server side of a new `MemorySocket` pair, and returns
the client side one round trip after it started: the connect and upgrade handshake.

Each direction of a link is a `_Pipe` with the websocket's guarantees and the network's costs:

- frames arrive in the order they were sent (first in, first out per direction, like TCP);
- a frame of S bytes waits for the frames before it to be transmitted, takes S / bandwidth to
  transmit, then travels the latency (plus jitter); loss drops data frames (never close frames);
- latency, bandwidth, jitter and loss of a (dialer, listener) pair come from a `LinkModel`
  (testnet/sim/network_model.py provides region matrices); loss and jitter are drawn by the
  LinkShaper (link_shaper.py) of that pipe, from an rng seeded by the network seed and the
  pipe's name, so one seed gives one schedule whatever PYTHONHASHSEED is;
- the timing mechanism is link_shaper's DelayLine, so everything runs on event-loop timers: on
  a virtual-time loop (testnet/sim/loop.py) the whole network is virtual.

Close semantics follow aiohttp's websockets: `close(code=, message=)` sends a close frame after
the data already sent and waits (up to `close_timeout`) for the peer's answer; the peer's
`receive()` returns CLOSE with the code and reason and answers at once; a closing side's
`receive()` returns CLOSING, a closed one's CLOSED; sending on a closing link raises
ConnectionResetError. A frame over the receiver's cap is an ERROR (WebSocketError 1009) for the
receiver, which closes the link with 1009. `abort()` is a lost connection: the peer sees CLOSED
with close code 1006 after the latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import WSCloseCode, WSMessage, WSMsgType
from aiohttp.http_websocket import WebSocketError

from p2p.link_shaper import DelayLine, LinkRule, LinkShaper
from p2p.transport import CLOSE_TIMEOUT_S, Accept, FrameSocket

URL_SCHEME = "mem://"
PIPE_MAX_FRAMES = 1 << 20  # frames in flight per direction (the sender's queue bounds it first)
PIPE_MAX_BYTES = 1 << 40
CLOSING_MESSAGE = WSMessage(WSMsgType.CLOSING, None, None)
CLOSED_MESSAGE = WSMessage(WSMsgType.CLOSED, None, None)


@dataclass(frozen=True)
class LinkProfile:
    """One direction of a link: one-way latency, bandwidth (bytes/s; None = unlimited), jitter
    (latency varies uniformly by +-jitter_s) and the probability that a data frame is lost."""

    latency_s: float = 0.0
    bandwidth_bps: float | None = None
    jitter_s: float = 0.0
    loss: float = 0.0

    def __post_init__(self) -> None:
        # [REJECT] times are not negative, bandwidth positive, loss a probability
        if self.latency_s < 0 or self.jitter_s < 0:
            raise ValueError(f"latency and jitter must not be negative, got "
                             f"{self.latency_s} and {self.jitter_s}")
        if self.bandwidth_bps is not None and self.bandwidth_bps <= 0:
            raise ValueError(f"bandwidth_bps must be positive or None, got {self.bandwidth_bps}")
        if not 0 <= self.loss <= 1:
            raise ValueError(f"loss must be a probability in 0..1, got {self.loss}")


class LinkModel(Protocol):
    def profile(self, src: str, dst: str) -> LinkProfile:
        """The link from host `src` to host `dst` (names, as given to `transport`)."""
        ...


@dataclass(frozen=True)
class UniformLinks:
    """Every link alike."""

    link: LinkProfile = LinkProfile()

    def profile(self, src: str, dst: str) -> LinkProfile:
        return self.link


def url_of(name: str) -> str:
    return f"{URL_SCHEME}{name}"


@dataclass
class _Listener:
    name: str
    max_frame_bytes: int
    spawn: Callable[[MemorySocket, str], None]


class MemoryNetwork:
    """The hosts listening in one process and the links between them; see the module docstring."""

    def __init__(self, links: LinkModel | None = None, *, seed: int = 0,
                 close_timeout: float = CLOSE_TIMEOUT_S) -> None:
        self.links: LinkModel = links if links is not None else UniformLinks()
        self.seed = seed
        self.close_timeout = close_timeout
        self._listeners: dict[str, _Listener] = {}
        self._transports: dict[str, MemoryTransport] = {}
        self._links_opened = 0  # numbers links (and their remote "ports") in dial order
        # totals over every link: data frames sent and their bytes, frames the links lost
        self.stats = {"links": 0, "frames": 0, "bytes": 0, "lost": 0}

    def transport(self, name: str) -> MemoryTransport:
        """The Transport of the host called `name` (one per name: a restarted host gets the same
        one back); it listens at `url_of(name)` while open."""
        if not name or "/" in name or ":" in name:
            raise ValueError(f"a host name is non-empty without '/' or ':', got {name!r}")
        transport = self._transports.get(name)
        if transport is None:
            transport = self._transports[name] = MemoryTransport(self, name)
        return transport

    def is_listening(self, url: str) -> bool:
        return url in self._listeners

    def _listen(self, listener: _Listener) -> None:
        """Listen at the name's URL; a newer listener takes the address over (a host restarted
        while its previous run still shuts down, as a new process binds a freed port)."""
        self._listeners[url_of(listener.name)] = listener

    def _unlisten(self, listener: _Listener) -> None:
        url = url_of(listener.name)
        if self._listeners.get(url) is listener:
            del self._listeners[url]

    def _pipe(self, src: str, dst: str, link_no: int, receiver: MemorySocket) -> _Pipe:
        rng = random.Random(f"{self.seed}/{link_no}/{src}->{dst}")
        return _Pipe(self.links.profile(src, dst), rng, receiver, self.stats)

    async def _dial(self, src: str, url: str, max_frame_bytes: int) -> MemorySocket:
        name = url[len(URL_SCHEME):] if url.startswith(URL_SCHEME) else None
        if name is None:
            raise ValueError(f"not a {URL_SCHEME} URL: {url!r}")
        there = self.links.profile(src, name).latency_s
        back = self.links.profile(name, src).latency_s
        await asyncio.sleep(there)  # the connection request travels to the listener
        listener = self._listeners.get(url)
        if listener is None:
            await asyncio.sleep(back)
            raise ConnectionRefusedError(f"nothing listens at {url}")
        self._links_opened += 1
        self.stats["links"] += 1
        link_no = self._links_opened
        client = MemorySocket(max_frame_bytes, self.close_timeout)
        server = MemorySocket(listener.max_frame_bytes, self.close_timeout)
        client.connect(server, self._pipe(src, name, link_no, server))
        server.connect(client, self._pipe(name, src, link_no, client))
        listener.spawn(server, f"{src}:{link_no}")
        await asyncio.sleep(back)  # the answer travels back
        return client


class MemoryTransport:
    """One host's access to a MemoryNetwork (see transport.Transport)."""

    def __init__(self, network: MemoryNetwork, name: str) -> None:
        self.network = network
        self.name = name
        self.url = url_of(name)
        self._open = 0  # runs of the host inside open() (two while a restart overlaps a stop)
        self._sockets: dict[int, MemorySocket] = {}  # the links this host opened or accepted
        self._next_socket = 0

    @contextlib.asynccontextmanager
    async def open(self, accept: Accept, max_frame_bytes: int) -> AsyncIterator[None]:
        """Listen at `self.url`, serving each inbound link with `accept` as a child task; on the
        way out stop listening and cancel the inbound links still served."""
        async with asyncio.TaskGroup() as task_group:
            tasks: dict[asyncio.Task, None] = {}  # in accept order (cancelled in that order)

            def spawn(socket: MemorySocket, remote_address: str) -> None:
                self._track(socket)
                task = task_group.create_task(accept(socket, remote_address))
                tasks[task] = None
                task.add_done_callback(lambda done: tasks.pop(done, None))

            listener = _Listener(self.name, max_frame_bytes, spawn)
            self.network._listen(listener)
            self._open += 1
            try:
                yield
            finally:
                self._open -= 1
                self.network._unlisten(listener)
                for task in list(tasks):
                    task.cancel()

    async def dial(self, url: str, max_frame_bytes: int) -> FrameSocket:
        if not self._open:
            raise RuntimeError("MemoryTransport.dial() outside open()")
        socket = await self.network._dial(self.name, url, max_frame_bytes)
        self._track(socket)
        return socket

    def sever(self) -> None:
        """Abort every open link of this host, in the order they were opened: a crash (kill -9)
        as its peers see it -- each gets CLOSED (1006) after the latency, no close handshake."""
        for socket in list(self._sockets.values()):
            socket.abort()
        self._sockets.clear()

    def _track(self, socket: MemorySocket) -> None:
        # insertion-ordered, so a sever aborts links in one order whatever the memory layout
        for key in [key for key, known in self._sockets.items() if known.closed]:
            del self._sockets[key]
        self._sockets[self._next_socket] = socket
        self._next_socket += 1


class _Pipe:
    """One direction of a link: transmission then latency, first in first out."""

    def __init__(self, profile: LinkProfile, rng: random.Random, receiver: MemorySocket,
                 stats: dict[str, int]) -> None:
        self.profile = profile
        self._stats = stats
        self._shaper = LinkShaper(rng)
        self._rule = LinkRule(delay_ms=profile.latency_s * 1000, jitter_ms=profile.jitter_s * 1000,
                              loss=profile.loss)
        self._line: DelayLine[WSMessage] = DelayLine(receiver.deliver, max_items=PIPE_MAX_FRAMES,
                                                     max_bytes=PIPE_MAX_BYTES)
        self._random = profile.jitter_s > 0 or profile.loss > 0  # else no draws are needed
        self._sent_until = 0.0  # loop time when the frames already accepted are transmitted
        self._last_due = 0.0

    def send(self, message: WSMessage, size: int, *, may_lose: bool) -> None:
        """Send one message of `size` bytes; `may_lose`: a data frame (control frames are
        never lost)."""
        now = asyncio.get_running_loop().time()
        if may_lose:
            self._stats["frames"] += 1
            self._stats["bytes"] += size
        bandwidth = self.profile.bandwidth_bps
        start = max(now, self._sent_until)
        self._sent_until = start + (size / bandwidth if bandwidth else 0.0)
        travel = self.profile.latency_s
        if self._random:
            delays = self._shaper.plan(self._rule, size, now)  # fixed draws per frame, lost or not
            if not delays and may_lose:
                self._stats["lost"] += 1
                return
            travel = delays[0] if delays else travel
        due = max(self._sent_until + travel, self._last_due)  # jitter never reorders a stream
        self._last_due = due
        self._line.push_at(due, message, size)

    def close(self) -> None:
        self._line.close()


class MemorySocket:
    """One end of an in-memory link; the FrameSocket shape of an aiohttp websocket."""

    def __init__(self, max_frame_bytes: int, close_timeout: float) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._close_timeout = close_timeout
        self._peer: MemorySocket | None = None
        self._out: _Pipe | None = None
        self._inbox: deque[WSMessage] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._close_answer: asyncio.Future[int] | None = None
        self._closing = False
        self._closed = False
        self._close_code: int | None = None
        self._exception: BaseException | None = None

    def connect(self, peer: MemorySocket, out: _Pipe) -> None:
        self._peer = peer
        self._out = out

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_code(self) -> int | None:
        return self._close_code

    def exception(self) -> BaseException | None:
        return self._exception

    async def send_bytes(self, data: bytes) -> None:
        if self._closing or self._closed or self._out is None:
            raise ConnectionResetError("Cannot write to closing transport")
        self._out.send(WSMessage(WSMsgType.BINARY, bytes(data), None), len(data), may_lose=True)

    async def receive(self) -> WSMessage:
        """The next message: data, then the CLOSE or ERROR that ended the link, then CLOSED; a
        side that started closing itself gets CLOSING until the peer answers."""
        while True:
            if self._inbox:
                return self._inbox.popleft()
            if self._closed:
                return CLOSED_MESSAGE
            if self._closing:
                return CLOSING_MESSAGE
            if self._waiter is not None:
                raise RuntimeError("concurrent call to receive() is not allowed")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"") -> bool:
        """Send a close frame and wait for the peer's answer; False if already closed."""
        if self._closed:
            return False
        if not self._closing:
            self._inbox.clear()  # a side that closes reads no more data (as aiohttp)
            self._send_close(code, message)
        assert self._close_answer is not None
        try:
            async with asyncio.timeout(self._close_timeout):
                self._close_code = await asyncio.shield(self._close_answer)
        except TimeoutError:
            self._close_code = WSCloseCode.ABNORMAL_CLOSURE
        self._finish()
        return True

    def abort(self) -> None:
        """Drop the link without a close handshake: the peer sees CLOSED (1006) after the
        latency, as when a process dies or a cable is cut."""
        if self._closed:
            return
        if self._out is not None:
            self._out.send(CLOSED_MESSAGE, 0, may_lose=False)
        self._close_code = WSCloseCode.ABNORMAL_CLOSURE
        self._finish()

    def deliver(self, message: WSMessage) -> None:
        """A frame arrived from the peer (called by the pipe's timer)."""
        if self._closed:
            return
        if message.type is WSMsgType.CLOSE:
            self._on_close_frame(message)
        elif message.type is WSMsgType.CLOSED:  # the peer aborted: the connection is lost
            self._close_code = WSCloseCode.ABNORMAL_CLOSURE
            if self._close_answer is not None and not self._close_answer.done():
                self._close_answer.set_result(WSCloseCode.ABNORMAL_CLOSURE)  # no answer comes
            self._inbox.append(CLOSED_MESSAGE)
            self._finish()
        elif self._closing:
            return  # a closing side discards data until the close answer (as aiohttp does)
        elif len(message.data) > self.max_frame_bytes:
            # [REJECT] frames fit the receiver's cap: an ERROR for the reader, the link closes
            error = WebSocketError(WSCloseCode.MESSAGE_TOO_BIG,
                                   f"Message size {len(message.data)} exceeds limit "
                                   f"{self.max_frame_bytes}")
            self._exception = error
            self._inbox.append(WSMessage(WSMsgType.ERROR, error, None))
            self._send_close(WSCloseCode.MESSAGE_TOO_BIG, b"")
            self._close_code = WSCloseCode.MESSAGE_TOO_BIG
            self._finish()
        else:
            self._inbox.append(message)
            self._wake()

    def _on_close_frame(self, message: WSMessage) -> None:
        if self._closing:  # the answer to our close
            if self._close_answer is not None and not self._close_answer.done():
                self._close_answer.set_result(message.data)
            return
        # the peer closes: answer at once, then report the close to our reader
        self._close_code = message.data
        if self._out is not None:
            self._out.send(WSMessage(WSMsgType.CLOSE, WSCloseCode.OK, ""), 0, may_lose=False)
        self._inbox.append(message)
        self._finish()

    def _send_close(self, code: int, message: bytes) -> None:
        self._closing = True
        self._close_answer = asyncio.get_running_loop().create_future()
        if self._out is not None:
            reason = message.decode(errors="replace")
            self._out.send(WSMessage(WSMsgType.CLOSE, code, reason), len(message), may_lose=False)
        self._wake()

    def _finish(self) -> None:
        self._closing = True
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
