"""Diagnostic (off by default): where a node's memory goes, dumped periodically to its data dir.

Set `TESTNET_MEMORY_TRACE` to a comma-separated list of node ids (or `*`) in the environment of
the nodes (a local cluster's nodes inherit the orchestrator's) and each named node:
- starts `tracemalloc` (`TESTNET_MEMORY_TRACE_FRAMES` frames per allocation, default 6; 0: no
  tracing, the census only) before it builds anything, and
- every `TESTNET_MEMORY_TRACE_EVERY_S` seconds (default 60) writes into `<data_dir>/memtrace/`
  (or `$TESTNET_MEMORY_TRACE_DIR/<node id>/`, which outlives a temporary cluster):
  `snap-<seconds>.tracemalloc` (a `tracemalloc.Snapshot`; compare two with
  `scripts/memory_trace_diff.py`) and `census-<seconds>.json`: the process's VmRSS, traced bytes,
  glibc's, pymalloc's and SQLite's heap figures (held vs in use: fragmentation), the object
  count per type (`gc.get_objects`), and the length of every container of 64 or more items
  reachable from the `Node` by attribute, by path (`node.service.chain.store.blocks`). Nodes
  named in `TESTNET_MEMORY_TRACE_TRIM` then call `malloc_trim(0)` and record the RSS it released.

What ends the dump loop: the node's task group being cancelled. A failed dump is logged and the
loop goes on. A dump blocks the event loop for about a second, and tracing slows allocation-heavy
code by about 2x: use it for diagnosis, never in a measured benchmark.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import gc
import json
import logging
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from node.memory_report import resident_bytes, sqlite_memory_used

log = logging.getLogger("node.memory_trace")

ENV_NODES = "TESTNET_MEMORY_TRACE"
ENV_EVERY_S = "TESTNET_MEMORY_TRACE_EVERY_S"
ENV_FRAMES = "TESTNET_MEMORY_TRACE_FRAMES"
ENV_DIR = "TESTNET_MEMORY_TRACE_DIR"
ENV_TRIM = "TESTNET_MEMORY_TRACE_TRIM"
MIN_CONTAINER_ITEMS = 64
MAX_CENSUS_DEPTH = 8
MAX_CENSUS_ITEMS = 2000   # containers larger than this are counted, not walked into


def is_traced(node_id: str, variable: str = ENV_NODES) -> bool:
    """Whether the environment (`variable`) names this node."""
    wanted = {n.strip() for n in os.environ.get(variable, "").split(",") if n.strip()}
    return "*" in wanted or node_id in wanted


def trim_heap() -> int:
    """glibc's `malloc_trim(0)`: hands free heap pages back to the OS. Returns the VmRSS bytes
    that left (what fragmentation of the C heap was holding), 0 off glibc."""
    before = resident_bytes()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return 0
    return before - resident_bytes()


def start_tracing() -> None:
    """Starts tracemalloc (call before the node builds its structures)."""
    frames = int(os.environ.get(ENV_FRAMES, "6"))
    if frames > 0 and not tracemalloc.is_tracing():
        tracemalloc.start(frames)


def container_census(root: object, name: str = "node") -> dict[str, int]:
    """len() of every list/dict/set/deque of MIN_CONTAINER_ITEMS or more reachable from `root`
    through attributes, dict values and list items, by the first path that reaches it."""
    found: dict[str, int] = {}
    seen: set[int] = set()
    stack: list[tuple[object, str, int]] = [(root, name, 0)]
    while stack:
        obj, path, depth = stack.pop()
        if id(obj) in seen or depth > MAX_CENSUS_DEPTH:
            continue
        seen.add(id(obj))
        children: list[tuple[object, str]] = []
        if isinstance(obj, (dict, list, set, frozenset, tuple, collections.deque)):
            size = len(obj)
            if size >= MIN_CONTAINER_ITEMS and not isinstance(obj, tuple):
                found[path] = size
            if size > MAX_CENSUS_ITEMS:
                continue
            if isinstance(obj, dict):
                children = [(v, f"{path}[]") for v in obj.values()]
            elif not isinstance(obj, (set, frozenset)):
                children = [(v, f"{path}[]") for v in obj]
        elif hasattr(obj, "__dict__") or hasattr(type(obj), "__slots__"):
            if type(obj).__module__.split(".")[0] not in ("node", "consensus", "p2p"):
                continue
            attrs = dict(getattr(obj, "__dict__", {}))
            for klass in type(obj).__mro__:
                for slot in getattr(klass, "__slots__", ()):
                    if hasattr(obj, slot):
                        attrs[slot] = getattr(obj, slot)
            children = [(v, f"{path}.{k}") for k, v in attrs.items()]
        stack.extend((child, p, depth + 1) for child, p in children)
    return found


def type_counts(top: int = 60) -> dict[str, int]:
    """Objects tracked by the garbage collector, per type name, the most numerous first."""
    counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    return dict(counts.most_common(top))


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def malloc_stats() -> dict[str, int]:
    """glibc's view of the C heap (mallinfo2): `arena` bytes from sbrk, `hblkhd` in mmapped
    chunks, `uordblks` in use, `fordblks` free but held (fragmentation). Empty off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    return {field[0]: getattr(info, field[0]) for field in _MallInfo2._fields_}


def pymalloc_stats() -> dict[str, int]:
    """pymalloc's arenas and blocks from `sys._debugmallocstats()` (which writes to fd 2): bytes
    in allocated blocks, in free blocks of used pools, in unused pools, and arenas held."""
    wanted = {"arenas allocated current": "arenas_current", "bytes/arena": "arena_bytes",
              "bytes in allocated blocks": "allocated_bytes",
              "bytes in available blocks": "available_bytes", "unused pools": "unused_pool_bytes"}
    with tempfile.TemporaryFile() as out:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode(errors="replace")
    stats: dict[str, int] = {}
    for line in text.splitlines():
        for prefix, key in wanted.items():
            if prefix in line and "=" in line:
                stats[key] = int(line.split("=")[-1].replace(",", "").split()[0])
    return stats


def dump(node: object, out_dir: Path, elapsed_s: int, *, trim: bool = False) -> None:
    """One snapshot and one census into `out_dir`; with `trim`, then `trim_heap` and how much
    it released."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(str(out_dir / f"snap-{elapsed_s:05d}.tracemalloc"))
    census: dict[str, Any] = {
        "elapsed_s": elapsed_s, "resident_bytes": resident_bytes(),
        "traced_bytes": tracemalloc.get_traced_memory()[0],
        "malloc": malloc_stats(), "pymalloc": pymalloc_stats(),
        "sqlite_bytes": sqlite_memory_used(),
        "containers": dict(sorted(container_census(node).items(), key=lambda kv: -kv[1])),
        "types": type_counts()}
    if trim:
        census["trim_released_bytes"] = trim_heap()
    (out_dir / f"census-{elapsed_s:05d}.json").write_text(json.dumps(census, indent=1))


async def dump_periodically(node: object, node_id: str, data_dir: Path) -> None:
    """Dumps every ENV_EVERY_S seconds until cancelled; a failed dump is logged, not raised."""
    every_s = float(os.environ.get(ENV_EVERY_S, "60"))
    target = (Path(os.environ[ENV_DIR]) / node_id if os.environ.get(ENV_DIR)
              else data_dir / "memtrace")
    trim = is_traced(node_id, ENV_TRIM)
    started = time.monotonic()
    while True:
        await asyncio.sleep(every_s)
        elapsed = int(time.monotonic() - started)
        try:
            dump(node, target, elapsed, trim=trim)   # in the loop: the census walks live maps
        except OSError as exc:
            log.warning("memory trace dump failed: %s", exc)
