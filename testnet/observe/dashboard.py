"""The live web dashboard: the cluster's union block tree, partition, node cards and timeline in a
browser, kept current over a websocket, with buttons for the nemesis.

Served by the orchestrator (`testnet dashboard`, `testnet up --dashboard`) as one aiohttp app on
top of a running `Collector` (testnet/observe/collector.py). The collector follows the nodes;
testnet/observe/dashboard_frames.py turns its state into frames for the page
(testnet/observe/dashboard_static/: plain JS drawing SVG); this module serves them, and performs
the page's fault requests through the action table (testnet/faults/actions.py), recorded in
nemesis.jsonl like the CLI's.

    GET  /                          the page (script and style under /static/)
    GET  /api/snapshot?top=H&size=N one frame as JSON; the tree window holds heights (H - N, H]
    GET  /ws                        a snapshot, then updates at most every PUSH_INTERVAL_S and only
                                    when something changed; the page sends
                                    {"type": "window", "top": H | null, "size": N} to scroll back
                                    (null follows the tip)
    GET  /api/actions               the controls the action table offers (node-card verbs, and
                                    every cluster verb with its summary)
    POST /api/action/{verb}         any fault verb with its arguments as JSON, as a scenario
                                    step writes them: {"delay": "200ms", "from": [0]} for link
    POST /api/partition             {"groups": [["node0", "node1"], ["node2", "node3"]]} or
                                    {"groups": "0,1|2,3"}
    POST /api/heal
    POST /api/node/{name}/{verb}    the node-card buttons (kill, start, restart, pause, resume)
    GET  /api/clients               what each websocket client holds on the server (queue, frame
                                    in flight, socket buffer)
    GET  /api/replay?t=T            a replay only (`testnet replay`, testnet/observe/replay.py):
                                    moves it to time T; the frames above then show that moment

Slow clients: each websocket client has its own bounded collector listener and one sender loop
that awaits each send, and aiohttp makes a send wait while the socket's buffer is full. So while a
client is not reading, nothing queues for it but its listener, which drops and counts what does
not fit; when the client reads again it is sent {"type": "missed", "count": N} and a fresh
snapshot, from which it redraws everything.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from testnet.cluster import Cluster
from testnet.errors import (
    ActionError,
    BackendError,
    DashboardError,
    NemesisError,
    TestnetError,
    UnknownNode,
    WaitTimeout,
)
from testnet.faults.actions import ActionContext, all_actions, perform_action, validate_action
from testnet.faults.nemesis import Nemesis
from testnet.faults.targets import LiveTarget
from testnet.observe.collector import Collector, Listener, TimelineState
from testnet.observe.dashboard_frames import (
    DEFAULT_WINDOW_BLOCKS,
    MAX_WINDOW_BLOCKS,
    TreeFrames,
    parse_window,
    snapshot_frame,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("dashboard_static")
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8700
PUSH_INTERVAL_S = 0.25             # at most 4 frames a second per client
CLIENT_QUEUE_UPDATES = 1_000       # per-client listener (references to shared events): what
                                   # piles up between frames or while a send is stuck
CLOSE_TIMEOUT_S = 2.0


def node_actions() -> list[str]:
    """The buttons of each node card: the action table's verbs marked for the dashboard."""
    return [a.name for a in all_actions().values() if a.on_dashboard]


# ---- websocket clients -------------------------------------------------------------------------
@dataclass(eq=False)   # identity: clients live in a set
class DashboardClient:
    """One websocket viewer: its window, its bounded listener, and what it was last sent."""
    ws: web.WebSocketResponse
    listener: Listener
    top: int | None
    size: int
    window_dirty: bool = False
    sent_version: int = -1
    sent_nodes: list | None = None
    transport: asyncio.BaseTransport | None = None
    error: str | None = None         # a refusal of the client's last message, sent next tick
    sending_bytes: int = 0           # size of the frame being written (0 when idle)
    frames_sent: int = 0
    missed_reported: int = 0

    def stats(self) -> dict:
        """Everything this client holds on the server, for tests and /api/clients."""
        transport = self.transport
        buffered = (transport.get_write_buffer_size()  # type: ignore[attr-defined]
                    if transport is not None and not transport.is_closing() else 0)
        return {"queued": self.listener.queue.qsize(), "queue_max": self.listener.queue.maxsize,
                "dropping": self.listener.missed, "sending_bytes": self.sending_bytes,
                "write_buffer_bytes": buffered, "frames_sent": self.frames_sent,
                "missed_reported": self.missed_reported,
                "window": {"top": self.top, "size": self.size}}


class DashboardState:
    """One dashboard: what it draws from (a live collector, or a replay's state with no cluster
    behind it: then there are no controls), its options and its clients."""

    def __init__(self, cluster: Cluster | None, collector: TimelineState, *, window: int,
                 push_interval: float, client_queue: int, controls: bool) -> None:
        self.cluster = cluster
        self.collector = collector
        self.frames = TreeFrames(collector)
        self.window = window
        self.push_interval = push_interval
        self.client_queue = client_queue
        self.controls = controls and cluster is not None
        self.clients: set[DashboardClient] = set()
        self.tasks: set[asyncio.Task] = set()
        self.control_lock = asyncio.Lock()
        self.nemesis = Nemesis(cluster) if cluster is not None else None

    async def send(self, client: DashboardClient, frame: dict) -> None:
        data = json.dumps(frame, separators=(",", ":"))
        client.sending_bytes = len(data)
        try:
            await client.ws.send_str(data)   # waits while the socket buffer is full
        finally:
            client.sending_bytes = 0
        client.frames_sent += 1

    def update_frame(self, client: DashboardClient, updates: list[dict]) -> dict | None:
        """What changed for this client since its last frame, or None when nothing did."""
        frame: dict[str, Any] = {"type": "update", "time": self.collector.now()}
        events = [u["event"] for u in updates if u["kind"] == "event"]
        if events:
            frame["events"] = events
        replays = [u for u in updates if u["kind"] == "replay"]
        if replays:
            frame["replay"] = replays[-1]["position"]
        tree = self.collector.tree
        if client.window_dirty or tree.version != client.sent_version:
            frame["tree"] = self.frames.window(client.top, client.size)
            frame["window"] = {"top": client.top, "size": client.size, "follow": client.top is None}
            client.sent_version = tree.version
            client.window_dirty = False
        polls = [u for u in updates if u["kind"] == "nodes"]
        if polls and polls[-1]["nodes"] != client.sent_nodes:
            latest = polls[-1]
            frame.update(nodes=latest["nodes"], connectivity=latest["connectivity"],
                         partition=latest["partition"])
            client.sent_nodes = latest["nodes"]
        if any(e.get("source") == "nemesis" for e in events) or "partition" in frame:
            frame["faults"] = self.collector.faults()
            frame["partition"] = self.collector.partition()
        return frame if len(frame) > 2 else None

    async def push(self, client: DashboardClient) -> None:
        """Sends one client its snapshot, then its updates, until the socket closes.

        Returns when the connection is gone. Error handling: a failed send (the client went
        away) ends the loop quietly; the handler then unregisters the client.
        """
        try:
            await self._resync(client)
            while not client.ws.closed:
                await asyncio.sleep(self.push_interval)
                if client.error is not None:
                    await self.send(client, {"type": "error", "error": client.error})
                    client.error = None
                updates = drain(client.listener)
                # Counted drops not yet marked in the queue count too: resync now, not later.
                missed = sum(u["count"] for u in updates if u["kind"] == "missed")
                missed += client.listener.missed
                client.listener.missed = 0
                if missed:
                    client.missed_reported += missed
                    await self.send(client, {"type": "missed", "count": missed})
                    await self._resync(client)
                    continue
                if any(u["kind"] == "reset" for u in updates):   # a replay jumped in time
                    await self._resync(client)
                    continue
                frame = self.update_frame(client, updates)
                if frame is not None:
                    await self.send(client, frame)
        except (ConnectionError, RuntimeError) as exc:
            log.debug("dashboard client gone: %s", exc)

    async def _resync(self, client: DashboardClient) -> None:
        drain(client.listener)    # the snapshot covers everything queued so far
        client.listener.missed = 0
        frame = {**snapshot_frame(self.collector, self.frames, client.top, client.size),
                 "actions": actions_offered(), "controls": self.controls}
        client.sent_version = self.collector.tree.version
        client.sent_nodes = frame["nodes"]
        client.window_dirty = False
        await self.send(client, frame)


def drain(listener: Listener) -> list[dict]:
    updates = []
    while not listener.queue.empty():
        updates.append(listener.queue.get_nowait())
    return updates


class WindowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["window"]
    top: int | None = Field(default=None, ge=0)
    size: int = Field(default=DEFAULT_WINDOW_BLOCKS, ge=1, le=MAX_WINDOW_BLOCKS)


STATE: web.AppKey[DashboardState] = web.AppKey("dashboard_state", DashboardState)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """One page's stream: reads its window requests while its pusher task sends frames.

    Ends when the page goes away or the server stops (which closes it with 1001). Error handling:
    a malformed message is answered with an error frame and the connection stays open.
    """
    state = request.app[STATE]
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=64 * 1024)
    await ws.prepare(request)
    client = DashboardClient(ws, state.collector.listen(state.client_queue), None, state.window,
                             transport=request.transport)
    state.clients.add(client)
    pusher = asyncio.create_task(state.push(client), name="dashboard-push")
    state.tasks.add(pusher)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            try:
                request_ = WindowRequest.model_validate_json(msg.data)
            except ValidationError as exc:
                log.info("dashboard client sent a bad message: %s", _first_error(exc))
                client.error = _first_error(exc)   # the pusher sends it: one writer per socket
                continue
            client.top, client.size = request_.top, request_.size
            client.window_dirty = True
    finally:
        pusher.cancel()
        await asyncio.gather(pusher, return_exceptions=True)
        state.tasks.discard(pusher)
        state.collector.unlisten(client.listener)
        state.clients.discard(client)
    return ws


# ---- HTTP ----------------------------------------------------------------------------------------
def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "body"
    return f"{where}: {err['msg']}"


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


async def snapshot(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        top, size = parse_window(request.query.get("top"),
                                 request.query.get("size", state.window))
    except DashboardError as exc:
        return _error(400, str(exc))
    return web.json_response({**snapshot_frame(state.collector, state.frames, top, size),
                              "actions": actions_offered(), "controls": state.controls},
                             dumps=lambda o: json.dumps(o, separators=(",", ":")))


async def clients(request: web.Request) -> web.Response:
    return web.json_response([c.stats() for c in request.app[STATE].clients])


def actions_offered() -> dict:
    """The controls the page can offer, from the action table: a button per node verb on each
    node card, and every other cluster verb by name and summary (POST /api/action/{verb})."""
    return {"node": node_actions(),
            "cluster": {name: a.summary for name, a in all_actions().items()
                        if a.scope != "run"}}


async def actions(request: web.Request) -> web.Response:
    return web.json_response({**actions_offered(), "controls": request.app[STATE].controls})


def _require_json(request: web.Request) -> None:
    # A JSON body cannot come from a plain cross-site form: browsers ask first (CORS preflight).
    if request.content_type != "application/json":
        raise DashboardError(f"send JSON (Content-Type: application/json), not "
                             f"{request.content_type!r}")


async def _json_body(request: web.Request) -> Any:
    _require_json(request)
    raw = await request.text()
    try:
        return json.loads(raw) if raw.strip() else {}
    except (json.JSONDecodeError, RecursionError):
        raise DashboardError("the body is not JSON") from None


async def _control(request: web.Request, verb: str, raw: Any) -> web.Response:
    """Validates and performs one action of the action table (one at a time) and answers with
    its nemesis.jsonl entry: 400 for bad arguments, 404 for an unknown node, 409 when the
    cluster cannot do it now, 504 when a node did not come up in time."""
    state = request.app[STATE]
    if not state.controls or state.cluster is None or state.nemesis is None:
        return _controls_off()
    actions = all_actions()
    if verb not in actions or actions[verb].scope == "run":
        offered = [name for name, a in actions.items() if a.scope != "run"]
        return _error(400, f"bad action: {verb!r} (one of {', '.join(offered)})")
    try:
        args = validate_action(verb, raw, LiveTarget(state.cluster))
        async with state.control_lock:
            result = await perform_action(verb, ActionContext(state.cluster, state.nemesis),
                                          args)
    except ActionError as exc:
        return _error(400, str(exc))
    except UnknownNode as exc:
        return _error(404, str(exc))
    except WaitTimeout as exc:
        return _error(504, str(exc))
    except (NemesisError, BackendError, TestnetError) as exc:
        return _error(409, str(exc))
    assert result is not None   # every non-run action is a nemesis verb with a log entry
    log.info("dashboard: %s %s on %s", result["type"], result["fault"], result["nodes"])
    return web.json_response({"ok": True, "entry": result})


def _controls_off() -> web.Response:
    return _error(403, "fault controls are off for this dashboard (--no-controls, a scenario "
                       "run, or a replay)")


async def action(request: web.Request) -> web.Response:
    """POST /api/action/{verb} with the verb's arguments as JSON (as a scenario step takes)."""
    try:
        raw = await _json_body(request)
    except DashboardError as exc:
        return _error(400, str(exc))
    return await _control(request, request.match_info["verb"], raw)


async def partition(request: web.Request) -> web.Response:
    """{"groups": [["node0", "node1"], ["node2"]] | "0,1|2", "layer": "p2p"|"net"}"""
    try:
        raw = await _json_body(request)
    except DashboardError as exc:
        return _error(400, str(exc))
    return await _control(request, "partition", raw)


async def heal(request: web.Request) -> web.Response:
    try:
        _require_json(request)
    except DashboardError as exc:
        return _error(400, str(exc))
    return await _control(request, "heal", True)


async def node_action(request: web.Request) -> web.Response:
    state = request.app[STATE]
    name, verb = request.match_info["name"], request.match_info["action"]
    offered = node_actions()
    if verb not in offered:
        return _error(400, f"bad action: {verb!r} (one of {', '.join(offered)})")
    if state.cluster is None:
        return _controls_off()
    try:
        _require_json(request)
        state.cluster.node_index(name)
    except DashboardError as exc:
        return _error(400, str(exc))
    except UnknownNode as exc:
        return _error(404, str(exc))
    return await _control(request, verb, {"node": name})


@web.middleware
async def same_origin(request: web.Request, handler):  # type: ignore[no-untyped-def]
    """Fault controls and the stream answer only the dashboard's own pages: another site open in
    the same browser must not be able to partition the cluster through it."""
    origin = request.headers.get("Origin")
    if origin is not None and (request.method != "GET" or request.path == "/ws"):
        if origin.split("://", 1)[-1] != request.host:
            return _error(403, f"cross-origin request from {origin!r} refused")
    return await handler(request)


async def _close_clients(app: web.Application) -> None:
    state = app[STATE]
    for task in list(state.tasks):
        task.cancel()
    for client in list(state.clients):
        try:
            await asyncio.wait_for(client.ws.close(code=WSCloseCode.GOING_AWAY,
                                                   message=b"dashboard stopping"), CLOSE_TIMEOUT_S)
        except (TimeoutError, ConnectionError):
            pass


def dashboard_app(cluster: Cluster | None, collector: TimelineState, *,
                  window: int = DEFAULT_WINDOW_BLOCKS, push_interval: float = PUSH_INTERVAL_S,
                  client_queue: int = CLIENT_QUEUE_UPDATES, controls: bool = True
                  ) -> web.Application:
    """The dashboard for `cluster`, drawn from `collector` (started and stopped by the caller);
    without a cluster (a replay: testnet/observe/replay.py) it is read-only."""
    parse_window(None, window)
    app = web.Application(middlewares=[same_origin])
    app[STATE] = DashboardState(cluster, collector, window=window, push_interval=push_interval,
                                client_queue=client_queue, controls=controls)
    app.router.add_get("/", page)
    app.router.add_static("/static/", STATIC_DIR)
    app.router.add_get("/api/snapshot", snapshot)
    app.router.add_get("/api/clients", clients)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/api/actions", actions)
    app.router.add_post("/api/action/{verb}", action)
    app.router.add_post("/api/partition", partition)
    app.router.add_post("/api/heal", heal)
    app.router.add_post("/api/node/{name}/{action}", node_action)
    app.on_shutdown.append(_close_clients)
    return app


@asynccontextmanager
async def running_site(app: web.Application, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
                       ) -> AsyncIterator[str]:
    """Serves `app` while the block runs; yields its URL (port 0: a free port)."""
    runner = web.AppRunner(app, shutdown_timeout=5.0, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        shown = f"[{bound[0]}]" if ":" in str(bound[0]) else bound[0]
        yield f"http://{shown}:{bound[1]}/"
    finally:
        await runner.cleanup()


def dashboard_site(cluster: Cluster, collector: Collector, host: str = DEFAULT_HOST,
                   port: int = DEFAULT_PORT, **options: Any
                   ) -> AbstractAsyncContextManager[str]:
    """`async with dashboard_site(cluster, collector, port=0) as url:` serves the dashboard."""
    return running_site(dashboard_app(cluster, collector, **options), host, port)


async def serve_dashboard(cluster: Cluster, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                          *, window: int = DEFAULT_WINDOW_BLOCKS, poll_interval: float = 1.0,
                          controls: bool = True,
                          started: Callable[[str], None] | None = None) -> None:
    """Follows the cluster and serves its dashboard until cancelled (Ctrl-C in the CLI).

    `started(url)` is called once the port is open. Returns: never on its own. Error handling: a
    port that cannot be bound raises OSError before `started`; nodes that are down or come and go
    are the collector's business (their cards show them down) and never end the server.
    """
    async with Collector(cluster, poll_interval=poll_interval) as collector:
        async with dashboard_site(cluster, collector, host, port, window=window,
                                  controls=controls) as url:
            if started is not None:
                started(url)
            await asyncio.Event().wait()
