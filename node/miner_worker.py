"""The hashing process: runs beside a node at low OS priority, so hashing never stalls networking.

Protocol (msgpack stream): the node writes jobs to stdin, `{"job": id, "header76": bytes,
"target": bytes(32, big-endian), "hashrate": float|None, "chunk": int}` or `{"stop": true}`;
the worker writes `{"job": id, "time": t, "nonce": n, "hashes": k}` for each solution it finds and
`{"job": id, "hashes": k}` progress reports about once a second (k = hashes since the last message).
Between chunks of nonces it checks stdin for a newer job, so a new head redirects the work within
one chunk. When the nonce space runs out it rolls the header's time field forward by one second, as
Bitcoin miners roll nTime. Ends on `stop` or when stdin closes (the node died).
"""

from __future__ import annotations

import os
import select
import struct
import sys
import time

import msgpack

from consensus.pow import search_nonce

_TIME = struct.Struct("<I")


def main() -> None:
    try:
        os.nice(10)
    except OSError:
        pass
    stdin = sys.stdin.fileno()
    stdout = sys.stdout.buffer
    unpacker = msgpack.Unpacker(raw=False)
    job: dict | None = None

    def read_messages(block: bool) -> bool:
        """Feed stdin into the unpacker; False when stdin has closed."""
        nonlocal job
        ready, _, _ = select.select([stdin], [], [], None if block else 0)
        if not ready:
            return True
        data = os.read(stdin, 1 << 16)
        if not data:
            return False
        unpacker.feed(data)
        for msg in unpacker:
            if msg.get("stop"):
                return False
            job = None if msg.get("idle") else msg
        return True

    def send(msg: dict) -> None:
        stdout.write(msgpack.packb(msg))
        stdout.flush()

    bucket = HashBudget()
    while True:
        if job is None:
            if not read_messages(block=True):
                return
            continue
        current = job
        header = bytearray(current["header76"])
        target = int.from_bytes(current["target"], "big")
        bucket.rate = current.get("hashrate")
        chunk = int(current.get("chunk", 4096))
        nonce, unreported, reported = 0, 0, time.monotonic()
        while job is current:
            size = bucket.slice(chunk)
            wait = bucket.take(size, time.monotonic())
            if wait > 0:
                # Over the cap: sleep it off, listening for a new job meanwhile.
                ready, _, _ = select.select([stdin], [], [], wait)
                if ready and not read_messages(block=False):
                    return
                continue
            found = search_nonce(bytes(header), target, nonce, size)
            done = size if found is None else found - nonce + 1
            unreported += done
            if found is not None:
                send({"job": current["job"], "time": _TIME.unpack_from(header, 68)[0],
                      "nonce": found, "hashes": unreported})
                job = None  # wait for the node's next template
                break
            nonce += size
            if nonce >= 1 << 32:
                nonce = 0
                _TIME.pack_into(header, 68, _TIME.unpack_from(header, 68)[0] + 1)
            now = time.monotonic()
            if now - reported >= 1.0:
                send({"job": current["job"], "hashes": unreported})
                unreported, reported = 0, now
            if not read_messages(block=False):
                return


class HashBudget:
    """Token bucket for the hashrate cap. It lives across jobs: a miner that gets a new template
    every few milliseconds (a reorg, a burst of transactions) must not hash faster than its cap,
    or a 'capped' node would mine bursts of blocks after every head change."""

    def __init__(self) -> None:
        self.rate: float | None = None
        self.tokens = 0.0
        self.last = time.monotonic()

    def slice(self, chunk: int) -> int:
        """Nonces per step: about 50 ms of work at the cap, so the cap is smooth."""
        if not self.rate:
            return chunk
        return max(16, min(chunk, int(self.rate * 0.05)))

    def take(self, size: int, now: float) -> float:
        """0 when `size` hashes may go now (and takes them), else seconds to wait first."""
        if not self.rate:
            return 0.0
        burst = max(float(size), self.rate * 0.1)
        self.tokens = min(burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= size:
            self.tokens -= size
            return 0.0
        return (size - self.tokens) / self.rate

if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
