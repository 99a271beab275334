"""NodeRuntime (node/runtime.py): the default is a node process as before; a simulation's runtime
keeps stores in memory, writes no event log, shares signature memos and reports no process RSS.
"""

from __future__ import annotations

from node.app import Node
from node.runtime import NodeRuntime
from tests.node.api_harness import validator_key, write_config


def test_the_default_runtime_keeps_stores_and_the_event_log_in_the_data_dir(tmp_path):
    config = write_config(tmp_path / "node", "pos")
    config.validator_keys = [validator_key(0).hex()]
    node = Node(config)
    try:
        node.events.emit("probe")
        assert node.runtime == NodeRuntime()
        data = config.data_dir
        assert (data / "chain.sqlite").exists() and (data / "signing.sqlite").exists()
        assert (data / "events.jsonl").read_text().count("probe") == 1
    finally:
        node.close()


def test_an_in_memory_runtime_writes_no_file_but_the_data_dir(tmp_path):
    config = write_config(tmp_path / "node", "pos")
    config.validator_keys = [validator_key(0).hex()]
    node = Node(config, NodeRuntime(store_path=":memory:", event_log=False, serve_http=False))
    try:
        node.events.emit("probe")
        assert node.signing_history is not None
        assert list(config.data_dir.iterdir()) == []
    finally:
        node.close()


def test_a_store_path_puts_the_signing_record_beside_it(tmp_path):
    config = write_config(tmp_path / "node", "dpos")
    config.validator_keys = [validator_key(0).hex()]
    node = Node(config, NodeRuntime(store_path=tmp_path / "elsewhere" / "chain.sqlite"))
    try:
        assert (tmp_path / "elsewhere" / "chain.sqlite").exists()
        assert (tmp_path / "elsewhere" / "signing.sqlite").exists()
    finally:
        node.close()


def test_shared_signature_memos_only_when_asked(tmp_path):
    def pair(runtime: NodeRuntime | None) -> tuple[Node, Node]:
        return (Node(write_config(tmp_path / f"a{id(runtime)}", "pos"), runtime),
                Node(write_config(tmp_path / f"b{id(runtime)}", "pos"), runtime))

    own_a, own_b = pair(None)
    shared_a, shared_b = pair(NodeRuntime(trust_honest_signatures=True, event_log=False))
    try:
        assert own_a.mempool.verified is not own_b.mempool.verified
        assert own_a.service.chain.signatures is not own_b.service.chain.signatures
        assert shared_a.mempool.verified is shared_b.mempool.verified
        assert shared_a.service.chain.signatures is shared_b.service.chain.signatures
    finally:
        for node in (own_a, own_b, shared_a, shared_b):
            node.close()


async def test_an_embedded_node_reports_no_process_memory(tmp_path):
    node = Node(write_config(tmp_path / "node"), NodeRuntime(serve_http=False, event_log=False))
    try:
        node.service.load()
        memory = node.status()["memory"]
        assert "resident_bytes" not in memory and memory["bodies"] == 1
    finally:
        node.close()
