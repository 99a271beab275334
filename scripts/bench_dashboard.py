#!/usr/bin/env python3
"""Dashboard benchmark: the cost of one frame at 16 nodes and a few thousand blocks, as ratios
against a 100-block tree (never asserted in tests).

For each tree (16 nodes; 100 and 3000 main-chain heights with a lost side branch every 20
heights and a live fork at the tip, from tests/testnet/tree_events.py, fed through a real
Collector over a real cluster folder whose nodes are not started):

1. snapshot: time to build the frame a new page gets (tree window of 120 heights, node cards,
   partition, timeline tail) and to encode it as JSON, after a new block (so the tree's lane and
   canonical caches are cold), median of --repeat; and its JSON size.
2. update: the same for the frame an open page gets when a block arrives (window + events), and
   its size deflated as permessage-deflate sends it to a browser.
3. --browser: Debian's chromium draws the page over that collector; the median time of a full
   redraw of the window (the SVG tree, cards, partition panel), for 120 and 500 heights.

Usage: scripts/bench_dashboard.py [--json] [--repeat 30] [--browser]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testnet import LocalCluster  # noqa: E402
from testnet.observe.collector import Collector  # noqa: E402
from testnet.observe.dashboard import TreeFrames, dashboard_site, snapshot_frame  # noqa: E402
from tests.testnet.tree_events import ForkHistory  # noqa: E402

NODES, WINDOW = 16, 120


def build(directory: Path, blocks: int) -> tuple[Collector, ForkHistory]:
    cluster = LocalCluster(nodes=NODES, directory=directory)   # files only: no node starts
    collector = Collector(cluster)
    history = ForkHistory(NODES, seed=7)
    history.extend(blocks)
    history.live_fork(4)
    for event in history.events:
        collector.ingest(event)   # the intake the node streams use
    return collector, history


def new_block(collector: Collector, history: ForkHistory) -> list[dict]:
    start = len(history.events)
    history.extend(1)
    fresh = history.events[start:]
    for event in fresh:
        collector.ingest(event)
    return fresh


def measure(collector: Collector, history: ForkHistory, repeat: int) -> dict:
    frames = TreeFrames(collector)
    snap_s, update_s = [], []
    size = update_size = 0
    for _ in range(repeat):
        new_block(collector, history)
        started = time.perf_counter()
        data = json.dumps(snapshot_frame(collector, frames, None, WINDOW), separators=(",", ":"))
        snap_s.append(time.perf_counter() - started)
        size = len(data)
        events = new_block(collector, history)
        started = time.perf_counter()
        update = {"type": "update", "tree": frames.window(None, WINDOW), "events": events}
        data = json.dumps(update, separators=(",", ":"))
        update_s.append(time.perf_counter() - started)
        update_size = len(data)
        # What a browser receives: it negotiates permessage-deflate, which aiohttp speaks.
        deflated = len(zlib.compress(data.encode(), 6))
    return {"blocks": len(collector.tree.blocks), "events": len(collector.timeline),
            "snapshot_ms": round(statistics.median(snap_s) * 1000, 2),
            "snapshot_bytes": size,
            "update_ms": round(statistics.median(update_s) * 1000, 2),
            "update_bytes": update_size, "update_deflated_bytes": deflated}


async def browser_render(collector: Collector, repeat: int) -> dict:
    from playwright.async_api import async_playwright
    chromium = shutil.which("chromium")
    if chromium is None:
        return {"skipped": "chromium not found (apt-get install chromium)"}
    out = {}
    async with dashboard_site(collector.cluster, collector, port=0) as url, \
            async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = await browser.new_page(viewport={"width": 1400, "height": 900})
        await page.goto(url)
        await page.wait_for_selector("#tree .block")
        for size in (WINDOW, 500):
            await page.select_option("#window-size", str(size))
            await page.wait_for_function(f"window.dashboardStats.blocksDrawn > {size}")
            times = await page.evaluate("""(n) => {
                const out = [];
                for (let i = 0; i < n; i++) {
                  const t = performance.now(); window.dashboardRender();
                  out.push(performance.now() - t);
                }
                return out; }""", repeat)
            drawn = await page.evaluate("window.dashboardStats.blocksDrawn")
            out[f"window_{size}"] = {"blocks_drawn": drawn,
                                     "render_ms": round(statistics.median(times), 2)}
        await browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--browser", action="store_true", help="also time a redraw in chromium")
    args = parser.parse_args()
    results: dict = {"nodes": NODES, "window": WINDOW}
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        small = measure(*build(Path(tmp) / "small", 100), args.repeat)
        collector, history = build(Path(tmp) / "big", 3000)
        big = measure(collector, history, args.repeat)
        results["tree_100"], results["tree_3000"] = small, big
        results["ratio_3000_vs_100"] = {
            key: round(big[key] / small[key], 2) for key in
            ("snapshot_ms", "snapshot_bytes", "update_ms", "update_bytes")}
        if args.browser:
            results["browser"] = asyncio.run(browser_render(collector, args.repeat))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"dashboard frames, {NODES} nodes, a window of {WINDOW} heights")
    for name in ("tree_100", "tree_3000"):
        r = results[name]
        print(f"  {r['blocks']:5d} blocks, {r['events']:6d} events: snapshot "
              f"{r['snapshot_ms']:6.2f} ms {r['snapshot_bytes'] / 1024:6.1f} KiB;  update "
              f"{r['update_ms']:6.2f} ms {r['update_bytes'] / 1024:6.1f} KiB "
              f"({r['update_deflated_bytes'] / 1024:.1f} KiB deflated)")
    ratio = results["ratio_3000_vs_100"]
    print("  3000 vs 100 blocks: " + ", ".join(f"{k} x{v}" for k, v in ratio.items()))
    for name, r in results.get("browser", {}).items():
        print(f"  chromium redraw {name}: {r}")


if __name__ == "__main__":
    main()
