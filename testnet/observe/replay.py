"""`testnet replay REPORT_DIR`: the dashboard over a recorded run, with a time scrubber.

The report folder of a `testnet run` keeps the whole run in history.jsonl (docs/history.md). This
module reads it (testnet/history/history_file.py), builds a `Replay` of it
(testnet/observe/replay_state.py: the collector's state at any time t, with checkpoints) and serves
the live dashboard's own app on that state, read-only, plus one endpoint:

    GET /api/replay          where the replay stands: {"t", "start", "end", "index", "entries"}
    GET /api/replay?t=T      moves it to time T (seconds on the history's clock, inside the run;
                             else 400 naming the value) and answers the new position

The page (testnet/observe/dashboard_static/) shows a scrubber when a frame carries `replay`: a
range over the run, play / pause and a speed; it asks for times and redraws from what the
websocket sends, as it does live. The time is the server's: every page open on one replay shows
the same moment.

Which nodes there were, their indices and peer ids come from the report's `cluster/cluster.json`
when the run left one; otherwise from the names in the history (peers then show as short ids).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from testnet.errors import DashboardError
from testnet.history.history_file import read_history
from testnet.history.readers import observations
from testnet.observe.dashboard import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    PUSH_INTERVAL_S,
    STATE,
    dashboard_app,
    running_site,
)
from testnet.observe.dashboard_frames import DEFAULT_WINDOW_BLOCKS
from testnet.observe.replay_state import CHECKPOINT_EVERY, RecordedNode, Replay

log = logging.getLogger(__name__)

CLUSTER_FILE = Path("cluster") / "cluster.json"
REPLAY: web.AppKey[Replay] = web.AppKey("replay", Replay)


def load_replay(report_dir: Path, checkpoint_every: int = CHECKPOINT_EVERY) -> Replay:
    """The replay of a report folder; HistoryFileError when its history cannot be read."""
    history = read_history(report_dir)
    consensus, nodes = recorded_cluster(report_dir, history)
    started = observations(history, "run_started")
    name = str(started[0].get("name")) if started and started[0].get("name") else \
        report_dir.resolve().name
    return Replay(history, name=name, consensus=consensus, nodes=nodes,
                  checkpoint_every=checkpoint_every)


def recorded_cluster(report_dir: Path, history: list[dict]) -> tuple[str, list[RecordedNode]]:
    """The consensus and the nodes of the recorded run: from the report's cluster.json, else
    from the history itself."""
    path = report_dir / CLUSTER_FILE
    try:
        info = json.loads(path.read_text())
        nodes = [RecordedNode(str(n["name"]), int(n["index"]), n.get("peer_id"))
                 for n in info["nodes"]]
        return str(info.get("consensus", "pow")), sorted(nodes, key=lambda n: n.index)
    except FileNotFoundError:
        pass
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        log.warning("%s is unreadable (%s); taking the nodes from the history", path, exc)
    started = [e for e in history if e.get("source") == "node" and e.get("type") == "node_started"]
    consensus = next((str(e["consensus"]) for e in started if e.get("consensus")), "pow")
    names: set[str] = set()
    for entry in history:
        if entry.get("source") == "node" and isinstance(entry.get("node"), str):
            names.add(entry["node"])
        elif entry.get("source") == "nemesis":
            names.update(n for n in entry.get("nodes") or [] if isinstance(n, str))
    ordered = sorted(names, key=_natural)
    return consensus, [RecordedNode(name, i) for i, name in enumerate(ordered)]


def _natural(name: str) -> list:
    """node2 before node10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


async def replay_position(request: web.Request) -> web.Response:
    replay = request.app[REPLAY]
    raw = request.query.get("t")
    if raw is None:
        return web.json_response(replay.position())
    try:
        t = replay.parse_time(raw)
    except DashboardError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(replay.seek(t))


def replay_app(replay: Replay, *, window: int = DEFAULT_WINDOW_BLOCKS,
               push_interval: float = PUSH_INTERVAL_S) -> web.Application:
    """The dashboard app over `replay`'s state, without controls, plus /api/replay."""
    app = dashboard_app(None, replay.state, window=window, push_interval=push_interval,
                        controls=False)
    assert not app[STATE].controls
    app[REPLAY] = replay
    app.router.add_get("/api/replay", replay_position)
    return app


async def serve_replay(replay: Replay, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
                       window: int = DEFAULT_WINDOW_BLOCKS,
                       started: Callable[[str], None] | None = None) -> None:
    """Serves the replay's dashboard until cancelled (Ctrl-C in the CLI).

    `started(url)` is called once the port is open. Returns: never on its own. Error handling: a
    port that cannot be bound raises OSError before `started`; a bad request is a 400 and the
    server goes on.
    """
    async with running_site(replay_app(replay, window=window), host, port) as url:
        if started is not None:
            started(url)
        await asyncio.Event().wait()
