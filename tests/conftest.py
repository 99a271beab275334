"""Shared fixtures: clusters of real node processes on loopback, and narrated waits."""

from __future__ import annotations

import logging

import pytest

log = logging.getLogger("test")


@pytest.fixture
def cluster_dir(tmp_path):
    """A fresh cluster folder; node logs are printed when a test fails (pytest shows captured)."""
    yield tmp_path / "cluster"
    for node_log in sorted((tmp_path / "cluster").glob("node*/node.log")):
        tail = node_log.read_text(errors="replace").splitlines()[-25:]
        print(f"---- {node_log.parent.name} (last {len(tail)} log lines) ----")
        print("\n".join(tail))
