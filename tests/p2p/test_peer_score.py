"""Peer scores: penalties recover with time, bans expire, and the record stays bounded however many
peer ids a peer makes up (issue 11, defect 7)."""

from __future__ import annotations

from p2p import Verdict
from p2p.peer_score import BAN_DURATION_S, REJECT_PENALTY, PeerScores
from tests.p2p.p2p_harness import FakeClock, RawPeer, wait_until


def test_a_recovered_score_is_forgotten_with_its_peer_and_a_running_penalty_is_not():
    clock = FakeClock()
    scores = PeerScores(clock)
    scores.penalise("clean", REJECT_PENALTY)
    scores.penalise("dirty", REJECT_PENALTY)
    clock.advance(REJECT_PENALTY)  # "clean" has recovered, and so has "dirty" ...
    scores.penalise("dirty", REJECT_PENALTY)  # ... but offends again
    scores.forget("clean")
    scores.forget("dirty")
    assert len(scores) == 1 and scores.get("dirty") == -REJECT_PENALTY  # reconnecting wipes nothing


def test_made_up_peer_ids_never_grow_the_record_past_its_bound():
    clock = FakeClock()
    scores = PeerScores(clock, max_peers=100)
    for i in range(10_000):
        scores.penalise(f"sybil-{i}", REJECT_PENALTY)
        scores.ban(f"banned-{i}")
        assert len(scores) <= 200
        clock.advance(0.001)
    assert scores.get("sybil-9999") < 0 and scores.is_banned("banned-9999")  # the newest stay


def test_recovered_scores_and_expired_bans_go_first():
    clock = FakeClock()
    scores = PeerScores(clock, max_peers=10)
    scores.penalise("old offender", 1000.0)  # far from recovered
    for i in range(9):
        scores.penalise(f"peer-{i}", REJECT_PENALTY)
    clock.advance(REJECT_PENALTY)  # the nine have recovered
    scores.penalise("new", REJECT_PENALTY)
    scores.penalise("newer", REJECT_PENALTY)  # 11 > 10: prune
    assert scores.get("old offender") < 0 and len(scores) == 3
    scores.ban("old ban")
    clock.advance(BAN_DURATION_S)
    for i in range(10):
        scores.ban(f"ban-{i}")
    assert not scores.is_banned("old ban") and scores.is_banned("ban-9")


async def test_a_peer_that_leaves_with_a_recovered_score_leaves_nothing_behind(net):
    clock = FakeClock()
    node = await net.start("a", clock=clock)
    node.add_topic("t", verdict=lambda msg: Verdict.reject("no", category="no"))
    for i in range(20):
        raw = await RawPeer.connect(node.url, name=f"visitor-{i}")
        try:
            await raw.handshake()
            await raw.send("gossip", {"topic": "t", "id": b"%d" % i, "payload": b"x"})
            await wait_until(lambda: node.host.peers() and node.host.peers()[0].score < 0)
            clock.advance(REJECT_PENALTY)  # recovered before leaving
        finally:
            await raw.close()
        await wait_until(lambda: raw.peer_id not in node.peer_ids())
    assert len(node.host._scores) == 0
