"""Tracebacks in a node's log: what a soak greps for after hours of faults.

A node logs a Python traceback when something it did not expect went wrong (an exception logged
with `log.exception`, or one that ended a task). Each is found by its `Traceback (most recent call
last):` header and summed up by its last line (the exception and its message) and the log line
before it (what the node was doing), so a report can list them without the whole stack.
"""

from __future__ import annotations

from pathlib import Path

HEADER = "Traceback (most recent call last):"


def find_tracebacks(text: str) -> list[dict]:
    """Each traceback in `text`: its line number (1-based), the exception line, the line before."""
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        if line.strip() != HEADER:
            continue
        end = i + 1
        while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end]):
            end += 1
        found.append({"line": i + 1,
                      "exception": lines[end].strip() if end < len(lines) else "(log ends)",
                      "context": lines[i - 1].strip() if i else ""})
    return found


def read_tracebacks(path: Path) -> list[dict]:
    """`find_tracebacks` of a log file (none when the file does not exist)."""
    try:
        return find_tracebacks(path.read_text(errors="replace"))
    except FileNotFoundError:
        return []
