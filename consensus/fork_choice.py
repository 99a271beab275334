"""PoW fork choice: the valid tip with the most cumulative work; equal work keeps the tip seen
first.

Pure functions over `BlockEntry` values, so the property tests can check them against brute force.
`reorg_path` serves the PoS chain too: it only walks parent links.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic

from consensus.block_tree import BlockEntry, N, common_ancestor, parent_of


def is_better_tip(candidate: BlockEntry, current: BlockEntry) -> bool:
    """Strictly more cumulative work wins; a tie keeps the tip that arrived first."""
    if candidate.total_work != current.total_work:
        return candidate.total_work > current.total_work
    return candidate.seq < current.seq


def best_tip(entries: Iterable[BlockEntry]) -> BlockEntry:
    """The most-work tip among entries not known to be invalid, ties to the earliest seen."""
    best: BlockEntry | None = None
    for entry in entries:
        if entry.status == "invalid":
            continue
        if best is None or is_better_tip(entry, best):
            best = entry
    if best is None:
        raise ValueError("no valid block to choose from")
    return best


@dataclass(frozen=True)
class ReorgPath(Generic[N]):
    common_ancestor: N
    revert: list[N]     # old branch, tip first
    apply: list[N]      # new branch, ancestor first

    @property
    def depth(self) -> int:
        return len(self.revert)


def reorg_path(old_tip: N, new_tip: N) -> ReorgPath[N]:
    """The blocks to revert (from `old_tip` down) and to apply (up to `new_tip`)."""
    common = common_ancestor(old_tip, new_tip)
    revert, node = [], old_tip
    while node is not common:
        revert.append(node)
        node = parent_of(node)
    apply, node = [], new_tip
    while node is not common:
        apply.append(node)
        node = parent_of(node)
    apply.reverse()
    return ReorgPath(common, revert, apply)
