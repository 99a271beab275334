"""Link shaping: per-peer fault injection (block, delay, jitter, loss, duplicate, reorder, rate).

The kernel of a test machine may have no netem, so link faults are applied inside p2p/, which
works on any host. Plan apart from mechanism (Jepsen's nemesis):

- `LinkRule` is a value: what one direction of one link does to frames (Blockade's
  partition/slow/flaky/duplicate, netem's delay+jitter, loss, duplicate, reorder, rate).
- `LinkShaper` holds the rules per (peer id or "*", direction "in"/"out") and decides, with
  `plan()`, what happens to one frame: [] = dropped, [d] = one copy sent after d seconds,
  [d1, d2] = duplicated. Randomness comes from the rng it is given, drawn in a fixed order, so
  one seed gives one schedule and a run can be repeated.
- `DelayLine` is the mechanism that holds frames back: one event-loop timer per line, no tasks.

Connection (connection.py) consults the host's shaper in `_egress` (direction "out") and
`_ingress` (direction "in") once the handshake is over; P2PHost (host.py) turns a rule that
blocks both directions into a visible partition: it closes the link and refuses the peer.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Generic, Literal, TypeVar

from p2p.errors import shown
from p2p.loop_clock import loop_time

Direction = Literal["in", "out"]
DIRECTIONS: tuple[Direction, ...] = ("in", "out")
ANY_PEER = "*"
BURST_S = 0.1  # the token bucket holds a tenth of a second of bandwidth (at least one frame)
DRAWS_PER_FRAME = 6  # loss, duplicate, then (reorder, jitter) for each of two possible copies
PEER_ID_PATTERN = re.compile(r"[0-9a-f]{64}")
MAX_DELAY_MS = 3_600_000  # an hour: longer is a dead link (block it) or a typo

T = TypeVar("T")


@dataclass(frozen=True)
class LinkRule:
    """What one direction of a link does to frames. The default rule changes nothing."""

    block: bool = False  # drop every frame; both directions blocked = a partition (the link closes)
    delay_ms: float = 0  # added latency
    # latency varies uniformly in [delay - jitter, delay + jitter], never below 0
    jitter_ms: float = 0
    loss: float = 0  # probability that a frame is dropped
    duplicate: float = 0  # probability that a frame is delivered twice
    # probability that a frame skips the delay (and rate) queue, overtaking others
    reorder: float = 0
    bandwidth_bps: int | None = None  # bytes per second; None = unlimited

    def __post_init__(self) -> None:
        # [REJECT] block is a bool
        if not isinstance(self.block, bool):
            raise ValueError(f"block must be true or false, got {shown(self.block)}")
        # [REJECT] delays are not negative and at most MAX_DELAY_MS (event-loop timers overflow
        # somewhere past 1e300 s, long before infinity)
        for name in ("delay_ms", "jitter_ms"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value <= MAX_DELAY_MS:
                raise ValueError(f"{name} must be a number in 0..{MAX_DELAY_MS}, "
                                 f"got {shown(value)}")
        # [REJECT] probabilities lie in 0..1
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a probability in 0..1, got {shown(value)}")
        # [REJECT] bandwidth is a positive whole number of bytes per second, or unlimited
        bandwidth = self.bandwidth_bps
        if bandwidth is not None and (isinstance(bandwidth, bool) or not isinstance(bandwidth, int)
                                      or bandwidth <= 0):
            raise ValueError(f"bandwidth_bps must be a positive integer (bytes per second) or "
                             f"null, got {shown(bandwidth)}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LinkRule:
        """The rule a JSON object describes; missing fields take their defaults.

        Raises ValueError naming the field for an unknown field or a bad value.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a link rule must be a JSON object, got {shown(data)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(key) for key in data if key not in known)
        if unknown:
            raise ValueError(f"unknown link rule field {shown(unknown[0])} "
                             f"(known: {', '.join(sorted(known))})")
        return cls(**data)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class _Bucket:
    tokens: float  # bytes; negative while frames wait for bandwidth
    updated: float  # clock time of the last frame


class LinkShaper:
    """The link rules of one host and the decisions they make, frame by frame.

    A rule is set for a peer id, or for "*" (every peer without a rule of its own in that
    direction). Direction "out" shapes what this host sends to the peer, "in" what it receives.
    """

    def __init__(self, rng: random.Random, clock: Callable[[], float] = loop_time) -> None:
        self.rng = rng
        self.clock = clock  # seconds; must advance like the event loop's clock for rate limits
        self._rules: dict[tuple[str, Direction], LinkRule] = {}
        self._buckets: dict[tuple[str, Direction], _Bucket] = {}

    def set(self, peer: str, rule: LinkRule,
            direction: Literal["in", "out", "both"] = "both") -> None:
        """Apply `rule` to frames exchanged with `peer` (a peer id or "*") in `direction`.

        Replaces the rule that peer had in that direction. Raises ValueError for a bad peer or
        direction, TypeError if `rule` is not a LinkRule.
        """
        _check_peer(peer)
        if not isinstance(rule, LinkRule):
            raise TypeError(f"rule must be a LinkRule, got {type(rule).__name__}")
        if direction not in ("in", "out", "both"):
            raise ValueError(f"direction must be 'in', 'out' or 'both', got {shown(direction)}")
        for way in DIRECTIONS if direction == "both" else (direction,):
            self._rules[(peer, way)] = rule
        self._forget_buckets(peer)

    def clear(self, peer: str | None = None) -> None:
        """Remove the rules for `peer` (both directions), or every rule when `peer` is None."""
        if peer is None:
            self._rules.clear()
            self._buckets.clear()
            return
        _check_peer(peer)
        for way in DIRECTIONS:
            self._rules.pop((peer, way), None)
        self._forget_buckets(peer)

    def rules(self) -> list[dict[str, Any]]:
        """Every rule as JSON: [{"peer": ..., "direction": "in"|"out", "rule": {...}}], sorted."""
        return [
            {"peer": peer, "direction": direction, "rule": rule.to_json()}
            for (peer, direction), rule in sorted(self._rules.items())
        ]

    def rule_for(self, peer_id: str, direction: Direction) -> LinkRule | None:
        """The rule for frames with `peer_id` in `direction`: the peer's own, else "*"'s, else
        None."""
        rule = self._rules.get((peer_id, direction))
        return rule if rule is not None else self._rules.get((ANY_PEER, direction))

    def is_blocked(self, peer_id: str) -> bool:
        """True when the rules block both directions with `peer_id`: a partition, not a filter."""
        rules = [self.rule_for(peer_id, way) for way in DIRECTIONS]
        return all(rule is not None and rule.block for rule in rules)

    def plan(
        self, rule: LinkRule, size_bytes: int, now: float, *, peer: str = ANY_PEER,
        direction: Direction = "out",
    ) -> list[float]:
        """Decide the fate of one frame of `size_bytes` sent at `now` under `rule`.

        Returns the delays in seconds of the copies to deliver: [] = dropped, [d] = one copy,
        [d1, d2] = duplicated. A blocking rule drops every frame and draws nothing; any other
        call draws exactly DRAWS_PER_FRAME numbers from the rng, always in the same order (loss,
        duplicate, then reorder and jitter for each possible copy), so one seed gives one
        schedule whatever the outcomes. A copy's delay is its wait for bandwidth (the token
        bucket of `(peer, direction)`) plus the delay with jitter; a reordered copy has neither.
        """
        if rule.block:
            return []
        u_loss, u_duplicate, *per_copy = (self.rng.random() for _ in range(DRAWS_PER_FRAME))
        if u_loss < rule.loss:
            return []
        copies = 2 if u_duplicate < rule.duplicate else 1
        delays = []
        for u_reorder, u_jitter in zip(per_copy[0:copies * 2:2], per_copy[1:copies * 2:2]):
            if u_reorder < rule.reorder:
                delays.append(0.0)  # netem: a reordered frame goes out at once
                continue
            latency_ms = max(0.0, rule.delay_ms + (2 * u_jitter - 1) * rule.jitter_ms)
            wait = 0.0
            if rule.bandwidth_bps is not None:
                wait = self._wait_for_bandwidth((peer, direction), rule.bandwidth_bps,
                                                size_bytes, now)
            delays.append(wait + latency_ms / 1000)
        return delays

    def _wait_for_bandwidth(self, key: tuple[str, Direction], rate: int, size: int,
                            now: float) -> float:
        """Seconds until the bucket of `key` has `size` bytes of tokens; takes them (a frame
        that must wait leaves the bucket in debt, so the frames after it wait longer)."""
        burst = max(size, rate * BURST_S)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=burst, updated=now)
        tokens = min(burst, bucket.tokens + max(0.0, now - bucket.updated) * rate)
        bucket.tokens = tokens - size
        bucket.updated = now
        return max(0.0, (size - tokens) / rate)

    def _forget_buckets(self, peer: str) -> None:
        for key in [key for key in self._buckets if peer in (ANY_PEER, key[0])]:
            del self._buckets[key]


def _check_peer(peer: Any) -> None:
    # [REJECT] a rule names a peer id (64 hex digits) or "*"
    if not isinstance(peer, str) or not (peer == ANY_PEER or PEER_ID_PATTERN.fullmatch(peer)):
        raise ValueError(f"peer must be a peer id (64 lowercase hex digits) or '*', "
                         f"got {shown(peer)}")


class DelayLine(Generic[T]):
    """Items held back for a while, released in due order (first in, first out at equal times).

    One event-loop timer for the earliest item, no task: `close()` cancels it and forgets the
    rest, so a closing connection leaves nothing behind. At most `max_items` items and
    `max_bytes` bytes wait at once; `push` refuses more (a router's tail drop).
    """

    def __init__(self, release: Callable[[T], None], *, max_items: int, max_bytes: int) -> None:
        self._release = release
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._heap: list[tuple[float, int, int, T]] = []  # (due, sequence, size, item)
        self._sequence = 0
        self._bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._heap)

    @property
    def bytes(self) -> int:
        return self._bytes

    def push(self, delay: float, item: T, size: int) -> bool:
        """Release `item` after `delay` seconds. False if the line is full or closed."""
        return self.push_at(asyncio.get_running_loop().time() + delay, item, size)

    def push_at(self, due: float, item: T, size: int) -> bool:
        """Release `item` at loop time `due` (after items pushed earlier with the same due).
        False if the line is full or closed."""
        if (self._closed or len(self._heap) >= self._max_items
                or self._bytes + size > self._max_bytes):
            return False
        loop = asyncio.get_running_loop()
        heapq.heappush(self._heap, (due, self._sequence, size, item))
        self._sequence += 1
        self._bytes += size
        if self._timer is None or due < self._timer.when():
            self._arm(loop)
        return True

    def close(self) -> None:
        """Forget every waiting item; nothing is released after this."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._heap.clear()
        self._bytes = 0

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(self._heap[0][0], self._on_timer) if self._heap else None

    def _on_timer(self) -> None:
        assert self._timer is not None
        loop = asyncio.get_running_loop()
        horizon = max(loop.time(), self._timer.when())  # the loop may fire a timer a hair early
        due_items = []
        while self._heap and self._heap[0][0] <= horizon:
            _, _, size, item = heapq.heappop(self._heap)
            self._bytes -= size
            due_items.append(item)
        self._timer = None
        self._arm(loop)
        for item in due_items:
            if self._closed:  # a release closed the line (e.g. the connection closed)
                return
            self._release(item)
