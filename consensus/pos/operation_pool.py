"""Operations waiting for a proposal: attestations, slashing evidence, deposits and exits.

The pool only stores and bounds; what goes into a block is decided by `proposal.build_block`
against the state of the branch being extended, so one pool serves every branch (an attestation
included on a branch that lost a reorg is packed again on the winning one).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import TypeVar

from consensus.pos.types import Attestation, Deposit, Evidence, Exit

V = TypeVar("V")


class BoundedMap(OrderedDict[bytes, V]):
    """Insertion-ordered map (root -> operation) that evicts its oldest entries beyond
    `max_items`."""

    def __init__(self, max_items: int) -> None:
        super().__init__()
        self.max_items = max_items

    def put(self, key: bytes, value: V) -> bool:
        if key in self:
            return False
        self[key] = value
        while len(self) > self.max_items:
            self.popitem(last=False)
        return True


class OperationPool:
    def __init__(self, max_attestations: int = 65_536, max_evidence: int = 1024,
                 max_deposits: int = 1024, max_exits: int = 1024) -> None:
        self.attestations: BoundedMap[Attestation] = BoundedMap(max_attestations)
        self.evidence: BoundedMap[Evidence] = BoundedMap(max_evidence)
        self.deposits: BoundedMap[Deposit] = BoundedMap(max_deposits)
        self.exits: BoundedMap[Exit] = BoundedMap(max_exits)

    def add_attestation(self, att: Attestation) -> bool:
        return self.attestations.put(att.root, att)

    def add_evidence(self, evidence: Evidence) -> bool:
        return self.evidence.put(evidence.root, evidence)

    def add_deposit(self, deposit: Deposit) -> bool:
        return self.deposits.put(deposit.root, deposit)

    def add_exit(self, request: Exit) -> bool:
        return self.exits.put(request.root, request)

    def attestations_by_slot(self) -> list[Attestation]:
        return sorted(self.attestations.values(), key=lambda a: (a.slot, a.validator_index))

    def prune_attestations(self, oldest_slot: int) -> None:
        """Drop attestations for slots before `oldest_slot` (too old for any block)."""
        stale = [root for root, att in self.attestations.items() if att.slot < oldest_slot]
        for root in stale:
            del self.attestations[root]

    def remove(self, table: str, roots: Iterable[bytes]) -> None:
        pool = getattr(self, table)
        for root in roots:
            pool.pop(root, None)
