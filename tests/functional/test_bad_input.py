"""Garbage from the network or the API is refused with a reason, and the node keeps running.

A raw websocket peer (tests/p2p/p2p_harness.RawPeer) speaks frames by hand to a real node process.
"""

from __future__ import annotations

import logging
import os

import aiohttp
import msgpack
import pytest

from consensus import pow
from consensus.keys import derive_private_key, public_key
from consensus.types import (
    Block,
    BlockHeader,
    Transaction,
    make_coinbase,
    sign_transaction,
)
from testnet import LocalCluster
from testnet.waiting import wait_until
from tests.node.api_harness import build_request, raw_http
from tests.p2p.p2p_harness import RawPeer

log = logging.getLogger("test")


@pytest.fixture
async def one_node(cluster_dir):
    """A single node that does not mine, so nothing changes behind the test's back."""
    async with LocalCluster(nodes=1, directory=cluster_dir, overrides={0: {"mine": False}},
                            block_interval_s=1, hashrate=1_000) as cluster:
        yield cluster


def chain_params(cluster) -> tuple[str, bytes]:
    return cluster.info["chain_id"], pow.hash_from_hex(cluster.info["genesis"])


async def still_serving(cluster) -> None:
    status = await cluster.client(0).status()
    assert status["node_id"] == "node0"


async def node_log(cluster) -> str:
    return (cluster.directory / "node0" / "node.log").read_text()


async def wait_for_event(cluster, predicate, timeout: float = 10.0) -> dict:
    async def find():
        for event in await cluster.events(0):
            if predicate(event):
                return event
        return None
    return await wait_until(find, timeout, "a matching node event")


async def test_random_bytes_close_the_connection(one_node):
    url = one_node.info["nodes"][0]["p2p"]
    peer = await RawPeer.connect(url)
    try:
        await peer.ws.send_bytes(os.urandom(300))
        code, _frames = await peer.wait_closed()
        assert code is not None and code >= 1000
    finally:
        await peer.close()
    await still_serving(one_node)


async def test_a_frame_nested_a_thousand_deep_is_refused_as_malformed(one_node):
    """Issue 11, defect 4: the decoder's error message raised RecursionError (close 1001,
    traceback)."""
    version: object = 1
    for _ in range(1000):
        version = [version]
    peer = await RawPeer.connect(one_node.info["nodes"][0]["p2p"])
    try:
        await peer.recv_type("hello")
        await peer.ws.send_bytes(msgpack.packb([version, "hello", {}]))
        code, _frames = await peer.wait_closed()
    finally:
        await peer.close()
    assert code == 1002
    await wait_until(lambda: _contains(one_node, "malformed frame: protocol version a list"), 5,
                              "the node to log the malformed frame")
    await still_serving(one_node)
    assert "Traceback" not in await node_log(one_node)


async def test_oversized_frame_closes_the_connection(one_node):
    url = one_node.info["nodes"][0]["p2p"]
    peer = await RawPeer.connect(url)
    try:
        try:
            await peer.ws.send_bytes(b"\x00" * (5 * 1024 * 1024))
            await peer.wait_closed()
        except ConnectionError:
            pass  # the node may cut the TCP stream while the frame is still being written
    finally:
        await peer.close()
    await wait_until(lambda: _contains(one_node, "exceeds limit"), 5,
                              "the node to log the oversized frame")
    await still_serving(one_node)



async def test_wrong_chain_id_is_refused_with_a_reason_on_both_sides(one_node):
    _, genesis = chain_params(one_node)
    peer = await RawPeer.connect(one_node.info["nodes"][0]["p2p"])
    try:
        await peer.recv_type("hello")
        await peer.send("hello", {"chain_id": "another-net", "genesis": genesis, "version": 1,
                                  "pubkey": peer.identity.pubkey, "challenge": b"\x01" * 32})
        _code, frames = await peer.wait_closed()
        reasons = [body["reason"] for kind, body in frames if kind == "bye"]
        assert reasons and "chain id mismatch" in reasons[0]
    finally:
        await peer.close()
    await wait_until(lambda: _contains(one_node, "chain id mismatch"), 5,
                              "the node to log the handshake failure")
    await still_serving(one_node)


async def _contains(cluster, text: str) -> bool:
    return text in await node_log(cluster)


async def handshaken_peer(cluster) -> RawPeer:
    chain_id, genesis = chain_params(cluster)
    peer = await RawPeer.connect(cluster.info["nodes"][0]["p2p"])
    await peer.handshake(chain_id=chain_id, genesis=genesis)
    return peer


async def serve_block(peer: RawPeer, block: Block) -> None:
    """Announce a block and hand it over when the node asks for it."""
    await peer.send("inv", {"topic": "block", "ids": [block.hash]})
    request = await peer.recv_type("getdata")
    assert block.hash in request["ids"]
    await peer.send("data", {"topic": "block", "id": block.hash, "payload": block.serialize()})


def block_on_genesis(cluster, txs=(), nonce=0) -> Block:
    bits = int(_genesis_spec(cluster)["genesis_bits"], 16)
    coinbase = make_coinbase(b"\x07" * 32, 50_0000_0000, 1)
    all_txs = (coinbase, *txs)
    root = pow.merkle_root([t.txid for t in all_txs])
    header = BlockHeader(1, pow.hash_from_hex(cluster.info["genesis"]), root,
                         int(_genesis_spec(cluster)["genesis_time"]) + 61, bits, nonce)
    return Block(header, all_txs)


def _genesis_spec(cluster) -> dict:
    import json
    return json.loads((cluster.directory / "genesis.json").read_text())


async def test_block_with_invalid_pow_is_rejected_with_the_reason(one_node):
    block = block_on_genesis(one_node)
    target = pow.bits_to_target(block.header.bits)
    nonce = 0
    while pow.hash_to_int(block_on_genesis(one_node, nonce=nonce).hash) <= target:
        nonce += 1
    block = block_on_genesis(one_node, nonce=nonce)
    peer = await handshaken_peer(one_node)
    try:
        await serve_block(peer, block)
        event = await wait_for_event(one_node, lambda e: e["type"] == "block_rejected")
        assert "invalid proof of work" in event["reason"]
        assert event["hash"] == pow.hash_hex(block.hash)
    finally:
        await peer.close()
    status = await one_node.client(0).status()
    assert status["height"] == 0
    await still_serving(one_node)


async def test_block_carrying_a_forged_signature_is_rejected(one_node):
    accounts = one_node.accounts()
    key = bytes.fromhex(accounts[0]["private_key"])
    good = sign_transaction(key, b"\x09" * 32, 5, 1, 0)
    forged = Transaction(good.sender, good.recipient, 500, good.fee, good.nonce, good.signature)
    template = block_on_genesis(one_node, txs=(forged,))
    from consensus.block_builder import solve
    block = solve(template)
    peer = await handshaken_peer(one_node)
    try:
        await serve_block(peer, block)
        event = await wait_for_event(one_node, lambda e: e["type"] == "block_rejected")
        assert "bad signature" in event["reason"]
    finally:
        await peer.close()
    assert (await one_node.client(0).status())["height"] == 0
    await still_serving(one_node)


async def test_post_tx_with_malformed_json_or_bad_signature_gets_400(one_node):
    api = one_node.info["nodes"][0]["api"]
    accounts = one_node.accounts()
    key = bytes.fromhex(accounts[0]["private_key"])
    good = sign_transaction(key, public_key(derive_private_key("x", "y")), 5, 1, 0)
    forged = Transaction(good.sender, good.recipient, 6, good.fee, good.nonce, good.signature)
    async with aiohttp.ClientSession() as session:
        async with session.post(api + "/tx", data=b"{not json") as resp:
            assert resp.status == 400
            assert "not valid JSON" in (await resp.json())["error"]
        async with session.post(api + "/tx", json={"raw": forged.serialize().hex()}) as resp:
            assert resp.status == 400
            assert "bad signature" in (await resp.json())["error"]
        async with session.post(api + "/tx", json={"raw": "abc"}) as resp:
            assert resp.status == 400
            assert "raw" in (await resp.json())["error"]
        async with session.post(api + "/tx", json={"sender": "00" * 32}) as resp:
            assert resp.status == 400
            assert "missing field" in (await resp.json())["error"]
        async with session.post(api + "/tx", json={"raw": good.serialize().hex()}) as resp:
            assert resp.status == 202, await resp.text()
    await still_serving(one_node)


async def test_admin_endpoints_need_the_token(one_node):
    api = one_node.info["nodes"][0]["api"]
    async with aiohttp.ClientSession() as session:
        async with session.post(api + "/admin/miner", json={"enabled": False}) as resp:
            assert resp.status == 401
        async with session.post(api + "/admin/miner", json={"enabled": False},
                                headers={"Authorization": "Bearer nope"}) as resp:
            assert resp.status == 403
    result = await one_node.admin(0, "POST", "/admin/miner", {"enabled": False})
    assert result["enabled"] is False


async def test_hostile_http_bodies_and_headers_get_4xx_and_no_traceback(one_node):
    """Issue 11, defects 1-3: each of these was a 500 with a traceback in the node's log."""
    port = int(one_node.info["nodes"][0]["api"].rsplit(":", 1)[1])
    token = f"Bearer {one_node.info['admin_token']}".encode()
    cases = [
        ("/tx", b'{"amount": 1' + b"0" * 5000 + b"}", {}, 400),
        ("/tx", b"[" * 5000, {}, 400),
        ("/admin/miner", b'{"hashrate": 1' + b"0" * 5000 + b"}", {"Authorization": token}, 400),
        ("/admin/miner", b'{"enabled": false}', {"Authorization": b"Bearer \xff\xfe"}, 403),
    ]
    for target, body, headers, status in cases:
        reply = await raw_http(port, build_request("POST", target, body=body, headers=headers))
        assert reply.status == status, (target, reply)
    await still_serving(one_node)
    assert "Traceback" not in await node_log(one_node)


async def test_a_peer_relaying_overdrafts_is_not_penalised(one_node):
    """Issue 11, defect 6: an overdraft -- a balance race between honest peers on different
    forks -- was rejected because its reason mentions "amount"; ten of them banned the relay."""
    key = bytes.fromhex(one_node.accounts()[0]["private_key"])
    recipient = public_key(derive_private_key("x", "overdraft"))
    overdrafts = [sign_transaction(key, recipient, 2**60 + i, 1, 0) for i in range(12)]
    good = sign_transaction(key, recipient, 5, 1, 0)
    peer = await handshaken_peer(one_node)
    try:
        for tx in [*overdrafts, good]:
            await peer.send("gossip", {"topic": "tx", "id": tx.txid, "payload": tx.serialize()})

        async def good_tx_pooled() -> bool:  # one validator per topic, in order: all were judged
            return (await one_node.client(0).tx(pow.hash_hex(good.txid)))["in_mempool"]
        await wait_until(good_tx_pooled, 10, "the good transaction in the mempool")
        peers = {p["peer_id"]: p for p in await one_node.client(0).peers()}
        assert peers[peer.peer_id]["score"] == 0
    finally:
        await peer.close()
