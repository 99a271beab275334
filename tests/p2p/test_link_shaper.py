"""LinkRule, LinkShaper.plan and DelayLine without a network: validation, statistics, repeatability.

Statistics run over many planned frames with a seeded rng and allow 4 standard deviations, so a
correct shaper fails about once in 15 000 seeds (and these seeds are fixed).
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2p.link_shaper import DRAWS_PER_FRAME, DelayLine, LinkRule, LinkShaper

FRAMES = 20_000
PEER_A = "a" * 64
PEER_B = "b" * 64


def plan_many(rule: LinkRule, *, seed: int = 1, frames: int = FRAMES, size: int = 1000,
              interval: float = 0.0) -> list[list[float]]:
    """Plans for `frames` frames of `size` bytes offered every `interval` seconds."""
    shaper = LinkShaper(random.Random(seed), clock=lambda: 0.0)
    return [shaper.plan(rule, size, i * interval) for i in range(frames)]


def within_sigmas(measured: float, p: float, n: int, sigmas: float = 4.0) -> bool:
    return abs(measured - p) <= sigmas * math.sqrt(p * (1 - p) / n)


# -- LinkRule ------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("block", 1), ("delay_ms", -1), ("delay_ms", math.inf), ("delay_ms", "5"),
    ("jitter_ms", math.nan),
    ("loss", 1.5), ("loss", -0.1), ("duplicate", 2), ("reorder", True), ("bandwidth_bps", 0),
    ("bandwidth_bps", 1.5e6), ("bandwidth_bps", True),
])
def test_rule_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        LinkRule(**{field: value})


def test_rule_from_json_rejects_unknown_fields_and_non_objects():
    with pytest.raises(ValueError, match="dealy_ms"):
        LinkRule.from_json({"dealy_ms": 5})
    with pytest.raises(ValueError, match="JSON object"):
        LinkRule.from_json([("delay_ms", 5)])
    with pytest.raises(ValueError, match="loss"):
        LinkRule.from_json({"loss": 3})
    assert LinkRule.from_json({}) == LinkRule()


rules = st.builds(
    LinkRule,
    block=st.booleans(),
    delay_ms=st.floats(0, 10_000),
    jitter_ms=st.floats(0, 10_000),
    loss=st.floats(0, 1),
    duplicate=st.floats(0, 1),
    reorder=st.floats(0, 1),
    bandwidth_bps=st.none() | st.integers(1, 10**9),
)


@given(rules)
def test_rule_json_round_trip(rule):
    assert LinkRule.from_json(rule.to_json()) == rule


@given(rules, st.integers(0, 4 * 1024 * 1024), st.integers(0, 2**32))
def test_plan_gives_at_most_two_copies_never_early(rule, size, seed):
    shaper = LinkShaper(random.Random(seed))
    delays = shaper.plan(rule, size, 0.0)
    assert len(delays) <= 2
    assert all(d >= 0 for d in delays)
    if rule.bandwidth_bps is None:
        assert all(d <= (rule.delay_ms + rule.jitter_ms) / 1000 + 1e-9 for d in delays)
    if rule.block:
        assert delays == []


# -- LinkShaper rules ----------------------------------------------------------------------------

def test_specific_peer_overrides_any_peer_per_direction():
    shaper = LinkShaper(random.Random(0))
    slow, lossy = LinkRule(delay_ms=100), LinkRule(loss=0.5)
    shaper.set("*", slow)
    shaper.set(PEER_A, lossy, "in")
    assert shaper.rule_for(PEER_A, "in") == lossy
    assert shaper.rule_for(PEER_A, "out") == slow
    assert shaper.rule_for(PEER_B, "in") == slow
    assert shaper.rules() == [
        {"peer": "*", "direction": "in", "rule": slow.to_json()},
        {"peer": "*", "direction": "out", "rule": slow.to_json()},
        {"peer": PEER_A, "direction": "in", "rule": lossy.to_json()},
    ]
    shaper.clear("*")
    assert shaper.rule_for(PEER_A, "out") is None and shaper.rule_for(PEER_A, "in") == lossy
    shaper.clear()
    assert shaper.rules() == []


def test_a_partition_needs_both_directions_blocked():
    shaper = LinkShaper(random.Random(0))
    shaper.set(PEER_A, LinkRule(block=True), "in")
    assert not shaper.is_blocked(PEER_A)
    shaper.set("*", LinkRule(block=True), "out")
    assert shaper.is_blocked(PEER_A) and not shaper.is_blocked(PEER_B)


@pytest.mark.parametrize("peer, direction, rule, error", [
    ("ws://127.0.0.1:1/p2p", "both", LinkRule(), ValueError),
    ("A" * 64, "both", LinkRule(), ValueError),
    (PEER_A, "sideways", LinkRule(), ValueError),
    (PEER_A, "both", {"block": True}, TypeError),
])
def test_set_rejects_bad_arguments(peer, direction, rule, error):
    with pytest.raises(error):
        LinkShaper(random.Random(0)).set(peer, rule, direction)


# -- plan statistics -----------------------------------------------------------------------------

def test_loss_rate_matches():
    plans = plan_many(LinkRule(loss=0.3))
    lost = sum(1 for p in plans if p == []) / FRAMES
    assert within_sigmas(lost, 0.3, FRAMES), lost
    assert all(p in ([], [0.0]) for p in plans)


def test_duplicate_rate_matches_among_delivered_frames():
    plans = plan_many(LinkRule(loss=0.1, duplicate=0.2))
    delivered = [p for p in plans if p]
    duplicated = sum(1 for p in delivered if len(p) == 2) / len(delivered)
    assert within_sigmas(len(delivered) / FRAMES, 0.9, FRAMES)
    assert within_sigmas(duplicated, 0.2, len(delivered)), duplicated


def test_delay_with_jitter_is_uniform_around_the_delay():
    plans = plan_many(LinkRule(delay_ms=100, jitter_ms=20))
    delays = [d for p in plans for d in p]
    assert all(0.080 <= d <= 0.120 for d in delays)
    sd_of_mean = 0.020 / math.sqrt(3) / math.sqrt(len(delays))  # uniform on [-j, j]: sd j/sqrt(3)
    assert abs(statistics.fmean(delays) - 0.100) <= 4 * sd_of_mean
    assert statistics.pstdev(delays) == pytest.approx(0.020 / math.sqrt(3), rel=0.05)
    # both halves of the jitter range are used
    assert min(delays) < 0.082 and max(delays) > 0.118


def test_jitter_larger_than_delay_never_goes_below_zero():
    delays = [d for p in plan_many(LinkRule(delay_ms=10, jitter_ms=30), frames=2000) for d in p]
    assert min(delays) == 0.0 and max(delays) <= 0.040
    assert within_sigmas(sum(1 for d in delays if d == 0) / len(delays), 1 / 3, len(delays))


def test_reorder_sends_that_fraction_at_once():
    plans = plan_many(LinkRule(delay_ms=50, reorder=0.25))
    at_once = sum(1 for p in plans if p == [0.0]) / FRAMES
    assert within_sigmas(at_once, 0.25, FRAMES), at_once
    assert all(p in ([0.0], [0.05]) for p in plans)


def test_bandwidth_spreads_a_burst_over_bytes_over_rate():
    rate, size = 1_000_000, 1000
    delays = [p[0] for p in plan_many(LinkRule(bandwidth_bps=rate), size=size)]
    expected_span = FRAMES * size / rate  # 20 s of traffic offered at once
    assert delays[-1] == pytest.approx(expected_span, rel=0.02)
    assert delays == sorted(delays)  # a rate limit keeps frames in order
    # the burst goes at once
    assert delays[:int(rate * 0.1 / size)] == [0.0] * int(rate * 0.1 / size)


def test_bandwidth_drains_offered_load_at_the_rate():
    rate, size = 1_000_000, 1000
    # offered at 2 MB/s for 10 s: the last frame leaves when all bytes have gone out at 1 MB/s
    plans = plan_many(LinkRule(bandwidth_bps=rate), size=size, interval=size / (2 * rate))
    last_departure = (FRAMES - 1) * size / (2 * rate) + plans[-1][0]
    assert last_departure == pytest.approx(FRAMES * size / rate, rel=0.02)


def test_traffic_below_the_rate_is_not_delayed():
    plans = plan_many(LinkRule(bandwidth_bps=1_000_000), size=1000, interval=0.002, frames=2000)
    assert all(p == [0.0] for p in plans)


def test_bandwidth_buckets_are_per_peer_and_direction():
    shaper = LinkShaper(random.Random(0))
    rule = LinkRule(bandwidth_bps=10_000)
    first = shaper.plan(rule, 5000, 0.0, peer=PEER_A, direction="out")
    assert first == [0.0]
    assert shaper.plan(rule, 5000, 0.0, peer=PEER_A, direction="out") == [pytest.approx(0.5)]
    assert shaper.plan(rule, 5000, 0.0, peer=PEER_A, direction="in") == [0.0]
    assert shaper.plan(rule, 5000, 0.0, peer=PEER_B, direction="out") == [0.0]


# -- repeatability -------------------------------------------------------------------------------

FAULTY = LinkRule(delay_ms=40, jitter_ms=30, loss=0.2, duplicate=0.1, reorder=0.1,
                  bandwidth_bps=2_000_000)


def test_same_seed_gives_the_same_schedule_and_another_seed_does_not():
    assert plan_many(FAULTY, seed=7, frames=5000) == plan_many(FAULTY, seed=7, frames=5000)
    assert plan_many(FAULTY, seed=7, frames=5000) != plan_many(FAULTY, seed=8, frames=5000)


def test_every_plan_draws_the_same_numbers_whatever_the_rule():
    for rule in [LinkRule(), LinkRule(loss=1.0), FAULTY, LinkRule(duplicate=1.0)]:
        rng, reference = random.Random(3), random.Random(3)
        shaper = LinkShaper(rng)
        for _ in range(10):
            shaper.plan(rule, 100, 0.0)
        for _ in range(10 * DRAWS_PER_FRAME):
            reference.random()
        assert rng.getstate() == reference.getstate(), rule


# -- DelayLine -----------------------------------------------------------------------------------

async def test_delay_line_releases_in_due_order_fifo_at_equal_delays():
    released: list[int] = []
    done = asyncio.Event()

    def release(item: int) -> None:
        released.append(item)
        if len(released) == 30:
            done.set()

    line: DelayLine[int] = DelayLine(release, max_items=100, max_bytes=10**6)
    for i in range(10):
        line.push(0.03, 20 + i, 1)
    for i in range(10):
        line.push(0.01, i, 1)
    for i in range(10):
        line.push(0.02, 10 + i, 1)
    await asyncio.wait_for(done.wait(), timeout=5)
    # order within each delay is arrival order; the groups are 10 ms apart, far beyond any
    # scheduling noise between pushes made in the same tick
    assert released == list(range(30))
    assert len(line) == 0 and line.bytes == 0


async def test_delay_line_close_forgets_everything_and_refuses_more():
    released: list[int] = []
    line: DelayLine[int] = DelayLine(released.append, max_items=2, max_bytes=10)
    assert line.push(0.001, 1, 4) and line.push(0.001, 2, 4)
    assert not line.push(0.001, 3, 1)  # max_items
    line.close()
    assert not line.push(0.001, 4, 1)
    assert len(line) == 0
    # a later item on another line comes out; the closed line's earlier items never do
    later = asyncio.Event()
    other: DelayLine[int] = DelayLine(lambda item: later.set(), max_items=1, max_bytes=1)
    other.push(0.005, 0, 1)
    await asyncio.wait_for(later.wait(), timeout=5)
    assert released == []


async def test_delay_line_limits_bytes():
    line: DelayLine[int] = DelayLine(lambda item: None, max_items=100, max_bytes=10)
    assert line.push(1, 1, 6)
    assert not line.push(1, 2, 6)
    assert line.push(1, 3, 4) and line.bytes == 10
    line.close()
