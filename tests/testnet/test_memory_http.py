"""HTTP and websockets to an in-process aiohttp app through the simulation's memory connector: an
ordinary ClientSession gets answers, streams and closes as over TCP, and an address with no
server refuses like a closed port."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from testnet.sim.memory_http import MemoryConnector

ADDRESS = ("10.0.0.1", 8000)
URL = "http://10.0.0.1:8000"


def app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"remote": request.remote, "x": request.query.get("x")})

    async def echo_body(request: web.Request) -> web.Response:
        return web.json_response({"got": await request.json()})

    async def echo_socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.data == "bye":
                await ws.close(code=4000, message=b"asked to")
                break
            await ws.send_str("echo:" + msg.data)
        return ws

    application = web.Application()
    application.router.add_get("/hello", hello)
    application.router.add_post("/echo", echo_body)
    application.router.add_get("/ws", echo_socket)
    return application


@pytest.fixture
async def session():
    runner = web.AppRunner(app())
    await runner.setup()
    async with aiohttp.ClientSession(connector=MemoryConnector({ADDRESS: runner.server})) as s:
        yield s
    await runner.cleanup()


async def test_requests_reach_the_app_and_reuse_the_connection(session):
    for x in ("1", "2", "3"):
        async with session.get(URL + "/hello", params={"x": x}) as resp:
            assert resp.status == 200
            assert await resp.json() == {"remote": "127.0.0.1", "x": x}


async def test_a_large_body_arrives_whole(session):
    body = {"values": list(range(50_000))}
    async with session.post(URL + "/echo", json=body) as resp:
        assert (await resp.json())["got"] == body


async def test_websocket_frames_keep_their_order_and_the_close_code_arrives(session):
    async with session.ws_connect(URL + "/ws") as ws:
        for i in range(5):
            await ws.send_str(f"m{i}")
        assert [(await ws.receive()).data for _ in range(5)] == [f"echo:m{i}" for i in range(5)]
        await ws.send_str("bye")
        msg = await ws.receive()
        assert msg.type == WSMsgType.CLOSE and msg.data == 4000


async def test_streams_to_many_nodes_stay_open_together(session):
    """One event stream per node, a thousand nodes: no pool limit holds the 101st back."""
    sockets = [await session.ws_connect(URL + "/ws") for _ in range(150)]
    try:
        for ws in sockets:
            await ws.send_str("hi")
        assert {(await ws.receive()).data for ws in sockets} == {"echo:hi"}
        async with session.get(URL + "/hello") as resp:     # and requests still get through
            assert resp.status == 200
    finally:
        for ws in sockets:
            await ws.close()


async def test_an_address_without_a_server_refuses(session):
    with pytest.raises(aiohttp.ClientConnectorError, match="no simulated server"):
        async with session.get("http://10.0.0.2:8000/hello"):
            pass
