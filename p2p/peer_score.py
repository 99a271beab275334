"""Peer scores: penalties for bad behaviour, recovering over time, and temporary bans.

Scores are kept by peer id (not by connection), so reconnecting does not wipe a peer's record.
A score starts at 0, drops by a penalty per offence, and recovers linearly towards 0 at
SCORE_RECOVERY_PER_S. When it reaches DISCONNECT_SCORE the host disconnects the peer with
"too many invalid messages" and refuses it for BAN_DURATION_S. Time comes from the host clock.
"""

from __future__ import annotations

from collections.abc import Callable

REJECT_PENALTY = 10.0  # a gossip message the validator rejected, a malformed request
BAD_FRAME_PENALTY = 25.0  # a malformed, oversized or text frame
DISCONNECT_SCORE = -100.0
SCORE_RECOVERY_PER_S = 1.0
BAN_DURATION_S = 60.0


class PeerScores:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._scores: dict[str, tuple[float, float]] = {}  # peer id -> (score, when)
        self._banned_until: dict[str, float] = {}

    def get(self, peer_id: str) -> float:
        score, when = self._scores.get(peer_id, (0.0, 0.0))
        if score >= 0:
            return score
        return min(0.0, score + (self._clock() - when) * SCORE_RECOVERY_PER_S)

    def penalise(self, peer_id: str, penalty: float) -> float:
        """Lower the score; returns the new score."""
        score = self.get(peer_id) - penalty
        self._scores[peer_id] = (score, self._clock())
        return score

    def should_disconnect(self, peer_id: str) -> bool:
        return self.get(peer_id) <= DISCONNECT_SCORE

    def ban(self, peer_id: str) -> None:
        self._banned_until[peer_id] = self._clock() + BAN_DURATION_S
        self._scores.pop(peer_id, None)

    def is_banned(self, peer_id: str) -> bool:
        until = self._banned_until.get(peer_id)
        if until is None:
            return False
        if self._clock() >= until:
            del self._banned_until[peer_id]
            return False
        return True
