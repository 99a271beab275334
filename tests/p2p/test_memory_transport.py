"""The in-memory transport on the virtual-time loop: exact delays, order, bandwidth, close codes,
frame caps, refused dials, and loss/jitter that one seed repeats."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import WSCloseCode, WSMsgType
from aiohttp.http_websocket import WebSocketError

from p2p.memory_transport import LinkProfile, MemoryNetwork, MemorySocket, UniformLinks, url_of
from p2p.transport import FrameSocket
from testnet.sim.loop import run

CAP = 1 << 20


@dataclass
class Link:
    client: FrameSocket
    server: MemorySocket
    remote_address: str


@contextlib.asynccontextmanager
async def linked(network: MemoryNetwork, *, server_cap: int = CAP) -> AsyncIterator[Link]:
    """Host "a" dials host "b"; yields both ends of the link once the dial returned."""
    accepted: asyncio.Queue[tuple[MemorySocket, str]] = asyncio.Queue()
    done = asyncio.Event()

    async def accept(socket: FrameSocket, remote_address: str) -> None:
        assert isinstance(socket, MemorySocket)
        accepted.put_nowait((socket, remote_address))
        await done.wait()

    async def nobody(socket: FrameSocket, remote_address: str) -> None:
        raise AssertionError("a is not dialed")

    a, b = network.transport("a"), network.transport("b")
    async with a.open(nobody, CAP), b.open(accept, server_cap):
        client = await a.dial(url_of("b"), CAP)
        server, remote_address = accepted.get_nowait()
        try:
            yield Link(client, server, remote_address)
        finally:
            done.set()


def now() -> float:
    return asyncio.get_running_loop().time()


async def receive_all(socket: FrameSocket, count: int) -> list[tuple[float, bytes]]:
    got = []
    for _ in range(count):
        msg = await socket.receive()
        assert msg.type is WSMsgType.BINARY, msg
        got.append((now(), msg.data))
    return got


def test_a_dial_takes_a_round_trip_and_frames_arrive_in_order_after_the_latency():
    async def main() -> None:
        network = MemoryNetwork(UniformLinks(LinkProfile(latency_s=0.05)))
        async with linked(network) as link:
            assert now() == pytest.approx(0.1)  # connect there and back
            assert link.remote_address == "a:1"
            for index in range(3):
                await link.client.send_bytes(bytes([index]) * 10)
            got = await receive_all(link.server, 3)
            assert got == [(pytest.approx(0.15), bytes([i]) * 10) for i in range(3)]

    run(main())


def test_latency_comes_from_the_link_model_per_direction():
    class OneWaySlow:
        def profile(self, src: str, dst: str) -> LinkProfile:
            return LinkProfile(latency_s=0.3 if (src, dst) == ("a", "b") else 0.01)

    async def main() -> None:
        async with linked(MemoryNetwork(OneWaySlow())) as link:
            start = now()
            assert start == pytest.approx(0.31)
            await link.client.send_bytes(b"to b")
            await link.server.send_bytes(b"to a")
            [(at_b, _)], [(at_a, _)] = await asyncio.gather(receive_all(link.server, 1),
                                                           receive_all(link.client, 1))
            assert (at_a - start, at_b - start) == (pytest.approx(0.01), pytest.approx(0.3))

    run(main())


def test_bandwidth_serializes_frames_one_after_another():
    async def main() -> None:
        profile = LinkProfile(latency_s=0.01, bandwidth_bps=1000)
        async with linked(MemoryNetwork(UniformLinks(profile))) as link:
            start = now()
            for _ in range(3):
                await link.client.send_bytes(b"x" * 500)  # half a second each on the wire
            got = await receive_all(link.server, 3)
            assert [at - start for at, _ in got] == [pytest.approx(0.51), pytest.approx(1.01),
                                                     pytest.approx(1.51)]
            await asyncio.sleep(5)  # the link is idle again: the next frame waits for nobody
            start = now()
            await link.client.send_bytes(b"y" * 100)
            [(at, _)] = await receive_all(link.server, 1)
            assert at - start == pytest.approx(0.11)

    run(main())


def test_close_delivers_code_and_reason_after_the_data_sent_before_it():
    async def main() -> None:
        network = MemoryNetwork(UniformLinks(LinkProfile(latency_s=0.05)))
        async with linked(network) as link:
            start = now()
            await link.client.send_bytes(b"last words")
            assert await link.client.close(code=4000, message=b"going") is True
            assert now() - start == pytest.approx(0.1)  # waited for the answer
            assert link.client.closed
            assert (await link.server.receive()).data == b"last words"
            msg = await link.server.receive()
            assert (msg.type, msg.data, msg.extra) == (WSMsgType.CLOSE, 4000, "going")
            assert link.server.closed and link.server.close_code == 4000
            assert (await link.server.receive()).type is WSMsgType.CLOSED
            assert (await link.client.receive()).type is WSMsgType.CLOSED
            assert await link.client.close() is False
            assert await link.server.close() is False
            with pytest.raises(ConnectionResetError):
                await link.client.send_bytes(b"too late")
            with pytest.raises(ConnectionResetError):
                await link.server.send_bytes(b"too late")

    run(main())


def test_a_reader_waiting_on_its_own_closing_link_gets_closing():
    async def main() -> None:
        async with linked(MemoryNetwork(UniformLinks(LinkProfile(latency_s=0.05)))) as link:
            reader = asyncio.create_task(link.server.receive())
            await asyncio.sleep(0)
            await link.server.close(code=WSCloseCode.GOING_AWAY)
            assert (await reader).type is WSMsgType.CLOSING
            msg = await link.client.receive()
            assert (msg.type, link.client.close_code) == (WSMsgType.CLOSE, 1001)

    run(main())


def test_a_close_the_peer_never_answers_times_out_as_abnormal():
    async def main() -> None:
        network = MemoryNetwork(UniformLinks(LinkProfile(latency_s=0.05)), close_timeout=2.0)
        async with linked(network) as link:
            link.server.abort()  # the peer's process died: nobody answers our close
            start = now()
            await link.client.close(code=1000)
            assert link.client.close_code == WSCloseCode.ABNORMAL_CLOSURE
            assert now() - start == pytest.approx(0.05)  # the lost connection shows, no wait

    run(main())


def test_a_close_nobody_answers_gives_up_after_the_close_timeout():
    async def main() -> None:
        network = MemoryNetwork(UniformLinks(LinkProfile(latency_s=0.05)), close_timeout=2.0)
        async with linked(network) as link:
            link.server._out = None  # a peer that reads but never answers (a hung process)
            start = now()
            await link.client.close(code=1000)
            assert link.client.close_code == WSCloseCode.ABNORMAL_CLOSURE
            assert now() - start == pytest.approx(2.0)

    run(main())


def test_abort_is_a_lost_connection_for_the_peer():
    async def main() -> None:
        async with linked(MemoryNetwork(UniformLinks(LinkProfile(latency_s=0.05)))) as link:
            start = now()
            link.client.abort()
            assert link.client.closed
            msg = await link.server.receive()
            assert msg.type is WSMsgType.CLOSED
            assert now() - start == pytest.approx(0.05)
            assert link.server.close_code == WSCloseCode.ABNORMAL_CLOSURE

    run(main())


def test_a_frame_over_the_receivers_cap_is_an_error_and_closes_with_1009():
    async def main() -> None:
        async with linked(MemoryNetwork(UniformLinks(LinkProfile(latency_s=0.01))),
                          server_cap=100) as link:
            await link.client.send_bytes(b"x" * 100)  # at the cap: fine
            await link.client.send_bytes(b"x" * 101)
            assert (await link.server.receive()).data == b"x" * 100
            msg = await link.server.receive()
            assert msg.type is WSMsgType.ERROR
            assert isinstance(msg.data, WebSocketError)
            assert msg.data.code == WSCloseCode.MESSAGE_TOO_BIG
            assert link.server.close_code == WSCloseCode.MESSAGE_TOO_BIG
            assert link.server.exception() is msg.data
            msg = await link.client.receive()
            assert (msg.type, link.client.close_code) == (WSMsgType.CLOSE, 1009)

    run(main())


def test_a_dial_to_nobody_is_refused_after_a_round_trip():
    async def main() -> None:
        network = MemoryNetwork(UniformLinks(LinkProfile(latency_s=0.05)))

        async def accept(socket: FrameSocket, remote_address: str) -> None:
            raise AssertionError("nobody dials a")

        async with network.transport("a").open(accept, CAP):
            dialer = network.transport("d")  # never opened
            with pytest.raises(RuntimeError, match="outside open"):
                await dialer.dial(url_of("b"), CAP)
            transport = network.transport("c")
            async with transport.open(accept, CAP):
                with pytest.raises(ConnectionRefusedError):
                    await transport.dial(url_of("b"), CAP)
                assert now() == pytest.approx(0.1)
                with pytest.raises(ValueError, match="not a mem:// URL"):
                    await transport.dial("ws://127.0.0.1:1/p2p", CAP)
        assert not network.is_listening(url_of("a"))

    run(main())


def _lossy_trace(seed: int) -> list[tuple[float, int]]:
    async def main() -> list[tuple[float, int]]:
        profile = LinkProfile(latency_s=0.05, jitter_s=0.02, loss=0.3)
        async with linked(MemoryNetwork(UniformLinks(profile), seed=seed)) as link:
            for index in range(200):
                await link.client.send_bytes(index.to_bytes(2, "big"))
                await asyncio.sleep(0.001)
            await link.client.close()
            trace = []
            while (msg := await link.server.receive()).type is WSMsgType.BINARY:
                trace.append((now(), int.from_bytes(msg.data, "big")))
            assert msg.type is WSMsgType.CLOSE  # a close frame is never lost
            return trace

    result = run(main())
    assert result is not None
    return result


def test_loss_and_jitter_repeat_with_the_seed_and_never_reorder_a_stream():
    trace = _lossy_trace(5)
    assert trace == _lossy_trace(5)
    assert trace != _lossy_trace(6)
    indexes = [index for _, index in trace]
    times = [at for at, _ in trace]
    assert indexes == sorted(indexes) and times == sorted(times)
    assert 100 < len(trace) < 180  # about 30% of 200 lost


def test_the_network_counts_links_frames_bytes_and_losses():
    async def main() -> dict[str, int]:
        network = MemoryNetwork(UniformLinks(LinkProfile(latency_s=0.01, loss=0.5)), seed=1)
        async with linked(network) as link:
            for _ in range(100):
                await link.client.send_bytes(b"x" * 10)
            await link.client.close()
        return network.stats

    stats = run(main())
    assert stats is not None
    assert (stats["links"], stats["frames"], stats["bytes"]) == (1, 100, 1000)
    assert 30 < stats["lost"] < 70


def test_sever_aborts_every_link_of_a_host_like_a_crash():
    async def main() -> None:
        network = MemoryNetwork(UniformLinks(LinkProfile(latency_s=0.05)))
        inbound: list[FrameSocket] = []
        done = asyncio.Event()

        async def accept(socket: FrameSocket, remote_address: str) -> None:
            inbound.append(socket)
            await done.wait()

        a, b, c = (network.transport(name) for name in "abc")
        async with a.open(accept, CAP), b.open(accept, CAP), c.open(accept, CAP):
            from_b = await b.dial(url_of("a"), CAP)  # a accepts this one
            to_c = await a.dial(url_of("c"), CAP)  # a dialed this one
            start = now()
            a.sever()
            assert to_c.closed and inbound[0].closed
            for socket in (from_b, inbound[1]):  # b's end, and c's end of a's dial
                assert (await socket.receive()).type is WSMsgType.CLOSED
                assert socket.close_code == WSCloseCode.ABNORMAL_CLOSURE
            assert now() - start == pytest.approx(0.05)
            done.set()

    run(main())


def test_a_restarted_host_takes_its_address_over_from_the_run_still_stopping():
    async def main() -> None:
        network = MemoryNetwork(UniformLinks(LinkProfile(latency_s=0.01)))
        served: list[str] = []

        def acceptor(run_name: str):
            async def accept(socket: FrameSocket, remote_address: str) -> None:
                served.append(run_name)
            return accept

        a, b = network.transport("a"), network.transport("b")
        async with b.open(acceptor("b"), CAP):
            old = a.open(acceptor("old"), CAP)
            await old.__aenter__()
            async with a.open(acceptor("new"), CAP):
                await old.__aexit__(None, None, None)  # the old run ends after the new began
                assert network.is_listening(url_of("a"))
                await b.dial(url_of("a"), CAP)
                async with asyncio.timeout(5):      # virtual seconds: until "a" served it
                    while "new" not in served:
                        await asyncio.sleep(0.01)
            assert not network.is_listening(url_of("a"))
        assert served == ["new"]

    run(main())
