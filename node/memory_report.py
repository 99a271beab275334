"""What a node holds in memory, by kind, for /status's "memory" block and the
`testnet_memory_items{kind}` / `testnet_resident_bytes` metrics (docs/memory.md lists each
structure, its bound and where older data lives).

Counts only: each structure is bounded where it lives; this module just reads their sizes, so a
test or a soak can see from outside that what should stay flat does.
"""

from __future__ import annotations

import ctypes
import resource
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from node.app import Node


RESIDENT_READ_INTERVAL_S = 0.5
_resident: tuple[float, int] | None = None   # (host monotonic time read, bytes)


def resident_bytes() -> int:
    """This process's resident set (VmRSS), or its peak when /proc is not there; read at most
    every RESIDENT_READ_INTERVAL_S (a process hosting many simulated nodes answers many /status
    calls, and /proc is the same for all of them)."""
    global _resident
    now = time.monotonic()
    if _resident is not None and now - _resident[0] < RESIDENT_READ_INTERVAL_S:
        return _resident[1]
    _resident = (now, _read_resident_bytes())
    return _resident[1]


def _read_resident_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def sqlite_memory_used() -> int | None:
    """Bytes SQLite has allocated in this process (`sqlite3_memory_used`: page caches, schema,
    statements); None where the library cannot be found by that name (not Linux)."""
    try:
        lib = ctypes.CDLL("libsqlite3.so.0")   # the one _sqlite3 links (already loaded)
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        return int(lib.sqlite3_memory_used())
    except (OSError, AttributeError):
        return None


def memory_items(node: Node, peers: int | None = None) -> dict[str, int]:
    """Sizes of the node's in-memory structures, by kind (`peers`: the count, when the caller
    has it already)."""
    service = node.service
    items = dict(service.chain.memory_items())
    items.update({"archive_cache": len(service.archive), "archive_reads": service.archive.reads,
                  "tx_index": 0,   # in the store (SQLite), not in memory
                  "mempool": len(node.mempool), "verified_txs": len(node.mempool.verified),
                  "events_buffered": len(node.events.history),
                  "peers": len(node.host.peers()) if peers is None else peers})
    items.update({f"gossip_{kind}": n for kind, n in node.host.gossip.memory_items().items()})
    return items
