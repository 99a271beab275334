"""The node's HTTP JSON API (aiohttp): status, blocks, chain headers, peers, accounts, transactions,
and the `/events` websocket.

Bad input gets a 4xx with `{"error": reason}` naming the offending value (shown bounded, and every
JSON body read strictly: node/http_input.py); nothing a client sends can stop the node. Hashes are
shown byte-reversed (`hash_hex`), as Bitcoin displays them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import TYPE_CHECKING

from aiohttp import WSCloseCode, WSMsgType, web

from consensus.errors import ConsensusError, InvalidTransaction
from consensus.pow import hash_from_hex, hash_hex
from consensus.types import MAX_AMOUNT, TX_BYTES, Transaction
from node.dpos_api import add_dpos_routes
from node.errors import BadRequestBody
from node.events import read_log
from node.http_input import read_json_body, shown
from node.hybrid_service import HybridChainService
from node.pos_service import PosChainService
from node.schema import Field, integer, optional, text, validate

if TYPE_CHECKING:
    from node.app import Node

log = logging.getLogger(__name__)

MAX_CHAIN_RANGE = 2000
NODE_KEY: web.AppKey[Node] = web.AppKey("node")
# Open /events streams: closed when the node shuts down, else the server waits for their
# handlers (which end only when the observer leaves) and a SIGTERM turns into a SIGKILL.
EVENT_STREAMS: web.AppKey[weakref.WeakSet] = web.AppKey("event_streams")


U64 = integer(ge=0, le=MAX_AMOUNT)
# `POST /tx` body: either `raw` (hex of the 152-byte encoding) or the fields.
TX_FIELDS = {
    "raw": Field(optional(text()), None),
    "sender": Field(optional(text()), None),
    "recipient": Field(optional(text()), None),
    "amount": Field(optional(U64), None),
    "fee": Field(optional(U64), None),
    "nonce": Field(optional(U64), None),
    "signature": Field(optional(text()), None),
}


def transaction_from_body(body: dict) -> Transaction:
    """The transaction a `POST /tx` body (checked by TX_FIELDS) describes. Raises ValueError
    (a field missing, not hex or of the wrong length) or ConsensusError (a bad encoding)."""
    if body["raw"] is not None:
        return Transaction.deserialize(_hex_field("raw", body["raw"], TX_BYTES))
    missing = [f for f in ("sender", "recipient", "amount", "fee", "nonce", "signature")
               if body[f] is None]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)} (or give 'raw')")
    return Transaction(_hex_field("sender", body["sender"], 32),
                       _hex_field("recipient", body["recipient"], 32), body["amount"],
                       body["fee"], body["nonce"], _hex_field("signature", body["signature"], 64))


def _hex_field(name: str, value: str | None, length: int) -> bytes:
    try:
        raw = bytes.fromhex(value or "")
    except ValueError:
        raise ValueError(f"{name}: not hex: {shown(value)}") from None
    if len(raw) != length:
        raise ValueError(f"{name}: expected {length} bytes, got {len(raw)}")
    return raw


def _bad_request(reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=400)


def _node(request: web.Request) -> Node:
    return request.app[NODE_KEY]


async def get_status(request: web.Request) -> web.Response:
    return web.json_response(_node(request).status())


async def get_block(request: web.Request) -> web.Response:
    node = _node(request)
    text = request.match_info["hash"]
    try:
        block = node.service.block_json(text)
    except ValueError:
        return _bad_request(f"bad block hash: {shown(text)}")
    if block is None:
        return web.json_response({"error": f"unknown block {text}"}, status=404)
    return web.json_response(block)


async def get_chain(request: web.Request) -> web.Response:
    service = _node(request).service
    height = service.head_height
    try:
        start = int(request.query.get("from", max(0, height - 99)))
        end = int(request.query.get("to", height))
    except ValueError:
        return _bad_request(f"from/to must be integers: from={shown(request.query.get('from'))} "
                            f"to={shown(request.query.get('to'))}")
    if start < 0 or end < start:
        return _bad_request(f"bad range from={shown(start)} to={shown(end)}")
    if end - start >= MAX_CHAIN_RANGE:
        return _bad_request(f"range of {shown(end - start + 1)} headers exceeds {MAX_CHAIN_RANGE}")
    return web.json_response({"height": height, "headers": service.headers_json(start, end)})


async def get_tips(request: web.Request) -> web.Response:
    """Every branch tip, like Bitcoin's getchaintips: active, valid-fork, unvalidated or invalid."""
    return web.json_response(_node(request).service.tips_json())


async def get_tx(request: web.Request) -> web.Response:
    node = _node(request)
    text = request.match_info["txid"]
    try:
        txid = hash_from_hex(text)
    except ValueError:
        return _bad_request(f"bad txid: {shown(text)}")
    return web.json_response(node.service.transaction_status(txid))


async def get_peers(request: web.Request) -> web.Response:
    return web.json_response(_node(request).peers_json())


async def get_account(request: web.Request) -> web.Response:
    node = _node(request)
    text = request.match_info["account"]
    try:
        account = _hex_field("account", text, 32)
    except ValueError as exc:
        return _bad_request(str(exc))
    return web.json_response({"account": text, **node.service.account_json(account)})


async def post_tx(request: web.Request) -> web.Response:
    node = _node(request)
    try:
        body = await read_json_body(request)
    except BadRequestBody as exc:
        return _bad_request(str(exc))
    if not isinstance(body, dict):
        return _bad_request("body must be a JSON object")
    try:
        tx = transaction_from_body(validate(TX_FIELDS, body))
    except (ValueError, ConsensusError) as exc:    # SchemaError is a ValueError
        return _bad_request(str(exc))
    try:
        txid = node.submit_transaction(tx)
    except InvalidTransaction as exc:
        return _bad_request(f"transaction rejected: {exc}")
    return web.json_response({"txid": hash_hex(txid)}, status=202)


async def get_events(request: web.Request) -> web.StreamResponse:
    """Websocket of events as JSON text frames; `?since=SEQ` replays what is still in memory."""
    node = _node(request)
    since_text = request.query.get("since")
    try:
        since = int(since_text) if since_text is not None else None
    except ValueError:
        return _bad_request(f"since must be an integer: {shown(since_text)}")
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)
    request.app[EVENT_STREAMS].add(ws)
    sub = node.events.subscribe(since)
    reader = asyncio.ensure_future(ws.receive())
    getter = asyncio.ensure_future(sub.get())
    try:
        while not ws.closed:
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                if reader.result().type in (WSMsgType.CLOSE, WSMsgType.CLOSING,
                                            WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
                reader = asyncio.ensure_future(ws.receive())
            if getter in done:
                await ws.send_str(json.dumps(getter.result(), separators=(",", ":")))
                getter = asyncio.ensure_future(sub.get())
    except ConnectionResetError:
        pass
    finally:
        reader.cancel()
        getter.cancel()
        node.events.unsubscribe(sub)
    return ws


async def get_event_log(request: web.Request) -> web.Response:
    """`GET /events/log?after=SEQ&limit=N`: past events (seq > after, oldest first), from memory or
    the node's events.jsonl; `{"events": [...], "last_seq": N}`. Observers fill gaps with it."""
    node = _node(request)
    try:
        after = int(request.query.get("after", "0"))
        limit = int(request.query.get("limit", "1000"))
    except ValueError:
        return _bad_request("after and limit must be integers")
    if after < 0 or limit < 1:
        return _bad_request("after must be >= 0 and limit >= 1")
    events = node.events.read_memory(after, limit)
    if events is None:  # older than memory: read the log off the event loop
        events = await asyncio.to_thread(read_log, node.events.log_path, after, limit)
    return web.json_response({"events": events, "last_seq": node.events.last_seq})


async def get_validators(request: web.Request) -> web.Response:
    node = _node(request)
    service = node.service
    validators = node.duties or node.voters
    if not isinstance(service, PosChainService | HybridChainService) or validators is None:
        return web.json_response({"error": "a PoW network has no validators"}, status=404)
    local = set(validators.keys)
    out = []
    for v in service.chain.validators_json():
        v["local"] = v["index"] in local
        if v["local"]:
            v["role"] = validators.role(v["index"])
        out.append(v)
    return web.json_response(out)


async def post_stake(request: web.Request) -> web.Response:
    """`POST /stake/deposit` or `/stake/exit` with `{"raw": hex}`: pooled for the next proposal
    of this node and gossiped to the others."""
    node = _node(request)
    if node.duties is None and node.voters is None:
        return web.json_response({"error": "staking exists on PoS and hybrid networks only"},
                                 status=404)
    kind = request.match_info["kind"]
    usage = 'body must be {"raw": "<hex>"}'
    try:
        body = await read_json_body(request)
    except BadRequestBody as exc:
        return _bad_request(f"{usage}: {exc}")
    if not isinstance(body, dict) or not isinstance(body.get("raw"), str):
        return _bad_request(f"{usage}, got {shown(body)}")
    try:
        raw = bytes.fromhex(body["raw"])
    except ValueError:
        return _bad_request(f"{usage}: raw is not hex: {shown(body['raw'])}")
    try:
        result = node.submit_stake_operation(kind, raw)
    except (ValueError, ConsensusError) as exc:
        return _bad_request(f"{kind} rejected: {exc}")
    if result.outcome == "reject":
        return _bad_request(f"{kind} rejected: {result.reason}")
    return web.json_response({"outcome": result.outcome, "reason": result.reason}, status=202)


async def get_metrics(request: web.Request) -> web.Response:
    from node.metrics import render
    body, content_type = render(_node(request))
    return web.Response(body=body, headers={"Content-Type": content_type})


async def close_event_streams(app: web.Application) -> None:
    """On shutdown: tell every observer the node is going away (1001) so it can reconnect."""
    open_streams = app[EVENT_STREAMS]
    streams = list(open_streams)
    await asyncio.gather(*(ws.close(code=WSCloseCode.GOING_AWAY, message=b"node shutting down")
                           for ws in streams), return_exceptions=True)


def add_routes(app: web.Application, node: Node) -> None:
    app[NODE_KEY] = node
    app[EVENT_STREAMS] = weakref.WeakSet()
    app.on_shutdown.append(close_event_streams)
    app.router.add_get("/status", get_status)
    app.router.add_get("/blocks/{hash}", get_block)
    app.router.add_get("/chain", get_chain)
    app.router.add_get("/tips", get_tips)
    app.router.add_get("/peers", get_peers)
    app.router.add_get("/accounts/{account}", get_account)
    app.router.add_post("/tx", post_tx)
    app.router.add_get("/tx/{txid}", get_tx)
    app.router.add_get("/events", get_events)
    app.router.add_get("/events/log", get_event_log)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/validators", get_validators)
    app.router.add_post("/stake/{kind:deposit|exit}", post_stake)
    add_dpos_routes(app)
