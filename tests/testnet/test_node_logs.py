"""Simulated nodes share one process but each keeps its own log: records follow the context of
the task that logged them, and tasks a node starts inherit its name."""

from __future__ import annotations

import asyncio
import contextvars
import logging

from testnet.sim.node_logs import CURRENT_NODE, NodeLogRouter, OutsideNodes


async def test_each_node_logs_to_its_own_file_and_the_orchestrator_to_neither(tmp_path):
    log = logging.getLogger("p2p.test-node-logs")
    log.setLevel(logging.INFO)
    router = NodeLogRouter()
    log.addHandler(router)
    outside: list[str] = []
    collector = logging.Handler()
    collector.emit = lambda record: outside.append(record.getMessage())  # type: ignore[method-assign]
    collector.addFilter(OutsideNodes())
    log.addHandler(collector)
    try:
        for name in ("node0", "node1"):
            router.attach(name, tmp_path / name / "node.log")

        async def node(name: str) -> None:
            CURRENT_NODE.set(name)

            async def child() -> None:        # a task the node starts: same context
                log.info("%s child says hello", name)
            log.info("%s says hello", name)
            await asyncio.create_task(child())

        await asyncio.gather(*(asyncio.create_task(node(n), context=contextvars.Context())
                               for n in ("node0", "node1")))
        log.info("the orchestrator speaks")
    finally:
        log.removeHandler(router)
        log.removeHandler(collector)
        router.close()
    for name, other in (("node0", "node1"), ("node1", "node0")):
        text = (tmp_path / name / "node.log").read_text()
        assert f"{name} says hello" in text and f"{name} child says hello" in text
        assert other not in text and "orchestrator" not in text
    assert outside == ["the orchestrator speaks"]
