"""The in-process API client (node/inprocess_client.py) against a real node's app: the same
handlers, middlewares and error replies as over HTTP, without a socket.
"""

from __future__ import annotations

import pytest

from node.app import Node
from node.inprocess_client import InProcessClient
from node.runtime import NodeRuntime
from tests.node.api_harness import ADMIN_TOKEN, write_config


@pytest.fixture
async def node(tmp_path):
    node = Node(write_config(tmp_path / "node"),
                NodeRuntime(serve_http=False, store_path=":memory:", event_log=False, seed=1))
    node.service.load()
    yield node
    node.close()


async def test_status_is_served_without_a_socket(node):
    client = InProcessClient(node.make_app())
    reply = await client.get("/status")
    assert reply.status == 200
    status = reply.json()
    assert status["node_id"] == "api0" and status["height"] == 0
    assert status["head"] == node.head_hex()


async def test_route_parameters_and_unknown_routes(node):
    client = InProcessClient(node.make_app())
    reply = await client.get(f"/blocks/{node.head_hex()}")
    assert reply.status == 200 and reply.json()["height"] == 0
    assert (await client.get("/blocks/" + "0" * 64)).status == 404
    assert (await client.get("/no/such/route")).status == 404


async def test_bad_input_gets_the_same_400_as_over_http(node):
    client = InProcessClient(node.make_app())
    reply = await client.post("/tx", b"[" * 5000)
    assert reply.status == 400
    assert "nested deeper than" in reply.json()["error"]


async def test_the_admin_api_checks_its_token(node):
    app = node.make_app()
    anonymous = InProcessClient(app)
    assert (await anonymous.post("/admin/miner", {"enabled": False})).status == 401
    admin = InProcessClient(app, {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    reply = await admin.post("/admin/miner", {"enabled": False})
    assert reply.status == 200 and reply.json()["enabled"] is False
    assert node.miner is not None and node.miner.enabled is False
    assert (await admin.get("/admin/faults")).json()["miner"]["enabled"] is False


async def test_the_event_websocket_needs_a_socket(node):
    # without an Upgrade header the websocket handler refuses the request, as over HTTP
    reply = await InProcessClient(node.make_app()).get("/events")
    assert reply.status == 400


async def test_metrics_and_the_event_log_are_plain_replies(node):
    client = InProcessClient(node.make_app())
    assert (await client.get("/metrics")).status == 200
    log = (await client.get("/events/log?after=0")).json()
    assert log["last_seq"] == node.events.last_seq
