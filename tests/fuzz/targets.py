"""Fuzz targets: real objects on loopback, and the properties every input must keep.

- `WireTarget`: a P2PHost (topics, a sync source, the get_blocks handler) serving /p2p on a
  loopback port. Each case is one websocket from a fresh identity, which handshakes or not and
  then sends one fuzzed message. A frame that does not decode (the oracle is p2p.wire itself,
  whose own property is tested apart) must close the link with 1002 and penalise a handshaken
  sender; a text frame closes with 1003, an oversized one with 1009; a frame that decodes must
  leave the link answering a request (or closed by the protocol: `bye`, a late `hello`); a peer
  that writes pings and hangs up must just be gone.
- `HttpTarget`: a node (PoW or PoS) serving its real app (tests/node/api_harness.py). Every
  reply must be below 500 and free of tracebacks; a 4xx from a node handler says why in JSON.

For both, after every case: no internal error counted, no ERROR record and no traceback in the
log, no error reported by the event loop. `SyncTarget` runs a target on its own event loop so
that hypothesis' synchronous test functions can drive it; it counts the cases it ran, and runs
each with the recursion headroom of a node process: hypothesis raises the interpreter's recursion
limit for its own frames, which would hide exactly the RecursionErrors a fuzzer must find.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import random
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from hypothesis import strategies as st

from p2p import P2PHost, Verdict
from p2p.errors import DecodeError
from p2p.identity import Identity
from p2p.peer_policy import PolicyLimits
from p2p.wire import PROTOCOL_VERSION, decode_envelope, encode_frame
from tests.fuzz.http_cases import NOT_FUZZED_HERE, ROUTES, HttpCase, http_cases
from tests.fuzz.wire_cases import FUZZ_FRAME_CAP, FrameCase, frame_cases
from tests.node.api_harness import LogWatch, build_request, raw_http, serve_node
from tests.p2p.p2p_harness import CHAIN_ID, GENESIS, ListChain, RawPeer, make_items, wait_until

CASE_TIMEOUT_S = 20.0
NODE_RECURSION_LIMIT = 1000  # CPython's default: what a node process runs with
FUZZ_HANDSHAKE_TIMEOUT_S = 0.5
PROBE_ID = 2**62  # the id of the request that checks a link still works after a valid frame
# Counted in stats["errors"] but not bugs: a sync from a fuzz peer that left, a failed dial.
BENIGN_ERRORS = frozenset({"sync request failed", "dial failed"})


class Target(Protocol):
    name: str
    outcomes: Counter[str]  # what the cases led to, e.g. "refused: malformed frame", "HTTP 400"

    def cases(self) -> st.SearchStrategy: ...

    async def start(self) -> None: ...

    async def check(self, case: Any) -> None: ...

    async def stop(self) -> None: ...


class SyncTarget:
    """A target on an event loop of its own: `check(case)` runs one case to completion."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.name = target.name
        self.cases = 0
        self._runner = asyncio.Runner()
        self._loop_errors: list[str] = []

    def __enter__(self) -> SyncTarget:
        loop = self._runner.get_loop()
        loop.set_exception_handler(
            lambda loop, context: self._loop_errors.append(
                str(context.get("message")) + f": {context.get('exception')!r}"
            )
        )
        self._runner.run(self.target.start())
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._runner.run(self.target.stop())
        finally:
            self._runner.close()

    def check(self, case: Any) -> None:
        self.cases += 1
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(_stack_depth() + NODE_RECURSION_LIMIT)
        try:
            self._runner.run(asyncio.wait_for(self.target.check(case), CASE_TIMEOUT_S))
        finally:
            sys.setrecursionlimit(limit)
        assert self._loop_errors == [], f"the event loop reported errors: {self._loop_errors}"


def _stack_depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


class _Watched:
    """Log records that must never appear while a target runs (root logger)."""

    def _watch(self) -> None:
        self.log_watch = LogWatch()
        logging.getLogger().addHandler(self.log_watch)

    def _unwatch(self) -> None:
        logging.getLogger().removeHandler(self.log_watch)

    def _assert_quiet_log(self) -> None:
        problems = self.log_watch.problems()
        self.log_watch.records.clear()
        assert problems == [], f"log records no input may cause: {problems}"


# ---- p2p frames ----------------------------------------------------------------------------------
class WireTarget(_Watched):
    name = "p2p frames"

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()

    def cases(self) -> st.SearchStrategy[FrameCase]:
        return frame_cases()

    async def start(self) -> None:
        self._watch()
        self.host = P2PHost(
            private_key=hashlib.sha256(b"fuzzed host").digest(),
            chain_id=CHAIN_ID,
            genesis_hash=GENESIS,
            max_frame_bytes=FUZZ_FRAME_CAP,
            rng=random.Random(0),
            handshake_timeout=FUZZ_HANDSHAKE_TIMEOUT_S,
            logger=logging.getLogger("p2p.fuzz"),
            # every case is a fresh peer id from 127.0.0.1, most of them banned: churn on purpose;
            # and the probe after a valid get_blocks asks again at once: budgets are not fuzzed here
            policy_limits=PolicyLimits(admission=False, rates=False),
        )
        store = {hashlib.sha256(item).digest(): item for item in make_items(5)}

        async def validate(msg: Any) -> Verdict:
            if msg.payload.startswith(b"ok"):
                return Verdict.accept()
            return Verdict.reject(f"payload {msg.payload[:8]!r} is not ok", category="not ok")

        self.host.add_topic("t", validate)
        self.host.add_topic("blocks", validate, announce=True, fetch=store.get)
        self.host.set_sync_source(ListChain(make_items(5)))
        app = web.Application()
        app.router.add_get("/p2p", self.host.handle_inbound)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"ws://127.0.0.1:{self._runner.addresses[0][1]}/p2p"
        self._task = asyncio.create_task(self.host.run())
        await self.host.started.wait()
        self._session = aiohttp.ClientSession()
        self._peers = itertools.count()

    async def stop(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        await self._session.close()
        await self._runner.cleanup()
        self._unwatch()

    async def check(self, case: FrameCase) -> None:
        errors_before = Counter(self.host.stats["errors"])
        identity = Identity.from_seed(hashlib.sha256(b"fuzz peer %d" % next(self._peers)).digest())
        ws = await self._session.ws_connect(self.url, max_msg_size=64 * 1024 * 1024)
        raw = RawPeer(self._session, ws, identity)
        try:
            if case.handshaken:
                await raw.handshake()
                await wait_until(
                    lambda: raw.peer_id in self._peer_ids(), what="the fuzz peer registered"
                )
            else:
                await raw.recv_type("hello")
            self.outcomes[await self._deliver(raw, case)] += 1
        finally:
            await ws.close()
        await wait_until(lambda: raw.peer_id not in self._peer_ids(), what="the fuzz peer gone")
        errors = {
            k: v - errors_before[k]
            for k, v in self.host.stats["errors"].items()
            if k not in BENIGN_ERRORS and v > errors_before[k]
        }
        assert errors == {}, f"the host counted errors of its own: {errors}"
        self._assert_quiet_log()

    async def _deliver(self, raw: RawPeer, case: FrameCase) -> str:
        """Send the case and check how the host takes it; returns what happened."""
        if case.hang_up:
            raw.write_and_hang_up(case.data)
            return "hung up"  # the host must just see the peer go
        rejected = self.host.stats["rejected"]
        before = Counter(rejected)
        expected = expected_refusal(case)
        if isinstance(case.data, str):
            await raw.ws.send_str(case.data)
        else:
            await raw.ws.send_bytes(case.data)
        if expected is not None:
            category, code = expected
            close_code, _ = await raw.wait_closed()
            assert close_code == code, f"closed with {close_code}, expected {code} ({category})"
            await wait_until(
                lambda: rejected[category] > before[category],
                what=f"stats['rejected'][{category!r}] counted",
            )
            if case.handshaken:
                assert self.host._scores.get(raw.peer_id) < 0, "the sender was not penalised"
            return f"refused: {category}"
        if case.handshaken:
            return await self._probe(raw.ws)
        close_code, _ = await raw.wait_closed(FUZZ_HANDSHAKE_TIMEOUT_S + 5)
        assert close_code == WSCloseCode.POLICY_VIOLATION, f"the handshake ended with {close_code}"
        return "valid frame, handshake refused"

    def _peer_ids(self) -> set[str]:
        return {p.peer_id for p in self.host.peers()}

    async def _probe(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """After a frame that decodes, the link answers a request -- or the protocol closed it.
        Returns which."""
        probe = {"id": PROBE_ID, "method": "get_blocks", "body": {"locator": [], "limit": 1}}
        try:
            await ws.send_bytes(encode_frame("req", probe))
        except ConnectionError:
            pass  # already closed; the close message tells why
        while True:
            msg = await ws.receive(timeout=10)
            if msg.type is WSMsgType.BINARY:
                _, msg_type, body = decode_envelope(msg.data)
                if msg_type == "resp" and body["id"] == PROBE_ID:
                    assert body["ok"], f"the probe failed: {body}"
                    return "valid frame, link still answers"
            elif msg.type in (
                WSMsgType.CLOSE,
                WSMsgType.CLOSING,
                WSMsgType.CLOSED,
                WSMsgType.ERROR,
            ):
                # bye (1000), or hello/auth after the handshake (1002)
                assert ws.close_code in (WSCloseCode.OK, WSCloseCode.PROTOCOL_ERROR), (
                    f"a valid frame closed the link with {ws.close_code}"
                )
                return f"valid frame, link closed with {ws.close_code}"


def expected_refusal(case: FrameCase) -> tuple[str, int] | None:
    """(stats category, close code) a host must refuse this case with, or None if it decodes."""
    if isinstance(case.data, str):
        return "text frame", WSCloseCode.UNSUPPORTED_DATA
    if len(case.data) > FUZZ_FRAME_CAP:
        return "frame too large", WSCloseCode.MESSAGE_TOO_BIG
    try:
        decode_envelope(
            case.data, FUZZ_FRAME_CAP, version=PROTOCOL_VERSION if case.handshaken else None
        )
    except DecodeError:
        return "malformed frame", WSCloseCode.PROTOCOL_ERROR
    return None


# ---- HTTP ----------------------------------------------------------------------------------------
class HttpTarget(_Watched):
    def __init__(self, consensus: str = "pow") -> None:
        self.consensus = consensus
        self.name = f"HTTP ({consensus} node)"
        self.outcomes: Counter[str] = Counter()

    def cases(self) -> st.SearchStrategy[HttpCase]:
        return http_cases()

    async def start(self) -> None:
        self._watch()
        self._directory = Path(tempfile.mkdtemp(prefix="fuzz-http-"))
        self._serving = serve_node(self._directory, self.consensus)
        self.served = await self._serving.__aenter__()
        routes = {
            (r.method, r.resource.canonical)
            for r in self.served.app.router.routes()
            if r.method != "HEAD"
        }
        unfuzzed = routes - set(ROUTES) - NOT_FUZZED_HERE
        assert not unfuzzed, (
            f"routes without a fuzz strategy (tests/fuzz/http_cases.py): {unfuzzed}"
        )

    async def stop(self) -> None:
        try:
            await self._serving.__aexit__(None, None, None)
        finally:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._unwatch()

    async def check(self, case: HttpCase) -> None:
        request = (
            case.raw
            if case.raw is not None
            else build_request(case.method, case.target, body=case.body, headers=case.headers)
        )
        reply = await raw_http(self.served.port, request)
        self.outcomes[f"HTTP {reply.status}"] += 1
        assert reply.status < 500, f"{reply.status}: {reply.body[:300]!r}"
        assert b"Traceback" not in reply.body
        if (
            case.raw is None
            and 400 <= reply.status < 500
            and reply.status not in (404, 405)
            and "json" in reply.headers.get("content-type", "")
        ):
            error = reply.json()
            assert (
                isinstance(error, dict) and isinstance(error.get("error"), str) and error["error"]
            ), error
            assert len(error["error"]) < 2000, (
                f"an error message of {len(error['error'])} characters"
            )
        self._assert_quiet_log()


def all_targets() -> list[Target]:
    return [WireTarget(), HttpTarget("pow"), HttpTarget("pos"), HttpTarget("hybrid"),
            HttpTarget("dpos")]
