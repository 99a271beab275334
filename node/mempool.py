"""Pending transactions, kept valid against the current head.

A transaction's signature is verified once, on admission; its txid then goes into a bounded
`verified` cache that block validation consults, so a transaction gossiped before its block is not
verified a second time (an Ed25519 verify costs ~60 us, more than a websocket hop).
Each sender's pending transactions form a gap-free nonce sequence starting at the ledger's nonce.
"""

from __future__ import annotations

from collections import OrderedDict

from consensus.errors import InvalidTransaction, Violation
from consensus.ledger import Ledger
from consensus.types import Transaction, verify_transaction_signature


class MempoolFull(InvalidTransaction):
    """The pool is at capacity."""

    violation = Violation.POOL_FULL


class VerifiedCache:
    """Set of txids whose signatures are known good, so a transaction checked on admission is
    not checked again when its block arrives. Bound: `max_items` txids, oldest out (4,096: the
    transactions of the next few blocks; an evicted one costs one more verification)."""

    def __init__(self, max_items: int = 4_096) -> None:
        self.max_items = max_items
        self._ids: OrderedDict[bytes, None] = OrderedDict()

    def __contains__(self, txid: bytes) -> bool:
        return txid in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, txid: bytes) -> None:
        self._ids[txid] = None
        if len(self._ids) > self.max_items:
            self._ids.popitem(last=False)

    def verify(self, tx: Transaction) -> bool:
        """Signature check that consults the cache first and remembers successes."""
        txid = tx.txid
        if txid in self._ids:
            return True
        if verify_transaction_signature(tx):
            self.add(txid)
            return True
        return False


class Mempool:
    def __init__(self, max_txs: int = 10_000, verified: VerifiedCache | None = None) -> None:
        self.max_txs = max_txs
        self.verified = verified if verified is not None else VerifiedCache()
        self._txs: dict[bytes, Transaction] = {}
        self._by_sender: dict[bytes, dict[int, Transaction]] = {}

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, txid: bytes) -> bool:
        return txid in self._txs

    def _pending(self, ledger: Ledger, sender: bytes) -> list[Transaction]:
        """The sender's pool transactions the ledger has not yet confirmed (the pool may lag a
        new head by one loop iteration)."""
        floor = ledger.nonce(sender)
        return [tx for n, tx in self._by_sender.get(sender, {}).items() if n >= floor]

    def pending_nonce(self, ledger: Ledger, sender: bytes) -> int:
        return ledger.nonce(sender) + len(self._pending(ledger, sender))

    def add(self, tx: Transaction, ledger: Ledger) -> bytes:
        """Admit a transaction or raise InvalidTransaction with the reason; returns its txid."""
        txid = tx.txid
        if txid in self._txs:
            raise InvalidTransaction("transaction already in the mempool", Violation.DUPLICATE)
        if len(self._txs) >= self.max_txs:
            raise MempoolFull(f"mempool full ({self.max_txs} transactions)")
        pending = self._pending(ledger, tx.sender)
        spend = sum(p.amount + p.fee for p in pending)
        ledger.check_transaction(tx, pending_nonce=ledger.nonce(tx.sender) + len(pending),
                                 pending_spend=spend, verify=self.verified.verify)
        self._insert(tx)
        return txid

    def candidates(self) -> list[Transaction]:
        """Transactions for a block template: each sender's in nonce order."""
        out: list[Transaction] = []
        for by_nonce in self._by_sender.values():
            out.extend(by_nonce[n] for n in sorted(by_nonce))
        return out

    def on_new_head(self, ledger: Ledger, reverted: list[Transaction]) -> None:
        """Drop what the new chain confirmed or made invalid; take back reverted transactions.

        Without reverted transactions (the common case: the head just grew) only senders whose
        ledger nonce moved past pool entries are touched; a reorg re-checks the whole pool."""
        if not reverted:
            self._drop_confirmed(ledger)
            return
        old = list(self._txs.values())
        self._txs.clear()
        self._by_sender.clear()
        seen: set[bytes] = set()
        for tx in sorted([*reverted, *old], key=lambda t: (t.sender, t.nonce)):
            if tx.txid in seen or tx.is_coinbase:
                continue
            seen.add(tx.txid)
            try:
                self.add(tx, ledger)
            except InvalidTransaction:
                continue

    def _drop_confirmed(self, ledger: Ledger) -> None:
        for sender in list(self._by_sender):
            by_nonce = self._by_sender[sender]
            floor = ledger.nonce(sender)
            stale = [n for n in by_nonce if n < floor]
            if not stale:
                continue
            for n in stale:
                del self._txs[by_nonce.pop(n).txid]
            # What is left must still be a gap-free, affordable sequence from the new nonce.
            balance = ledger.balance(sender)
            expected = floor
            for n in sorted(by_nonce):
                tx = by_nonce[n]
                if n != expected or balance < tx.amount + tx.fee:
                    for m in [m for m in by_nonce if m >= n]:
                        del self._txs[by_nonce.pop(m).txid]
                    break
                balance -= tx.amount + tx.fee
                expected += 1
            if not by_nonce:
                del self._by_sender[sender]

    def _insert(self, tx: Transaction) -> None:
        self._txs[tx.txid] = tx
        self._by_sender.setdefault(tx.sender, {})[tx.nonce] = tx
