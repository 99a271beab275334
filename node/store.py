"""Crash-safe block storage in SQLite (WAL).

Every block that entered the node's block tree is written here before the node announces it, in
arrival order; the chain state is rebuilt on start by replaying them through the consensus rules.
The transaction index (which blocks hold a txid) lives here too, written in the same commit as
the block, so it costs no memory and survives a restart. Bodies that left the chain's memory are
read back by id (`get_raw`, through node/block_archive.py's bounded cache).
WAL with `synchronous=NORMAL` survives a killed process (SIGKILL) without losing a committed block:
a commit is in the WAL file once `commit()` returns; only an OS crash could lose the last few.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

from node.errors import NodeError

# SQLite's page cache per connection. Its default, 2,000 KiB, fills as the file grows -- over the
# first quarter hour of a chain at one block a second, and for hours for the signing history --
# which is growth after a soak's tenth minute; what the node reads back (archive misses, sync)
# comes from the OS's page cache just as fast. issue 17: see docs/memory.md.
SQLITE_CACHE_KIB = 512


def bound_page_cache(db: sqlite3.Connection) -> None:
    """Caps the connection's page cache at SQLITE_CACHE_KIB (a negative size is KiB in SQLite)."""
    db.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")

SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    hash     BLOB NOT NULL UNIQUE,
    height   INTEGER NOT NULL,
    raw      BLOB NOT NULL,
    received REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS undo (hash BLOB PRIMARY KEY, raw BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS txs (
    txid     BLOB NOT NULL,
    block    BLOB NOT NULL,
    PRIMARY KEY (txid, block)
) WITHOUT ROWID;
"""


class StoreError(NodeError, RuntimeError):
    """The store belongs to another network or cannot be opened."""


class BlockStore:
    def __init__(self, path: Path | str) -> None:
        """A store in the SQLite file `path`, or in memory for ":memory:" (a simulated node's
        choice: gone with the object, so a restart replays nothing)."""
        if str(path) != ":memory:":
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        bound_page_cache(self._db)
        self._db.executescript(SCHEMA)

    def check_network(self, chain_id: str, genesis_hex: str) -> None:
        """Bind the store to one network on first use; refuse a store of another network."""
        row = self._db.execute("SELECT value FROM meta WHERE key='genesis'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('genesis', ?), ('chain_id', ?)",
                             (genesis_hex, chain_id))
        elif row[0] != genesis_hex:
            raise StoreError(f"data dir {self.path.parent} holds network with genesis {row[0]}, "
                             f"not {genesis_hex}; use another data dir")

    def put_block(self, block_hash: bytes, height: int, raw: bytes, received: float,
                  txids: Iterable[bytes] = ()) -> None:
        """Store a block and index its transactions, in one commit."""
        with self._transaction():
            self._db.execute("INSERT OR IGNORE INTO blocks (hash, height, raw, received) "
                             "VALUES (?, ?, ?, ?)", (block_hash, height, raw, received))
            self._db.executemany("INSERT OR IGNORE INTO txs (txid, block) VALUES (?, ?)",
                                 ((txid, block_hash) for txid in txids))

    def index_transactions(self, pairs: Iterable[tuple[bytes, bytes]]) -> None:
        """(txid, block id) pairs, in one commit: rebuilds the index of a store written before
        it had one (replay at start-up); pairs already indexed are skipped."""
        with self._transaction():
            self._db.executemany("INSERT OR IGNORE INTO txs (txid, block) VALUES (?, ?)", pairs)

    def put_undo(self, block_hash: bytes, raw: bytes) -> None:
        """Undo data of a PoW main-chain block that left the chain's memory (replaced if the
        block is connected again after a reorg)."""
        self._db.execute("INSERT OR REPLACE INTO undo (hash, raw) VALUES (?, ?)",
                         (block_hash, raw))

    def get_undo(self, block_hash: bytes) -> bytes | None:
        row = self._db.execute("SELECT raw FROM undo WHERE hash=?", (block_hash,)).fetchone()
        return row[0] if row else None

    def blocks_with_tx(self, txid: bytes) -> list[bytes]:
        """Ids of the stored blocks holding `txid` (any branch)."""
        return [row[0] for row in
                self._db.execute("SELECT block FROM txs WHERE txid=?", (txid,))]

    def tx_count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM txs").fetchone()[0]

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def get_raw(self, block_hash: bytes) -> bytes | None:
        row = self._db.execute("SELECT raw FROM blocks WHERE hash=?", (block_hash,)).fetchone()
        return row[0] if row else None

    def iter_blocks(self) -> Iterator[tuple[bytes, float]]:
        """Every stored block in arrival order: (raw, received time)."""
        yield from self._db.execute("SELECT raw, received FROM blocks ORDER BY seq")

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM blocks").fetchone()[0]

    def close(self) -> None:
        self._db.close()
