"""Admin endpoints under /admin: change a running node's peers and miner.

Protected by the node's `admin_token` (the orchestrator holds it): a request without
`Authorization: Bearer <token>` gets 401, a wrong token 403; a node configured without a token has
no admin API at all (404). Later fault-injection endpoints live here too.
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler

from node.config import PEER_URL, PEER_URL_MEANS
from node.errors import BadRequestBody
from node.http_input import read_json_body
from node.schema import (
    Field,
    SchemaError,
    boolean,
    choice,
    integer,
    list_of,
    mapping,
    number,
    optional,
    text,
    validate,
)
from p2p.link_shaper import LinkRule

# A link fault names a peer id (64 lowercase hex digits) or "*" for every peer (p2p.link_shaper).
PEER_SELECTOR = text(pattern=r"^(\*|[0-9a-f]{64})$",
                     means="a peer id (64 lowercase hex digits) or '*'")
DIRECTION = choice("in", "out", "both")
MAX_PARTITION_PEERS = 1024
MIN_HASHRATE = 0.001  # hashes/s: a slower cap is "off" (enabled: false), and overflows timers
MAX_HASHRATE = 1e15
MAX_ROLE_CHARS = 64

if TYPE_CHECKING:
    from node.app import Node

NODE_KEY: web.AppKey[Node] = web.AppKey("admin_node")

PEER_FIELDS = {"url": Field(text(pattern=PEER_URL, means=PEER_URL_MEANS))}
MINER_FIELDS = {
    "enabled": Field(optional(boolean), None),
    "hashrate": Field(optional(number(ge=MIN_HASHRATE, le=MAX_HASHRATE)), None),
    "unlimited": Field(boolean, False),
}
LINK_FIELDS = {
    "peer": Field(PEER_SELECTOR, "*"),
    "direction": Field(DIRECTION, "out"),
    "rule": Field(mapping),
}
PARTITION_FIELDS = {
    "peers": Field(list_of(PEER_SELECTOR, max_items=MAX_PARTITION_PEERS)),
    "direction": Field(DIRECTION, "both"),
}
CLOCK_FIELDS = {"offset_s": Field(number(ge=-86_400, le=86_400))}
ROLE_FIELDS = {
    "role": Field(text(max_chars=MAX_ROLE_CHARS)),
    "validator": Field(optional(integer(ge=0, le=(1 << 32) - 1)), None),  # PoS: its index
}


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
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
    # aiohttp decodes header bytes that are not UTF-8 as surrogates; encoding them back the same
    # way compares the bytes the client sent, so any header gets a 403, never an encode error
    offered = given[len("Bearer "):].encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(offered, token.encode()):
        return web.json_response({"error": "wrong admin token"}, status=403)
    return await handler(request)


async def _body(request: web.Request, fields: dict[str, Field]) -> dict[str, Any]:
    """The request's JSON body checked by `fields`; a 400 naming the problems otherwise."""
    try:
        return validate(fields, await read_json_body(request))
    except (BadRequestBody, SchemaError) as exc:
        raise _bad(str(exc)) from None


async def add_peer(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    body = await _body(request, PEER_FIELDS)
    node.host.add_peer(body["url"])
    node.events.emit("admin", action="add_peer", url=body["url"])
    return web.json_response({"ok": True, "dialing": body["url"]})


async def remove_peer(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    body = await _body(request, PEER_FIELDS)
    node.host.remove_peer(body["url"])
    node.events.emit("admin", action="remove_peer", url=body["url"])
    return web.json_response({"ok": True, "removed": body["url"]})


async def set_miner(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    if node.miner is None:
        raise _bad("this is a PoS node: it has validators, not a miner")
    body = await _body(request, MINER_FIELDS)
    if body["unlimited"]:
        node.miner.configure(enabled=body["enabled"], hashrate=None)
    elif body["hashrate"] is not None:
        node.miner.configure(enabled=body["enabled"], hashrate=body["hashrate"])
    else:
        node.miner.configure(enabled=body["enabled"])
    node.events.emit("fault_applied", fault="miner", enabled=node.miner.enabled,
                     hashrate_cap=node.miner.hashrate_cap)
    return web.json_response({"enabled": node.miner.enabled,
                              "hashrate_cap": node.miner.hashrate_cap})


def _bad(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": reason}), content_type="application/json")


async def set_link(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    body = await _body(request, LINK_FIELDS)
    try:
        rule = LinkRule.from_json(body["rule"])
    except (ValueError, TypeError) as exc:
        raise _bad(f"rule: {exc}") from None
    if body["peer"] != "*" and body["peer"] not in node.known_peer_ids():
        raise _bad(f"peer: unknown peer id {body['peer']}")
    node.link_faults.shape(body["peer"], body["direction"], rule)
    node.events.emit("fault_applied", fault="link", peer=body["peer"],
                     direction=body["direction"],
                     rule=rule.to_json())
    return web.json_response(node.link_faults.describe())


async def clear_link(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    peer = request.query.get("peer")
    cleared = node.link_faults.clear_shaping(peer)
    if cleared:
        node.events.emit("fault_cleared", fault="link", peer=peer or "*", rules=cleared)
    return web.json_response({"cleared": cleared, **node.link_faults.describe()})


async def set_partition(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    body = await _body(request, PARTITION_FIELDS)
    for peer in body["peers"]:
        node.link_faults.block(peer, body["direction"])
    node.events.emit("fault_applied", fault="partition", peers=body["peers"],
                     direction=body["direction"])
    return web.json_response(node.link_faults.describe())


async def clear_partition(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    cleared = node.link_faults.clear_blocks()
    if cleared:
        node.events.emit("fault_cleared", fault="heal", peers=cleared)
    return web.json_response({"cleared": cleared, **node.link_faults.describe()})


async def set_clock(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    body = await _body(request, CLOCK_FIELDS)
    previous = node.clock.offset_s
    node.clock.offset_s = body["offset_s"]
    node.events.emit("fault_applied" if body["offset_s"] else "fault_cleared", fault="skew",
                     offset_s=body["offset_s"], previous_s=previous)
    if node.miner is not None:
        node.miner.refresh()
    return web.json_response({"offset_s": body["offset_s"], "previous_s": previous})


async def set_role(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    body = await _body(request, ROLE_FIELDS)
    try:
        result = node.set_role(body["role"], body["validator"])
    except ValueError as exc:
        raise _bad(f"role: {exc}") from None
    return web.json_response(result)


async def get_faults(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    return web.json_response(node.faults_json())


def add_admin_routes(app: web.Application, node: Node) -> None:
    app[NODE_KEY] = node
    app.middlewares.append(require_token)
    app.router.add_post("/admin/peers", add_peer)
    app.router.add_delete("/admin/peers", remove_peer)
    app.router.add_post("/admin/miner", set_miner)
    app.router.add_get("/admin/faults", get_faults)
    app.router.add_post("/admin/link", set_link)
    app.router.add_delete("/admin/link", clear_link)
    app.router.add_post("/admin/partition", set_partition)
    app.router.add_delete("/admin/partition", clear_partition)
    app.router.add_post("/admin/clock", set_clock)
    app.router.add_post("/admin/role", set_role)
