"""The web dashboard in headless Chromium (Debian's chromium package, driven by playwright) over a
real 4-node PoW cluster split 2|2 from the page's own fault form and healed with its heal button:
two branches grow with each side's heads on its own branch, then after the heal the timeline
shows the reorg, the losing branch is greyed and all four heads sit on one block.

Screenshots of both moments are saved under the test's tmp_path and, when $TESTNET_ARTIFACTS is
set, copied there.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from testnet import LocalCluster
from testnet.observe.collector import Collector
from testnet.observe.dashboard import dashboard_site
from tests.functional.system_tools import require_binary

log = logging.getLogger("test")

FAST = {"block_interval_s": 1, "hashrate": 20_000}
WAIT_MS = 90_000

# Both groups' heads on blocks of different lanes, each group agreeing, neither block stale, both
# at least `above` (two blocks past the height at the split: two branches, not a single race).
TWO_BRANCHES = """(above) => {
  const m = {};
  for (const el of document.querySelectorAll('#tree .head-marker')) m[el.dataset.node] = el;
  if (!m.node0 || !m.node1 || !m.node2 || !m.node3) return false;
  const a = m.node0.dataset.head, b = m.node2.dataset.head;
  if (a === b || m.node1.dataset.head !== a || m.node3.dataset.head !== b) return false;
  if (m.node0.dataset.lane === m.node2.dataset.lane) return false;
  const block = (h) => document.querySelector(`#tree .block[data-hash="${h}"]`);
  const ok = (el) => el && !el.classList.contains('stale') && Number(el.dataset.height) >= above;
  const lanes = new Set([...document.querySelectorAll('#tree .block')].map((e) => e.dataset.lane));
  return ok(block(a)) && ok(block(b)) && lanes.size >= 2 ? [a, b] : false;
}"""

# One head for all four, a reorg row in the timeline, and the losing side's old head now stale
# (both, if a side also raced within itself and moved off its own old head).
HEALED = """([a, b]) => {
  const heads = [...document.querySelectorAll('#tree .head-marker')].map((e) => e.dataset.head);
  if (heads.length !== 4 || new Set(heads).size !== 1) return false;
  if (!document.querySelector('#timeline li.reorg')) return false;
  const stale = [a, b].filter((h) => {
    const el = document.querySelector(`#tree .block[data-hash="${h}"]`);
    return el && el.classList.contains('stale');
  });
  return stale.length ? stale[0] : false;
}"""


# The node cards and connection matrix have caught up with the heal (they follow /status polls).
SETTLED = """() => {
  const cards = [...document.querySelectorAll('.node-card')];
  const heights = new Set(cards.map((c) => c.querySelector('.height').textContent));
  return cards.length === 4 && heights.size === 1
    && cards.every((c) => c.querySelector('.faults').textContent === 'none')
    && document.querySelectorAll('#connectivity td.conn.off').length === 0;
}"""


def chromium_path() -> str:
    path = require_binary("chromium", "TESTNET_REQUIRE_BROWSER", "chromium")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        reason = "the playwright Python package is missing (pip install -e '.[dev]')"
        if os.environ.get("TESTNET_REQUIRE_BROWSER") == "1":
            pytest.fail(f"TESTNET_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return path


def keep(shot: Path) -> None:
    """Copies a screenshot to $TESTNET_ARTIFACTS when CI asks for artifacts."""
    target = os.environ.get("TESTNET_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, Path(target) / shot.name)


@asynccontextmanager
async def dashboard_page(cluster: LocalCluster, chromium: str
                         ) -> AsyncIterator[tuple[Any, Collector, list[str]]]:
    """A collector and dashboard on `cluster`, and the page open in headless Chromium; yields
    (page, collector, the page's uncaught errors)."""
    from playwright.async_api import async_playwright
    async with Collector(cluster, poll_interval=0.5) as collector, \
            dashboard_site(cluster, collector, port=0) as url, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(url)
            yield page, collector, errors
        finally:
            await browser.close()


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(300)
async def test_dashboard_shows_two_branches_then_the_reorg_and_greys_the_loser(tmp_path,
                                                                              cluster_dir):
    chromium = chromium_path()
    async with LocalCluster(nodes=4, directory=cluster_dir, seed=9, **FAST) as cluster:
        await cluster.converged(timeout=30)
        async with dashboard_page(cluster, chromium) as (page, _collector, errors):
            await page.wait_for_selector("#tree .block", timeout=30_000)
            assert await page.text_content("#ws-state") == "live"

            split_height = int(await page.text_content("#stat-height") or 0)
            log.info("Split the network 2|2 from the page's fault form at height %d", split_height)
            await page.fill("#partition-input", "0,1|2,3")
            await page.click("#partition-btn")
            await page.wait_for_function(
                "() => document.querySelector('#control-status').textContent"
                ".includes('partition applied')", timeout=10_000)
            await page.wait_for_selector("#partition-badge.bad", timeout=10_000)
            log.info("Wait until each side's heads sit on its own branch")
            branches = await page.wait_for_function(TWO_BRANCHES, arg=split_height + 2,
                                                    timeout=WAIT_MS, polling=250)
            heads = await branches.json_value()
            partitioned = tmp_path / "dashboard-partitioned.png"
            await page.screenshot(path=str(partitioned))
            keep(partitioned)
            assert await page.locator("#timeline li.fault.nemesis").count() >= 1
            cuts = await page.locator("#connectivity td.conn.off").count()
            log.info("two branches: %s; %d cut cells in the connection matrix", heads, cuts)

            log.info("Heal from the page; wait for the reorg and the losing branch to grey")
            await page.click("#heal-btn")
            await page.wait_for_function(
                "() => document.querySelector('#control-status').textContent"
                ".includes('heal cleared')", timeout=10_000)
            lost = await (await page.wait_for_function(HEALED, arg=heads, timeout=WAIT_MS,
                                                       polling=250)).json_value()
            await page.wait_for_selector("#partition-badge.on", timeout=10_000)
            await page.wait_for_function(SETTLED, timeout=30_000, polling=250)
            healed = tmp_path / "dashboard-healed.png"
            await page.screenshot(path=str(healed))
            keep(healed)

            reorg = page.locator("#timeline li.reorg").first
            assert "reorg depth" in (await reorg.text_content() or "")
            assert int(await reorg.get_attribute("data-depth") or 0) >= 1
            fill = await page.eval_on_selector(
                f'#tree .block[data-hash="{lost}"] rect', "el => getComputedStyle(el).fill")
            assert fill == "rgb(201, 204, 209)", f"the losing head's block is drawn grey: {fill}"
            faults = [e.get("fault") for e in map(json.loads, (
                cluster.directory / "nemesis.jsonl").read_text().splitlines())]
            assert faults == ["partition", "heal"], "the page's buttons went through the nemesis"
            stats = await page.evaluate("window.dashboardStats")
            log.info("page stats: %s", stats)
            assert stats["missed"] == 0 and not errors, errors
    assert partitioned.stat().st_size > 10_000 and healed.stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(300)
async def test_dashboard_marks_the_checkpoints_of_a_pos_cluster(tmp_path, cluster_dir):
    """On a PoS cluster the tree marks the finalized (F) and justified (J) checkpoint blocks the
    nodes report, on epoch-boundary heights, with the height labels still readable."""
    chromium = chromium_path()
    async with LocalCluster(nodes=4, consensus="pos", directory=cluster_dir) as cluster:
        spec = json.loads((cluster.directory / "genesis.json").read_text())
        per_epoch = spec["slots_per_epoch"]
        async with dashboard_page(cluster, chromium) as (page, collector, errors):
            log.info("Wait for a finalized checkpoint (epoch 1 or later) on the page")
            finalized = page.locator("#tree .block.finalized:has(.cp-badge.finalized)")
            await page.wait_for_function(
                "() => [...document.querySelectorAll('#tree .block.finalized')]"
                ".some((b) => Number(b.dataset.height) > 0)", timeout=WAIT_MS, polling=250)
            shot = tmp_path / "dashboard-pos-finality.png"
            await page.screenshot(path=str(shot))
            keep(shot)
            reported = {e["root"] for e in collector.timeline
                        if e.get("type") == "finalized" and e.get("source") == "node"}
            for i in range(await finalized.count()):
                block = finalized.nth(i)
                assert await block.get_attribute("data-hash") in reported
                assert int(await block.get_attribute("data-height") or -1) % per_epoch == 0
            assert await page.locator("#tree .block.justified .cp-badge").count() >= 1
            label = page.locator("#tree text.row-label").first
            badge = page.locator("#tree .cp-badge").first
            label_box, badge_box = await label.bounding_box(), await badge.bounding_box()
            assert label_box and badge_box
            assert label_box["x"] + label_box["width"] <= badge_box["x"], "badge hides the height"
            assert not errors, errors
