"""The DPoS routes of the node's HTTP API:

- `GET /producers`: the active schedule (in order, with its version), the pending one, and every
  candidate's votes, blocks produced and slots missed (on the head's branch);
- `POST /dpos/operation` with `{"raw": hex}`: a signed stake, unstake, registration or vote
  (`consensus.dpos.types.DposOperation`), pooled for the next block and gossiped; 400 with the
  rule's reason when it does not apply to the head state.

Other networks answer 404. `testnet dpos ...` signs operations and posts them here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from consensus.errors import ConsensusError
from node.dpos_service import DposChainService
from node.errors import BadRequestBody
from node.http_input import read_json_body, shown

if TYPE_CHECKING:
    from node.app import Node

NOT_DPOS = "producers and votes exist on DPoS networks only"


def _dpos_node(request: web.Request) -> Node | None:
    from node.api import NODE_KEY
    node = request.app[NODE_KEY]
    return node if isinstance(node.service, DposChainService) else None


async def get_producers(request: web.Request) -> web.Response:
    node = _dpos_node(request)
    if node is None:
        return web.json_response({"error": NOT_DPOS}, status=404)
    assert isinstance(node.service, DposChainService)
    out = node.service.producers_json()
    spec = node.service.spec
    genesis_keys = spec.schedule + spec.candidates
    local = {genesis_keys[i].hex(): i for i in (node.producers.keys if node.producers else {})}
    for candidate in out["candidates"]:
        index = local.get(candidate["producer"])
        candidate["local"] = index is not None
        if index is not None and node.producers is not None:
            candidate["role"] = node.producers.role(index)
    return web.json_response(out)


async def post_operation(request: web.Request) -> web.Response:
    node = _dpos_node(request)
    if node is None:
        return web.json_response({"error": NOT_DPOS}, status=404)
    usage = 'body must be {"raw": "<hex>"}'
    try:
        body = await read_json_body(request)
    except BadRequestBody as exc:
        return web.json_response({"error": f"{usage}: {exc}"}, status=400)
    if not isinstance(body, dict) or not isinstance(body.get("raw"), str):
        return web.json_response({"error": f"{usage}, got {shown(body)}"}, status=400)
    try:
        raw = bytes.fromhex(body["raw"])
    except ValueError:
        return web.json_response({"error": f"{usage}: raw is not hex: {shown(body['raw'])}"},
                                 status=400)
    try:
        result = node.submit_dpos_operation(raw)
    except (ValueError, ConsensusError) as exc:
        return web.json_response({"error": f"operation rejected: {exc}"}, status=400)
    if result.outcome == "reject":
        return web.json_response({"error": f"operation rejected: {result.reason}"}, status=400)
    return web.json_response({"outcome": result.outcome, "reason": result.reason}, status=202)


def add_dpos_routes(app: web.Application) -> None:
    app.router.add_get("/producers", get_producers)
    app.router.add_post("/dpos/operation", post_operation)
