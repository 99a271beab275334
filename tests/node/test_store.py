"""The block store survives a process killed with SIGKILL mid-stream, and refuses another
network."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from node.memory_report import sqlite_memory_used
from node.store import SQLITE_CACHE_KIB, BlockStore, StoreError


def test_blocks_committed_before_sigkill_are_all_there(tmp_path):
    db = tmp_path / "chain.sqlite"
    writer = textwrap.dedent(f"""
        import sys
        from node.store import BlockStore
        store = BlockStore(__import__("pathlib").Path({str(db)!r}))
        store.check_network("net", "00" * 32)
        for i in range(100000):
            store.put_block(i.to_bytes(32, "big"), i, b"x" * 200, 0.0)
            if i == 500:
                print("ready", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    store = BlockStore(db)
    count = store.count()
    assert count >= 501
    heights = [i for i, (raw, _) in enumerate(store.iter_blocks())]
    assert heights == list(range(count)), "arrival order is kept and there are no holes"
    assert store.get_raw((500).to_bytes(32, "big")) == b"x" * 200
    store.close()


def test_store_of_another_network_is_refused(tmp_path):
    store = BlockStore(tmp_path / "chain.sqlite")
    store.check_network("net-a", "aa" * 32)
    store.close()
    reopened = BlockStore(tmp_path / "chain.sqlite")
    reopened.check_network("net-a", "aa" * 32)
    with pytest.raises(StoreError, match="use another data dir"):
        reopened.check_network("net-b", "bb" * 32)
    reopened.close()


def test_sqlite_page_cache_stays_bounded_as_the_chain_grows(tmp_path):
    """issue 17: SQLite's default page cache (2,000 KiB) fills as the file grows, over the first
    quarter hour of a 1 s chain; the store caps it, so what SQLite holds stops growing early."""
    before = sqlite_memory_used()
    if before is None:
        pytest.skip("libsqlite3.so.0 not found: cannot read SQLite's memory")
    store = BlockStore(tmp_path / "chain.sqlite")
    try:
        for height in range(3000):            # ~4 MB of blocks and 12,000 index rows
            block_hash = os.urandom(32)
            store.put_block(block_hash, height, os.urandom(1200), float(height),
                            [os.urandom(32) for _ in range(4)])
        held = sqlite_memory_used() - before
    finally:
        store.close()
    assert held < (SQLITE_CACHE_KIB + 256) * 1024, f"SQLite holds {held} bytes"
