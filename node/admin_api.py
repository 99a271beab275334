"""Admin endpoints under /admin: change a running node's peers and miner.

Protected by the node's `admin_token` (the orchestrator holds it): a request without
`Authorization: Bearer <token>` gets 401, a wrong token 403; a node configured without a token has
no admin API at all (404). Later fault-injection endpoints live here too.
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from node.app import Node

NODE_KEY: web.AppKey["Node"] = web.AppKey("admin_node")


class PeerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(pattern=r"^wss?://")


class MinerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    hashrate: float | None = Field(default=None, gt=0)
    unlimited: bool = False


@web.middleware
async def require_token(request: web.Request, handler):  # type: ignore[no-untyped-def]
    if not request.path.startswith("/admin"):
        return await handler(request)
    token = request.app[NODE_KEY].config.admin_token
    if token is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "admin API disabled (no admin_token)"}),
                               content_type="application/json")
    given = request.headers.get("Authorization", "")
    if not given.startswith("Bearer "):
        return web.json_response({"error": "admin token required: Authorization: Bearer <token>"},
                                 status=401)
    if not hmac.compare_digest(given[len("Bearer "):].encode(), token.encode()):
        return web.json_response({"error": "wrong admin token"}, status=403)
    return await handler(request)


async def _body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    try:
        data = await request.json()
        return model.model_validate(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"body is not valid JSON: {exc}"}),
                                 content_type="application/json") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise web.HTTPBadRequest(text=json.dumps({"error": f"{field}: {err['msg']}"}),
                                 content_type="application/json") from None


async def add_peer(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    body = await _body(request, PeerRequest)
    node.host.add_peer(body.url)  # type: ignore[attr-defined]
    node.events.emit("admin", action="add_peer", url=body.url)  # type: ignore[attr-defined]
    return web.json_response({"ok": True, "dialing": body.url})  # type: ignore[attr-defined]


async def remove_peer(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    body = await _body(request, PeerRequest)
    node.host.remove_peer(body.url)  # type: ignore[attr-defined]
    node.events.emit("admin", action="remove_peer", url=body.url)  # type: ignore[attr-defined]
    return web.json_response({"ok": True, "removed": body.url})  # type: ignore[attr-defined]


async def set_miner(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    body: MinerRequest = await _body(request, MinerRequest)  # type: ignore[assignment]
    if body.unlimited:
        node.miner.configure(enabled=body.enabled, hashrate=None)
    elif body.hashrate is not None:
        node.miner.configure(enabled=body.enabled, hashrate=body.hashrate)
    else:
        node.miner.configure(enabled=body.enabled)
    node.events.emit("admin", action="miner", enabled=node.miner.enabled,
                     hashrate_cap=node.miner.hashrate_cap)
    return web.json_response({"enabled": node.miner.enabled,
                              "hashrate_cap": node.miner.hashrate_cap})


def add_admin_routes(app: web.Application, node: Node) -> None:
    app[NODE_KEY] = node
    app.middlewares.append(require_token)
    app.router.add_post("/admin/peers", add_peer)
    app.router.add_delete("/admin/peers", remove_peer)
    app.router.add_post("/admin/miner", set_miner)
