"""HTTP client for one node's API: the only way the orchestrator looks inside a node or asks it to
do something (public endpoints, token-protected admin endpoints, staking, the event stream).

Every transport failure -- refused or reset connections, timeouts, a stream that breaks -- comes
out as `NodeUnreachable`, and every HTTP error answer as `NodeAPIError` with the node's own
message: callers handle two `TestnetError`s, never aiohttp's exception zoo.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from testnet.errors import NodeAPIError, NodeUnreachable

# What a broken connection can raise: aiohttp's errors, timeouts, and the OS's socket errors.
TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


class NodeClient:
    def __init__(self, api_url: str, session: aiohttp.ClientSession, timeout: float = 5.0, *,
                 admin_token: str | None = None, name: str | None = None) -> None:
        self.api = api_url.rstrip("/")
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.admin_token = admin_token
        self.name = name or self.api

    async def _request(self, method: str, path: str, *, params: dict | None = None,
                       body: Any = None, headers: dict | None = None,
                       timeout: aiohttp.ClientTimeout | None = None) -> Any:
        try:
            async with self.session.request(method, self.api + path, params=params or None,
                                            json=body, headers=headers,
                                            timeout=timeout or self.timeout) as resp:
                return await _json_or_raise(resp)
        except TRANSPORT_ERRORS as exc:
            raise NodeUnreachable(f"{self.name} did not answer {method} {path}: "
                                  f"{_describe(exc)}") from exc

    async def _get(self, path: str, **params: Any) -> Any:
        return await self._request("GET", path, params=params)

    # ---- public API ------------------------------------------------------------------------------
    async def status(self) -> dict:
        return await self._get("/status")

    async def peers(self) -> list[dict]:
        return await self._get("/peers")

    async def chain(self, start: int | None = None, end: int | None = None) -> dict:
        params = {k: v for k, v in (("from", start), ("to", end)) if v is not None}
        return await self._get("/chain", **params)

    async def block(self, block_hash: str) -> dict:
        return await self._get(f"/blocks/{block_hash}")

    async def tips(self) -> list[dict]:
        return await self._get("/tips")

    async def account(self, account_hex: str) -> dict:
        return await self._get(f"/accounts/{account_hex}")

    async def tx(self, txid: str) -> dict:
        return await self._get(f"/tx/{txid}")

    async def post_tx(self, body: dict) -> dict:
        return await self._request("POST", "/tx", body=body)

    async def post_stake(self, kind: str, raw: bytes) -> dict:
        """Submits a signed deposit or exit (`kind`: "deposit" or "exit")."""
        return await self._request("POST", f"/stake/{kind}", body={"raw": raw.hex()})

    async def post_dpos_operation(self, raw: bytes) -> dict:
        """Submits a signed DPoS stake, unstake, registration or vote."""
        return await self._request("POST", "/dpos/operation", body={"raw": raw.hex()})

    async def producers(self) -> dict:
        """DPoS: the schedule and every candidate's votes, produced and missed blocks."""
        return await self._get("/producers")

    async def validators(self) -> list[dict]:
        """PoS: every validator with its stake and whether it is slashed (404 on PoW)."""
        return await self._get("/validators")

    async def metrics(self) -> str:
        """The Prometheus text the node serves at /metrics."""
        try:
            async with self.session.get(self.api + "/metrics", timeout=self.timeout) as resp:
                if resp.status >= 400:
                    await _json_or_raise(resp)
                return await resp.text()
        except TRANSPORT_ERRORS as exc:
            raise NodeUnreachable(f"{self.name} did not answer GET /metrics: "
                                  f"{_describe(exc)}") from exc

    async def event_log(self, after: int, limit: int = 1000) -> dict:
        """Past events with seq > after: `{"events": [...], "last_seq": N}`."""
        return await self._get("/events/log", after=after, limit=limit)

    # ---- admin API -------------------------------------------------------------------------------
    async def admin(self, method: str, path: str, body: dict | None = None) -> Any:
        """Calls a token-protected /admin endpoint (the cluster's token)."""
        if self.admin_token is None:
            raise NodeAPIError(401, f"no admin token for {self.name}")
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        return await self._request(method, path, body=body, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=10))

    # ---- the event stream ------------------------------------------------------------------------
    @asynccontextmanager
    async def event_stream(self, since: int | None = None, *, heartbeat: float = 20.0
                           ) -> AsyncIterator[AsyncIterator[dict]]:
        """`async with client.event_stream(since) as events: async for event in events: ...`

        The stream replays from the node's memory after `since`, then follows live. It ends when
        the node closes it; a broken connection raises NodeUnreachable.
        """
        params = {"since": since} if since is not None else None
        try:
            async with self.session.ws_connect(
                    self.api + "/events", params=params, heartbeat=heartbeat,
                    timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
                yield _events_of(ws, self.name)
        except NodeUnreachable:
            raise          # from the caller's own calls inside the block: already said
        except TRANSPORT_ERRORS as exc:
            raise NodeUnreachable(f"{self.name}: event stream: {_describe(exc)}") from exc

    async def events(self, since: int | None = None) -> AsyncIterator[dict]:
        """Yields events until the node closes the stream."""
        async with self.event_stream(since) as stream:
            async for event in stream:
                yield event


async def _events_of(ws: aiohttp.ClientWebSocketResponse, name: str) -> AsyncIterator[dict]:
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            return
        try:
            event = json.loads(msg.data)
        except json.JSONDecodeError:
            raise NodeAPIError(200, f"{name} sent an event that is not JSON") from None
        if not isinstance(event, dict):
            raise NodeAPIError(200, f"{name} sent an event that is not an object")
        yield event


async def _json_or_raise(resp: aiohttp.ClientResponse) -> Any:
    try:
        body = await resp.json(content_type=None)
    except (json.JSONDecodeError, aiohttp.ContentTypeError, UnicodeDecodeError):
        body = {"error": (await resp.text(errors="replace"))[:500]}
    if resp.status >= 400:
        message = body.get("error", body) if isinstance(body, dict) else body
        raise NodeAPIError(resp.status, str(message))
    return body


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
