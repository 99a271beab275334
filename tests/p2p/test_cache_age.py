"""The gossip seen-cache and payload cache are bounded by age as well as by count (issue 17,
finding 5): a key not touched for its topic's TTL leaves, so a quiet node's cache empties instead
of holding its last burst for ever, and the payload cache holds the last minutes of payloads
instead of filling its byte bound over half an hour. Timing is a fake clock, advanced by the
test."""

from __future__ import annotations

from p2p.seen_cache import ANNOUNCE_TTL_S, PUSH_TTL_S, PayloadCache, SeenCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_cache(max_entries: int = 100) -> tuple[SeenCache, FakeClock]:
    clock = FakeClock()
    cache = SeenCache(max_entries, clock=clock)
    cache.set_ttl("block", ANNOUNCE_TTL_S)
    cache.set_ttl("tx", PUSH_TTL_S)
    return cache, clock


def test_a_key_leaves_after_its_topics_ttl():
    cache, clock = make_cache()
    cache.add(("tx", b"t1"), "peer-a")
    clock.advance(PUSH_TTL_S - 1)
    assert ("tx", b"t1") in cache and cache.holders(("tx", b"t1")) == {"peer-a"}
    clock.advance(2)
    assert ("tx", b"t1") not in cache
    assert cache.add(("tx", b"t1")), "seen again after expiry: new (the chain calls it a duplicate)"


def test_blocks_stay_longer_than_transactions():
    cache, clock = make_cache()
    cache.add(("block", b"b1"))
    clock.advance(PUSH_TTL_S + 1)
    assert ("block", b"b1") in cache
    clock.advance(ANNOUNCE_TTL_S - PUSH_TTL_S)
    assert ("block", b"b1") not in cache
    assert len(cache) == 0, "a quiet node's cache empties"


def test_touching_a_key_keeps_it():
    cache, clock = make_cache()
    cache.add(("tx", b"t1"))
    clock.advance(PUSH_TTL_S - 1)
    assert not cache.add(("tx", b"t1"), "peer-b"), "known: not new"
    clock.advance(PUSH_TTL_S - 1)
    assert ("tx", b"t1") in cache
    assert cache.holders(("tx", b"t1")) == {"peer-b"}


def test_the_count_bound_still_holds_within_the_ttl():
    cache, _clock = make_cache(max_entries=10)
    for i in range(25):
        cache.add(("tx", i.to_bytes(4, "big")))
    assert len(cache) == 10
    assert ("tx", (24).to_bytes(4, "big")) in cache and ("tx", b"\0\0\0\0") not in cache


def test_no_key_outlives_the_longest_ttl():
    cache, clock = make_cache()
    cache.add(("block", b"b1"))
    clock.advance(10)
    cache.add(("tx", b"t1"))            # queued behind a block key
    clock.advance(ANNOUNCE_TTL_S)
    assert len(cache) == 0


def test_payloads_leave_after_their_age_and_their_bytes_with_them():
    clock = FakeClock()
    cache = PayloadCache(1 << 20, clock=clock)
    for i in range(600):                       # ten minutes of one payload a second
        cache.put(("block", i.to_bytes(4, "big")), bytes(500))
        clock.advance(1)
    # the payloads put less than the age bound ago (the newest, one second old, to 119 s old)
    assert len(cache) == int(ANNOUNCE_TTL_S) - 1, "the last two minutes, far below the byte bound"
    assert cache.total_bytes == 500 * len(cache)
    clock.advance(ANNOUNCE_TTL_S)
    assert len(cache) == 0 and cache.total_bytes == 0, "a quiet node's cache empties"


def test_serving_a_payload_keeps_it():
    clock = FakeClock()
    cache = PayloadCache(1 << 20, clock=clock)
    cache.put(("block", b"b1"), b"body")
    clock.advance(ANNOUNCE_TTL_S - 1)
    assert cache.get(("block", b"b1")) == b"body"
    clock.advance(ANNOUNCE_TTL_S - 1)
    assert cache.get(("block", b"b1")) == b"body"
    clock.advance(ANNOUNCE_TTL_S)
    assert cache.get(("block", b"b1")) is None


def test_the_byte_bound_still_holds_within_the_age():
    cache = PayloadCache(1000, clock=FakeClock())
    for i in range(10):
        cache.put(("tx", i.to_bytes(4, "big")), bytes(300))
    assert len(cache) == 3 and cache.total_bytes == 900
    assert cache.get(("tx", (9).to_bytes(4, "big"))) is not None
