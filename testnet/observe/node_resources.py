"""What each node process holds, sampled from outside: memory, file descriptors, and how the
node's `/events` observers keep up. For soaks (scripts/soak.py): a leak shows as growth between
samples taken long apart.

Per node and sample: VmRSS of the node process (/proc/PID/status), its PSS when the kernel serves
/proc/PID/smaps_rollup (one read: cheap), the RSS of its children (the PoW miner), its open file
descriptors (/proc/PID/fd), and from /metrics the event queue figures (`testnet_event_queue_max`,
`testnet_event_subscribers`, `testnet_events_missed_total`). The pid comes from the local backend
(`node<i>/pid`, checked against the node's command line); a node that is down or paused at a
sample gives what it can (a paused node's /proc is readable, its /metrics is not).

`ResourceSampler` is an async context manager a scenario run holds beside itself (the runner's
`companions`): it samples every `every_s` until it is left, and takes one last sample on the way
out, while the nodes still run. A sample that cannot be read is recorded with what it lacks;
nothing here ends the run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

from testnet.cluster import Cluster
from testnet.errors import NodeAPIError, NodeUnreachable

log = logging.getLogger(__name__)

QUEUE_METRICS = ("testnet_event_queue_max", "testnet_event_subscribers",
                 "testnet_events_missed_total")


def proc_kb(pid: int, path: str, key: str) -> int | None:
    """A `Key:   123 kB` figure of /proc/PID/<path> (None when unreadable)."""
    try:
        text = Path(f"/proc/{pid}/{path}").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def process_figures(pid: int) -> dict[str, Any]:
    """Memory and descriptors of one node process and its children."""
    kids = [proc_kb(c, "status", "VmRSS") for c in children(pid)]
    return {"rss_kb": proc_kb(pid, "status", "VmRSS"),
            "pss_kb": proc_kb(pid, "smaps_rollup", "Pss"),
            "children_rss_kb": sum(k for k in kids if k is not None) if kids else 0,
            "fds": open_fds(pid)}


def parse_metrics(text: str, names: tuple[str, ...] = QUEUE_METRICS) -> dict[str, float]:
    """The values of the named metrics in Prometheus text (one series each per node)."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in names:
            try:
                found[name] = float(line.rsplit(" ", 1)[1])
            except (IndexError, ValueError):
                continue
    return found


class ResourceSampler:
    """`async with ResourceSampler(cluster, every_s=30) as sampler: ...`; `sampler.samples`."""

    def __init__(self, cluster: Cluster, every_s: float = 30.0) -> None:
        self.cluster = cluster
        self.every_s = every_s
        self.samples: list[dict] = []
        self.started = time.monotonic()
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> ResourceSampler:
        self.started = time.monotonic()
        self._task = asyncio.create_task(self._run(), name="resource-sampler")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.sample()   # the end figures, while the nodes still run

    async def _run(self) -> None:
        """Samples until cancelled; a sample that fails to read is logged, never fatal."""
        while True:
            await self.sample()
            await asyncio.sleep(self.every_s)

    async def sample(self) -> list[dict]:
        at = round(time.monotonic() - self.started, 1)
        taken = await asyncio.gather(*(self._node(i, at) for i in range(self.cluster.size)))
        self.samples.extend(taken)
        return taken

    async def _node(self, index: int, at: float) -> dict:
        pid_of = getattr(self.cluster.backend, "pid", None)   # local backend only
        pid = pid_of(index) if pid_of is not None else None
        entry: dict[str, Any] = {"t_s": at, "node": self.cluster.name(index), "pid": pid}
        if pid is not None:
            entry.update(process_figures(pid))
        try:
            text = await self.cluster.client(index, timeout=3.0).metrics()
        except (NodeUnreachable, NodeAPIError) as exc:
            entry["metrics_error"] = str(exc)
        else:
            entry.update(parse_metrics(text))
        return entry
