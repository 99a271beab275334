"""Drives the hashing process (`node.miner_worker`) from the node's event loop.

The node calls `refresh()` whenever the head or the mempool changes; the miner builds a new block
template and hands it to the worker, which abandons the old job within one chunk of nonces. A
solution comes back as (time, nonce) for a job id; solutions for stale jobs are dropped.

`run()` ends when cancelled: it asks the worker to stop, then kills it if it lingers. If the worker
dies, `run()` logs the exit code and starts a new one after a second.

Hash-rate samples are stamped with the event loop's clock; the worker, a process of its own that
really hashes, paces itself by the host's monotonic clock (a simulation uses node/sampled_miner.py
instead, which neither hashes nor reads a host clock).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import deque
from collections.abc import Callable

import msgpack

from consensus import pow
from consensus.block_builder import with_nonce
from consensus.types import Block
from node.clock import loop_time

log = logging.getLogger(__name__)


class MinerControls:
    """What the admin API changes on a miner of either kind (node/miner.py hashes in a process,
    node/sampled_miner.py draws block times): on/off and the hashrate cap, then a fresh start."""

    enabled: bool
    hashrate_cap: float | None

    def refresh(self) -> None:
        raise NotImplementedError

    def configure(self, *, enabled: bool | None = None, hashrate: float | None | bool = False
                  ) -> None:
        """`hashrate=None` lifts the cap; leaving it out (False) keeps the current one."""
        if enabled is not None:
            self.enabled = enabled
        if hashrate is not False:
            self.hashrate_cap = hashrate
        self.refresh()


class Miner(MinerControls):
    def __init__(self, *, build_template: Callable[[], Block], on_solved: Callable[[Block], None],
                 hashrate: float | None, chunk: int = 4096, enabled: bool = True) -> None:
        self.build_template = build_template
        self.on_solved = on_solved
        self.hashrate_cap = hashrate
        self.chunk = chunk
        self.enabled = enabled
        self.blocks_found = 0
        self._job_id = 0
        self._template: Block | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._samples: deque[tuple[float, int]] = deque(maxlen=64)

    @property
    def hashrate(self) -> float:
        """Measured hashes/s over the last reports (about the last 10 s)."""
        now = loop_time()
        recent = [(t, n) for t, n in self._samples if now - t <= 10.0]
        if len(recent) < 2:
            return 0.0
        span = recent[-1][0] - recent[0][0]
        return sum(n for _, n in recent[1:]) / span if span > 0 else 0.0

    def refresh(self) -> None:
        """Start mining on a fresh template (new head, new transactions, or settings changed)."""
        if self._proc is None or self._proc.stdin is None:
            return
        self._job_id += 1
        if not self.enabled:
            self._template = None
            self._send({"job": self._job_id, "idle": True})
            return
        template = self.build_template()
        self._template = template
        target = pow.bits_to_target(template.header.bits)
        self._send({"job": self._job_id, "header76": template.header.serialize()[:76],
                    "target": target.to_bytes(32, "big"), "hashrate": self.hashrate_cap,
                    "chunk": self.chunk})

    async def run(self, ready: asyncio.Event | None = None) -> None:
        while True:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "node.miner_worker", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE)
            try:
                self.refresh()
                if ready is not None:
                    ready.set()
                await self._read_results(self._proc)
                code = await self._proc.wait()
                log.error("miner worker exited with code %s; restarting it", code)
            finally:
                await self._stop_worker()
            await asyncio.sleep(1.0)

    async def _read_results(self, proc: asyncio.subprocess.Process) -> None:
        unpacker = msgpack.Unpacker(raw=False)
        assert proc.stdout is not None
        while data := await proc.stdout.read(1 << 16):
            unpacker.feed(data)
            for msg in unpacker:
                self._samples.append((loop_time(), int(msg.get("hashes", 0))))
                if "nonce" in msg and msg.get("job") == self._job_id and self._template:
                    block = with_nonce(self._template, msg["time"], msg["nonce"])
                    self._template = None
                    self.blocks_found += 1
                    self.on_solved(block)

    def _send(self, msg: dict) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(msgpack.packb(msg))
        except (BrokenPipeError, ConnectionResetError):
            log.warning("miner worker pipe closed")

    async def _stop_worker(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.write(msgpack.packb({"stop": True}))
                proc.stdin.close()
            await asyncio.wait_for(proc.wait(), 2.0)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            proc.kill()
            await proc.wait()
