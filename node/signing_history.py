"""Slashing protection that survives a restart: what this node's validators signed, on disk.

An honest validator must never sign two blocks for one slot, two votes for one target epoch, or
a vote surrounding (or surrounded by) one it signed (EIP-3076 in spirit). The record of what it
signed is what makes that checkable, so it has to outlive the process: a node killed right after
voting and restarted behind the others (or shown another branch) would otherwise sign again from a
blank record and get itself slashed. Invariant: a signature leaves the node only after its record
is committed here (SQLite WAL, `synchronous=NORMAL`: a killed process loses no committed row).

The file is separate from the chain store (`chain.sqlite`): wiping the chain to resync must not
wipe the memory of what was signed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from consensus.ffg import VoteProtection
from consensus.hybrid.types import HybridVote
from consensus.pos.slashing import SlashingProtection
from consensus.pos.types import Attestation
from node.errors import NodeError
from node.store import bound_page_cache

SCHEMA = """
CREATE TABLE IF NOT EXISTS signed_votes (
    validator    INTEGER NOT NULL,
    target_epoch INTEGER NOT NULL,
    raw          BLOB NOT NULL,
    PRIMARY KEY (validator, target_epoch, raw)
);
CREATE TABLE IF NOT EXISTS signed_blocks (
    validator INTEGER NOT NULL,
    slot      INTEGER NOT NULL,
    PRIMARY KEY (validator, slot)
);
"""


class SigningHistoryError(NodeError, RuntimeError):
    """The signing history cannot be read: refusing to sign from a blank record."""


class SigningRecord:
    """The SQLite file both kinds of durable protection write through to: the votes signed (their
    wire bytes, by validator and target epoch) and the blocks proposed (PoS)."""

    def __init__(self, path: Path | str, keep_epochs: int) -> None:
        if str(path) != ":memory:":   # in memory: a simulated node's record, gone with it
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            bound_page_cache(self._db)
            self._db.executescript(SCHEMA)
            newest = self._db.execute("SELECT MAX(target_epoch) FROM signed_votes").fetchone()[0]
            if newest is not None:
                self._db.execute("DELETE FROM signed_votes WHERE target_epoch < ?",
                                 (newest - keep_epochs,))
        except sqlite3.DatabaseError as exc:
            raise self.unreadable(exc) from exc

    def unreadable(self, exc: Exception) -> SigningHistoryError:
        return SigningHistoryError(f"cannot read the signing history {self.path}: {exc}; move "
                                   f"it aside only if these validators signed nothing since (or "
                                   f"accept the risk of being slashed)")

    def votes(self) -> list[bytes]:
        return [raw for (raw,) in self._db.execute(
            "SELECT raw FROM signed_votes ORDER BY target_epoch")]

    def blocks(self) -> list[tuple[int, int]]:
        """Each validator's highest proposed slot: all that protection keeps in memory (the
        rows stay on disk as the history)."""
        return list(self._db.execute(
            "SELECT validator, MAX(slot) FROM signed_blocks GROUP BY validator"))

    def put_vote(self, validator: int, target_epoch: int, raw: bytes) -> None:
        self._db.execute("INSERT OR IGNORE INTO signed_votes VALUES (?, ?, ?)",
                         (validator, target_epoch, raw))

    def put_block(self, validator: int, slot: int) -> None:
        self._db.execute("INSERT OR IGNORE INTO signed_blocks VALUES (?, ?)", (validator, slot))

    def close(self) -> None:
        self._db.close()


class DurableSlashingProtection(SlashingProtection):
    """`SlashingProtection` whose records are written through to SQLite and read back on start.

    Votes older than `keep_epochs` behind the newest target are dropped on start, as the
    in-memory detector forgets them too (a surround spanning more epochs is not detected)."""

    def __init__(self, path: Path | str, keep_epochs: int = 64) -> None:
        super().__init__(keep_epochs)
        self.path = path
        self._record = SigningRecord(path, keep_epochs)
        try:
            for raw in self._record.votes():
                super().record_attestation(Attestation.deserialize(raw))
                self.loaded += 1
            for validator, slot in self._record.blocks():
                super().record_proposal(validator, slot)
                self.loaded += 1
        except (sqlite3.DatabaseError, ValueError) as exc:
            raise self._record.unreadable(exc) from exc

    def record_attestation(self, att: Attestation) -> None:
        self._record.put_vote(att.validator_index, att.target.epoch, att.serialize())
        super().record_attestation(att)

    def record_proposal(self, validator_index: int, slot: int) -> None:
        self._record.put_block(validator_index, slot)
        super().record_proposal(validator_index, slot)

    def close(self) -> None:
        self._record.close()


class DurableVoteProtection(VoteProtection[HybridVote]):
    """The same, for the hybrid consensus's FFG votes (node/hybrid_validators.py)."""

    def __init__(self, path: Path | str, keep_epochs: int = 64) -> None:
        super().__init__(keep_epochs)
        self.path = path
        self._record = SigningRecord(path, keep_epochs)
        try:
            for raw in self._record.votes():
                super().record_vote(HybridVote.deserialize(raw))
                self.loaded += 1
        except (sqlite3.DatabaseError, ValueError) as exc:
            raise self._record.unreadable(exc) from exc

    def record_vote(self, vote: HybridVote) -> None:
        self._record.put_vote(vote.validator_index, vote.target_epoch, vote.serialize())
        super().record_vote(vote)

    def close(self) -> None:
        self._record.close()
