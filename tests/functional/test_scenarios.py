"""`testnet run` on the scenario library, as a user runs it: each scenario passes and writes its
report; an impossible check fails the run and says which check and why; one seed, one schedule."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = sorted((ROOT / "scenarios").glob("*.yaml"))


def run_scenario(path: Path, report: Path, *extra: str, timeout: float = 900
                 ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "testnet.cli", "run", str(path), "--report",
                           str(report), *extra], capture_output=True, text=True,
                          timeout=timeout, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
                          cwd=ROOT)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", LIBRARY, ids=[p.stem for p in LIBRARY])
def test_library_scenario_passes_and_writes_its_report(path, tmp_path):
    result = run_scenario(path, tmp_path / "report")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    report = tmp_path / "report"
    for name in ("history.jsonl", "schedule.json", "faults.json", "checks.json", "metrics.json",
                 "report.md"):
        assert (report / name).exists(), f"report lacks {name}"
    checks = json.loads((report / "checks.json").read_text())
    assert checks and all(c["passed"] for c in checks)
    metrics = json.loads((report / "metrics.json").read_text())
    assert "reorgs" in metrics and "blocks" in metrics


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_impossible_check_fails_the_run_and_says_why(tmp_path):
    result = run_scenario(ROOT / "tests" / "fixtures" / "impossible-check.yaml",
                          tmp_path / "report")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "FAILED: max_reorg_depth" in result.stdout
    checks = json.loads((tmp_path / "report" / "checks.json").read_text())
    failed = [c for c in checks if not c["passed"]]
    assert [c["name"] for c in failed] == ["max_reorg_depth"]
    assert "deeper than 0" in failed[0]["message"]


CHAOS = {
    "name": "chaos-determinism",
    "cluster": {"nodes": 3, "consensus": "pow", "block_interval_s": 1, "hashrate": 20000},
    "timeout": 200,
    "steps": [{"wait": {"height": 2}},
              {"chaos": {"count": 3, "interval": "1s", "duration": "1s",
                         "faults": ["kill", "pause", "partition", "link"]}},
              {"start": 0}, {"start": 1}, {"start": 2},
              {"wait": {"converged": 60}}],
    "checks": [{"chains_valid": True}],
}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_same_seed_gives_the_same_fault_schedule(tmp_path):
    path = tmp_path / "chaos.yaml"
    path.write_text(yaml.safe_dump(CHAOS))
    faults = []
    for run, seed in enumerate(["7", "7", "8"]):
        report = tmp_path / f"run{run}"
        result = run_scenario(path, report, "--seed", seed)
        assert result.returncode == 0, result.stdout[-3000:]
        faults.append(json.loads((report / "faults.json").read_text()))
    assert faults[0] == faults[1], "one seed must give one fault timeline"
    assert faults[0] != faults[2]
    assert any(f["fault"] in ("kill", "pause", "partition", "link") for f in faults[0])


WATCHED = {
    "name": "watched-partition",
    "cluster": {"nodes": 3, "consensus": "pow", "block_interval_s": 1, "hashrate": 20000},
    "timeout": 200,
    "steps": [{"wait": {"height": 1}}, {"partition": "0|1,2"}, {"wait": {"blocks": 2}},
              {"heal": True}, {"wait": {"converged": 60}}],
    "checks": [{"chains_valid": True}],
}


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_a_run_can_be_watched_on_the_dashboard_but_not_steered(tmp_path):
    import aiohttp

    from testnet.scenarios.runner import ScenarioRunner
    from testnet.scenarios.spec import parse_scenario

    runner = ScenarioRunner(parse_scenario(WATCHED), tmp_path / "report", dashboard_port=0)
    run = asyncio.create_task(runner.run())
    seen_partition = False
    async with aiohttp.ClientSession() as session:
        while not run.done():
            await asyncio.sleep(0.3)
            if runner.dashboard_url is None:
                continue
            try:
                async with session.get(runner.dashboard_url + "api/snapshot") as resp:
                    frame = await resp.json()
                async with session.post(runner.dashboard_url + "api/heal", json={}) as resp:
                    refused = resp.status
            except aiohttp.ClientConnectionError:
                continue  # the run ended between the check and the request
            assert refused == 403, "a scenario's dashboard must not add faults"
            assert [n["name"] for n in frame["nodes"]] == ["node0", "node1", "node2"]
            seen_partition |= frame["partition"]["partitioned"]
    result = await run
    assert result.passed, result.failed_steps
    assert seen_partition, "the dashboard showed the partition while it stood"
    assert (tmp_path / "report" / "timeline.jsonl").exists()
