"""One websocket link to one peer: framing, a bounded send queue, and the close protocol.

A Connection wraps a FrameSocket (transport.py): an aiohttp websocket (server
`WebSocketResponse` or client `ClientWebSocketResponse`; both expose the same
receive/send_bytes/close API), or an in-memory link of the same shape (memory_transport.py). It
owns three
kinds of task, all children of the TaskGroup in `run()`:

- a writer that drains the send queue, so a slow peer only fills its own queue; when the queue
  is full further frames are dropped and counted (`stats["dropped"]["send queue full"]`). An
  urgent frame (a node's own new block) goes out before the frames already queued, in the order
  urgent frames were queued: a block must not wait behind a backlog of transactions;
- a reader that hands every binary message to `_ingress` (the link rule), then to `_receive`,
  which decodes it (wire.py) and passes it to the handshake while that runs, then to the host's
  frame handler;
- request-handler tasks the host spawns with `spawn()`; they are cancelled when the link closes.

Every frame sent goes through `_egress(frame_type, data)` and every frame received through
`_ingress(data)`. Once the handshake is over both consult the host's LinkShaper
(link_shaper.py): a frame may be dropped, duplicated or held back in a DelayLine (its copies
counted in `stats["shaped"]`). Handshake frames and the closing `bye` are never shaped; frames
still held back when the link closes are forgotten.

Bad input (a text frame, a frame over the cap, undecodable bytes) closes the connection with a
websocket close code and a logged, counted reason; the host is told through `on_bad_input` so it
can penalise the peer. The rest of the host is never affected. Every close has a reason (free
text, for logs and the peer's `bye`) and a `close_category` from a fixed set: what the host
counts by and decides on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal

from aiohttp import WSCloseCode, WSMsgType
from aiohttp.http_websocket import WebSocketError

from p2p.errors import DecodeError, EncodeError, HandshakeError
from p2p.link_shaper import DelayLine, Direction, LinkShaper
from p2p.transport import CLOSE_TIMEOUT_S, FrameSocket
from p2p.wire import PROTOCOL_VERSION, decode_envelope, encode_frame

LinkDirection = Literal["inbound", "outbound"]     # who dialed: the peer, or we

SEND_QUEUE_FRAMES = 4096
SEND_QUEUE_BYTES = 64 * 1024 * 1024
HANDSHAKE_INBOX_FRAMES = 8  # a correct peer sends 2 frames up to its auth
RESERVED_CLOSE_CODES = frozenset({1005, 1006, 1015})  # RFC 6455 7.4.1: never in a close frame
MAX_CLOSE_MESSAGE_BYTES = 123  # RFC 6455: close reason fits a 125-byte control frame

FrameHandler = Callable[["Connection", str, dict], None]


def new_stats() -> dict[str, Any]:
    """The counters a host keeps (shared by all its connections); see P2PHost.stats."""
    return {
        "messages_in": Counter(),
        "messages_out": Counter(),
        "bytes_in": 0,
        "bytes_out": 0,
        # input refused: malformed frames, handshake failures, reject verdicts
        "rejected": Counter(),
        "dropped": Counter(),  # input or output let go without blame: duplicates, full queues
        "errors": Counter(),  # our own side failed: handler or validator raised, internal bugs
        "disconnects": Counter(),
        "shaped": Counter(),  # link shaping, e.g. "out lost", "in delayed" (see link_shaper.py)
        "sync_batches": 0,
    }


class Connection:
    def __init__(
        self,
        ws: FrameSocket,
        *,
        url: str,
        direction: LinkDirection,
        stats: dict[str, Any],
        log: logging.Logger,
        connected_at: float,
        max_frame_bytes: int,
        version: int = PROTOCOL_VERSION,
        send_queue_frames: int = SEND_QUEUE_FRAMES,
        send_queue_bytes: int = SEND_QUEUE_BYTES,
        shaper: LinkShaper | None = None,
    ) -> None:
        self.ws = ws
        self.url = url
        self.direction = direction
        self.connected_at = connected_at
        self.max_frame_bytes = max_frame_bytes
        self.version = version
        self.peer_id: str | None = None
        self.msgs_in = 0
        self.msgs_out = 0
        self.close_reason: str | None = None
        # the fixed label of close_reason, for stats and decisions
        self.close_category: str | None = None
        self.close_code: int = WSCloseCode.OK
        # Called with (connection, category) on bad input; the host penalises the peer.
        self.on_bad_input: Callable[[Connection, str], None] | None = None
        self.closed = asyncio.Event()  # set when run() has finished
        self._stats = stats
        self._log = log
        self._send_queue_frames = send_queue_frames
        self._send_queue_bytes = send_queue_bytes
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._urgent: deque[tuple[str, bytes]] = deque()   # sent before _outbox
        self._outbox_bytes = 0
        self._shaper = shaper
        # Frames a link rule holds back; the outgoing ones count against the send queue limits.
        self._delayed_out: DelayLine[tuple[str, bytes]] = DelayLine(
            self._release_out, max_items=send_queue_frames, max_bytes=send_queue_bytes
        )
        self._delayed_in: DelayLine[bytes] = DelayLine(
            self._receive, max_items=send_queue_frames, max_bytes=send_queue_bytes
        )
        self._wakeup = asyncio.Event()
        self._closing = asyncio.Event()
        self._handshake_inbox: asyncio.Queue[tuple[int, str, dict] | None] = asyncio.Queue()
        self._on_frame: FrameHandler | None = None
        self._peer_sent_auth = False
        self._task_group: asyncio.TaskGroup | None = None
        self._tasks: dict[asyncio.Task, None] = {}  # in spawn order (cancelled in that order)

    @property
    def label(self) -> str:
        return self.peer_id[:12] if self.peer_id else self.url

    @property
    def is_closing(self) -> bool:
        return self._closing.is_set()

    async def run(self, on_open: Callable[[Connection], Awaitable[None]]) -> str:
        """Serve this connection until it closes; returns the close reason.

        `on_open(conn)` runs while the reader and writer already work: it does the handshake and
        then calls `start_dispatch()`, or `close()` to refuse the peer.
        Ends when the peer closes, `close()` is called or a send fails; on cancellation the
        websocket is closed with 1001 (going away) and CancelledError propagates.
        """
        try:
            async with asyncio.TaskGroup() as task_group:
                self._task_group = task_group
                writer = self.spawn(self._write_loop())
                self.spawn(self._read_loop())
                await on_open(self)
                await self._closing.wait()
                await self._finish_writing(writer)
                await self._close_websocket(self.close_code, self.close_reason or "")
                self._cancel_tasks()
        finally:
            self._task_group = None
            if not self.is_closing:
                self._mark_closing(WSCloseCode.GOING_AWAY, "host shutting down",
                                   "host shutting down")
            if not self.ws.closed:
                await self._close_websocket(self.close_code, self.close_reason or "")
            self.closed.set()
        return self.close_reason or "closed"

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task | None:
        """Run `coro` as a child of this connection; it is cancelled when the link closes."""
        if self._task_group is None or self.is_closing:
            coro.close()
            return None
        task = self._task_group.create_task(coro)
        self._tasks[task] = None
        task.add_done_callback(self._forget_task)
        return task

    # -- sending -------------------------------------------------------------------------------

    def send(self, msg_type: str, body: dict) -> bool:
        """Queue one message. Returns False if it was dropped (link closing or queue full).

        Raises EncodeError if the body cannot be encoded or the frame would exceed the cap.
        """
        return self.send_encoded(msg_type, encode_frame(msg_type, body, version=self.version))

    def send_encoded(self, msg_type: str, data: bytes, *, urgent: bool = False) -> bool:
        """Queue a frame already encoded with `encode_frame` (to encode once for many peers);
        an `urgent` one ahead of every frame queued that is not urgent."""
        if len(data) > self.max_frame_bytes:
            raise EncodeError(f"{msg_type!r} frame of {len(data)} bytes exceeds "
                              f"{self.max_frame_bytes}")
        return self._egress(msg_type, data, urgent)

    def _egress(self, frame_type: str, data: bytes, urgent: bool = False) -> bool:
        """Every outgoing frame passes here, then through the link rule for direction "out".

        A frame the link rule drops still counts as sent (True): the network lost it.
        """
        if self.is_closing:
            self._stats["dropped"]["connection closing"] += 1
            return False
        full = self.queued_frames + len(self._delayed_out) >= self._send_queue_frames
        queued_bytes = self._outbox_bytes + self._delayed_out.bytes
        if full or queued_bytes + len(data) > self._send_queue_bytes:
            self._stats["dropped"]["send queue full"] += 1
            self._log.debug("dropping %s frame to %s: send queue full", frame_type, self.label)
            return False
        delays = self._shape("out", len(data))
        if delays is None:
            self._enqueue(frame_type, data, urgent)
            return True
        for delay in delays:
            if delay <= 0:
                self._enqueue(frame_type, data)
            elif not self._delayed_out.push(delay, (frame_type, data), len(data)):
                self._stats["shaped"]["out overflow"] += 1
        return True

    def _release_out(self, frame: tuple[str, bytes]) -> None:
        if not self.is_closing:
            self._enqueue(*frame)

    def _shape(self, direction: Direction, size: int) -> list[float] | None:
        """Delays of the copies of one frame under the link rule, or None if no rule applies."""
        if self._shaper is None or self._on_frame is None or self.peer_id is None:
            return None  # no shaper, or still handshaking: handshake frames are never shaped
        rule = self._shaper.rule_for(self.peer_id, direction)
        if rule is None:
            return None
        counters = self._stats["shaped"]
        if rule.block:
            counters[f"{direction} blocked"] += 1
            return []
        delays = self._shaper.plan(rule, size, self._shaper.clock(), peer=self.peer_id,
                                   direction=direction)
        if not delays:
            counters[f"{direction} lost"] += 1
        elif len(delays) > 1:
            counters[f"{direction} duplicated"] += 1
        if any(delay > 0 for delay in delays):
            counters[f"{direction} delayed"] += 1
        return delays

    @property
    def queued_frames(self) -> int:
        return len(self._urgent) + len(self._outbox)

    def _enqueue(self, frame_type: str, data: bytes, urgent: bool = False) -> None:
        (self._urgent if urgent else self._outbox).append((frame_type, data))
        self._outbox_bytes += len(data)
        self._wakeup.set()

    async def _write_loop(self) -> None:
        """Drain the send queue, urgent frames first. Ends when closing and drained, or when a
        send fails."""
        while True:
            while self._urgent or self._outbox:
                frame_type, data = (self._urgent or self._outbox).popleft()
                self._outbox_bytes -= len(data)
                try:
                    await self.ws.send_bytes(data)
                except ConnectionError as exc:
                    self._mark_closing(WSCloseCode.ABNORMAL_CLOSURE, f"send failed: {exc}",
                                       "send failed")
                    return
                self.msgs_out += 1
                self._stats["messages_out"][frame_type] += 1
                self._stats["bytes_out"] += len(data)
            if self.is_closing:
                return
            self._wakeup.clear()
            await self._wakeup.wait()

    # -- receiving -----------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        """Feed every binary message to `_ingress` until the websocket closes.

        Error handling: aiohttp answers pings inside `receive()`; when the peer has hung up, that
        pong raises a ConnectionError (ConnectionResetError), which ends the link like any other
        lost connection -- the peer is gone, nothing is wrong on our side.
        """
        while True:
            try:
                msg = await self.ws.receive()
            except ConnectionError as exc:
                self._mark_closing(WSCloseCode.ABNORMAL_CLOSURE, f"receive failed: {exc}",
                                   "receive failed")
                return
            if msg.type is WSMsgType.BINARY:
                if not self.is_closing:
                    self._ingress(msg.data)
            elif msg.type is WSMsgType.TEXT:
                # [REJECT] binary frames only
                self.reject_input("text frame", "text frames are not allowed",
                                  WSCloseCode.UNSUPPORTED_DATA)
            elif msg.type is WSMsgType.ERROR:
                self._on_receive_error(msg.data)
                return
            else:  # CLOSE, CLOSING, CLOSED: the peer closed, or our own close() woke us
                code = self.ws.close_code
                extra = f": {msg.extra}" if msg.type is WSMsgType.CLOSE and msg.extra else ""
                self._mark_closing(code or WSCloseCode.OK, f"closed by peer ({code}{extra})",
                                   "closed by peer")
                return

    def _on_receive_error(self, exc: BaseException) -> None:
        if isinstance(exc, WebSocketError) and exc.code == WSCloseCode.MESSAGE_TOO_BIG:
            # [REJECT] frames fit max_frame_bytes (aiohttp already closed the link with 1009)
            self.reject_input("frame too large", f"frame too large: {exc}",
                              WSCloseCode.MESSAGE_TOO_BIG)
        elif isinstance(exc, WebSocketError):
            self.reject_input("websocket protocol error", f"websocket protocol error: {exc}",
                              exc.code)
        else:
            self._mark_closing(WSCloseCode.ABNORMAL_CLOSURE, f"receive failed: {exc!r}",
                               "receive failed")

    def _ingress(self, data: bytes) -> None:
        """Every incoming frame passes here, then through the link rule for direction "in"."""
        delays = self._shape("in", len(data))
        if delays is None:
            self._receive(data)
            return
        for delay in delays:
            if delay <= 0:
                self._receive(data)
            elif not self._delayed_in.push(delay, data, len(data)):
                self._stats["shaped"]["in overflow"] += 1

    def _receive(self, data: bytes) -> None:
        """Decode one frame that got through the link and hand it to the handshake or the host."""
        if self.is_closing:
            return
        self.msgs_in += 1
        self._stats["bytes_in"] += len(data)
        handshaking = self._on_frame is None
        try:
            # During the handshake any version decodes, so a mismatch gets a readable reason.
            version, msg_type, body = decode_envelope(
                data, self.max_frame_bytes, version=None if handshaking else self.version
            )
        except DecodeError as exc:
            self.reject_input("malformed frame", f"malformed frame: {exc}",
                              WSCloseCode.PROTOCOL_ERROR)
            return
        self._stats["messages_in"][msg_type] += 1
        if handshaking:
            # [REJECT] a peer sends only hello and auth before its auth (after it, a peer that
            # already accepted us may rightly send status and gossip while we still check it)
            if not self._peer_sent_auth and self._handshake_inbox.qsize() >= HANDSHAKE_INBOX_FRAMES:
                self.reject_input("handshake flood", "too many frames during handshake",
                                  WSCloseCode.PROTOCOL_ERROR)
                return
            self._peer_sent_auth = self._peer_sent_auth or msg_type == "auth"
            self._handshake_inbox.put_nowait((version, msg_type, body))
        else:
            self._dispatch(msg_type, body)

    def _dispatch(self, msg_type: str, body: dict) -> None:
        assert self._on_frame is not None
        try:
            self._on_frame(self, msg_type, body)
        except Exception:
            # A bug on our side, not the peer's fault: keep the host alive, drop this link.
            self._log.exception("internal error handling %r from %s", msg_type, self.label)
            self._stats["errors"]["internal"] += 1
            self.close(WSCloseCode.INTERNAL_ERROR, f"internal error handling {msg_type!r}",
                       category="internal error")

    async def next_handshake_frame(self) -> tuple[int, str, dict]:
        """Next frame received during the handshake; raises HandshakeError once the link closes."""
        item = await self._handshake_inbox.get()
        if item is None:
            raise HandshakeError(f"connection closed: {self.close_reason}",
                                 category="connection closed")
        return item

    def start_dispatch(self, on_frame: FrameHandler) -> None:
        """End of handshake: from now on frames go to `on_frame`, starting with any queued ones."""
        self._on_frame = on_frame
        while not self._handshake_inbox.empty():
            item = self._handshake_inbox.get_nowait()
            if item is None or self.is_closing:
                return
            version, msg_type, body = item
            if version != self.version:
                reason = f"protocol version {version} unsupported"
                self.reject_input("malformed frame", reason, WSCloseCode.PROTOCOL_ERROR)
                return
            self._dispatch(msg_type, body)

    # -- closing -------------------------------------------------------------------------------

    def reject_input(self, category: str, reason: str, code: int) -> None:
        """Close because the peer sent something invalid: log, count, tell the host, close."""
        if self.is_closing:
            return
        self._log.warning("closing connection to %s: %s", self.label, reason)
        self._stats["rejected"][category] += 1
        if self.on_bad_input is not None:
            self.on_bad_input(self, category)
        self.close(code, reason, category=category)

    def close(self, code: int, reason: str, *, category: str, send_bye: bool = True) -> None:
        """Start closing: flush queued frames and `bye {reason}`, then the close frame.
        Idempotent.

        `category` is the fixed label of `reason` (the host counts disconnects by it)."""
        if self.is_closing:
            return
        if send_bye and not self.ws.closed:
            bye = encode_frame("bye", {"reason": reason[:1024]}, version=self.version)
            self._enqueue("bye", bye)
        self._mark_closing(code, reason, category)

    def _mark_closing(self, code: int, reason: str, category: str) -> None:
        if self.is_closing:
            return
        self.close_code = code
        self.close_reason = reason
        self.close_category = category
        self._closing.set()
        self._delayed_out.close()
        self._delayed_in.close()
        self._wakeup.set()
        self._handshake_inbox.put_nowait(None)

    async def _finish_writing(self, writer: asyncio.Task | None) -> None:
        if writer is None or writer.done():
            return
        done, _ = await asyncio.wait({writer}, timeout=CLOSE_TIMEOUT_S)
        if not done:  # the peer stopped reading; give up on the rest of the queue
            writer.cancel()

    async def _close_websocket(self, code: int, reason: str) -> None:
        if code in RESERVED_CLOSE_CODES:  # these describe a dead link; they must not be sent
            code = WSCloseCode.GOING_AWAY
        message = reason.encode()[:MAX_CLOSE_MESSAGE_BYTES].decode(errors="ignore").encode()
        try:
            async with asyncio.timeout(2 * CLOSE_TIMEOUT_S):
                await self.ws.close(code=code, message=message)
        except TimeoutError:
            # aiohttp has closed the transport itself on the way out of the timeout
            self._log.debug("close handshake with %s timed out", self.label)

    def _forget_task(self, task: asyncio.Task) -> None:
        self._tasks.pop(task, None)

    def _cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
