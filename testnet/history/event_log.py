"""Reading a node's own event log (`data/events.jsonl`) from disk, tolerant of what SIGKILL leaves.

A node appends one JSON object per line and flushes each line as it is written, so a killed node
leaves every complete event behind -- and at most one line cut short. When the node is started
again it appends to that cut line: the next event (usually `node_started`) then shares a line
with the stump. A reader that drops every line that does not parse loses that event too; this one
recovers it, since every event starts with `{"seq":` (the node writes `seq` first, compactly).

What it reads is what the node durably reported: the crash campaign compares the blocks named in
`block_accepted` lines with what the restarted node still serves (testnet/checks/durability.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

EVENT_START = b'{"seq":'


@dataclass
class EventLog:
    """The events of one log in file order, and how many fragments could not be read (the stumps
    of lines cut by a kill)."""
    events: list[dict] = field(default_factory=list)
    cut: int = 0

    def of_type(self, *types: str) -> list[dict]:
        return [e for e in self.events if e.get("type") in types]


def parse_event_log(data: bytes) -> EventLog:
    """Every complete event in `data` (the bytes of an events.jsonl), stumps skipped and counted."""
    log = EventLog()
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        for fragment in _fragments(line):
            event = _event(fragment)
            if event is None:
                log.cut += 1
            else:
                log.events.append(event)
    return log


def read_event_log(path: Path) -> EventLog:
    """`parse_event_log` of a file; a node that never started has no log: an empty one."""
    try:
        return parse_event_log(path.read_bytes())
    except FileNotFoundError:
        return EventLog()


def _fragments(line: bytes) -> list[bytes]:
    """A line as the events it may hold: itself when it parses, else split where an event starts
    (a stump with the next run's first event appended to it)."""
    if _event(line) is not None:
        return [line]
    starts = _find_all(line, EVENT_START)
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    return [line[a:b] for a, b in zip(starts, [*starts[1:], len(line)])]


def _find_all(data: bytes, needle: bytes) -> list[int]:
    found, i = [], data.find(needle)
    while i != -1:
        found.append(i)
        i = data.find(needle, i + 1)
    return found


def _event(fragment: bytes) -> dict | None:
    try:
        event = json.loads(fragment)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(event, dict) or not isinstance(event.get("seq"), int):
        return None
    return event
