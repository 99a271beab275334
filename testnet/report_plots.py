"""Pictures of a scenario run for its report folder (testnet.report_page puts them on a page).

`write_plots(out, history, metrics)` writes, next to history.jsonl and metrics.json:
`heights.png/.svg` (each node's head height over time, faults shaded, reorgs and
finalized checkpoints marked), `block_tree.svg` (every block of the run, main chain against stale
branches, final heads and checkpoints), `convergence.png/.svg` (time to converge after each heal,
finality lag).

Like the checkers and fork metrics, everything here is a pure reading of the history
(docs/history.md) through testnet.checkers' readers (host_ts, head_timelines, ChainIndex) and
fork_metrics.final_head, so a picture never disagrees with a verdict about a head or a branch.
Times are host times (`host_ts`), so a node with a skewed clock does not draw its events late.

matplotlib is optional (`pip install p2p-testnet[report]`) and imported only when a figure is drawn,
so `import testnet.runner` stays cheap and node images need no plotting stack. Figures are built on
`matplotlib.figure.Figure` directly (no pyplot global state, no GUI backend). The block tree is a
hand-written SVG, one `<g class="block" data-hash=...>` per block: it needs no matplotlib, stays
small and legible for ~1000 blocks, and tests can read it.

Error handling: each picture is drawn on its own; one that fails is logged and reported in its
PlotOutcome (index.html says which and why), and the other pictures are still written.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from html import escape
from itertools import count
from pathlib import Path

from testnet.checkers import (
    RECOVERY_FAULTS,
    ChainIndex,
    final_status,
    get_roles,
    head_timelines,
    host_ts,
    node_events,
    observations,
)
from testnet.fork_metrics import final_head

log = logging.getLogger(__name__)

INSTALL_HINT = "plots need `pip install p2p-testnet[report]`"
SHORT_HASH_CHARS = 12
# A recovery verb ends these fault kinds (a partition also ends when another replaces it).
ENDS = {"heal": {"partition"}, "link_clear": {"link"}, "start": {"kill", "stop"},
        "restart": {"kill", "stop"}, "resume": {"pause"}, "skew": {"skew"}, "role": {"role"}}
CLUSTER_WIDE = {"partition", "link"}
REPLACED = {"partition", "skew", "role"}   # a new grudge, offset or role ends the previous one
INSTANT = {"restart", "miner"}   # drawn as a line: they change something at one moment
FAULT_COLOURS = {"partition": "tab:red", "link": "tab:orange", "kill": "tab:gray",
                 "stop": "tab:gray", "pause": "tab:purple", "skew": "tab:cyan",
                 "role": "tab:brown"}


@dataclass
class PlotOutcome:
    """One picture: the files written, or why there are none (`failed` for an error)."""
    files: list[str] = field(default_factory=list)
    note: str = ""
    failed: bool = False


@dataclass(frozen=True)
class FaultSpan:
    kind: str
    label: str
    start: float           # host time
    end: float             # host time; the end of the run when never cleared
    instant: bool = False


# ---- reading the history ---------------------------------------------------------------------

def run_start(history: list[dict]) -> float:
    """The x axis origin: the runner's run_started observation, else the first entry."""
    started = observations(history, "run_started")
    if started:
        return host_ts(started[0])
    return min((host_ts(e) for e in history), default=0.0)


def run_end(history: list[dict]) -> float:
    return max((host_ts(e) for e in history), default=0.0)


def node_order(names: set[str] | list[str]) -> list[str]:
    """node2 before node10."""
    return sorted(names, key=lambda n: [int(p) if p.isdigit() else p
                                        for p in re.split(r"(\d+)", n)])


def short(hash_: str | None) -> str:
    return (hash_ or "?")[:SHORT_HASH_CHARS]


def _fault_label(e: dict) -> str:
    params, nodes = e.get("params") or {}, e.get("nodes") or []
    kind = e.get("fault", "?")
    who = "" if kind in CLUSTER_WIDE else " " + ",".join(nodes)
    if "role" in params:
        validator = f" v{params['validator']}" if "validator" in params else ""
        return f"{params['role']}{validator}{who}"
    if "offset_s" in params:
        return f"skew{who} {params['offset_s']:+g}s"
    return f"{kind}{who}"


def fault_intervals(history: list[dict]) -> list[FaultSpan]:
    """Nemesis faults as spans of host time: from `fault_applied` to the verb that ends it (heal,
    start, resume, ... on the same nodes), to a replacing fault of the same kind, or to the end of
    the run. Restarts and miner changes are instants."""
    end_of_run = run_end(history)
    spans: list[FaultSpan] = []
    open_: list[tuple[dict, float]] = []

    def close(kinds: set[str], e: dict, t: float) -> None:
        nodes, validator = set(e.get("nodes") or []), (e.get("params") or {}).get("validator")
        for item in list(open_):
            began, start = item
            same_nodes = began["fault"] in CLUSTER_WIDE or nodes & set(began.get("nodes") or [])
            same_validator = (began.get("params") or {}).get("validator") == validator
            if began["fault"] in kinds and same_nodes and same_validator:
                open_.remove(item)
                spans.append(FaultSpan(began["fault"], _fault_label(began), start, t))

    nemesis = sorted((e for e in history if e.get("source") == "nemesis"), key=host_ts)
    for e in nemesis:
        t, fault = host_ts(e), e.get("fault", "?")
        if fault in INSTANT:
            close(ENDS.get(fault, set()), e, t)
            spans.append(FaultSpan(fault, _fault_label(e), t, t, instant=True))
        elif e.get("type") == "fault_cleared" or fault in RECOVERY_FAULTS:
            close(ENDS.get(fault, set()), e, t)
        else:
            close({fault} & REPLACED, e, t)
            open_.append((e, t))
    spans += [FaultSpan(e["fault"], _fault_label(e), t, end_of_run) for e, t in open_]
    return sorted(spans, key=lambda s: (s.start, s.kind))


def load_figure():
    """matplotlib's Figure class, or None when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401  (the package first: a stubbed-out one fails here)
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure


def _save(fig, out: Path, stem: str, formats: tuple[str, ...] = ("png", "svg")) -> list[str]:
    names = []
    for fmt in formats:
        name = f"{stem}.{fmt}"
        fig.savefig(out / name, dpi=110, metadata={"Date": None} if fmt == "svg" else None)
        names.append(name)
    return names


# ---- heights over time -----------------------------------------------------------------------

def height_steps(history: list[dict]) -> dict[str, list[tuple[float, int]]]:
    """Per node (in node order), (host time, head height) at each head change, held to the end
    of the run: the points of a step line."""
    chain, t_end = ChainIndex(history), run_end(history)
    out = {}
    for node, line in head_timelines(history).items():
        points = [(t, chain.heights[h]) for t, h in line if h in chain.heights]
        if points:
            out[node] = points + [(t_end, points[-1][1])]
    return {n: out[n] for n in node_order(out)}


def write_heights(out: Path, history: list[dict], Figure) -> PlotOutcome:
    """Step lines of head height per node, fault spans shaded, reorgs sized by depth, finalized
    checkpoints as diamonds. Later nodes draw thinner lines on top, so nodes on the same chain
    stay visible as nested stripes instead of hiding one another."""
    steps = height_steps(history)
    if not steps:
        return PlotOutcome(note="no head events: nothing to plot")
    chain, t0, t_end = ChainIndex(history), run_start(history), run_end(history)
    fig = Figure(figsize=(11, 5.5), layout="constrained")
    ax = fig.add_subplot()
    nodes = list(steps)
    colour = {n: f"C{i % 10}" for i, n in enumerate(nodes)}
    for i, node in enumerate(nodes):
        xs, ys = [t - t0 for t, _ in steps[node]], [h for _, h in steps[node]]
        width = 4.0 - 2.8 * i / max(1, len(nodes) - 1)
        ax.step(xs, ys, where="post", color=colour[node], lw=width, label=node, zorder=3 + i)
    _shade_faults(ax, history, t0)
    _mark_reorgs(ax, history, chain, t0, colour)
    finals = [e for e in node_events(history, "finalized") if e.get("root") in chain.heights]
    for e in finals:
        ax.scatter(host_ts(e) - t0, chain.heights[e["root"]], marker="D", s=36, zorder=30,
                   color=colour.get(e["node"], "k"), edgecolors="black", linewidths=0.6)
    if finals:  # legend entries in no node's colour: the marker stands for every node's
        ax.scatter([], [], marker="D", s=36, color="white", edgecolors="black",
                   label="finalized checkpoint (node's colour)")
    ax.set_xlabel("seconds since run start (host clock)")
    ax.set_ylabel("head height")
    ax.set_title("Head height per node")
    ax.set_xlim(0, max(1.0, t_end - t0))
    ax.grid(alpha=0.3)
    from matplotlib.ticker import MaxNLocator
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return PlotOutcome(files=_save(fig, out, "heights"))


def _shade_faults(ax, history: list[dict], t0: float) -> None:
    spans = fault_intervals(history)
    seen: set[str] = set()
    for k, span in enumerate(spans):
        colour = FAULT_COLOURS.get(span.kind, "tab:olive")
        if span.instant:
            ax.axvline(span.start - t0, color=colour, ls="--", lw=1, zorder=1)
        else:
            ax.axvspan(span.start - t0, span.end - t0, color=colour, alpha=0.12, lw=0, zorder=0,
                       label=None if span.kind in seen else f"{span.kind} (shaded)")
            seen.add(span.kind)
        # Stagger labels of neighbouring faults so they do not print over each other.
        ax.text(span.start - t0, 0.98 - 0.05 * (k % 4), " " + span.label, color=colour,
                transform=ax.get_xaxis_transform(), va="top", fontsize="small", zorder=40)


def _mark_reorgs(ax, history: list[dict], chain: ChainIndex, t0: float,
                 colour: dict[str, str]) -> None:
    reorgs = node_events(history, "reorg")
    for e in reorgs:
        depth = int(e.get("depth") or 0)
        height = chain.heights.get(e.get("new_head"))
        if height is None:
            height = (e.get("common_height") or 0) + len(e.get("applied") or [])
        x = host_ts(e) - t0
        ax.scatter(x, height, s=30 + 25 * min(depth, 12), marker="o", zorder=31,
                   color=colour.get(e["node"], "k"), edgecolors="black", linewidths=1)
        if len(reorgs) <= 30 or depth >= 3:   # a long selfish-mining run: only the deep ones
            ax.annotate(f"reorg {depth}", (x, height), xytext=(7, -12),
                        textcoords="offset points", fontsize="small", zorder=32)
    if reorgs:
        ax.scatter([], [], s=90, color="white", edgecolors="black",
                   label="reorg (node's colour, size = depth)")


# ---- convergence and finality ----------------------------------------------------------------

def write_convergence(out: Path, history: list[dict], metrics: dict, Figure) -> PlotOutcome:
    heals = metrics.get("convergence") or []
    finality = metrics.get("finality") or {}
    lag = [(k, finality.get(f"{k}_s")) for k in ("p50", "p95", "max")]
    lag = [(k, v) for k, v in lag if v is not None]
    if not heals and not lag:
        return PlotOutcome(note="no heal and no finalized checkpoint in this run: nothing to plot")
    panels = [p for p, present in (("heals", heals), ("finality", lag)) if present]
    fig = Figure(figsize=(3.2 + 2.6 * len(panels) + 0.5 * len(heals), 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    t0 = run_start(history)
    for ax, panel in zip(axes, panels):
        if panel == "heals":
            names = [f"heal {i + 1}\n@{h['heal_ts'] - t0:.0f}s" for i, h in enumerate(heals)]
            values = [h["convergence_s"] for h in heals]
            ax.bar(names, [v or 0 for v in values], color=["tab:green" if v is not None
                                                           else "tab:red" for v in values])
            for i, v in enumerate(values):
                ax.text(i, v or 0, f"{v:.3g} s" if v is not None else "did not converge",
                        ha="center", va="bottom", fontsize="small")
            ax.set_title("Time to converge after each heal")
        else:
            ax.bar([k for k, _ in lag], [v for _, v in lag], color="tab:blue")
            for i, (_, v) in enumerate(lag):
                ax.text(i, v, f"{v:.1f} s", ha="center", va="bottom", fontsize="small")
            ax.set_title("Finality lag per block")
        ax.set_ylabel("seconds")
        ax.margins(y=0.2)
    return PlotOutcome(files=_save(fig, out, "convergence"))


# ---- the block tree --------------------------------------------------------------------------

@dataclass(frozen=True)
class TreeBlock:
    hash: str
    parent: str | None
    height: int
    lane: int              # 0 = main chain
    main: bool
    miner: str | None


def block_tree_layout(history: list[dict]) -> list[TreeBlock]:
    """Every accepted block on a lane: the chain to the final head (fork_metrics.final_head) on
    lane 0; a stale block continues its parent's lane (first child only) or starts a branch on the
    lowest lane free from one height before it, so lanes are reused along a long run."""
    first: dict[str, dict] = {}
    for e in sorted(node_events(history, "block_accepted"), key=host_ts):
        first.setdefault(e["hash"], e)
    head, _ = final_head(history)
    main = set(ChainIndex(history).main_chain(head)) if head else set()
    lane_of: dict[str, int] = {}
    lane_top: dict[int, int] = {}
    continued: set[str] = set()
    out = []
    for h, e in sorted(first.items(), key=lambda kv: (kv[1]["height"], host_ts(kv[1]), kv[0])):
        height, parent = int(e["height"]), e.get("parent")
        if h in main:
            lane = 0
        elif lane_of.get(parent, 0) != 0 and parent not in continued:
            lane = lane_of[parent]
            continued.add(parent)
        else:
            lane = next(n for n in count(1) if lane_top.get(n, -math.inf) < height - 1)
        lane_of[h] = lane
        lane_top[lane] = max(lane_top.get(lane, -math.inf), height)
        out.append(TreeBlock(h, parent, height, lane, h in main, e.get("miner")))
    return out


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
             *_tree_legend(left), '<text x="4" y="%d">main</text>' % (top + 4)]
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
    for kind in ("justified", "finalized"):
        done = set()
        for e in node_events(history, kind):
            key = (e.get("epoch"), e.get("root"))
            if e.get("root") not in pos or key in done:
                continue
            done.add(key)
            x, y = pos[e["root"]]
            marks.append(f'<g class="checkpoint {kind}" data-hash="{escape(e["root"])}" '
                         f'data-epoch="{escape(str(e.get("epoch")))}"><title>{kind} epoch '
                         f'{escape(str(e.get("epoch")))}: {escape(short(e["root"]))}</title>'
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


# ---- the page --------------------------------------------------------------------------------

def write_plots(out: Path, history: list[dict], metrics: dict) -> dict[str, PlotOutcome]:
    """Draw every picture; a failure is logged and kept as that picture's outcome."""
    Figure = load_figure()
    drawers = {
        "heights": lambda: write_heights(out, history, Figure),
        "block tree": lambda: _write_tree(out, history),
        "convergence": lambda: write_convergence(out, history, metrics, Figure),
    }
    outcomes = {}
    for name, draw in drawers.items():
        if Figure is None and name != "block tree":
            outcomes[name] = PlotOutcome(note=INSTALL_HINT)
            continue
        try:
            outcomes[name] = draw()
        except Exception as exc:  # noqa: BLE001  one picture must not cost the report
            log.exception("the %s plot failed", name)
            outcomes[name] = PlotOutcome(note=f"{type(exc).__name__}: {exc}", failed=True)
    return outcomes


def _write_tree(out: Path, history: list[dict]) -> PlotOutcome:
    (out / "block_tree.svg").write_text(block_tree_svg(history))
    return PlotOutcome(files=["block_tree.svg"])
