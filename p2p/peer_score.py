"""Peer scores: penalties for bad behaviour, recovering over time, and temporary bans.

Scores are kept by peer id (not by connection), so reconnecting does not wipe a peer's record.
A score starts at 0, drops by a penalty per offence, and recovers linearly towards 0 at
SCORE_RECOVERY_PER_S. When it reaches DISCONNECT_SCORE the host disconnects the peer with
"too many invalid messages" and refuses it for BAN_DURATION_S. Time comes from the host clock.

Peer ids cost nothing to make, so the record is bounded: a score that has recovered to 0 is
forgotten when its peer disconnects (`forget`), and when a table outgrows MAX_TRACKED_PEERS
recovered scores and expired bans are dropped, then the oldest entries, down to three quarters
of the bound (so the scan is paid once per quarter of it). A peer never gains by this: what is
forgotten is a clean record, or, under a flood of new identities, the oldest one.
"""

from __future__ import annotations

from collections.abc import Callable

REJECT_PENALTY = 10.0  # a gossip message the validator rejected, a malformed request
BAD_FRAME_PENALTY = 25.0  # a malformed, oversized or text frame
DISCONNECT_SCORE = -100.0
SCORE_RECOVERY_PER_S = 1.0
BAN_DURATION_S = 60.0
MAX_TRACKED_PEERS = 4096  # scores, and bans, each


class PeerScores:
    def __init__(self, clock: Callable[[], float], max_peers: int = MAX_TRACKED_PEERS) -> None:
        self._clock = clock
        self._max_peers = max_peers
        # Both in the order of their last change (an update moves an entry to the end).
        self._scores: dict[str, tuple[float, float]] = {}  # peer id -> (score, when)
        self._banned_until: dict[str, float] = {}

    def __len__(self) -> int:
        """How many peers this record tracks (scores and bans)."""
        return len(self._scores) + len(self._banned_until)

    def get(self, peer_id: str) -> float:
        score, when = self._scores.get(peer_id, (0.0, 0.0))
        if score >= 0:
            return score
        return min(0.0, score + (self._clock() - when) * SCORE_RECOVERY_PER_S)

    def penalise(self, peer_id: str, penalty: float) -> float:
        """Lower the score; returns the new score."""
        score = self.get(peer_id) - penalty
        self._scores.pop(peer_id, None)
        self._scores[peer_id] = (score, self._clock())
        if len(self._scores) > self._max_peers:
            self._prune_scores()
        return score

    def should_disconnect(self, peer_id: str) -> bool:
        return self.get(peer_id) <= DISCONNECT_SCORE

    def ban(self, peer_id: str) -> None:
        self._banned_until.pop(peer_id, None)
        self._banned_until[peer_id] = self._clock() + BAN_DURATION_S
        self._scores.pop(peer_id, None)
        if len(self._banned_until) > self._max_peers:
            self._prune_bans()

    def is_banned(self, peer_id: str) -> bool:
        until = self._banned_until.get(peer_id)
        if until is None:
            return False
        if self._clock() >= until:
            del self._banned_until[peer_id]
            return False
        return True

    def forget(self, peer_id: str) -> None:
        """The peer disconnected: drop its score if it has recovered (a penalty still running
        stays, or reconnecting would wipe it)."""
        if peer_id in self._scores and self.get(peer_id) >= 0:
            del self._scores[peer_id]

    def _prune_scores(self) -> None:
        for peer_id in [p for p in self._scores if self.get(p) >= 0]:
            del self._scores[peer_id]
        while len(self._scores) > self._max_peers * 3 // 4:
            del self._scores[next(iter(self._scores))]

    def _prune_bans(self) -> None:
        now = self._clock()
        for peer_id in [p for p, until in self._banned_until.items() if now >= until]:
            del self._banned_until[peer_id]
        while len(self._banned_until) > self._max_peers * 3 // 4:
            del self._banned_until[next(iter(self._banned_until))]
