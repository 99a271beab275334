"""Prometheus metrics for one node, served at GET /metrics.

The node keeps its counters as plain numbers (host.stats, the chain service's totals, the
histograms below), and a custom collector turns them into metric families at scrape time.
prometheus-client is imported on the first scrape only: a node nobody scrapes does not pay for it
(an idle node's memory is a benchmark target).
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.app import Node

REORG_DEPTH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 32, 64)
DELAY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Histogram:
    """Cumulative-bucket histogram kept as plain numbers."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        out, running = [], 0
        for bound, count in zip((*map(str, self.buckets), "+Inf"), self.counts):
            running += count
            out.append((bound, running))
        return out


class NodeMetrics:
    def __init__(self) -> None:
        self.reorg_depth = Histogram(REORG_DEPTH_BUCKETS)
        self.block_delay = Histogram(DELAY_BUCKETS_S)
        self.blocks_accepted = 0
        self.blocks_rejected = 0

    def on_event(self, event: dict) -> None:
        """Fed every event the node emits."""
        kind = event["type"]
        if kind == "reorg":
            self.reorg_depth.observe(event["depth"])
        elif kind == "block_accepted":
            self.blocks_accepted += 1
            if event.get("peer") != "local" and event.get("delay_ms") is not None:
                self.block_delay.observe(max(0.0, event["delay_ms"] / 1000))
        elif kind == "block_rejected":
            self.blocks_rejected += 1


def render(node: Node) -> tuple[bytes, str]:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    class Collector:
        def collect(self) -> Any:
            status = node.status()
            labels = {"node": node.config.node_id, "consensus": status["consensus"]}
            names, values = list(labels), list(labels.values())

            def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
                family = GaugeMetricFamily(name, doc, labels=names)
                family.add_metric(values, value)
                return family

            yield gauge("testnet_head_height", "Height of the node's head block", status["height"])
            yield gauge("testnet_peers", "Connected peers", status["peers"])
            yield gauge("testnet_mempool_transactions", "Transactions in the mempool",
                        status["mempool"])
            if "total_work" in status:
                yield gauge("testnet_total_work", "Cumulative work of the head (PoW)",
                            float(status["total_work"]))
                yield gauge("testnet_hashrate", "Measured miner hashes per second (PoW)",
                            status["miner"]["hashrate"])
            for key in ("justified", "finalized"):
                if status.get(key) and "epoch" in status[key]:
                    yield gauge(f"testnet_{key}_epoch", f"Latest {key} checkpoint epoch (PoS)",
                                status[key]["epoch"])
            memory = dict(status["memory"])
            resident = memory.pop("resident_bytes", None)   # none for an embedded node
            if resident is not None:
                yield gauge("testnet_resident_bytes",
                            "Resident memory of the node process (VmRSS)", resident)
            items = GaugeMetricFamily("testnet_memory_items",
                                      "Items held in memory, by structure (docs/memory.md)",
                                      labels=[*names, "kind"])
            for kind, count in sorted(memory.items()):
                items.add_metric([*values, kind], count)
            yield items
            if "lib_gap" in status:
                yield gauge("testnet_lib_height", "Height of the last irreversible block (DPoS)",
                            status["finalized"]["height"])
                yield gauge("testnet_lib_gap_blocks", "Head height minus LIB height (DPoS)",
                            status["lib_gap"])
                yield gauge("testnet_schedule_version", "Active producer schedule (DPoS)",
                            status["schedule_version"])
                yield gauge("testnet_missed_slots", "Empty slots seen on the head chain (DPoS)",
                            status["missed_slots"])
            reorgs = CounterMetricFamily("testnet_reorgs", "Chain reorganisations", labels=names)
            reorgs.add_metric(values, status["reorgs"])
            yield reorgs
            for name, doc, hist in (
                    ("testnet_reorg_depth", "Depth of reorganisations (blocks reverted)",
                     node.metrics.reorg_depth),
                    ("testnet_block_delay_seconds", "Block arrival delay after its timestamp",
                     node.metrics.block_delay)):
                histogram = HistogramMetricFamily(name, doc, labels=names)
                histogram.add_metric(values, hist.cumulative(), hist.total)
                yield histogram
            for kind, count in (("accepted", node.metrics.blocks_accepted),
                                ("rejected", node.metrics.blocks_rejected)):
                family = CounterMetricFamily(f"testnet_blocks_{kind}", f"Blocks {kind}",
                                             labels=names)
                family.add_metric(values, count)
                yield family
            streams = node.events.subscriber_stats()
            yield gauge("testnet_event_subscribers", "Open /events streams",
                        streams["subscribers"])
            yield gauge("testnet_event_queue_max", "Events queued for the slowest /events stream",
                        streams["queued_max"])
            missed = CounterMetricFamily("testnet_events_missed",
                                         "Events dropped for /events streams that fell behind",
                                         labels=names)
            missed.add_metric(values, streams["missed_total"])
            yield missed
            stats = node.host.stats
            for direction in ("in", "out"):
                family = CounterMetricFamily(f"testnet_messages_{direction}",
                                             f"p2p messages {direction} by type",
                                             labels=[*names, "type"])
                for msg_type, count in sorted(stats[f"messages_{direction}"].items()):
                    family.add_metric([*values, msg_type], count)
                yield family
            # host.stats keys are labels from fixed sets (never a reason's text), so the series
            # stay few whatever peers send: "malformed frame", "tx: bad signature", ...
            family = CounterMetricFamily("testnet_rejected_messages",
                                         "p2p input refused, by category",
                                         labels=[*names, "category"])
            for category, count in sorted(stats["rejected"].items()):
                family.add_metric([*values, category], count)
            yield family
            # let go without blame: duplicates, frames over a peer's budget (p2p/peer_policy.py)
            family = CounterMetricFamily("testnet_dropped_messages",
                                         "p2p input or output dropped, by category",
                                         labels=[*names, "category"])
            for category, count in sorted(stats["dropped"].items()):
                family.add_metric([*values, category], count)
            yield family

    registry = CollectorRegistry()
    registry.register(Collector())
    return generate_latest(registry), "text/plain; version=0.0.4; charset=utf-8"
