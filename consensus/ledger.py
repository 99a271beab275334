"""Account ledger: balances and nonces, applying and reverting whole blocks.

Each rule raises with its `Violation` (consensus/errors.py): callers decide by it, never by the
text. Invariant: `apply_block` checks every rule before it changes anything, so a rejected block
leaves the ledger untouched; `revert_block(apply_block(b))` restores balances and nonces exactly
(accounts that did not exist before are removed again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from consensus.errors import InvalidBlock, InvalidTransaction, Violation
from consensus.types import MAX_AMOUNT, Block, Transaction, verify_transaction_signature

SignatureCheck = Callable[[Transaction], bool]


@dataclass
class BlockUndo:
    """What a block changed: each touched account's balance and nonce before it (None = absent)."""
    block_hash: bytes
    previous: dict[bytes, tuple[int | None, int | None]] = field(default_factory=dict)


@dataclass
class Ledger:
    balances: dict[bytes, int] = field(default_factory=dict)
    nonces: dict[bytes, int] = field(default_factory=dict)

    def balance(self, account: bytes) -> int:
        return self.balances.get(account, 0)

    def nonce(self, account: bytes) -> int:
        """The nonce the account's next transaction must carry (= transactions sent so far)."""
        return self.nonces.get(account, 0)

    def apply_genesis(self, genesis: Block) -> None:
        for tx in genesis.transactions:
            if tx.amount:
                self.balances[tx.recipient] = self.balance(tx.recipient) + tx.amount

    def apply_block(self, block: Block, height: int, block_reward: int, *,
                    verify: SignatureCheck = verify_transaction_signature) -> BlockUndo:
        """Apply a block on top of this ledger, or raise InvalidBlock and change nothing."""
        txs = block.transactions
        # [REJECT] the first transaction, and only the first, is the coinbase
        if not txs or not txs[0].is_coinbase:
            raise InvalidBlock("first transaction is not a coinbase", Violation.COINBASE)
        coinbase = txs[0]
        # [REJECT] coinbase nonce is the block height (keeps coinbase txids unique)
        if coinbase.nonce != height:
            raise InvalidBlock(f"coinbase nonce {coinbase.nonce} is not the height {height}",
                               Violation.COINBASE)
        if coinbase.fee != 0:
            raise InvalidBlock("coinbase carries a fee", Violation.COINBASE)
        balances: dict[bytes, int] = {}
        nonces: dict[bytes, int] = {}
        fees = 0
        for index, tx in enumerate(txs[1:], start=1):
            try:
                fees += self._check_transfer(tx, balances, nonces, verify)
            except InvalidTransaction as exc:
                raise InvalidBlock(f"transaction {index}: {exc}", exc.violation) from None
        # [REJECT] coinbase pays at most the block reward plus the fees of the block
        if coinbase.amount > block_reward + fees:
            raise InvalidBlock(f"coinbase pays {coinbase.amount}, more than reward {block_reward} "
                               f"+ fees {fees}", Violation.COINBASE)
        recipient = coinbase.recipient
        balances[recipient] = balances.get(recipient, self.balance(recipient)) + coinbase.amount
        undo = BlockUndo(block.hash)
        for account in set(balances) | set(nonces):
            undo.previous[account] = (self.balances.get(account), self.nonces.get(account))
        self.balances.update(balances)
        self.nonces.update(nonces)
        return undo

    def revert_block(self, undo: BlockUndo) -> None:
        for account, (balance, nonce) in undo.previous.items():
            _restore(self.balances, account, balance)
            _restore(self.nonces, account, nonce)

    def check_transaction(self, tx: Transaction, *, pending_nonce: int | None = None,
                          pending_spend: int = 0, verify: SignatureCheck =
                          verify_transaction_signature) -> None:
        """Mempool admission against this ledger plus the sender's pending transactions.

        Raises InvalidTransaction with a reason a user can act on.
        """
        balances = {tx.sender: self.balance(tx.sender) - pending_spend}
        nonces = {tx.sender: self.nonce(tx.sender) if pending_nonce is None else pending_nonce}
        self._check_transfer(tx, balances, nonces, verify)

    def _check_transfer(self, tx: Transaction, balances: dict[bytes, int],
                        nonces: dict[bytes, int], verify: SignatureCheck) -> int:
        """Check one transfer against the overlay (balances/nonces), update the overlay, return
        the fee."""
        # [REJECT] only the first transaction of a block may mint coins
        if tx.is_coinbase:
            raise InvalidTransaction("a coinbase outside the first position", Violation.COINBASE)
        # [REJECT] amounts are positive and fit in 64 bits together with the fee
        if tx.amount <= 0:
            raise InvalidTransaction(f"amount must be positive, got {tx.amount}",
                                     Violation.BAD_AMOUNT)
        if tx.amount + tx.fee > MAX_AMOUNT:
            raise InvalidTransaction("amount plus fee overflows 64 bits", Violation.BAD_AMOUNT)
        expected = nonces.get(tx.sender, self.nonce(tx.sender))
        # [REJECT] nonce is exactly the sender's next: no replays, no gaps
        if tx.nonce != expected:
            kind = "replayed" if tx.nonce < expected else "out-of-order"
            raise InvalidTransaction(f"{kind} nonce {tx.nonce}, expected {expected}",
                                     Violation.NONCE)
        balance = balances.get(tx.sender, self.balance(tx.sender))
        # [REJECT] sender can pay amount + fee
        if balance < tx.amount + tx.fee:
            raise InvalidTransaction(f"overdraft: balance {balance} < amount {tx.amount} + fee "
                                     f"{tx.fee}", Violation.OVERDRAFT)
        # [REJECT] signed by the sender's key (checked last: it is the expensive check)
        if not verify(tx):
            raise InvalidTransaction("bad signature", Violation.BAD_SIGNATURE)
        balances[tx.sender] = balance - tx.amount - tx.fee
        balances[tx.recipient] = balances.get(tx.recipient, self.balance(tx.recipient)) + tx.amount
        nonces[tx.sender] = expected + 1
        return tx.fee


def _restore(table: dict[bytes, int], key: bytes, value: int | None) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value
