"""Per-peer budgets (p2p/peer_policy.py) on a fake clock: buckets, bans for staying over, requests
in flight, sync answers, admission per address, eviction and log throttling."""

from __future__ import annotations

import asyncio
import os
from collections import Counter

from p2p.peer_policy import (
    ADMISSION_BAN_COST,
    ADMISSION_BURST,
    ADMISSION_PER_S,
    BROKEN_PROMISE_PENALTY,
    GENESIS_ANSWER_INTERVAL_S,
    KIND_LIMITS,
    LOG_INTERVAL_S,
    MAX_IN_FLIGHT_PER_PEER,
    OVER_BUDGET_GRACE_S,
    SYNC_BYTES_BURST,
    SYNC_BYTES_PER_S,
    SYNC_MAX_THROTTLE_S,
    EvictionCandidate,
    PeerPolicy,
    PolicyLimits,
    TokenBucket,
    address_of,
    choose_eviction,
)
from p2p.wire import encode_frame
from tests.p2p.p2p_harness import FakeClock, RawPeer, wait_until


def new_policy(clock: FakeClock, **limits) -> tuple[PeerPolicy, list[tuple[str, str]],
                                                   list[tuple[str, float]]]:
    bans: list[tuple[str, str]] = []
    penalties: list[tuple[str, float]] = []
    stats = {"dropped": Counter(), "rejected": Counter()}
    policy = PeerPolicy(clock, limits=PolicyLimits(**limits),
                        on_over_budget=lambda p, k: bans.append((p, k)),
                        penalise=lambda p, x: penalties.append((p, x)), stats=stats)
    return policy, bans, penalties


def test_a_bucket_refills_at_its_rate_up_to_its_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, burst=5.0, clock=clock)
    assert all(bucket.take() for _ in range(5))
    assert not bucket.take()
    clock.advance(0.2)
    assert bucket.take() and bucket.take() and not bucket.take()
    clock.advance(100)
    assert bucket.tokens == 5.0
    assert bucket.wait_for(5.0) == 0.0
    bucket.drain(100)
    assert bucket.tokens == 0.0  # a drain stops at zero
    assert bucket.wait_for(2.0) == 0.2


def test_within_the_bucket_nothing_is_dropped_and_nobody_is_banned():
    clock = FakeClock()
    policy, bans, _ = new_policy(clock)
    rate, burst = KIND_LIMITS["duplicate"]
    for _ in range(int(burst)):
        assert policy.charge("honest", "duplicate")
    for _ in range(100):  # then steadily at half the rate, for a long time
        clock.advance(2 / rate)
        assert policy.charge("honest", "duplicate")
    assert bans == []


def test_a_peer_over_its_bucket_is_dropped_then_banned_after_the_grace():
    clock = FakeClock()
    policy, bans, _ = new_policy(clock)
    _, burst = KIND_LIMITS["unsolicited"]
    assert all(policy.charge("flooder", "unsolicited") for _ in range(int(burst)))
    assert not policy.charge("flooder", "unsolicited")
    def flood_for(seconds: float) -> None:  # 100 frames/s against a bucket of 20/s
        for _ in range(round(seconds * 10)):
            clock.advance(0.1)
            for _ in range(10):
                policy.charge("flooder", "unsolicited")

    flood_for(OVER_BUDGET_GRACE_S - 0.2)
    assert bans == []
    flood_for(0.5)
    assert bans == [("flooder", "unsolicited")]  # reported once


def test_a_pause_forgives_a_short_overrun():
    clock = FakeClock()
    policy, bans, _ = new_policy(clock)
    for _round in range(5):  # bursts over the bucket, each followed by a calm second and more
        while policy.charge("bursty", "status"):
            pass
        clock.advance(OVER_BUDGET_GRACE_S)  # refills enough for the next burst
    assert bans == []


def test_rates_off_charges_nothing():
    policy, bans, _ = new_policy(FakeClock(), rates=False)
    assert all(policy.charge("fuzzer", "unsolicited") for _ in range(10_000))
    assert bans == []


def test_requests_in_flight_are_bounded_per_peer_and_overall_and_freed():
    policy, _, _ = new_policy(FakeClock(), max_in_flight_per_peer=3, max_in_flight_total=5)
    for _ in range(3):
        assert policy.may_request("a")
        policy.track("a")
    assert not policy.may_request("a")
    policy.track("b")
    policy.track("b")
    assert not policy.may_request("c")  # overall bound
    policy.release("a")
    assert policy.may_request("a") and policy.may_request("c")
    policy.forget("b")
    assert policy.in_flight() == 2 and policy.in_flight("b") == 0


def test_a_broken_promise_costs_score():
    policy, _, penalties = new_policy(FakeClock())
    policy.broken_promise("liar")
    assert penalties == [("liar", BROKEN_PROMISE_PENALTY)]


def test_an_answer_from_genesis_at_most_once_per_interval():
    clock = FakeClock()
    policy, _, _ = new_policy(clock)
    assert policy.may_answer_from_genesis("p")
    assert not policy.may_answer_from_genesis("p")
    assert policy.may_answer_from_genesis("q")  # per peer
    clock.advance(GENESIS_ANSWER_INTERVAL_S)
    assert policy.may_answer_from_genesis("p")


def test_sync_answers_are_held_back_then_refused():
    clock = FakeClock()
    policy, _, _ = new_policy(clock)
    assert policy.sync_delay("p", SYNC_BYTES_BURST) == 0.0
    assert policy.sync_delay("p", SYNC_BYTES_PER_S) == 1.0  # held back one second
    too_much = int(SYNC_BYTES_PER_S * (SYNC_MAX_THROTTLE_S + 1))
    assert policy.sync_delay("p", too_much) is None


def test_admission_lets_a_whole_local_cluster_in_then_limits_churn():
    clock = FakeClock()
    policy, _, _ = new_policy(clock)
    assert all(policy.admit_address("127.0.0.1") for _ in range(63))  # a 64-node full mesh
    assert policy.admit_address("10.0.0.2")  # other addresses have their own budget
    policy.note_ban("127.0.0.1")
    left = ADMISSION_BURST - 63 - ADMISSION_BAN_COST
    assert sum(policy.admit_address("127.0.0.1") for _ in range(100)) == left
    clock.advance(1 / ADMISSION_PER_S)
    assert policy.admit_address("127.0.0.1")


def test_admission_off_admits_everyone():
    policy, _, _ = new_policy(FakeClock(), admission=False)
    assert all(policy.admit_address("127.0.0.1") for _ in range(10_000))


def test_eviction_picks_the_worst_score_then_the_youngest():
    candidates = [EvictionCandidate("old-good", 0.0, 1.0), EvictionCandidate("bad", -50.0, 2.0),
                  EvictionCandidate("young-good", 0.0, 3.0)]
    assert choose_eviction(candidates) == "bad"
    assert choose_eviction(candidates[::2]) == "young-good"
    assert choose_eviction([]) is None


def test_addresses_of_inbound_links():
    assert address_of("127.0.0.1:5555") == "127.0.0.1"
    assert address_of("::1:5555") == "::1"


def test_a_bad_input_is_logged_once_per_interval():
    clock = FakeClock()
    policy, _, _ = new_policy(clock)
    assert policy.should_log("p", "bad request")
    assert not policy.should_log("p", "bad request")
    assert policy.should_log("p", "admission") and policy.should_log("q", "bad request")
    clock.advance(LOG_INTERVAL_S)
    assert policy.should_log("p", "bad request")


# -- against a real host -----------------------------------------------------------------------


async def flood_until_closed(raw: RawPeer, frame: bytes, timeout: float) -> int | None:
    """Send `frame` over and over until the host closes the link; its close code, or None."""
    async def send_all() -> None:
        while True:
            await raw.ws.send_bytes(frame)
            await asyncio.sleep(0)
    sender = asyncio.create_task(send_all())
    try:
        code, _ = await raw.wait_closed(timeout)
        return code
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)


async def test_a_flood_of_frames_on_an_unknown_topic_gets_the_peer_banned(net):
    node = await net.start("a")
    raw = await RawPeer.connect(node.url, name="unknown-topic")
    try:
        await raw.handshake()
        frame = encode_frame("gossip", {"topic": "nobody-knows", "id": b"x", "payload": b"y"})
        assert await flood_until_closed(raw, frame, OVER_BUDGET_GRACE_S + 5) == 1008
    finally:
        await raw.close()
    assert node.host.stats["rejected"]["over budget: unsolicited"] == 1
    assert node.host._scores.is_banned(raw.peer_id)


async def test_an_inv_flood_is_asked_for_its_in_flight_bound_only_and_freed(net):
    node = await net.start("a")
    node.add_topic("blocks", announce=True)
    raw = await RawPeer.connect(node.url, name="inv-flooder")
    try:
        await raw.handshake()
        for _ in range(4):
            await raw.send("inv", {"topic": "blocks", "ids": [os.urandom(32) for _ in range(1024)]})
        asked = 0
        while asked < MAX_IN_FLIGHT_PER_PEER:
            asked += len((await raw.recv_type("getdata"))["ids"])
        assert asked == MAX_IN_FLIGHT_PER_PEER
        assert node.host.policy.in_flight(raw.peer_id) == MAX_IN_FLIGHT_PER_PEER
    finally:
        await raw.close()
    await wait_until(lambda: node.host.peers() == [])
    await wait_until(lambda: node.host.policy.in_flight() == 0 and len(node.host.policy) == 0,
                     what="the flooder's fetches freed")
