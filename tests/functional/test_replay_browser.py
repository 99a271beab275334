"""The replay page in headless Chromium (Debian's chromium package, driven by playwright): the
dashboard over a hand-built recorded run (tests/testnet/test_replay.py: node0 cut off, then
healed), read-only, with a scrubber. Moving the scrubber into the partition shows node0's head on
its own branch; playing to the end at 30x brings every head onto one block and greys the loser.
No nodes run: the history is the whole input.
"""

from __future__ import annotations

import logging

import pytest

from testnet.observe.dashboard import running_site
from testnet.observe.replay import replay_app
from tests.functional.test_dashboard_browser import chromium_path, keep
from tests.testnet.test_replay import replay_of, split_and_heal

log = logging.getLogger("test")

HEADS = """(want) => {
  const m = {};
  for (const el of document.querySelectorAll('#tree .head-marker')) {
    m[el.dataset.node] = el.dataset.head;
  }
  return Object.entries(want).every(([node, head]) => m[node] === head);
}"""


@pytest.mark.browser
@pytest.mark.timeout(120)
async def test_scrubbing_and_playing_a_replay(tmp_path):
    chromium = chromium_path()
    from playwright.async_api import async_playwright
    replay = replay_of(split_and_heal(), every=3)
    async with running_site(replay_app(replay, push_interval=0.05), port=0) as url, \
            async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(url)
            log.info("The page opens at the end of the run, read-only, with a scrubber")
            await page.wait_for_selector("#replay-bar", state="visible", timeout=10_000)
            await page.wait_for_function(HEADS, arg={"node0": "c3", "node1": "c3"},
                                         timeout=10_000)
            assert await page.text_content("#ws-state") == "replay"
            assert not await page.is_visible("#fault-form")
            assert not await page.is_visible(".node-card .actions button")

            log.info("Scrub back into the partition (t = 4.5 s)")
            await page.eval_on_selector(
                "#replay-range",
                "(el) => { el.value = '4.5'; el.dispatchEvent(new Event('input')); }")
            await page.wait_for_function(HEADS, arg={"node0": "b2", "node1": "c3",
                                                     "node2": "c3"}, timeout=10_000)
            await page.wait_for_selector("#partition-badge.bad", timeout=10_000)
            assert replay.state.t == 4.5
            assert "4.5 s of 7.0 s" in (await page.text_content("#replay-time") or "")
            shot = tmp_path / "replay-partitioned.png"
            await page.screenshot(path=str(shot))
            keep(shot)

            log.info("Play to the end at 30x: one head, the lost block grey, the heal in")
            await page.select_option("#replay-speed", "30")
            await page.click("#replay-play")
            await page.wait_for_function("() => window.dashboardReplay.t >= 7 && "
                                         "!window.dashboardReplay.playing", timeout=10_000)
            await page.wait_for_function(HEADS, arg={"node0": "c3", "node1": "c3",
                                                     "node2": "c3"}, timeout=10_000)
            await page.wait_for_selector('#tree .block.stale[data-hash="b2"]', timeout=10_000)
            await page.wait_for_selector("#partition-badge.on", timeout=10_000)
            assert await page.locator("#timeline li.reorg").count() >= 1
            assert replay.state.t == 7.0
            assert not errors, errors
        finally:
            await browser.close()
