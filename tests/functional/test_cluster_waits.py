"""A wait on a real cluster that times out says what it last saw: every node's head and height."""

from __future__ import annotations

import pytest

from testnet import LocalCluster
from testnet.errors import WaitTimeout


async def test_a_convergence_timeout_names_each_node_head_and_height(cluster_dir):
    async with LocalCluster(nodes=2, directory=cluster_dir, block_interval_s=1, hashrate=1_000,
                            overrides={0: {"mine": False}, 1: {"mine": False}}) as cluster:
        statuses = await cluster.statuses()
        with pytest.raises(WaitTimeout) as caught:
            await cluster.converged(timeout=1, min_height=1)   # nobody mines: never
        message = str(caught.value)
        assert "agree on one head (>= 1)" in message
        for name, status in zip(("node0", "node1"), statuses):
            assert f"{name} at 0 ({status['head'][:12]})" in message, message
