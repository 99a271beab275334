#!/usr/bin/env python3
"""Soak (not in CI): an N-node PoW and/or PoS cluster under a seeded chaos schedule -- kills,
pauses, partitions, link delay and loss, transfer bursts over a steady transfer load -- for the
given time, while every node's resident memory, open file descriptors and event queues are
sampled; afterwards every node log is searched for tracebacks and the run's checks are judged.

Reports per node: RSS at the end of warm-up (first 10%, at most 5 min), at 10 min and at the end,
the growth from 10 min (or from warm-up, for shorter runs) to the end, PSS and the miner's RSS at
the end, fds at the start and the end, the fullest event queue, tracebacks; then every check's
verdict (converged after the last fault, chains valid, stored blocks kept, and on PoS no
conflicting finality and no honest validator slashed). Exits 1 when a check or step failed or a
node logged a traceback.

    scripts/soak.py --minutes 60 --consensus both --nodes 8 --seed 1
    scripts/soak.py --minutes 5 --nodes 4 --consensus pow --json > soak-pow.json

The schedule is testnet/scenarios/soak.py (a scenario, played by the scenario runner); the
sampler testnet/observe/node_resources.py; the figures testnet/checks/resource_figures.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testnet.checks.resource_figures import soak_figures  # noqa: E402
from testnet.cluster import LocalCluster  # noqa: E402
from testnet.history.node_logs import read_tracebacks  # noqa: E402
from testnet.observe.node_resources import ResourceSampler  # noqa: E402
from testnet.scenarios.runner import ScenarioRunner  # noqa: E402
from testnet.scenarios.soak import soak_scenario  # noqa: E402

err = Console(stderr=True, soft_wrap=True)


async def soak(consensus: str, nodes: int, minutes: float, seed: int, sample_every: float,
               report_dir: Path) -> dict:
    scenario = soak_scenario(consensus, nodes, minutes, seed)
    samplers: list[ResourceSampler] = []

    @contextlib.asynccontextmanager
    async def sampled(cluster: LocalCluster) -> AsyncIterator[ResourceSampler]:
        sampler = ResourceSampler(cluster, every_s=sample_every)
        samplers.append(sampler)
        async with sampler:
            yield sampler

    started = time.monotonic()

    def progress(message: str) -> None:
        err.print(f"[dim]{consensus} {time.monotonic() - started:7.1f}s[/dim] {message}")
    runner = ScenarioRunner(scenario, report_dir, progress=progress, companions=[sampled])
    result = await runner.run()
    elapsed = time.monotonic() - started
    samples = samplers[0].samples if samplers else []
    sampled_s = samples[-1]["t_s"] if samples else 0.0
    logs = sorted((report_dir / "cluster").glob("node*/node.log"))
    tracebacks = {path.parent.name: found for path in logs if (found := read_tracebacks(path))}
    checks = [{**c.to_json(), "passed": ok} for c, ok in zip(result.checks, result.passed_checks)]
    return {
        "consensus": consensus, "nodes": nodes, "minutes": minutes, "seed": seed,
        "passed": result.passed and not tracebacks,
        "checks": checks, "failed_steps": result.failed_steps,
        "resources": soak_figures(samples, sampled_s),
        "tracebacks": tracebacks, "tracebacks_total": sum(len(t) for t in tracebacks.values()),
        "elapsed_s": round(elapsed, 1), "report": str(report_dir), "samples": samples,
    }


def _kb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1024:.1f}"


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def tables(out: dict) -> list[Table]:
    res = out["resources"]
    nodes = Table(title=f"soak {out['consensus']}: {out['nodes']} nodes, {out['minutes']:g} min "
                  f"(warm-up {res['warmup_s']:.0f} s), {'PASSED' if out['passed'] else 'FAILED'}")
    for col in ("node", "RSS MB warm-up", "10 min", "end", "growth %", "from", "same pid",
                "PSS MB end", "miner MB", "fds start/end", "queue max", "tracebacks"):
        nodes.add_column(col, justify="right")
    for name, f in res["nodes"].items():
        growth = "-" if f["rss_growth_pct"] is None else f"{f['rss_growth_pct']:+.1f}"
        nodes.add_row(name, _kb(f["rss_kb_warmup"]), _kb(f["rss_kb_10min"]),
                      _kb(f["rss_kb_end"]), growth, f["growth_from"],
                      "yes" if f["same_process"] else f"no ({f['processes']})",
                      _kb(f["pss_kb_end"]), _kb(f["children_rss_kb_end"]),
                      f"{f['fds_start']}/{f['fds_end']}", _count(f["event_queue_max"]),
                      str(len(out["tracebacks"].get(name, []))))
    checks = Table(title=f"soak {out['consensus']}: checks")
    for col in ("check", "verdict", "why"):
        checks.add_column(col, overflow="fold")
    for c in out["checks"]:
        colour = "green" if c["passed"] else "red"
        checks.add_row(c["name"], f"[{colour}]{c['verdict']}[/{colour}]", c["message"])
    return [nodes, checks]


@click.command()
@click.option("--minutes", default=60.0, show_default=True, help="How long the chaos lasts.")
@click.option("--consensus", type=click.Choice(["pow", "pos", "both"]), default="both",
              show_default=True)
@click.option("--nodes", default=8, show_default=True)
@click.option("--seed", default=1, show_default=True, help="Seeds the schedule and the cluster.")
@click.option("--sample-every", default=30.0, show_default=True,
              help="Seconds between resource samples.")
@click.option("--report", "report_root", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports"), show_default=True,
              help="Each soak's scenario report goes to REPORT/soak-<consensus>-seed<S>.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the figures (and every sample) as JSON on stdout.")
def main(minutes: float, consensus: str, nodes: int, seed: int, sample_every: float,
         report_root: Path, as_json: bool) -> None:
    """Run a seeded chaos soak and report memory, descriptors, queues, tracebacks and checks."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    results = []
    for kind in (["pow", "pos"] if consensus == "both" else [consensus]):
        target = report_root / f"soak-{kind}-seed{seed}"
        results.append(asyncio.run(soak(kind, nodes, minutes, seed, sample_every, target)))
    if as_json:
        click.echo(json.dumps({r["consensus"]: r for r in results}, indent=2))
    else:
        out = Console()
        if not out.is_terminal:
            out = Console(width=160)   # a file or a pipe: keep the table's columns whole
        for r in results:
            for table in tables(r):
                out.print(table)
            for step in r["failed_steps"]:
                out.print(f"[red]step {step['step']} ({step['action']}) failed:[/red] "
                          f"{step['reason']}")
            for name, found in r["tracebacks"].items():
                for tb in found[:5]:
                    out.print(f"[red]{name} log line {tb['line']}:[/red] {tb['exception']}")
            summary = r["resources"]["summary"]
            out.print(f"RSS growth over nodes that kept their process: p50 "
                      f"{summary['rss_growth_pct_p50']} %, max {summary['rss_growth_pct_max']} %"
                      f" (n={summary['nodes_same_process']}); fds growth max "
                      f"{summary['fds_growth_max']}; event queue max "
                      f"{_count(summary['event_queue_max'])}; report {r['report']}",
                      highlight=False)
    sys.exit(0 if all(r["passed"] for r in results) else 1)


if __name__ == "__main__":
    main()
