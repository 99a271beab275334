"""Bounded caches for gossip: which messages we have seen, and recent payloads to serve.

SeenCache remembers (topic, msg_id) keys in LRU order, with the set of peers known to have each
message, so gossip never validates a message twice and never forwards it to a peer that sent or
announced it. PayloadCache keeps the payloads of recently accepted announce-topic messages so
`getdata` can be answered before falling back to the node's own store.

Bounds: SeenCache holds at most `max_entries` keys, and a key not touched for its topic's TTL
leaves (announce topics -- blocks -- 120 s, pushed topics -- transactions, votes -- 60 s): a
quiet node's cache empties instead of holding the last burst for ever. A message that comes back
after its key expired is validated again, which the chain answers as a duplicate. PayloadCache
holds at most `max_bytes` of payloads, and none untouched for `max_age_s` (120 s).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from p2p.loop_clock import loop_time

Key = tuple[str, bytes]

ANNOUNCE_TTL_S = 120.0   # blocks: a peer may still sync or re-announce them for a while
PUSH_TTL_S = 60.0        # transactions and votes: gossip of one is over within seconds
DEFAULT_TTL_S = ANNOUNCE_TTL_S


class SeenCache:
    """Seen keys, oldest touch first. Bound: `max_entries` keys; each key leaves once untouched
    for its topic's TTL (`set_ttl`; `DEFAULT_TTL_S` otherwise). Expiry pops from the oldest end,
    so a key of a short-TTL topic queued behind a younger long-TTL key may outlive its own TTL,
    never the longest TTL in use."""

    def __init__(self, max_entries: int, *, clock: Callable[[], float] = loop_time) -> None:
        if max_entries < 1:
            raise ValueError(f"seen cache size must be positive, got {max_entries}")
        self._max_entries = max_entries
        self._clock = clock
        self._ttl: dict[str, float] = {}
        self._entries: OrderedDict[Key, tuple[float, set[str]]] = OrderedDict()

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def __contains__(self, key: Key) -> bool:
        self._expire()
        return key in self._entries

    def set_ttl(self, topic: str, ttl_s: float) -> None:
        """How long a key of `topic` stays once untouched."""
        if ttl_s <= 0:
            raise ValueError(f"seen TTL must be positive, got {ttl_s}")
        self._ttl[topic] = ttl_s

    def add(self, key: Key, peer_id: str | None = None) -> bool:
        """Mark `key` seen (and held by `peer_id`). True if it was new."""
        self._expire()
        found = self._entries.pop(key, None)
        holders = set() if found is None else found[1]
        self._entries[key] = (self._clock(), holders)
        if len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        if peer_id is not None:
            holders.add(peer_id)
        return found is None

    def discard(self, key: Key) -> None:
        self._entries.pop(key, None)

    def note_holder(self, key: Key, peer_id: str) -> None:
        """Remember that `peer_id` has the message, if we still track it."""
        found = self._entries.get(key)
        if found is not None:
            found[1].add(peer_id)

    def holders(self, key: Key) -> frozenset[str]:
        found = self._entries.get(key)
        return frozenset(found[1]) if found is not None else frozenset()

    def _expire(self) -> None:
        now = self._clock()
        entries = self._entries
        while entries:
            key, (touched, _holders) = next(iter(entries.items()))
            if now - touched < self._ttl.get(key[0], DEFAULT_TTL_S):
                return
            entries.popitem(last=False)


class PayloadCache:
    """Payloads by key, oldest touch first. Bounds: `max_bytes` of payloads in total, and a
    payload not stored or served for `max_age_s` leaves (a getdata for it then falls back to the
    topic's fetch, the node's store). The age bound keeps the cache sized to its use -- the
    payloads of the last minutes, which is when peers ask -- instead of filling its byte bound
    over half an hour of blocks and transactions (issue 17: growth after the 10th minute)."""

    def __init__(self, max_bytes: int, *, max_age_s: float = ANNOUNCE_TTL_S,
                 clock: Callable[[], float] = loop_time) -> None:
        if max_age_s <= 0:
            raise ValueError(f"payload age bound must be positive, got {max_age_s}")
        self._max_bytes = max_bytes
        self._max_age_s = max_age_s
        self._clock = clock
        self._bytes = 0
        self._entries: OrderedDict[Key, tuple[float, bytes]] = OrderedDict()

    def put(self, key: Key, payload: bytes) -> None:
        self._expire()
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old[1])
        self._entries[key] = (self._clock(), payload)
        self._bytes += len(payload)
        while self._bytes > self._max_bytes and self._entries:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= len(evicted)

    def get(self, key: Key) -> bytes | None:
        self._expire()
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries[key] = (self._clock(), found[1])
        self._entries.move_to_end(key)
        return found[1]

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def _expire(self) -> None:
        now = self._clock()
        entries = self._entries
        while entries:
            key, (touched, payload) = next(iter(entries.items()))
            if now - touched < self._max_age_s:
                return
            del entries[key]
            self._bytes -= len(payload)
