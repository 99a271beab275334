"""The node's event stream: numbered, timestamped events for observers.

Each event gets the next sequence number (continuing across restarts: the last number is read back
from the JSON-lines log in the data dir) and the node's wall-clock time (including any clock skew).
Subscribers get a bounded queue each: a consumer that stops reading never grows the node's memory;
when its queue is full it loses events and is told how many with an `events_missed` event.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE_EVENTS = 2_000
# Bound of the in-memory history (about 1 KB an event): replays for `/events?since=` and fast
# `/events/log` reads; older events are read from events.jsonl. 4,096 is minutes of a busy PoS
# node, so it is full -- and flat -- early in a run.
HISTORY_EVENTS = 4_096
MAX_READ_EVENTS = 5_000


class Subscription:
    """One observer's bounded queue. Invariant: what it gets is every event in order, except
    runs of dropped ones, each announced by one `events_missed` notice (count, and `seq` = the
    last dropped) in their place — either before the next event that fits or, if no event comes,
    as soon as the observer has drained its queue."""

    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[dict] = asyncio.Queue(maxsize)
        self.missed = 0
        self._last_seq = 0

    def offer(self, event: dict) -> bool:
        """Queues `event`, or counts it as missed when the queue is full; False if dropped."""
        self._last_seq = event["seq"]
        if self.queue.full():
            self.missed += 1
            return False
        if self.missed:
            if self.queue.qsize() >= self.queue.maxsize - 1:
                self.missed += 1
                return False
            self.queue.put_nowait({"type": "events_missed", "count": self.missed,
                                   "seq": event["seq"] - 1})
            self.missed = 0
        self.queue.put_nowait(event)
        return True

    async def get(self) -> dict:
        """The next event, or the pending `events_missed` notice once the queue is drained: an
        observer that catches up learns of its gap now, not whenever the node next emits."""
        if self.missed and self.queue.empty():
            notice = {"type": "events_missed", "count": self.missed, "seq": self._last_seq}
            self.missed = 0
            return notice
        return await self.queue.get()


class EventBus:
    def __init__(self, node_id: str, log_path: Path | None, clock: Callable[[], float]) -> None:
        self.node_id = node_id
        self.clock = clock
        self.history: deque[dict] = deque(maxlen=HISTORY_EVENTS)
        self._subs: dict[Subscription, None] = {}   # insertion-ordered: offers in one order
        self.missed_total = 0       # events dropped for slow subscribers, over the node's life
        self.listeners: list[Callable[[dict], None]] = []   # in-process observers (metrics)
        self.log_path = log_path
        self._seq = _last_seq(log_path) if log_path else 0
        self._file = open(log_path, "a", buffering=1) if log_path else None
        if self._file is not None and log_path is not None and _ends_mid_line(log_path):
            # A kill cut the last line short: end it, so the next event starts a line of its own
            # (and is not lost with the cut one by every reader that skips a broken line).
            self._file.write("\n")

    @property
    def last_seq(self) -> int:
        return self._seq

    def emit(self, event_type: str, **data: Any) -> dict:
        self._seq += 1
        event = {"seq": self._seq, "type": event_type, "node": self.node_id,
                 "ts": round(self.clock(), 6), **data}
        self.history.append(event)
        if self._file is not None:
            self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
        for sub in self._subs:
            if not sub.offer(event):
                self.missed_total += 1
        for listener in self.listeners:
            listener(event)
        return event

    def subscribe(self, since: int | None = None, maxsize: int = SUBSCRIBER_QUEUE_EVENTS
                  ) -> Subscription:
        """A new subscription, first replaying history after `since` (what still is in memory)."""
        sub = Subscription(maxsize)
        if since is not None:
            for event in self.history:
                if event["seq"] > since:
                    sub.offer(event)
        self._subs[sub] = None
        return sub

    def read_memory(self, after: int, limit: int) -> list[dict] | None:
        """Events with seq > `after` (oldest first, at most `limit`) when memory still holds all
        of them; None when some are only in the log."""
        limit = max(1, min(limit, MAX_READ_EVENTS))
        if (self.history and self.history[0]["seq"] <= after + 1) or self.log_path is None \
                or after >= self._seq:
            return [e for e in self.history if e["seq"] > after][:limit]
        return None

    def read(self, after: int, limit: int = 1000) -> list[dict]:
        """Events with seq > `after`, oldest first, at most `limit`: from memory when it still
        holds them, else from the JSON-lines log (which outlives restarts). This is how an observer
        fills a gap in what it received (a restart, or events it missed as a slow consumer).
        The log path may run in a thread: it touches only the file."""
        in_memory = self.read_memory(after, limit)
        return in_memory if in_memory is not None else read_log(self.log_path, after, limit)

    def subscriber_stats(self) -> dict:
        """How the live subscribers keep up: their count and the fullest queue (an observer that
        stopped reading shows as a queue at its bound and a growing missed count)."""
        return {"subscribers": len(self._subs),
                "queued_max": max((s.queue.qsize() for s in self._subs), default=0),
                "missed_total": self.missed_total}

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.pop(sub, None)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_log(path: Path | None, after: int, limit: int) -> list[dict]:
    out: list[dict] = []
    if path is None:
        return out
    limit = max(1, min(limit, MAX_READ_EVENTS))
    try:
        with open(path, "rb") as fh:
            for line in fh:
                try:
                    event = json.loads(line)
                    seq = int(event["seq"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a kill
                if seq > after:
                    out.append(event)
                    if len(out) >= limit:
                        break
    except FileNotFoundError:
        pass
    return out


def _ends_mid_line(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            if fh.seek(0, 2) == 0:
                return False
            fh.seek(-1, 2)
            return fh.read(1) != b"\n"
    except FileNotFoundError:
        return False


def _last_seq(path: Path) -> int:
    """The sequence number of the last complete event in the log (0 for none)."""
    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, 2)
            fh.seek(max(0, end - 65536))
            tail = fh.read().splitlines()
    except FileNotFoundError:
        return 0
    for line in reversed(tail):
        try:
            return int(json.loads(line)["seq"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0
