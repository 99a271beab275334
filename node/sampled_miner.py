"""Sampled PoW mining for simulations: the time to a miner's next block is drawn, not hashed.

A miner of `hashrate` hashes/s against a target T tries nonces that each succeed with probability
(T + 1) / 2**256, so its time to the next block is exponential with rate
hashrate / expected_hashes(T), expected_hashes(T) = 2**256 / (T + 1) (consensus.pow.block_work).
That is what this miner draws, from a seeded `random.Random`, on the loop's clock -- virtual time
on a simulated loop -- so 1000 miners cost one timer each instead of a core each. The exponential
is memoryless: `refresh()` (a new head, new transactions, a new role) redraws, which changes
nothing in distribution and is exactly right when the target changed with the head.

A draw needs only the target of the head's child (`next_bits`, retargeting included); the block
template is built when the draw comes due, at that moment (the node's clock gives its timestamp,
the mempool its transactions), and gets a seeded nonce. So of 1000 miners only the one that finds
the block builds one. Its hash does not
meet the target: a network of sampled miners runs under a chain spec that says
`proof_of_work: "sampled"`, under which the PoW check alone is skipped (consensus/pow_chain.py).

Same interface as node/miner.py's `Miner` (what `Node` and the admin API use): `refresh`,
`configure`, `run`, `enabled`, `hashrate`, `hashrate_cap`, `blocks_found`. `run()` ends only when
cancelled; an exception of `on_solved` ends it (and the node's TaskGroup), as with the hashing
miner.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from consensus import pow
from consensus.block_builder import with_nonce
from consensus.types import Block
from node.clock import loop_time
from node.miner import MinerControls

# The rate of a sampled miner without a cap (a hashing one would run flat out): a modest laptop
# core's double-SHA256 rate in Python, and the testnet manifest's default cap.
DEFAULT_SAMPLED_HASHRATE_HS = 20_000.0


class SampledMiner(MinerControls):
    def __init__(self, *, build_template: Callable[[], Block], next_bits: Callable[[], int],
                 on_solved: Callable[[Block], None], hashrate: float | None,
                 rng: random.Random, enabled: bool = True) -> None:
        self.build_template = build_template
        self.next_bits = next_bits      # the bits of the head's child: the target of a draw
        self.on_solved = on_solved
        self.hashrate_cap = hashrate
        self.rng = rng
        self.enabled = enabled
        self.blocks_found = 0
        self.draws = 0                 # redraws of the next block's time (tests, profiles)
        self._due: float | None = None  # loop time of the next block; None = not mining
        self._wake: asyncio.Event | None = None

    @property
    def rate_hs(self) -> float:
        """Hashes/s this miner stands for: its cap, or the default for an uncapped miner."""
        return self.hashrate_cap if self.hashrate_cap else DEFAULT_SAMPLED_HASHRATE_HS

    @property
    def hashrate(self) -> float:
        """The hashrate it mines at (a hashing miner measures it; here it is the rate drawn
        with), 0 while disabled."""
        return self.rate_hs if self.enabled else 0.0

    def draw_interval(self, bits: int) -> float:
        """Seconds to the next block at `bits`: Exp(hashrate / expected hashes)."""
        self.draws += 1
        return self.rng.expovariate(self.rate_hs / pow.block_work(bits))

    def refresh(self) -> None:
        """Redraw the time to the next block against the current template's target (new head,
        new transactions, settings changed). Before `run()` started it does nothing."""
        if self._wake is None:
            return
        if not self.enabled:
            self._due = None
        else:
            self._due = loop_time() + self.draw_interval(self.next_bits())
        self._wake.set()

    async def run(self, ready: asyncio.Event | None = None) -> None:
        wake = self._wake = asyncio.Event()
        self.refresh()
        if ready is not None:
            ready.set()
        try:
            while True:
                wake.clear()
                due = self._due
                if due is None:
                    await wake.wait()
                    continue
                delay = due - loop_time()
                if delay > 0:
                    try:
                        async with asyncio.timeout(delay):
                            await wake.wait()
                        continue                  # refreshed before it came due: a new draw
                    except TimeoutError:
                        if wake.is_set():
                            continue
                self._solve()
        finally:
            self._wake = None
            self._due = None

    def _solve(self) -> None:
        """The drawn time has come: a block on the current template, with a seeded nonce."""
        self._due = None
        template = self.build_template()
        block = with_nonce(template, template.header.time, self.rng.getrandbits(32))
        self.blocks_found += 1
        self.on_solved(block)   # the node refreshes the miner: a new head, or mine on
