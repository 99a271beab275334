"""The simulation backend as a user runs it: the scenario library on `--backend sim` gives the
verdicts the local backend gives (a step it cannot perform is refused before anything starts),
and one seed gives one history, byte for byte, whatever PYTHONHASHSEED says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = sorted((ROOT / "scenarios").glob("*.yaml"))
REFUSED = {"pause", "resume"}


def run_sim(path: Path, report: Path, *extra: str, hash_seed: str = "0"
            ) -> subprocess.CompletedProcess:
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin", "PYTHONHASHSEED": hash_seed,
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "testnet.cli", "run", str(path), "--backend",
                           "sim", "--report", str(report), *extra], capture_output=True,
                          text=True, timeout=600, env=env, cwd=ROOT)


def actions(path: Path) -> set[str]:
    steps = yaml.safe_load(path.read_text()).get("steps") or []
    return {key for step in steps for key in step if key not in ("at", "label", "only")}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", LIBRARY, ids=[p.stem for p in LIBRARY])
def test_library_scenario_gives_the_local_verdict_on_sim(path, tmp_path):
    result = run_sim(path, tmp_path / "report")
    refused = actions(path) & REFUSED
    if refused:
        assert result.returncode != 0
        assert "the sim backend cannot do this" in result.stdout + result.stderr
        return
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    checks = json.loads((tmp_path / "report" / "checks.json").read_text())
    assert checks and all(c["passed"] for c in checks)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", ["partition-heal-pow", "partition-heal-pos"])
def test_one_seed_gives_one_history_byte_for_byte(name, tmp_path):
    path = ROOT / "scenarios" / f"{name}.yaml"
    histories = []
    for run, hash_seed in enumerate(["1", "2"]):
        report = tmp_path / f"run{run}"
        result = run_sim(path, report, "--seed", "5", hash_seed=hash_seed)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        histories.append((report / "history.jsonl").read_bytes())
    assert histories[0] == histories[1], "same seed, same commit: the same history"
    other = tmp_path / "other-seed"
    assert run_sim(path, other, "--seed", "6").returncode == 0
    assert (other / "history.jsonl").read_bytes() != histories[0]


def test_sim_refuses_keep_and_a_live_dashboard(tmp_path):
    result = run_sim(ROOT / "scenarios" / "partition-heal-pow.yaml", tmp_path / "r", "--keep")
    assert result.returncode != 0
    assert "testnet replay" in result.stdout + result.stderr
    assert not os.path.exists(tmp_path / "r" / "cluster")
