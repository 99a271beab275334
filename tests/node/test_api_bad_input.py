"""Bad HTTP input gets a 4xx naming the problem, never a 500 or a traceback in the node's log.

A real node app on loopback (tests/node/api_harness.py); requests are written by hand so that they
can carry what client libraries refuse to send. Regression tests for issue 11, defects 1-3, and
for aiohttp's own bad-request logs.
"""

from __future__ import annotations

import logging

import pytest

from node.errors import BadRequestBody
from node.http_input import MAX_JSON_DEPTH, json_depth, parse_json_body
from tests.node.api_harness import ADMIN_TOKEN, build_request, raw_http, serve_node, watching_logs

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}".encode()}


@pytest.fixture
async def served(tmp_path):
    with watching_logs() as watch:
        async with serve_node(tmp_path / "node") as served:
            served.watch = watch
            yield served
    assert watch.problems() == []


async def post(served, target: str, body: bytes, headers: dict[str, bytes] | None = None):
    return await raw_http(served.port, build_request("POST", target, body=body, headers=headers))


@pytest.mark.parametrize(
    "target, headers", [("/tx", None), ("/admin/miner", ADMIN)], ids=["api", "admin"]
)
async def test_an_integer_of_thousands_of_digits_is_a_400(served, target, headers):
    reply = await post(served, target, b'{"amount": 1' + b"0" * 5000 + b"}", headers)
    assert reply.status == 400
    assert reply.json() == {"error": "number 10000000000000000000... has 5001 digits, more than 64"}


@pytest.mark.parametrize(
    "target, headers", [("/tx", None), ("/admin/peers", ADMIN)], ids=["api", "admin"]
)
async def test_deeply_nested_json_is_a_400(served, target, headers):
    reply = await post(served, target, b"[" * 5000, headers)
    assert reply.status == 400
    assert reply.json() == {
        "error": f"body is not valid JSON: nested deeper than {MAX_JSON_DEPTH} levels"
    }


async def test_json_nested_past_the_limit_but_within_the_stack_is_a_400(served):
    body = b'{"raw": ' + b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1) + b"}"
    reply = await post(served, "/tx", body)
    assert reply.status == 400
    assert "nested deeper than" in reply.json()["error"]


@pytest.mark.parametrize("text", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
async def test_numbers_json_does_not_have_are_a_400(served, text):
    reply = await post(served, "/admin/miner", b'{"hashrate": ' + text + b"}", ADMIN)
    assert reply.status == 400
    assert text.decode().lstrip("-") in reply.json()["error"]


async def test_a_body_that_is_not_utf8_is_a_400(served):
    reply = await post(served, "/tx", b'{"raw": "\xff\xfe"}')
    assert reply.status == 400
    assert reply.json() == {"error": "body is not valid JSON: not UTF-8 at byte 9"}


@pytest.mark.parametrize(
    "token", [b"\xff\xfe\xfd", b"caf\xe9", b"\xc3"], ids=["binary", "latin-1", "cut utf-8"]
)
async def test_an_authorization_header_that_is_not_utf8_is_refused_with_403(served, token):
    reply = await post(
        served, "/admin/miner", b'{"enabled": false}', {"Authorization": b"Bearer " + token}
    )
    assert reply.status == 403
    assert reply.json() == {"error": "wrong admin token"}
    assert served.node.miner.enabled  # refused: nothing changed


async def test_error_messages_show_a_long_value_cut(served):
    reply = await post(served, "/tx", b'{"raw": "' + b"z" * 100_000 + b'"}')
    assert reply.status == 400
    error = reply.json()["error"]
    assert error.startswith("raw: not hex: 'zzzz") and error.endswith("... (100000 long)")
    assert len(error) < 200


async def test_a_partition_of_something_not_a_peer_id_is_a_400_and_changes_nothing(served):
    reply = await post(served, "/admin/partition", b'{"peers": ["*", "not-a-peer"]}', ADMIN)
    assert reply.status == 400
    assert reply.json() == {"error": "peers.1: must be a peer id (64 lowercase hex digits) or "
                                     "'*', got 'not-a-peer'"}
    assert served.node.link_faults.blocks == {}


async def test_a_malformed_request_aiohttp_refuses_is_one_warning_line(served, caplog):
    caplog.set_level(logging.WARNING, logger="aiohttp.server")
    reply = await raw_http(served.port, b"GET /status HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
    assert reply.status == 400
    [record] = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage().startswith("Error handling request from 127.0.0.1: 400, message:")


def test_json_depth_counts_without_recursion():
    assert json_depth(1) == 0
    assert json_depth([]) == 1
    assert json_depth({"a": [1, {"b": []}]}) == 4
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert json_depth(deep) == MAX_JSON_DEPTH + 1  # counting stops past the limit


def test_parse_json_body_accepts_strict_json_only():
    assert parse_json_body(b'{"a": [1, -2.5, "x", true, null]}') == {
        "a": [1, -2.5, "x", True, None]
    }
    for bad in (b"", b"{", b"NaN", b"[1e400]", b"\xef\xbb\xbf{}", b"-" + b"9" * 100):
        with pytest.raises(BadRequestBody):
            parse_json_body(bad)
