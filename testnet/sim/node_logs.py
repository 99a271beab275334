"""One log file per simulated node, though every node logs through the same `logging` loggers.

A real node is a process with its own stderr; simulated nodes share one process, so a record is
routed by the context it was logged in: the backend runs each node's tasks in a context whose
`CURRENT_NODE` names it (asyncio tasks inherit the context they were created in, so every task a
node starts carries its name). Records logged outside any node (the orchestrator's) are left to
the ordinary handlers. Times are the virtual wall clock (testnet/clock.py), so a node's log reads
like the log of a node living in the simulated time.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from pathlib import Path
from typing import TextIO

from testnet.clock import wall_time

CURRENT_NODE: ContextVar[str | None] = ContextVar("CURRENT_NODE", default=None)


class NodeLogRouter(logging.Handler):
    """Writes each record logged inside a node's context to that node's file."""

    def __init__(self) -> None:
        super().__init__()
        self._files: dict[str, TextIO] = {}

    def attach(self, node: str, path: Path) -> None:
        """Route `node`'s records to `path` (appended: a restarted node continues its log)."""
        self.detach(node)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._files[node] = path.open("a", encoding="utf-8")

    def detach(self, node: str) -> None:
        handle = self._files.pop(node, None)
        if handle is not None:
            handle.close()

    def emit(self, record: logging.LogRecord) -> None:
        node = CURRENT_NODE.get()
        handle = self._files.get(node) if node is not None else None
        if handle is None:
            return
        try:
            handle.write(f"{wall_time():.3f} {node} {record.levelname} {record.name}: "
                         f"{record.getMessage()}\n")
            if record.exc_info:
                handle.write(logging.Formatter().formatException(record.exc_info) + "\n")
            handle.flush()
        except (OSError, ValueError):
            self.handleError(record)

    def close(self) -> None:
        for node in list(self._files):
            self.detach(node)
        super().close()


class OutsideNodes(logging.Filter):
    """Keeps a handler to the records logged outside every simulated node (the orchestrator's
    console must not repeat a thousand nodes' logs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return CURRENT_NODE.get() is None
