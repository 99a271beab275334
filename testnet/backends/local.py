"""Local backend: each node is a process on this machine, in its own process group.

The node's pid is kept in `node<i>/pid`; a pid only counts as our node while its command line
still names the node's config (pids get reused). Signals go to the whole process group, so the
miner process beside a node is paused, resumed and killed with it.

A node runs the code of the checkout this orchestrator is in (SOURCE_ROOT first on PYTHONPATH):
the node is started in its own folder, where `-m node` would otherwise resolve through the
installed package, which in a git worktree is another checkout's code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from testnet.errors import WaitTimeout
from testnet.waiting import wait_until_sync

SOURCE_ROOT = Path(__file__).resolve().parents[2]   # holds consensus/, p2p/, node/, testnet/


class LocalBackend:
    """Implements testnet.backends.base.Backend with processes of this machine."""

    name = "local"

    def __init__(self, directory: Path, cluster: dict) -> None:
        self.directory = directory
        self.cluster = cluster
        self._procs: dict[int, subprocess.Popen] = {}  # children started by this process

    def _node_dir(self, index: int) -> Path:
        return self.directory / self.cluster["nodes"][index]["name"]

    def config_path(self, index: int) -> Path:
        return self.directory / self.cluster["nodes"][index]["config"]

    def log_path(self, index: int) -> Path:
        return self._node_dir(index) / "node.log"

    def pid(self, index: int) -> int | None:
        """The running node's pid, or None."""
        try:
            pid = int((self._node_dir(index) / "pid").read_text())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        if str(self.config_path(index).resolve()).encode() not in cmdline:
            return None
        if stat.rsplit(")", 1)[1].split()[0] == "Z":  # zombie: dead, not yet reaped
            return None
        return pid

    def process_state(self, index: int) -> str:
        """running, paused (SIGSTOPped) or down."""
        pid = self.pid(index)
        if pid is None:
            return "down"
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return "down"
        return "paused" if state == "T" else "running"

    def is_running(self, index: int) -> bool:
        return self.pid(index) is not None

    def start(self, index: int) -> int:
        existing = self.pid(index)
        if existing is not None:
            return existing
        log = open(self.log_path(index), "ab")
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "node", "--config", str(self.config_path(index).resolve())],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=self._node_dir(index),
                env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": _python_path()})
        finally:
            log.close()
        (self._node_dir(index) / "pid").write_text(str(proc.pid))
        self._procs[index] = proc
        return proc.pid

    def signal(self, index: int, sig: signal.Signals) -> bool:
        pid = self.pid(index)
        if pid is None:
            return False
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return False
        return True

    def kill(self, index: int) -> bool:
        """SIGKILL: no shutdown code runs (the crash case)."""
        pid = self.pid(index)
        ok = self.signal(index, signal.SIGKILL)
        if pid is not None:
            self._wait_gone(index, pid, 5.0)
        return ok

    def stop(self, index: int, timeout: float = 10.0) -> bool:
        """SIGTERM, then SIGKILL if the node has not exited within `timeout`."""
        pid = self.pid(index)
        if pid is None:
            return False
        self.signal(index, signal.SIGCONT)  # a paused node cannot handle SIGTERM
        self.signal(index, signal.SIGTERM)
        if not self._wait_gone(index, pid, timeout):
            self.signal(index, signal.SIGKILL)
            self._wait_gone(index, pid, 5.0)
        return True

    def _wait_gone(self, index: int, pid: int, timeout: float) -> bool:
        proc = self._procs.get(index)
        if proc is not None and proc.pid == pid:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            del self._procs[index]
            return True
        return _wait_gone(pid, timeout)

    def pause(self, index: int) -> bool:
        return self.signal(index, signal.SIGSTOP)

    def resume(self, index: int) -> bool:
        return self.signal(index, signal.SIGCONT)

    def start_all(self) -> None:
        for i in range(len(self.cluster["nodes"])):
            self.start(i)

    def stop_all(self) -> None:
        for i in range(len(self.cluster["nodes"])):
            self.stop(i)

    def follow_log(self, index: int) -> Iterator[bytes]:
        """What the node appends to its log from now on (polls the file)."""
        with open(self.log_path(index), "rb") as fh:
            fh.seek(0, os.SEEK_END)
            while True:
                chunk = fh.read()
                if chunk:
                    yield chunk
                else:
                    time.sleep(0.3)


def _gone(pid: int) -> bool:
    """The process has exited (no /proc entry, or a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _wait_gone(pid: int, timeout: float) -> bool:
    try:
        return wait_until_sync(lambda: _gone(pid), timeout, f"process {pid} to exit",
                               interval=0.05)
    except WaitTimeout:
        return False


def _python_path() -> str:
    """SOURCE_ROOT ahead of any PYTHONPATH the orchestrator was given."""
    inherited = os.environ.get("PYTHONPATH")
    return os.pathsep.join([str(SOURCE_ROOT), *([inherited] if inherited else [])])
