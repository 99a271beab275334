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

from consensus.pos.slashing import SlashingProtection
from consensus.pos.types import Attestation
from node.errors import NodeError

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


class DurableSlashingProtection(SlashingProtection):
    """`SlashingProtection` whose records are written through to SQLite and read back on start.

    Votes older than `keep_epochs` behind the newest target are dropped on start, as the
    in-memory detector forgets them too (a surround spanning more epochs is not detected)."""

    def __init__(self, path: Path, keep_epochs: int = 64) -> None:
        super().__init__(keep_epochs)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self.loaded = self._load(keep_epochs)
        except (sqlite3.DatabaseError, ValueError) as exc:
            raise SigningHistoryError(f"cannot read the signing history {path}: {exc}; move it "
                                      f"aside only if these validators signed nothing since "
                                      f"(or accept the risk of being slashed)") from exc

    def _load(self, keep_epochs: int) -> int:
        newest = self._db.execute("SELECT MAX(target_epoch) FROM signed_votes").fetchone()[0]
        if newest is not None:
            self._db.execute("DELETE FROM signed_votes WHERE target_epoch < ?",
                             (newest - keep_epochs,))
        count = 0
        for (raw,) in self._db.execute("SELECT raw FROM signed_votes ORDER BY target_epoch"):
            super().record_attestation(Attestation.deserialize(raw))
            count += 1
        for validator, slot in self._db.execute("SELECT validator, slot FROM signed_blocks"):
            super().record_proposal(validator, slot)
            count += 1
        return count

    def record_attestation(self, att: Attestation) -> None:
        self._db.execute("INSERT OR IGNORE INTO signed_votes VALUES (?, ?, ?)",
                         (att.validator_index, att.target.epoch, att.serialize()))
        super().record_attestation(att)

    def record_proposal(self, validator_index: int, slot: int) -> None:
        self._db.execute("INSERT OR IGNORE INTO signed_blocks VALUES (?, ?)",
                         (validator_index, slot))
        super().record_proposal(validator_index, slot)

    def close(self) -> None:
        self._db.close()
