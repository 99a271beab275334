"""Hybrid fork choice (EIP-1011, "Fork Choice Rule"): the head is the valid tip of highest

    score = highest_justified_epoch * 10**40 + total_difficulty

where `highest_justified_epoch` counts only checkpoints backed by NON_REVERT_MIN_DEPOSIT (0 when
there are none, so before any deposit the rule is Bitcoin's most-work rule), and a block that does
not descend from the last finalized checkpoint is never chosen, whatever its work ("clients never
revert finalized blocks"). Equal scores keep the tip seen first, as the PoW rule does.

Pure functions of block entries and their Casper states; `consensus.hybrid.chain` applies them.
"""

from __future__ import annotations

from consensus.block_tree import BlockEntry, ancestor
from consensus.hybrid.state import CasperState, FinalityPoint

JUSTIFIED_EPOCH_WEIGHT = 10 ** 40


def score(entry: BlockEntry, state: CasperState) -> int:
    """EIP-1011's score of a tip."""
    return state.highest_justified_epoch() * JUSTIFIED_EPOCH_WEIGHT + entry.total_work


def is_better(candidate: BlockEntry, candidate_state: CasperState, current: BlockEntry,
              current_state: CasperState) -> bool:
    """Strictly higher score wins; a tie keeps the tip that arrived first."""
    a, b = score(candidate, candidate_state), score(current, current_state)
    if a != b:
        return a > b
    return candidate.seq < current.seq


def descends_from(entry: BlockEntry, point: FinalityPoint, height: int) -> bool:
    """Whether `entry` is the finalized block (at `height`) or descends from it."""
    return entry.height >= height and ancestor(entry, height).hash == point.hash
