"""Work that follows a new head but must not delay gossip: re-validating the mempool (taking back
reverted transactions) and telling listeners (the miner's next template). It runs after the
block that caused it has been written to the peers: the block is forwarded in the same step that
accepted it, which wakes the connections' writers; the tidy-up is scheduled one loop iteration
later than those wake-ups, so it never runs between a block's acceptance and its sending.
Several head changes in one step are tidied once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from consensus.ledger import Ledger
from consensus.types import Transaction
from node.mempool import Mempool


class HeadTidy:
    def __init__(self, mempool: Mempool, ledger: Callable[[], Ledger]) -> None:
        self.mempool = mempool
        self.ledger = ledger
        self.listeners: list[Callable[[], None]] = []
        self._reverted: list[Transaction] = []
        self._scheduled = False

    def schedule(self, reverted: list[Transaction]) -> None:
        self._reverted.extend(reverted)
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:      # no loop (replay at start-up, unit tests): tidy now
            self.run()
            return
        self._scheduled = True
        # two hops: behind the writers that this step's sends are about to wake
        loop.call_soon(loop.call_soon, self.run)

    def run(self) -> None:
        self._scheduled = False
        reverted, self._reverted = self._reverted, []
        self.mempool.on_new_head(self.ledger(), reverted)
        for listener in self.listeners:
            listener()
