"""Read-only views the API serves the same way for both consensuses: an account at the head, and
where a transaction is. Chains differ only in how a block id is shown (PoW byte-reversed, PoS
plain hex), which the caller passes in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from consensus.pow import hash_hex
from node.mempool import Mempool


def account_view(chain: Any, mempool: Mempool, account: bytes) -> dict:
    ledger = chain.ledger
    return {"balance": ledger.balance(account), "nonce": ledger.nonce(account),
            "pending_nonce": mempool.pending_nonce(ledger, account),
            "height": chain.head.height}


def transaction_view(chain: Any, mempool: Mempool, blocks_with_tx: Callable[[bytes], list[bytes]],
                     txid: bytes, show_block: Callable[[bytes], str]) -> dict:
    """In the mempool, in main-chain or side-branch blocks (txids shown as Bitcoin shows them).
    `blocks_with_tx` is the store's transaction index."""
    blocks, main = [], None
    for block_id in blocks_with_tx(txid):
        entry = chain.get(block_id)
        if entry is None:
            continue
        on_main = chain.is_on_main_chain(entry)
        blocks.append({"block": show_block(block_id), "height": entry.height,
                       "main_chain": on_main})
        if on_main:
            main = entry
    return {"txid": hash_hex(txid), "in_mempool": txid in mempool,
            "in_main_chain": main is not None, "height": main.height if main else None,
            "confirmations": chain.head.height - main.height + 1 if main else 0,
            "blocks": blocks}
