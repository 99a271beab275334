"""What the dashboard sends a page: windows of the union block tree with each block's state, and
the recent timeline. Pure readings of a TimelineState (testnet/observe/collector.py: the live
collector's, or a replay's), cached per tree version so that many pages cost one computation per
change."""

from __future__ import annotations

import itertools
from typing import Any

from testnet.errors import DashboardError
from testnet.observe.collector import TimelineState

DEFAULT_WINDOW_BLOCKS = 120
MAX_WINDOW_BLOCKS = 1_000          # the page draws the window whole: keep it a few hundred
TIMELINE_NOTABLE, TIMELINE_ROUTINE, TIMELINE_SCAN = 300, 100, 20_000
ROUTINE_EVENTS = frozenset({"block_accepted", "head_changed", "attestation", "vote"})


def parse_window(top: Any, size: Any) -> tuple[int | None, int]:
    """Validates a window request: top is a height >= 0 or None (follow the tip), size a count."""
    if top in (None, "", "tip", "null"):
        parsed_top = None
    else:
        try:
            parsed_top = int(top)
        except (TypeError, ValueError):
            raise DashboardError(f"bad top: {top!r} (a block height >= 0, or omit it to follow "
                                 "the tip)") from None
        if isinstance(top, bool) or parsed_top < 0:
            raise DashboardError(f"bad top: {top!r} (a block height >= 0)")
    try:
        parsed_size = int(size)
    except (TypeError, ValueError):
        raise DashboardError(f"bad size: {size!r} (a number of heights, 1..{MAX_WINDOW_BLOCKS})"
                             ) from None
    if isinstance(size, bool) or not 1 <= parsed_size <= MAX_WINDOW_BLOCKS:
        raise DashboardError(f"bad size: {size!r} (a number of heights, 1..{MAX_WINDOW_BLOCKS})")
    return parsed_top, parsed_size


def recent_timeline(timeline: list[dict]) -> list[dict]:
    """The tail a fresh page starts from: the last few hundred notable entries (reorgs, faults,
    peers, finality) and the last hundred routine ones (blocks, heads), in time order."""
    picked = []
    notable = routine = 0
    for entry in itertools.islice(reversed(timeline), TIMELINE_SCAN):
        if entry.get("type") in ROUTINE_EVENTS:
            if routine < TIMELINE_ROUTINE:
                routine += 1
                picked.append(entry)
        elif notable < TIMELINE_NOTABLE:
            notable += 1
            picked.append(entry)
        if notable >= TIMELINE_NOTABLE and routine >= TIMELINE_ROUTINE:
            break
    picked.sort(key=lambda e: e.get("rx_ts", e["ts"]))   # filled gaps arrive late
    return picked


class TreeFrames:
    """Tree windows for the page, cached per (top, size) until the tree changes, with each block's
    state: `canonical` (on the chain most heads are on), `fork` (off it, but some node's head is
    on it: a live competing branch), or `stale` (no node is on it any more: a losing branch)."""

    def __init__(self, collector: TimelineState) -> None:
        self.collector = collector
        self._version = -1
        self._live: set[str] = set()
        self._windows: dict[tuple[int | None, int], dict] = {}

    def _refresh(self) -> None:
        tree = self.collector.tree
        if tree.version == self._version:
            return
        live: set[str] = set()
        for head in tree.heads.values():
            block = tree.blocks.get(head)
            while block is not None and block.hash not in live:   # stop where chains join
                live.add(block.hash)
                block = tree.blocks.get(block.parent) if block.parent is not None else None
        self._live = live
        self._windows = {}
        self._version = tree.version

    def decorate(self, window: dict) -> dict:
        self._refresh()
        tree = self.collector.tree
        lanes = tree.lanes()
        for block in window["blocks"]:
            block["state"] = ("canonical" if block["canonical"] else
                              "fork" if block["hash"] in self._live else "stale")
        window["head_lanes"] = {node: lanes.get(head) for node, head in tree.heads.items()}
        return window

    def window(self, top: int | None, size: int, computed: dict | None = None) -> dict:
        """The decorated window (top, size); `computed` is that window fresh from the tree."""
        self._refresh()
        key = (top, size)
        if key not in self._windows:
            fresh = computed if computed is not None else self.collector.tree.window(top, size)
            self._windows[key] = self.decorate(fresh)
        return self._windows[key]


def snapshot_frame(collector: TimelineState, frames: TreeFrames, top: int | None, size: int
                   ) -> dict:
    snap = collector.snapshot(top, size, timeline_tail=1)   # 0 would mean the whole timeline
    snap["tree"] = frames.window(top, size, snap["tree"])
    snap["timeline"] = recent_timeline(collector.timeline)
    snap["window"] = {"top": top, "size": size, "follow": top is None}
    return {"type": "snapshot", **snap}
