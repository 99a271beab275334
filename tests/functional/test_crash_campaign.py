"""The crash campaign, short: a handful of SIGKILLs (one of a whole minority) per consensus while
transfers flow; every restarted node keeps every block it had reported accepted and rejoins the
others, and on PoS no honest validator is slashed (on DPoS no honest producer double-produces).
scripts/crash_campaign.py runs the long one.

The campaign can fail: the last test makes a victim's store lose its newest commits while the node
is down (what a store that did not keep its promise would look like after the restart), and the
campaign names exactly those blocks as lost.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from testnet import LocalCluster
from testnet.checks.crash_figures import RoundRecord, campaign_passed
from testnet.faults.kill_schedule import KillRound, kill_schedule
from testnet.scenarios.crash_campaign import CampaignResult, CrashCampaign

log = logging.getLogger("test")

FAST = {"pow": {"block_interval_s": 1, "hashrate": 20_000},
        "pos": {"slot_duration_ms": 1000, "validators_per_node": 4},
        "dpos": {}}


def narrate(record: RoundRecord, done: int, total: int, eta_s: float) -> None:
    log.info("Round %d/%d: killed %s; %d blocks checked, %d lost; converged after %s s",
             done, total, ", ".join(record.nodes), sum(v.accepted for v in record.victims),
             sum(len(v.lost) for v in record.victims), record.converged_s)


async def run_campaign(consensus: str, directory: Path, nodes: int, schedule: list[KillRound],
                       **options) -> CampaignResult:
    async with LocalCluster(nodes=nodes, consensus=consensus, directory=directory,
                            accounts=2 * nodes, **FAST[consensus]) as cluster:
        log.info("Let the %s chain grow a little before the first kill", consensus)
        await cluster.wait_for_height(3, timeout=90)
        return await CrashCampaign(cluster, schedule, progress=narrate, **options).run()


@pytest.mark.slow
@pytest.mark.timeout(420)
@pytest.mark.parametrize("consensus", ["pow", "pos", "dpos"])
async def test_sigkilled_nodes_keep_every_accepted_block_and_rejoin(consensus, cluster_dir):
    schedule = kill_schedule(2, 4, 5, minority_share=0.3)
    assert [r.nodes for r in schedule] == [(0,), (2,), (1, 3), (4,)], "every node, a minority"
    result = await run_campaign(consensus, cluster_dir, 5, schedule)
    figures = result.figures
    log.info("Figures: %s", {k: figures[k] for k in ("node_kills", "kills_survived",
                                                     "blocks_checked", "blocks_lost",
                                                     "honest_slashings")})
    assert figures["aborted"] is None
    assert figures["blocks_checked"] > 0
    assert figures["blocks_lost"] == 0, figures["lost"]
    assert figures["kills_survived"] == figures["node_kills"] == 5, figures["failures"]
    if consensus in ("pos", "dpos"):      # DPoS: no producer caught double-producing
        assert figures["honest_slashings"] == 0, figures["slashed_validators"]
        assert figures["slashing_check"]["verdict"] == "valid", figures["slashing_check"]
    assert result.stored_blocks_check["verdict"] == "valid", result.stored_blocks_check
    assert campaign_passed(figures)


class LoseNewestBlocks:
    """While a victim is down, delete its store's newest commits: a store that broke the promise
    "committed before announced", as the restarted node will show it."""

    def __init__(self, consensus: str, count: int = 2) -> None:
        self.consensus = consensus
        self.count = count
        self.deleted: set[str] = set()

    def __call__(self, data_dir: Path) -> None:
        db = sqlite3.connect(data_dir / "chain.sqlite")
        try:
            rows = db.execute("SELECT seq, hash FROM blocks ORDER BY seq DESC LIMIT ?",
                              (self.count,)).fetchall()
            db.executemany("DELETE FROM blocks WHERE seq = ?", [(seq,) for seq, _ in rows])
            db.commit()
        finally:
            db.close()
        # As the API shows hashes: PoW byte-reversed (Bitcoin's display order), PoS plain.
        self.deleted |= {(h[::-1] if self.consensus == "pow" else h).hex() for _, h in rows}


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("consensus", ["pow", "pos"])
async def test_the_campaign_catches_a_store_that_lost_accepted_blocks(consensus, cluster_dir):
    sabotage = LoseNewestBlocks(consensus)
    result = await run_campaign(consensus, cluster_dir, 3, kill_schedule(2, 1, 3),
                                after_kill=sabotage)
    figures = result.figures
    log.info("Deleted %s; the campaign found lost %s", sorted(sabotage.deleted),
             [(b["hash"], b["why"]) for b in figures["lost"]])
    assert len(sabotage.deleted) == 2
    assert {b["hash"] for b in figures["lost"]} == sabotage.deleted
    assert figures["blocks_lost"] == 2 and figures["kills_survived"] == 0
    assert result.stored_blocks_check["verdict"] == "invalid"
    assert not campaign_passed(figures)
