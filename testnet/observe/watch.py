"""`testnet watch`: a live terminal view of a cluster — one row per node (height, head coloured
by branch, peers, finality, faults) and one line per reorg (or, on a hybrid cluster, per heavier
branch refused for crossing finality) as it happens.

Reorgs come from each node's `/events` stream (reconnecting when a node restarts); rows from
`/status` polled every `interval`. With `--plain` (or when stdout is not a terminal) it prints
snapshots and reorg lines as text instead of redrawing, so its output can be captured.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from testnet.cluster import Cluster
from testnet.errors import NodeAPIError, NodeUnreachable

PALETTE = ["green", "magenta", "cyan", "yellow", "blue", "red", "bright_green", "bright_magenta"]


class BranchColours:
    """A stable colour per head hash, so nodes on the same branch share a colour."""

    def __init__(self) -> None:
        self._colours: dict[str, str] = {}

    def __call__(self, head: str) -> str:
        if head not in self._colours:
            self._colours[head] = PALETTE[len(self._colours) % len(PALETTE)]
        return self._colours[head]


def reorg_line(event: dict) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(event["ts"]))
    return (f"{stamp} {event['node']} reorg depth {event['depth']}: "
            f"{event['old_head'][:12]} -> {event['new_head'][:12]} "
            f"(common ancestor {event['common_ancestor'][:12]} at height "
            f"{event.get('common_height', '?')})")


def status_table(cluster: Cluster, statuses: list[dict | None], colours: BranchColours) -> Table:
    table = Table(title=f"{cluster.directory.name}: {time.strftime('%H:%M:%S')}")
    for col in ("node", "height", "head", "peers", "finalized", "role", "faults"):
        table.add_column(col)
    heads = {s["head"] for s in statuses if s}
    for node, st in zip(cluster.info["nodes"], statuses):
        if st is None:
            state = cluster.backend.process_state(node["index"])
            table.add_row(node["name"], "-", Text(state, style="red"), "-", "-", "-", "")
            continue
        colour = colours(st["head"])
        finalized = st.get("finalized") or {}
        faults = st.get("faults") or {}
        notes = []
        if faults.get("blocked_peers"):
            notes.append(f"cut from {faults['blocked_peers']}")
        if faults.get("shaped_links"):
            notes.append("shaped")
        if faults.get("clock_offset_s"):
            notes.append(f"clock {faults['clock_offset_s']:+g}s")
        table.add_row(node["name"], str(st["height"]), Text(st["head"][:16], style=colour),
                      str(st["peers"]), str(finalized.get("epoch", finalized.get("height", "-"))),
                      st.get("role", "honest"), ", ".join(notes))
    table.caption = ("all nodes agree" if len(heads) == 1 and all(statuses)
                     else f"{len(heads)} branch head(s)")
    return table


def refused_line(event: dict) -> str:
    """A hybrid node refusing a heavier branch that would cross its finalized checkpoint."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event["ts"]))
    return (f"{stamp} {event['node']} refused a heavier branch to {event['tip'][:12]} at height "
            f"{event['height']} (forks at {event['fork_height']}, below finalized epoch "
            f"{event['finalized_epoch']})")


def dpos_line(event: dict) -> str:
    """A DPoS node's news worth a line: a new schedule in effect, a double production caught."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event["ts"]))
    if event["type"] == "schedule_changed":
        return (f"{stamp} {event['node']} schedule v{event['version']} in effect at slot "
                f"{event.get('slot')} ({len(event.get('producers') or [])} producers)")
    return (f"{stamp} {event['node']} caught producer {str(event.get('producer'))[:12]} "
            f"double-producing at slot {event.get('slot')}")


LINE_OF = {"reorg": reorg_line, "reorg_refused": refused_line,
           "schedule_changed": dpos_line, "double_production": dpos_line}


async def follow_reorgs(cluster: Cluster, index: int, lines: deque, fresh: list[str]) -> None:
    """Collect reorg lines (and DPoS schedule changes and double productions) from one node until
    cancelled; reconnects when the node restarts."""
    since: int | None = None
    while True:
        try:
            if since is None:
                status = await cluster.client(index).status()
                since = status["events_seq"]
            async for event in cluster.client(index).events(since=since):
                since = max(since, event.get("seq", since))
                if event["type"] in LINE_OF:
                    line = LINE_OF[event["type"]](event)
                    lines.append(line)
                    fresh.append(line)
        except (NodeUnreachable, NodeAPIError):
            pass   # down or restarting: follow it again from where we were
        await asyncio.sleep(0.5)


async def watch(cluster: Cluster, *, duration: float | None, interval: float, plain: bool,
                console: Console) -> None:
    colours = BranchColours()
    lines: deque[str] = deque(maxlen=12)
    fresh: list[str] = []
    followers = [asyncio.create_task(follow_reorgs(cluster, i, lines, fresh))
                 for i in range(cluster.size)]
    deadline = None if duration is None else time.monotonic() + duration
    try:
        if plain:
            while deadline is None or time.monotonic() < deadline:
                console.print(status_table(cluster, await cluster.statuses(), colours))
                for line in fresh:
                    console.print(Text(line, style="bold red"))
                fresh.clear()
                await asyncio.sleep(interval)
            return
        with Live(console=console, refresh_per_second=4) as live:
            while deadline is None or time.monotonic() < deadline:
                table = status_table(cluster, await cluster.statuses(), colours)
                reorgs = Text("\n".join(lines) or "no reorgs yet", style="red")
                live.update(Group(table, Text("reorgs:", style="bold"), reorgs))
                fresh.clear()
                await asyncio.sleep(interval)
    finally:
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
