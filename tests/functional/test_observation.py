"""Watching a fork resolve: `testnet watch` output and Prometheus metrics of real nodes."""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.request

import pytest

from tests.functional.cli_driver import TestnetCLI


@pytest.fixture
def cli(tmp_path):
    driver = TestnetCLI(tmp_path / "cluster")
    driver("up", "--nodes", "4", "--block-interval", "1", "--seed", "11")
    yield driver
    driver("down", check=False)


def test_watch_shows_two_branches_then_the_reorg(cli):
    cli("partition", "0,1", "2,3")
    cli.wait_until(lambda: len({n["head"] for n in cli.status()["nodes"]}) == 2
                   and min(n["height"] for n in cli.status()["nodes"]) >= 2, 60,
                   "two branches of height >= 2")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "testnet.cli", "watch", "--plain", "--interval", "0.5",
         "--duration", "15", "--dir", str(cli.directory)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    timer = threading.Timer(2.0, lambda: cli("heal"))
    timer.start()
    output, _ = watcher.communicate(timeout=60)
    timer.join()
    assert watcher.returncode == 0, output
    assert "2 branch head(s)" in output, "the split shows as two branches"
    assert "cut from 2" in output
    assert "reorg depth" in output, "the losing side's reorg is printed"
    assert "all nodes agree" in output.split("reorg depth")[-1] or "all nodes agree" in output


def test_metrics_endpoint_serves_head_height_and_reorgs(cli):
    api = cli.status()["nodes"][0]["api"]
    body = urllib.request.urlopen(api + "/metrics", timeout=10).read().decode()
    assert 'testnet_head_height{consensus="pow",node="node0"}' in body
    assert "testnet_reorgs_total" in body and "testnet_reorg_depth_bucket" in body
    assert 'testnet_messages_in_total{consensus="pow",node="node0",type="status"}' in body
