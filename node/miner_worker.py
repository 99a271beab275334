"""The hashing process: runs beside a node at low OS priority, so hashing never stalls networking.

Protocol (msgpack stream): the node writes jobs to stdin, `{"job": id, "header76": bytes,
"target": bytes(32, big-endian), "hashrate": float|None, "chunk": int}` or `{"stop": true}`;
the worker writes `{"job": id, "time": t, "nonce": n, "hashes": k}` for each solution it finds and
`{"job": id, "hashes": k}` progress reports about once a second (k = hashes since the last message). Between chunks of nonces it checks
stdin for a newer job, so a new head redirects the work within one chunk. When the nonce space runs
out it rolls the header's time field forward by one second, as Bitcoin miners roll nTime.
Ends on `stop` or when stdin closes (the node died).
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
    stdin = sys.stdin.buffer.raw
    stdout = sys.stdout.buffer
    unpacker = msgpack.Unpacker(raw=False)
    job: dict | None = None

    def read_messages(block: bool) -> bool:
        """Feed stdin into the unpacker; False when stdin has closed."""
        nonlocal job
        ready, _, _ = select.select([stdin], [], [], None if block else 0)
        if not ready:
            return True
        data = os.read(stdin.fileno(), 1 << 16)
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

    while True:
        if job is None:
            if not read_messages(block=True):
                return
            continue
        current = job
        header = bytearray(current["header76"])
        target = int.from_bytes(current["target"], "big")
        rate = current.get("hashrate")
        chunk = int(current.get("chunk", 4096))
        nonce, hashes, unreported = 0, 0, 0
        started = reported = time.monotonic()
        while job is current:
            found = search_nonce(bytes(header), target, nonce, chunk)
            done = chunk if found is None else found - nonce + 1
            hashes += done
            unreported += done
            if found is not None:
                send({"job": current["job"], "time": _TIME.unpack_from(header, 68)[0],
                      "nonce": found, "hashes": unreported})
                job = None  # wait for the node's next template
                break
            nonce += chunk
            if nonce >= 1 << 32:
                nonce = 0
                _TIME.pack_into(header, 68, _TIME.unpack_from(header, 68)[0] + 1)
            now = time.monotonic()
            if now - reported >= 1.0:
                send({"job": current["job"], "hashes": unreported})
                unreported, reported = 0, now
            ahead = hashes / rate - (now - started) if rate else 0.0
            if ahead > 0:
                # Sleep off the excess over the hashrate cap, listening for a new job meanwhile.
                ready, _, _ = select.select([stdin], [], [], ahead)
                if ready and not read_messages(block=False):
                    return
            elif not read_messages(block=False):
                return

if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
