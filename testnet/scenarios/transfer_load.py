"""Background transfers through the nodes' API: the load a scenario's `load` step and the crash
campaign keep flowing while faults hit the cluster.

Each funded genesis account sends through one node (account k through node k mod n), so a node's
mempool sees one nonce sequence per account it serves; a transfer that fails (its node is down, or
a nonce raced a reorg) is counted and the account's next nonce is asked for again. Transfers are
paced at `tps`; the loop ends after `duration_s`, or when its task is cancelled -- the counts in
`LoadStats` are kept up to date as it goes, so a cancelled load still says what it sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from consensus.types import sign_transaction
from testnet.clock import monotonic
from testnet.cluster import Cluster
from testnet.errors import NodeAPIError, NodeUnreachable


@dataclass
class LoadStats:
    sent: int = 0
    failed: int = 0


async def send_transfers(cluster: Cluster, tps: float, *, duration_s: float | None = None,
                         nodes: list[int] | None = None, senders: list[int] | None = None,
                         stats: LoadStats | None = None,
                         on_sent: Callable[[str, int, int], None] | None = None) -> LoadStats:
    """Transfers of 1 unit (fee 1) from each of `senders` (default: every genesis account) to
    the next account, round robin, at `tps`, for `duration_s` (None: until cancelled).
    `on_sent(txid, node, nonce)` hears of each accepted transfer (a run records it)."""
    stats = stats if stats is not None else LoadStats()
    accounts = cluster.accounts()
    senders = senders or list(range(len(accounts)))
    targets = nodes or list(range(cluster.size))
    nonces: dict[int, int | None] = {i: None for i in senders}
    deadline = None if duration_s is None else monotonic() + duration_s
    k = 0
    while deadline is None or monotonic() < deadline:
        sender = senders[k % len(senders)]
        node = targets[sender % len(targets)]
        k += 1
        try:
            client = cluster.client(node, timeout=2.0)
            nonce = nonces[sender]
            if nonce is None:
                nonce = (await client.account(accounts[sender]["account"]))["pending_nonce"]
            recipient = accounts[(sender + 1) % len(accounts)]["account"]
            tx = sign_transaction(bytes.fromhex(accounts[sender]["private_key"]),
                                  bytes.fromhex(recipient), 1, 1, nonce)
            result = await client.post_tx({"raw": tx.serialize().hex()})
            nonces[sender] = nonce + 1
            if on_sent is not None:
                on_sent(result["txid"], node, nonce)
            stats.sent += 1
        except (NodeUnreachable, NodeAPIError):
            nonces[sender] = None   # node down or nonce raced: ask again next time
            stats.failed += 1
        await asyncio.sleep(1.0 / tps)
    return stats
