"""Call a node's HTTP API without a socket: the simulation backend's client to its nodes.

A simulated node serves no HTTP site (`NodeRuntime(serve_http=False)`), but its aiohttp app is
built as always (`Node.make_app()`), and this client calls it directly: it resolves the route on
the app's router, runs the app's middlewares (the admin token check) and the handler on a request
made by `aiohttp.test_utils.make_mocked_request`, and returns the status and the JSON body. So the
orchestrator's checks and faults reach a simulated node through the same handlers, validation
and error replies as a real one, at the cost of a function call, on the loop's (virtual) time.

What it cannot serve: streaming replies (the `/events` websocket, `/p2p`); asking for one raises
`InProcessError`. Error handling: an HTTP error a handler raises (`web.HTTPException`) is a reply
like any other; any other exception of a handler propagates to the caller, as a bug should.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass
from typing import Any
from unittest import mock

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request

from node.errors import NodeError

DEFAULT_MAX_BODY_BYTES = 1 << 20     # node/app.py's API_MAX_BODY_BYTES


class InProcessError(NodeError, RuntimeError):
    """A request the in-process client cannot make (a streaming endpoint)."""


@dataclass(frozen=True)
class ApiReply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class InProcessClient:
    """Requests to one aiohttp app, in process. `headers` are sent with every request (e.g. the
    admin token: `{"Authorization": "Bearer <token>"}`)."""

    def __init__(self, app: web.Application, headers: dict[str, str] | None = None, *,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.headers = dict(headers or {})
        self.max_body_bytes = max_body_bytes
        app.freeze()    # what a server does before its first request: routes and middlewares set

    async def get(self, path: str) -> ApiReply:
        return await self.request("GET", path)

    async def post(self, path: str, body: Any = None) -> ApiReply:
        return await self.request("POST", path, body)

    async def delete(self, path: str, body: Any = None) -> ApiReply:
        return await self.request("DELETE", path, body)

    async def request(self, method: str, path: str, body: Any = None) -> ApiReply:
        """`body` is sent as JSON unless it is bytes (sent as they are)."""
        raw = body if isinstance(body, bytes) else (b"" if body is None else
                                                     json.dumps(body).encode())
        headers = {**self.headers, "Content-Length": str(len(raw))}
        if raw:
            headers.setdefault("Content-Type", "application/json")
        probe = make_mocked_request(method, path, headers, app=self.app)
        match_info = await self.app.router.resolve(probe)
        match_info.add_app(self.app)
        match_info.freeze()
        request = make_mocked_request(method, path, headers, app=self.app, match_info=match_info,
                                      payload=_payload(raw),
                                      client_max_size=self.max_body_bytes)
        handler = match_info.handler
        for middleware in reversed(self.app.middlewares):
            handler = functools.partial(middleware, handler=handler)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            return ApiReply(exc.status, exc.body if isinstance(exc.body, bytes) else b"")
        if not isinstance(response, web.Response):
            raise InProcessError(f"{method} {path} answers with a stream, which only a socket "
                                 f"can carry")
        body_bytes = response.body
        return ApiReply(response.status, body_bytes if isinstance(body_bytes, bytes) else b"")


def _payload(raw: bytes) -> StreamReader:
    """A request body stream holding `raw`, already at its end."""
    reader = StreamReader(mock.Mock(_reading_paused=False), 2 ** 16,
                          loop=asyncio.get_running_loop())
    if raw:
        reader.feed_data(raw)
    reader.feed_eof()
    return reader
