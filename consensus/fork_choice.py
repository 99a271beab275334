"""PoW fork choice: the valid tip with the most cumulative work; equal work keeps the tip seen
first.

Pure functions over `BlockEntry` values, so the property tests can check them against brute force.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from consensus.block_tree import BlockEntry, BlockTree


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
class ReorgPath:
    common_ancestor: BlockEntry
    revert: list[BlockEntry]     # old branch, tip first
    apply: list[BlockEntry]      # new branch, ancestor first

    @property
    def depth(self) -> int:
        return len(self.revert)


def reorg_path(old_tip: BlockEntry, new_tip: BlockEntry) -> ReorgPath:
    common = BlockTree.common_ancestor(old_tip, new_tip)
    revert, node = [], old_tip
    while node is not common:
        revert.append(node)
        node = node.parent  # type: ignore[assignment]
    apply, node = [], new_tip
    while node is not common:
        apply.append(node)
        node = node.parent  # type: ignore[assignment]
    apply.reverse()
    return ReorgPath(common, revert, apply)
