"""Ancestry from a history: parent links and heights gathered from every node's events.

Enough to decide ancestry when the blocks in between were reported by someone, and to say
"can't tell" (None) otherwise: checkers turn that into `unknown`, never into a guess.
"""

from __future__ import annotations


class ChainIndex:
    """Parent links and heights gathered from every node's events: enough to decide ancestry
    when the blocks in between were reported by someone, and to say "can't tell" otherwise."""

    def __init__(self, history: list[dict]) -> None:
        self.parents: dict[str, str] = {}
        self.heights: dict[str, int] = {}
        for e in history:
            kind = e.get("type")
            if kind in ("block_accepted", "block_orphaned") and e.get("parent"):
                self.parents[e["hash"]] = e["parent"]
            if kind == "reorg":
                self._link(e.get("common_ancestor"), list(e.get("applied") or []))
                self._link(e.get("common_ancestor"), list(reversed(e.get("reverted") or [])))
            if kind != "block_rejected" and isinstance(e.get("height"), int):
                named = e.get("hash") or e.get("head")
                if named:
                    self.heights[named] = e["height"]
        self._lineage: dict[str, tuple[set[str], int | None]] = {}

    def _link(self, ancestor: str | None, chain: list[str]) -> None:
        previous = ancestor
        for h in chain:
            if previous:
                self.parents.setdefault(h, previous)
            previous = h

    def lineage(self, tip: str) -> tuple[set[str], int | None]:
        """The known ancestors of tip (itself included) and the height where the walk stopped."""
        if tip not in self._lineage:
            seen: set[str] = set()
            h, height = tip, self.heights.get(tip)
            while h not in seen:
                seen.add(h)
                if h not in self.parents:
                    break
                h = self.parents[h]
                height = self.heights.get(h, None if height is None else height - 1)
            self._lineage[tip] = (seen, height)
        return self._lineage[tip]

    def is_ancestor(self, a: str, b: str) -> bool | None:
        """Is a an ancestor of b or b itself? None when the recorded links can't tell."""
        seen, bottom = self.lineage(b)
        if a in seen:
            return True
        height_a, height_b = self.heights.get(a), self.heights.get(b)
        if height_a is not None and height_b is not None and height_a >= height_b:
            return False
        if height_a is not None and bottom is not None and bottom <= height_a:
            return False
        return None

    def main_chain(self, tip: str) -> list[str]:
        """tip and its known ancestors, tip first."""
        chain, seen, h = [], set(), tip
        while h not in seen:
            seen.add(h)
            chain.append(h)
            if h not in self.parents:
                break
            h = self.parents[h]
        return chain
