#!/usr/bin/env python3
"""Fuzz the node's trust boundaries for minutes: p2p frames against a real P2PHost, HTTP requests
against a PoW node's and a PoS node's real app, all on loopback (tests/fuzz/).

The targets take turns in rounds of ROUND_EXAMPLES hypothesis examples, each round with its own
seed derived from --seed, until --minutes have passed; a failing round is shrunk by hypothesis and
reported with its minimal example, and the run goes on. The in-suite tests (tests/fuzz/) run the
same targets for a few seconds.

Usage: scripts/fuzz.py [--seed N] [--minutes M] [--target NAME ...] [--json]
Exit status: 0 when no case failed, 1 otherwise.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402

from tests.fuzz.targets import SyncTarget, all_targets  # noqa: E402

ROUND_EXAMPLES = 200
MAX_FAILURES_PER_TARGET = 5  # distinct failures kept in the report; the rest are counted


def run_round(target: SyncTarget, cases: Any, round_seed: int) -> None:
    """One hypothesis search of ROUND_EXAMPLES cases; raises what the minimal failing case
    raised."""

    @hypothesis_seed(round_seed)
    @settings(
        max_examples=ROUND_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.generate, Phase.shrink],
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def search(case: Any) -> None:
        target.check(case)

    search()


def describe_failures(exc: BaseException) -> list[dict]:
    """One entry per distinct failure hypothesis found (it groups several in an ExceptionGroup)."""
    if isinstance(exc, BaseExceptionGroup):
        return [d for sub in exc.exceptions for d in describe_failures(sub)]
    notes = [n for n in getattr(exc, "__notes__", []) if n.strip()]
    return [{"error": f"{type(exc).__name__}: {exc}"[:2000], "example": "\n".join(notes)[:4000]}]


@click.command(help=__doc__.split("\n\n")[0])
@click.option(
    "--seed", type=int, default=None, help="Seed of the whole run (default: random, and reported)."
)
@click.option(
    "--minutes",
    type=float,
    default=1.0,
    show_default=True,
    help="How long to fuzz, all targets together.",
)
@click.option(
    "--target",
    "names",
    multiple=True,
    type=click.Choice(["p2p", "http-pow", "http-pos", "http-hybrid", "http-dpos"]),
    help="Only these targets (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def main(seed: int | None, minutes: float, names: tuple[str, ...], as_json: bool) -> None:
    seed = random.randrange(2**32) if seed is None else seed
    logging.basicConfig(level=logging.CRITICAL)  # the targets watch the log themselves
    chosen = dict(zip(["p2p", "http-pow", "http-pos", "http-hybrid", "http-dpos"],
                      all_targets()))
    targets = [t for key, t in chosen.items() if not names or key in names]
    rng = random.Random(seed)
    deadline = time.monotonic() + minutes * 60
    report: dict[str, dict] = {}
    started = time.monotonic()
    runners = [SyncTarget(t) for t in targets]
    for runner in runners:
        runner.__enter__()
        report[runner.name] = {"cases": 0, "rounds": 0, "failed_rounds": 0, "failures": []}
    try:
        while time.monotonic() < deadline:
            for runner in runners:
                if time.monotonic() >= deadline:
                    break
                entry = report[runner.name]
                round_seed = rng.randrange(2**64)
                try:
                    run_round(runner, runner.target.cases(), round_seed)
                except Exception as exc:  # a failing case: report it, keep fuzzing
                    entry["failed_rounds"] += 1
                    for failure in describe_failures(exc):
                        known = {f["error"] for f in entry["failures"]}
                        if (
                            failure["error"] not in known
                            and len(entry["failures"]) < MAX_FAILURES_PER_TARGET
                        ):
                            entry["failures"].append({"round_seed": round_seed, **failure})
                        if not as_json:
                            click.echo(
                                f"FAIL {runner.name} (round seed {round_seed}): "
                                f"{failure['error'][:300]}",
                                err=True,
                            )
                entry["rounds"] += 1
                entry["cases"] = runner.cases
            if not as_json:
                click.echo(
                    "  ".join(f"{name}: {e['cases']} cases" for name, e in report.items()), err=True
                )
    finally:
        for runner in runners:
            runner.__exit__(None, None, None)
            report[runner.name]["cases"] = runner.cases
            report[runner.name]["outcomes"] = dict(runner.target.outcomes.most_common())
    elapsed = time.monotonic() - started
    ok = all(not e["failed_rounds"] for e in report.values())
    result = {"seed": seed, "minutes": round(elapsed / 60, 2), "ok": ok, "targets": report}
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(
            f"fuzz run, seed {seed}, {elapsed / 60:.1f} minutes: "
            f"{'no failures' if ok else 'FAILURES'}"
        )
        for name, entry in report.items():
            click.echo(
                f"  {name:22} {entry['cases']:7} cases in {entry['rounds']} rounds, "
                f"{entry['failed_rounds']} failed"
            )
            click.echo("    " + ", ".join(f"{k}: {v}" for k, v in entry["outcomes"].items()))
            for failure in entry["failures"]:
                click.echo(f"    round seed {failure['round_seed']}: {failure['error'][:500]}")
                if failure["example"]:
                    click.echo("      " + failure["example"][:1500].replace("\n", "\n      "))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
