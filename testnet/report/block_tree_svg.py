"""The block tree of a run as a hand-written SVG, for the report folder (block_tree.svg).

x = height, one row per lane; every block a `<g class="block main|stale" data-hash=...>` with its
short hash in a `<title>` (a tooltip), and only the first block of each stale branch labelled, so
~1000 blocks stay legible without matplotlib, and tests can read it. The layout -- which chain is
canonical, which lane each branch takes -- is the union block tree's
(testnet/history/block_tree.py), the same the live dashboard draws, built here from the finished
run's history.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from testnet.history.block_tree import UnionTree
from testnet.history.readers import final_status, get_roles, head_timelines, node_events
from testnet.report.names import SHORT_HASH_CHARS, node_order, short


@dataclass(frozen=True)
class TreeBlock:
    hash: str
    parent: str | None
    height: int
    lane: int              # 0 = main chain
    main: bool
    miner: str | None


def block_tree_layout(history: list[dict]) -> list[TreeBlock]:
    """Every accepted block on its lane, lane 0 the canonical chain of the run's final heads,
    in height order (the union block tree's layout, fed the history)."""
    tree = UnionTree.from_history(history)
    canonical, lanes = tree.canonical(), tree.lanes()
    blocks = sorted(tree.blocks.values(), key=lambda b: (b.height, b.first_seen, b.hash))
    return [TreeBlock(b.hash, b.parent, b.height, lanes.get(b.hash, 0), b.hash in canonical,
                      b.producer if b.slot is None else None)   # PoW: the payout key
            for b in blocks]


def final_heads(history: list[dict]) -> dict[str, list[str]]:
    """Head hash -> nodes that ended on it (down nodes by their last reported head)."""
    finals, lines = final_status(history), head_timelines(history)
    heads: dict[str, list[str]] = {}
    for node, line in lines.items():
        end = finals.get(node, {})
        head = end.get("head") if end.get("up") else None
        name = node if head or not end else f"{node} (down)"
        heads.setdefault(head or line[-1][1], []).append(name)
    for node, end in finals.items():
        if end.get("up") and end.get("head") and node not in lines:
            heads.setdefault(end["head"], []).append(node)
    return {h: node_order(ns) for h, ns in heads.items()}


def block_tree_svg(history: list[dict]) -> str:
    """The block tree as an SVG: x = height, one row per lane; every block a `<g class="block
    main|stale" data-hash=...>` with its short hash in a `<title>` (a tooltip), and only the
    first block of each stale branch labelled, so ~1000 blocks stay legible."""
    blocks = block_tree_layout(history)
    if not blocks:
        return ('<svg xmlns="http://www.w3.org/2000/svg" width="320" height="40">'
                '<text x="10" y="25" font-family="sans-serif" font-size="13">'
                'no blocks in this history</text></svg>\n')
    low, high = min(b.height for b in blocks), max(b.height for b in blocks)
    dx = min(30.0, max(6.0, 1200 / (high - low + 1)))
    lane_h, left, top = 24, 50, 58
    lanes = max(b.lane for b in blocks) + 1
    width = max(760, left + (high - low + 1) * dx + 200)
    pos = {b.hash: (left + (b.height - low) * dx, top + b.lane * lane_h) for b in blocks}
    w = max(3.0, dx * 0.7)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
             f'height="{top + lanes * lane_h + 30}" font-family="sans-serif" font-size="10">',
             '<style>.main rect{fill:#2b6cb0}.stale rect{fill:#b8b8b8}'
             '.edges{stroke:#999;stroke-width:1;fill:none}.head{fill:#c53030}'
             '.justified rect{fill:none;stroke:#d69e2e;stroke-width:2}'
             '.finalized rect{fill:none;stroke:#2f855a;stroke-width:3}</style>',
             *_tree_legend(left), f'<text x="4" y="{top + 4}">main</text>']
    if lanes > 1:
        parts.append(f'<text x="4" y="{top + lane_h + 4}">stale</text>')
    edges = [f"M{pos[b.parent][0] + w:.1f},{pos[b.parent][1]:.1f}L{pos[b.hash][0]:.1f},"
             f"{pos[b.hash][1]:.1f}" for b in blocks if b.parent in pos]
    parts.append(f'<path class="edges" d="{"".join(edges)}"/>')
    miner_name = {key: node for node, key in get_roles(history).get("payout", {}).items()}
    lane_of = {b.hash: b.lane for b in blocks}
    label_end: dict[int, float] = {}   # per lane, where the last fork label ends
    for b in blocks:
        x, y = pos[b.hash]
        what = (f"{short(b.hash)} height {b.height} {'main chain' if b.main else 'stale'}"
                + (f", mined by {miner_name.get(b.miner, short(b.miner))}" if b.miner else ""))
        parts.append(f'<g class="block {"main" if b.main else "stale"}" '
                     f'data-hash="{escape(b.hash)}" data-height="{b.height}" '
                     f'data-parent="{escape(b.parent or "")}"><title>{escape(what)}</title>'
                     f'<rect x="{x:.1f}" y="{y - 6:.1f}" width="{w:.1f}" height="12"/></g>')
        # Label the first block of a branch, where the label has room (the title has it anyway).
        if not b.main and lane_of.get(b.parent) != b.lane and x > label_end.get(b.lane, 0):
            label_end[b.lane] = x + 6.5 * SHORT_HASH_CHARS
            parts.append(f'<text class="fork-label" x="{x:.1f}" y="{y + 16:.1f}">'
                         f'{escape(short(b.hash))}</text>')
    parts += _checkpoint_marks(history, pos, w)
    parts += _head_marks(history, pos, w)
    step, axis_y = _tick_step(dx), top + lanes * lane_h + 8
    parts += [f'<text x="{left + (h - low) * dx + w / 2:.1f}" y="{axis_y}" '
              f'text-anchor="middle">{h}</text>'
              for h in range(low - low % step, high + 1, step) if h >= low]
    parts.append(f'<text x="4" y="{axis_y}">height</text></svg>\n')
    return "\n".join(parts)


def _tree_legend(x: float) -> list[str]:
    items = [("main chain", '<rect width="10" height="10" fill="#2b6cb0"/>'),
             ("stale", '<rect width="10" height="10" fill="#b8b8b8"/>'),
             ("final head", '<path d="M1,1h8l-4,7z" fill="#c53030"/>'),
             ("justified", '<rect width="10" height="10" fill="none" stroke="#d69e2e" '
                           'stroke-width="2"/>'),
             ("finalized", '<rect width="10" height="10" fill="none" stroke="#2f855a" '
                           'stroke-width="3"/>')]
    out = [f'<text x="{x}" y="16" font-size="13">Block tree of the run</text>']
    for i, (label, swatch) in enumerate(items):
        out.append(f'<g transform="translate({x + i * 100},26)">{swatch}'
                   f'<text x="14" y="9">{label}</text></g>')
    return out


def _tick_step(dx: float) -> int:
    """A 1-2-5 step that keeps height labels at least ~40 px apart."""
    for magnitude in (1, 10, 100, 1000, 10000):
        for m in (1, 2, 5):
            if m * magnitude * dx >= 40:
                return m * magnitude
    return 100000


def _checkpoint_marks(history: list[dict], pos: dict, w: float) -> list[str]:
    marks = []
    # a DPoS LIB (`lib_advanced`, no epoch) is drawn as a finalized checkpoint
    for kind, types in (("justified", ("justified",)), ("finalized", ("finalized",
                                                                      "lib_advanced"))):
        done = set()
        for e in node_events(history, *types):
            key = (e.get("epoch"), e.get("root"))
            if e.get("root") not in pos or key in done:
                continue
            done.add(key)
            x, y = pos[e["root"]]
            label = (f"epoch {e['epoch']}" if e.get("epoch") is not None
                     else f"LIB at height {e.get('height')}")
            marks.append(f'<g class="checkpoint {kind}" data-hash="{escape(e["root"])}" '
                         f'data-epoch="{escape(str(e.get("epoch")))}"><title>{kind} '
                         f'{escape(label)}: {escape(short(e["root"]))}</title>'
                         f'<rect x="{x - 2:.1f}" y="{y - 8:.1f}" width="{w + 4:.1f}" '
                         f'height="16"/></g>')
    return marks


def _head_marks(history: list[dict], pos: dict, w: float) -> list[str]:
    marks = []
    for head, nodes in sorted(final_heads(history).items()):
        if head not in pos:
            continue
        x, y = pos[head][0] + w / 2, pos[head][1] - 8
        names = " ".join(nodes)
        marks.append(f'<g class="head" data-hash="{escape(head)}" data-nodes="{escape(names)}">'
                     f'<title>final head of {escape(names)}: {escape(short(head))}</title>'
                     f'<path d="M{x - 4:.1f},{y - 7:.1f}h8l-4,7z"/>'
                     f'<text x="{x + 6:.1f}" y="{y - 2:.1f}">{escape(names)}</text></g>')
    return marks
