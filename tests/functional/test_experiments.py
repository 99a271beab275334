"""A tiny real sweep, interrupted after its first run and started again: the finished run is
kept (its row.json untouched), the rest run, and the tables hold the whole grid.

Real node processes through the `testnet sweep` command, as a user would run it; the interrupt
is a SIGINT (Ctrl-C) once the first run's row.json exists.
"""

from __future__ import annotations

import csv
import json
import logging
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from testnet.waiting import wait_until_sync

log = logging.getLogger(__name__)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

SCENARIO = """\
name: tiny-sweep
description: two PoW miners for a few blocks, the link delay swept
params: {link.delay: 0ms}
theory: stale-rate
cluster: {nodes: 2, consensus: pow, block_interval_s: 1}
timeout: 90
steps:
  - wait: {height: 2, timeout: 60}
  - link: {delay: "${link.delay}"}
  - wait: {blocks: 3, timeout: 60}
  - link_clear: true
checks:
  - chains_valid: true
"""


def sweep_command(scenario: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "testnet.cli", "sweep", str(scenario),
            "--param", "link.delay=0ms,50ms", "--runs", "1", "--seed", "4",
            "--report", str(out)]


def ctrl_c_as_at_a_terminal() -> None:
    """The sweep gets SIGINT's default disposition, as a command typed at a terminal does: a test
    run started in the background of a shell without job control inherits SIGINT ignored, and
    Python then never turns Ctrl-C into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def rows_done(out: Path) -> list[Path]:
    return sorted(out.glob("runs/*/*/*/row.json"))


def test_a_sweep_interrupted_after_one_run_resumes_from_its_folder(tmp_path):
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "sweep"

    log.info("Start the sweep and interrupt it once the first run has its row")
    with open(tmp_path / "first.log", "w") as output:
        first = subprocess.Popen(sweep_command(scenario, out), stdout=output,
                                 stderr=subprocess.STDOUT, text=True,
                                 env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
                                 preexec_fn=ctrl_c_as_at_a_terminal)
    try:
        wait_until_sync(lambda: rows_done(out), 180, "the first run's row.json")
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    finished = rows_done(out)
    assert len(finished) == 1
    kept = finished[0].read_text()
    plan = json.loads((out / "experiment.json").read_text())
    assert [r["seed"] for r in plan["planned"]], "the derived seeds are recorded"

    log.info("Start it again on the same folder: only the missing run runs")
    second = subprocess.run(sweep_command(scenario, out), capture_output=True, text=True,
                            timeout=240, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert "resuming: 1 of 2 runs already finished" in second.stdout, second.stdout
    assert second.returncode == 0, second.stdout + second.stderr
    assert finished[0].read_text() == kept
    with open(out / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["link.delay"] for r in rows) == ["0ms", "50ms"]
    assert all(r["main_chain_blocks"] for r in rows)
    assert (out / "summary.csv").exists() and (out / "index.html").exists()
    assert json.loads((out / "theory.json").read_text())["kind"] == "stale-rate"
