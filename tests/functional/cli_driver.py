"""Drive the `testnet` CLI as a user would: real subprocesses, real output, real exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from testnet.waiting import wait_until_sync


class TestnetCLI:
    """`cli("partition", "0,1", "2,3")` runs `testnet partition 0,1 2,3 --dir DIR`."""

    __test__ = False

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __call__(self, *args: str, check: bool = True,
                 timeout: float = 120) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "testnet.cli", *args, "--dir",
                                 str(self.directory)], capture_output=True, text=True,
                                timeout=timeout, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
        if check and result.returncode != 0:
            raise AssertionError(f"testnet {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def status(self) -> dict:
        return json.loads(self("status", "--json").stdout)

    def node(self, name: str) -> dict:
        return next(n for n in self.status()["nodes"] if n["name"] == name)

    def events(self, name: str) -> list[dict]:
        path = self.directory / name / "data" / "events.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def wait_until(self, predicate, timeout: float, what: str, interval: float = 0.3):  # type: ignore[no-untyped-def]
        return wait_until_sync(predicate, timeout, what, interval=interval)
