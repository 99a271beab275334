"""Pictures of a scenario run for its report folder (testnet.report.page puts them on a page).

`write_plots(out, history, metrics)` writes, next to history.jsonl and metrics.json:
`heights.png/.svg` (each node's head height over time, faults shaded, reorgs and
finalized checkpoints marked), `block_tree.svg` (testnet/report/block_tree_svg.py: every block of
the run, main chain against stale branches, final heads and checkpoints), `convergence.png/.svg`
(time to converge after each heal, finality lag).

Like the checkers and fork metrics, everything here is a pure reading of the history
(docs/history.md) through testnet/history/ (readers, ChainIndex, the union block tree), so a
picture never disagrees with a verdict about a head or a branch. Times are host times
(`host_ts`), so a node with a skewed clock does not draw its events late.

matplotlib is optional (`pip install p2p-testnet[report]`) and imported only when a figure is
drawn, so `import testnet.scenarios.runner` stays cheap and node images need no plotting stack.
Figures are built on `matplotlib.figure.Figure` directly (no pyplot global state, no GUI backend).

Error handling: each picture is drawn on its own; one that fails is logged and reported in its
PlotOutcome (index.html says which and why), and the other pictures are still written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from testnet.history.chain_index import ChainIndex
from testnet.history.readers import (
    RECOVERY_FAULTS,
    head_timelines,
    host_ts,
    node_events,
    observations,
)
from testnet.report.block_tree_svg import block_tree_svg
from testnet.report.names import node_order

log = logging.getLogger(__name__)

INSTALL_HINT = "plots need `pip install p2p-testnet[report]`"
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
