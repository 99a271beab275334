"""Request/response between two connected peers: `req {id, method, body}` -> `resp {id, ok, body}`.

node/ registers handlers by method name; a handler gets (peer_id, body) and returns any
msgpack-serialisable value. Each incoming request runs in its own task on the connection (so a
slow handler does not stall the reader), at most MAX_CONCURRENT_REQUESTS at a time per peer.
A handler that raises becomes an error response (`ok: false`, body = the error text); it never
takes the host down. A handler raising BadRequest says the peer sent a malformed body: one log
line (at most one per peer per LOG_INTERVAL_S, see peer_policy.py), `stats["rejected"]["bad
request"]` and a penalty for the peer. Anything else it raises is our bug: logged with its
traceback and counted in `stats["errors"]["handler error"]`. Requests beyond the peer's request
budget (peer_policy.py) are dropped unanswered; unsolicited responses count against its budget.

`request()` raises RequestError on an error response, a timeout, or the peer going away.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from p2p.connection import Connection
from p2p.errors import BadRequest, EncodeError, OverBudget, RequestError, shown
from p2p.peer_policy import PeerPolicy
from p2p.wire import MAX_NAME_CHARS, MAX_REASON_CHARS

DEFAULT_REQUEST_TIMEOUT_S = 10.0
MAX_CONCURRENT_REQUESTS = 32  # per connection

Handler = Callable[[str, Any], Awaitable[Any]]


class RequestRouter:
    def __init__(self, *, connections: Mapping[str, Connection], stats: dict[str, Any],
                 log: logging.Logger, penalise: Callable[[str], None] | None = None,
                 policy: PeerPolicy | None = None) -> None:
        self._connections = connections
        self._policy = policy if policy is not None else PeerPolicy(lambda: 0.0)
        self._penalise = penalise
        self._stats = stats
        self._log = log
        self._handlers: dict[str, Handler] = {}
        self._ids = itertools.count()
        self._pending: dict[int, tuple[Connection, asyncio.Future]] = {}
        self._active: Counter[Connection] = Counter()

    def add_handler(self, method: str, handler: Handler) -> None:
        if method in self._handlers:
            raise ValueError(f"handler for {method!r} already registered")
        self._handlers[method] = handler

    async def request(self, peer_id: str, method: str, body: Any,
                      timeout: float = DEFAULT_REQUEST_TIMEOUT_S) -> Any:
        """Send one request and wait for its response body. Raises RequestError."""
        # [REJECT] method names fit the wire schema, or the peer would drop the frame as malformed
        if not isinstance(method, str) or not 0 < len(method) <= MAX_NAME_CHARS:
            raise RequestError(f"method name must be 1..{MAX_NAME_CHARS} characters, "
                               f"got {method!r}")
        conn = self._connections.get(peer_id)
        if conn is None:
            raise RequestError(f"{method!r}: not connected to peer {peer_id[:12]}")
        req_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[req_id] = (conn, future)
        try:
            try:
                sent = conn.send("req", {"id": req_id, "method": method, "body": body})
            except EncodeError as exc:
                raise RequestError(f"{method!r}: {exc}") from exc
            if not sent:
                raise RequestError(f"{method!r} to {conn.label}: link closing or send queue full")
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise RequestError(f"{method!r} to {conn.label} timed out after {timeout} s") from None
        finally:
            self._pending.pop(req_id, None)

    def on_request(self, conn: Connection, body: dict) -> None:
        req_id, method = body["id"], body["method"]
        assert conn.peer_id is not None, "requests are dispatched only on handshaken links"
        # [IGNORE] the peer stays within its request rate (dropped unanswered: answers cost bytes)
        if not self._policy.charge(conn.peer_id, "requests"):
            return
        handler = self._handlers.get(method)
        # [REJECT] the method is one we serve (answered with an error, not a disconnect)
        if handler is None:
            self._stats["dropped"]["unknown method"] += 1
            conn.send("resp", {"id": req_id, "ok": False, "body": f"unknown method {method!r}"})
            return
        # [IGNORE] the peer stays within its concurrent-request budget
        if self._active[conn] >= MAX_CONCURRENT_REQUESTS:
            self._stats["dropped"]["too many requests"] += 1
            conn.send("resp", {"id": req_id, "ok": False, "body": "too many concurrent requests"})
            return
        self._active[conn] += 1
        if conn.spawn(self._serve(conn, req_id, method, handler, body["body"])) is None:
            self._active[conn] -= 1

    async def _serve(self, conn: Connection, req_id: int, method: str, handler: Handler,
                     body: Any) -> None:
        """Run one handler and send its response. Ends with the handler; cancelled if the link
        closes."""
        peer_id = conn.peer_id
        assert peer_id is not None, "requests are dispatched only on handshaken links"
        try:
            try:
                result = await handler(peer_id, body)
            except BadRequest as exc:
                # [REJECT] the request body is one the method accepts
                if self._policy.should_log(peer_id, "bad request"):
                    self._log.warning("bad %r request from %s: %s", method, conn.label, exc)
                self._stats["rejected"]["bad request"] += 1
                if self._penalise is not None:
                    self._penalise(peer_id)
                conn.send("resp", {"id": req_id, "ok": False, "body": f"bad request: {exc}"})
                return
            except OverBudget as exc:
                # [IGNORE] the peer is within its answer budget (counted by the policy)
                conn.send("resp", {"id": req_id, "ok": False, "body": f"busy: {exc}"})
                return
            except Exception as exc:
                self._log.warning("handler for %r from %s raised: %r", method, conn.label, exc,
                                  exc_info=True)
                self._stats["errors"]["handler error"] += 1
                error = f"handler error: {type(exc).__name__}: {exc}"
                conn.send("resp", {"id": req_id, "ok": False, "body": error})
                return
            try:
                conn.send("resp", {"id": req_id, "ok": True, "body": result})
            except EncodeError as exc:
                self._log.error("response to %r is not sendable: %s", method, exc)
                self._stats["errors"]["bad response"] += 1
                conn.send("resp", {"id": req_id, "ok": False,
                                   "body": f"response not sendable: {exc}"})
        finally:
            self._active[conn] -= 1
            if self._active[conn] <= 0:
                del self._active[conn]

    def on_response(self, conn: Connection, body: dict) -> None:
        entry = self._pending.get(body["id"])
        # [IGNORE] the response answers a request we sent on this connection and still wait for
        if entry is None or entry[0] is not conn:
            self._stats["dropped"]["unsolicited response"] += 1
            if conn.peer_id is not None:
                self._policy.charge(conn.peer_id, "unsolicited")
            return
        future = entry[1]
        if future.done():
            return
        if body["ok"]:
            future.set_result(body["body"])
        else:
            error = body["body"]
            fits = isinstance(error, str) and len(error) <= MAX_REASON_CHARS
            text = error if fits else shown(error)
            future.set_exception(RequestError(f"remote error from {conn.label}: {text}"))

    def on_connection_closed(self, conn: Connection) -> None:
        """Fail every request still waiting on this connection."""
        for pending_conn, future in self._pending.values():
            if pending_conn is conn and not future.done():
                future.set_exception(RequestError(f"peer {conn.label} disconnected: "
                                                  f"{conn.close_reason}"))
