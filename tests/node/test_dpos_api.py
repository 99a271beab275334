"""The DPoS routes of a real node's HTTP API (in-process, nothing dials out): the producer table,
operations accepted or refused with the rule's reason, /status's DPoS fields, and 404 elsewhere."""

from __future__ import annotations

import aiohttp
import pytest

from consensus.dpos.types import OpKind, sign_operation
from consensus.keys import public_key
from tests.node.api_harness import account_key, serve_node, validator_key


@pytest.fixture
async def dpos_node(tmp_path):
    async with serve_node(tmp_path / "node", "dpos") as served:
        yield served


async def get(url: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.json()


async def post(url: str, body: object) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as resp:
        return resp.status, await resp.json()


async def test_status_names_the_slot_the_producer_and_the_lib(dpos_node):
    status, body = await get(dpos_node.url + "/status")
    assert status == 200 and body["consensus"] == "dpos"
    assert body["finalized"] == {"height": 0, "root": body["genesis"], "slot": 0}
    assert body["schedule_version"] == 0 and body["producers"] == 4
    assert body["producer"] in {public_key(validator_key(i)).hex() for i in range(4)}


async def test_producers_lists_the_schedule_and_every_candidate(dpos_node):
    status, body = await get(dpos_node.url + "/producers")
    assert status == 200
    assert body["schedule"] == [public_key(validator_key(i)).hex() for i in range(4)]
    assert {c["produced"] for c in body["candidates"]} == {0}
    assert all(not c["local"] for c in body["candidates"])     # no producer keys on this node


async def test_a_vote_is_pooled_and_a_bad_one_refused_with_the_reason(dpos_node):
    key = account_key(0)
    candidates = (public_key(validator_key(0)), public_key(validator_key(1)))
    vote = sign_operation(key, OpKind.VOTE, 0, candidates=candidates)
    status, body = await post(dpos_node.url + "/dpos/operation", {"raw": vote.serialize().hex()})
    assert status == 202 and body["outcome"] == "accept"
    twice = sign_operation(key, OpKind.VOTE, 0, candidates=(candidates[0], candidates[0]))
    status, body = await post(dpos_node.url + "/dpos/operation", {"raw": twice.serialize().hex()})
    assert status == 400 and "named twice" in body["error"]
    unstaked = sign_operation(account_key(1), OpKind.VOTE, 0, candidates=candidates)
    status, body = await post(dpos_node.url + "/dpos/operation",
                              {"raw": unstaked.serialize().hex()})
    assert status == 400 and "without stake" in body["error"]


@pytest.mark.parametrize("body, reason", [
    ({"raw": "zz"}, "not hex"), ({"raw": "00"}, "operation rejected"), ([1], "body must be"),
])
async def test_malformed_operations_are_a_400(dpos_node, body, reason):
    status, reply = await post(dpos_node.url + "/dpos/operation", body)
    assert status == 400 and reason in reply["error"]


async def test_other_networks_answer_404(tmp_path):
    async with serve_node(tmp_path / "pow") as served:
        status, body = await get(served.url + "/producers")
        assert status == 404 and "DPoS" in body["error"]
