"""Bounded caches for gossip: which messages we have seen, and recent payloads to serve.

SeenCache remembers (topic, msg_id) keys in LRU order, with the set of peers known to have each
message, so gossip never validates a message twice and never forwards it to a peer that sent or
announced it. PayloadCache keeps the payloads of recently accepted announce-topic messages so
`getdata` can be answered before falling back to the node's own store.
"""

from __future__ import annotations

from collections import OrderedDict

Key = tuple[str, bytes]


class SeenCache:
    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError(f"seen cache size must be positive, got {max_entries}")
        self._max_entries = max_entries
        self._entries: OrderedDict[Key, set[str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Key) -> bool:
        return key in self._entries

    def add(self, key: Key, peer_id: str | None = None) -> bool:
        """Mark `key` seen (and held by `peer_id`). True if it was new."""
        holders = self._entries.get(key)
        is_new = holders is None
        if holders is None:
            holders = self._entries[key] = set()
            if len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        if peer_id is not None:
            holders.add(peer_id)
        return is_new

    def discard(self, key: Key) -> None:
        self._entries.pop(key, None)

    def note_holder(self, key: Key, peer_id: str) -> None:
        """Remember that `peer_id` has the message, if we still track it."""
        holders = self._entries.get(key)
        if holders is not None:
            holders.add(peer_id)

    def holders(self, key: Key) -> frozenset[str]:
        return frozenset(self._entries.get(key, ()))


class PayloadCache:
    """LRU of payloads bounded by total bytes."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[Key, bytes] = OrderedDict()

    def put(self, key: Key, payload: bytes) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old)
        self._entries[key] = payload
        self._bytes += len(payload)
        while self._bytes > self._max_bytes and self._entries:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted)

    def get(self, key: Key) -> bytes | None:
        payload = self._entries.get(key)
        if payload is not None:
            self._entries.move_to_end(key)
        return payload
