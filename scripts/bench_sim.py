#!/usr/bin/env python3
"""Simulation backend benchmark (never asserted in tests): whole scenarios on `--backend sim`.

Runs a scenario file with `testnet run FILE --backend sim` in a child process and reports, from
the outside and from its report folder:

- wall seconds and CPU seconds (user + system) of the run, and the host's load average;
- virtual seconds the run covered (first to last timestamp of history.jsonl) and the speed-up
  over real time (virtual / wall, and virtual / CPU: what it would be on an idle core);
- peak resident memory (ru_maxrss of the child) and per node;
- blocks seen, main-chain blocks and stale rate (metrics.json), history lines per CPU second
  (events the run recorded, a measure of the scheduler's throughput);
- with `--profile`, the hottest frames (py-spy, when installed), i.e. where the time goes.

    scripts/bench_sim.py scenarios/sim/pow-16-nodes-speed.yaml --param blocks=200 --json
    scripts/bench_sim.py scenarios/sim/pow-1000-nodes.yaml --profile

`--param NAME=VALUE` overrides a declared scenario parameter (written to a temporary copy).
Progress goes to stderr, the figures to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def scenario_copy(path: Path, params: list[str], folder: Path) -> Path:
    if not params:
        return path
    raw = yaml.safe_load(path.read_text())
    for item in params:
        name, _, value = item.partition("=")
        if name not in (raw.get("params") or {}):
            sys.exit(f"--param {name}: the scenario declares {sorted(raw.get('params') or {})}")
        raw["params"][name] = yaml.safe_load(value)
    copy = folder / path.name
    copy.write_text(yaml.safe_dump(raw, sort_keys=False))
    return copy


def virtual_span(history: Path) -> tuple[float, int]:
    first = last = None
    lines = 0
    with history.open() as handle:
        for line in handle:
            lines += 1
            ts = json.loads(line).get("ts")
            if isinstance(ts, int | float):
                first = ts if first is None else min(first, ts)
                last = ts if last is None else max(last, ts)
    return (last - first if first is not None and last is not None else 0.0), lines


def hottest(raw: Path, top: int = 25) -> list[dict]:
    counts: Counter[str] = Counter()
    total = 0
    skip = ("click/", "runpy", "asyncio/", "<module>", "sim/loop.py", "run_on_backend_loop")
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        total += int(n)
        for frame in set(stack.split(";")):
            if not any(s in frame for s in skip):
                counts[frame] += int(n)
    return [{"share": round(n / total, 3), "frame": f} for f, n in counts.most_common(top)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--profile", action="store_true", help="sample with py-spy")
    parser.add_argument("--keep", type=Path, default=None, help="keep the report folder here")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    report = args.keep or work / "report"
    scenario = scenario_copy(args.scenario.resolve(), args.param, work)
    command = [sys.executable, "-m", "testnet.cli", "run", str(scenario), "--backend", "sim",
               "--report", str(report)]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    profile = work / "profile.txt"
    if args.profile and Path(spy).exists():
        command = [spy, "record", "-r", "50", "-f", "raw", "-o", str(profile), "--", *command]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print(f"running {' '.join(command[-6:])}", file=sys.stderr)
    load_before = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in (0, 1) or not (report / "history.jsonl").exists():
        sys.exit(f"the run did not finish (exit {result.returncode}):\n{result.stdout[-3000:]}"
                 f"\n{result.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    virtual, lines = virtual_span(report / "history.jsonl")
    metrics = json.loads((report / "metrics.json").read_text())
    blocks = metrics.get("blocks") or {}
    manifest = yaml.safe_load(scenario.read_text()).get("cluster") or {}
    nodes = int(manifest.get("nodes", 4))
    figures = {
        "scenario": args.scenario.name, "params": args.param, "passed": result.returncode == 0,
        "nodes": nodes, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "virtual_s": round(virtual, 1),
        "speedup_wall": round(virtual / wall, 1) if wall else None,
        "speedup_cpu": round(virtual / cpu, 1) if cpu else None,
        "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
        "rss_per_node_mb": round(after.ru_maxrss / 1024 / nodes, 2),
        "blocks_seen": blocks.get("seen"), "main_chain_blocks": blocks.get("main_chain"),
        "stale_rate": blocks.get("stale_rate"), "history_lines": lines,
        "history_lines_per_cpu_s": round(lines / cpu, 1) if cpu else None,
    }
    if args.profile and profile.exists():
        figures["hottest"] = hottest(profile)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            if key != "hottest":
                print(f"{key:>26}: {value}")
        for row in figures.get("hottest", []):
            print(f"{row['share']:6.1%}  {row['frame'][:120]}")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
