"""CPU seconds of a cluster's node processes and their miner children, read from /proc.

An experiment's `cpu_s_per_block` needs the CPU all node and miner processes spent during a run.
A process that is killed takes its counters with it, so the sampler reads every node's
/proc/PID/stat (utime + stime, plus its children's: live ones directly, reaped ones through
cutime + cstime) once a second and keeps, per pid, the largest total seen; the run's figure is the
sum over every pid ever seen. Only the local backend has pids on this host: on another backend
the sampler records nothing and the figure stays empty.

`cpu_sampler(out)` is a runner companion (testnet/scenarios/runner.py): entered once the cluster
is up, it samples until it is left, then writes `{"cpu_s": ..., "pids": ...}` to `out`.
Cancellation ends the sampling loop; unreadable /proc entries (a pid that just died) are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from testnet.observe.node_resources import children

SAMPLE_S = 1.0
TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_s(pid: int, with_reaped: bool = True) -> float | None:
    """utime + stime of `pid` (and cutime + cstime of its reaped children), in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()   # after the command name, which may hold spaces
    # fields[0] is the state (field 3); utime, stime, cutime, cstime are fields 14..17
    ticks = int(fields[11]) + int(fields[12])
    if with_reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICKS_PER_S


def tree_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds of a node process and of each of its live children, by pid."""
    out: dict[int, float] = {}
    own = process_cpu_s(pid)
    if own is None:
        return out
    out[pid] = own
    for child in children(pid):
        cpu = process_cpu_s(child)
        if cpu is not None:
            out[child] = cpu
    return out


class CpuTally:
    """The largest CPU total seen per pid; the sum is the run's CPU seconds."""

    def __init__(self) -> None:
        self.by_pid: dict[int, float] = {}

    def add(self, sample: dict[int, float]) -> None:
        for pid, cpu in sample.items():
            self.by_pid[pid] = max(cpu, self.by_pid.get(pid, 0.0))

    @property
    def cpu_s(self) -> float:
        return round(sum(self.by_pid.values()), 2)


def cpu_sampler(out: Path) -> Callable[[Any], contextlib.AbstractAsyncContextManager[Any]]:
    """A runner companion that samples the cluster's node pids and writes the tally to `out`."""

    @contextlib.asynccontextmanager
    async def companion(cluster: Any) -> AsyncIterator[CpuTally]:
        tally = CpuTally()
        pid_of = getattr(cluster.backend, "pid", None)

        def sample() -> None:
            if pid_of is None:
                return
            for i in range(cluster.size):
                pid = pid_of(i)
                if pid is not None:
                    tally.add(tree_cpu_s(pid))

        async def loop() -> None:
            while True:
                sample()
                await asyncio.sleep(SAMPLE_S)

        task = asyncio.create_task(loop())
        try:
            yield tally
        finally:
            task.cancel()
            # gather, not suppress(CancelledError): a Ctrl-C cancelling the run while it waits
            # here must still stop the run, not be taken for the sampler's own cancellation
            await asyncio.gather(task, return_exceptions=True)
            sample()
            out.write_text(json.dumps({"cpu_s": tally.cpu_s if pid_of else None,
                                       "pids": len(tally.by_pid)}) + "\n")

    return companion
