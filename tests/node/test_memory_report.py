"""/status has a "memory" block and /metrics the `testnet_memory_items{kind}` and
`testnet_resident_bytes` gauges (issue 17, finding 5), for every consensus: a soak or a test can
watch from outside that what should stay flat does."""

from __future__ import annotations

import pytest

from tests.node.api_harness import build_request, raw_http, serve_node


@pytest.mark.parametrize("consensus", ["pow", "pos", "hybrid", "dpos"])
async def test_status_and_metrics_report_memory_by_kind(tmp_path, consensus):
    async with serve_node(tmp_path, consensus) as served:
        status = (await raw_http(served.port, build_request("GET", "/status"))).json()
        assert isinstance(status, dict)
        memory = status["memory"]
        assert memory["resident_bytes"] > 0
        assert memory["blocks_indexed"] == 1 and memory["bodies"] == 1   # genesis
        assert memory["tx_index"] == 0, "the transaction index lives in the store"
        for kind in ("archive_cache", "mempool", "events_buffered", "gossip_seen"):
            assert kind in memory

        metrics = (await raw_http(served.port, build_request("GET", "/metrics"))).body.decode()
        assert "testnet_resident_bytes{" in metrics
        assert 'kind="bodies"' in metrics and "testnet_memory_items{" in metrics
