"""HTTP client for one node's API: the only way the orchestrator looks inside a node."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp


class NodeAPIError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class NodeClient:
    def __init__(self, api_url: str, session: aiohttp.ClientSession, timeout: float = 5.0) -> None:
        self.api = api_url.rstrip("/")
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def _get(self, path: str, **params: Any) -> Any:
        async with self.session.get(self.api + path, params=params or None,
                                    timeout=self.timeout) as resp:
            return await _json_or_raise(resp)

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
        async with self.session.post(self.api + "/tx", json=body, timeout=self.timeout) as resp:
            return await _json_or_raise(resp)

    async def event_log(self, after: int, limit: int = 1000) -> dict:
        """Past events with seq > after: `{"events": [...], "last_seq": N}`."""
        return await self._get("/events/log", after=after, limit=limit)

    async def events(self, since: int | None = None) -> AsyncIterator[dict]:
        """Yields events until the node closes the stream."""
        params = {"since": since} if since is not None else None
        async with self.session.ws_connect(self.api + "/events", params=params,
                                           heartbeat=20) as ws:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    yield json.loads(msg.data)
                else:
                    break


async def _json_or_raise(resp: aiohttp.ClientResponse) -> Any:
    try:
        body = await resp.json(content_type=None)
    except (json.JSONDecodeError, aiohttp.ContentTypeError):
        body = {"error": await resp.text()}
    if resp.status >= 400:
        message = body.get("error", body) if isinstance(body, dict) else body
        raise NodeAPIError(resp.status, str(message))
    return body
