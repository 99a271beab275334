#!/usr/bin/env python3
"""Crash campaign: SIGKILL random nodes (and now and then a whole minority) of a local cluster
again and again while transfers flow, on PoW and on PoS (and DPoS with `--consensus dpos`), and
check after every restart that the node came back healthy with every block it had reported
accepted, and rejoined the others; on PoS (DPoS) that no honest validator (producer) was ever
slashed (caught double-producing).

Prints one line per kill round with an ETA (on stderr), then the figures: node kills survived,
blocks checked and lost (must be 0), honest slashings (must be 0), restart -> healthy and
restart -> converged as p50/p95 with n. Exits 1 when any of them fails.

    scripts/crash_campaign.py --kills 100 --consensus both --seed 1
    scripts/crash_campaign.py --kills 10 --consensus pos --json > pos.json

The plan comes from the seed (testnet/faults/kill_schedule.py), so a run that finds a lost block
can be replayed kill for kill; the driver is testnet/scenarios/crash_campaign.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testnet import LocalCluster  # noqa: E402
from testnet.checks.crash_figures import RoundRecord, campaign_passed  # noqa: E402
from testnet.faults.kill_schedule import kill_schedule  # noqa: E402
from testnet.scenarios.crash_campaign import CampaignResult, CrashCampaign  # noqa: E402

CLUSTER = {"pow": {"block_interval_s": 1, "hashrate": 20_000},
           "pos": {"slot_duration_ms": 1000, "validators_per_node": 8},
           "dpos": {}}

err = Console(stderr=True, soft_wrap=True)


def progress_line(consensus: str) -> object:
    def show(record: RoundRecord, done: int, total: int, eta_s: float) -> None:
        victims = record.victims
        checked = sum(v.accepted for v in victims)
        lost = sum(len(v.lost) for v in victims)
        healthy = ", ".join(f"{v.healthy_s:.1f}" if v.healthy_s is not None else "never"
                            for v in victims)
        converged = (f"{record.converged_s:.1f} s" if record.converged_s is not None
                     else "NOT converged")
        kind = "minority " if record.minority else ""
        trouble = [v.error for v in victims if v.error] + ([record.error] if record.error else [])
        head = escape(f"[{consensus} {done}/{total}]")
        problems = f"  [red]{escape('; '.join(trouble))}[/red]" if trouble else ""
        err.print(f"{head} kill {kind}{', '.join(record.nodes)}: {checked} blocks checked, "
                  f"{lost} lost; healthy {healthy} s, converged {converged}; "
                  f"ETA {_duration(eta_s)}{problems}", highlight=False)
    return show


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


async def campaign(consensus: str, nodes: int, kills: int, seed: int, tps: float,
                   minority_share: float, keep: Path | None) -> CampaignResult:
    schedule = kill_schedule(seed, kills, nodes, minority_share=minority_share)
    directory = keep / consensus if keep else None
    async with LocalCluster(nodes=nodes, consensus=consensus, seed=seed, directory=directory,
                            keep=keep is not None, accounts=2 * nodes,
                            **CLUSTER[consensus]) as cluster:
        err.print(f"{consensus}: {nodes} nodes up in {cluster.directory}; waiting for the chain "
                  "to grow before the first kill", highlight=False)
        await cluster.wait_for_height(3, timeout=90)
        runner = CrashCampaign(cluster, schedule, tps=tps, progress=progress_line(consensus))
        return await runner.run()


def figures_table(consensus: str, result: CampaignResult) -> Table:
    f = result.figures
    table = Table(title=f"crash campaign, {consensus} "
                  f"({'PASSED' if campaign_passed(f) else 'FAILED'})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("kill rounds (minority rounds)", f"{f['rounds']} ({f['minority_rounds']})"),
        ("node kills survived", f"{f['kills_survived']} / {f['node_kills']}"),
        ("blocks checked after restarts", str(f["blocks_checked"])),
        ("blocks lost", str(f["blocks_lost"])),
        ("honest slashings", "n/a (PoW)" if consensus == "pow" else str(f["honest_slashings"])),
        ("restart -> healthy p50 / p95 (n)", _spread(f["restart_to_healthy"])),
        ("restart -> converged p50 / p95 (n)", _spread(f["restart_to_converged"])),
        ("log lines cut by kills", str(f["cut_log_lines"])),
        ("stored_blocks_kept", result.stored_blocks_check["verdict"]),
        ("transfers sent / failed", f"{result.load.sent} / {result.load.failed}"),
        ("elapsed", _duration(result.elapsed_s)),
    ]
    for row in rows:
        table.add_row(*row)
    return table


def _spread(s: dict) -> str:
    if not s["n"]:
        return "none"
    return f"{s['p50_s']:.2f} s / {s['p95_s']:.2f} s ({s['n']})"


@click.command()
@click.option("--kills", default=100, show_default=True, help="Kill rounds per consensus.")
@click.option("--consensus", type=click.Choice(["pow", "pos", "dpos", "both"]), default="both",
              show_default=True)
@click.option("--nodes", default=5, show_default=True,
              help="Cluster size (5: a whole-minority round kills 2 at once).")
@click.option("--seed", default=1, show_default=True, help="Seeds the kill plan and the cluster.")
@click.option("--tps", default=2.0, show_default=True, help="Background transfers per second.")
@click.option("--minority-share", default=0.15, show_default=True,
              help="Share of rounds that kill the largest minority at once.")
@click.option("--keep", type=click.Path(path_type=Path), default=None,
              help="Keep the cluster folders here (default: a temporary folder, removed).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
def main(kills: int, consensus: str, nodes: int, seed: int, tps: float, minority_share: float,
         keep: Path | None, as_json: bool) -> None:
    """SIGKILL nodes round after round under load; check every block survives and every node
    rejoins (and, on PoS, that no honest validator is slashed)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    results = {}
    for kind in (["pow", "pos"] if consensus == "both" else [consensus]):
        results[kind] = asyncio.run(campaign(kind, nodes, kills, seed, tps, minority_share,
                                             keep))
    if as_json:
        click.echo(json.dumps({k: {"passed": campaign_passed(r.figures), **r.to_json()}
                               for k, r in results.items()}, indent=2))
    else:
        out = Console()
        if not out.is_terminal:
            out = Console(width=120)   # a file or a pipe: keep the table whole
        for kind, result in results.items():
            out.print(figures_table(kind, result))
            for failure in result.figures["failures"][:10]:
                out.print(f"  round {failure['round']} {failure['node']}: {failure['reason']}",
                          highlight=False)
            for block in result.figures["lost"][:10]:
                out.print(f"  LOST round {block['round']} {block['node']}: {block['hash']} "
                          f"(height {block['height']}, seq {block['seq']}, {block['why']})",
                          highlight=False)
    sys.exit(0 if all(campaign_passed(r.figures) for r in results.values()) else 1)


if __name__ == "__main__":
    main()
