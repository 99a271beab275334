"""How a miner publishes its blocks: honestly, selfishly, or not at all (for attack experiments).

- `honest`: publish every block at once, build on the best chain.
- `selfish-miner`: Eyal and Sirer's selfish mining (SM1). Own blocks stay private while the miner
  leads; when the public chain catches up it reveals just enough to win or tie, and it adopts the
  public chain when it falls behind. With the tie-breaking rule here (equal work keeps the tip seen
  first) it wins ties only when its block arrives first, i.e. gamma is whatever the network gives.
- `withhold`: secret mining for a double-spend: own blocks and transactions are not published,
  peers' blocks are held back unprocessed (the attacker ignores the public chain), and switching
  the role back to honest releases the private branch, then processes the held blocks.

A strategy never changes consensus rules: every block still goes through the node's chain.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from consensus.pow import hash_hex
from consensus.types import Block

log = logging.getLogger(__name__)

ROLES = ("honest", "selfish-miner", "withhold")


class MiningStrategy:
    name = "honest"
    relays_own_transactions = True
    holds_peer_blocks = False

    def __init__(self, publish: Callable[[Block], None], head_height: Callable[[], int],
                 head_is: Callable[[bytes], bool]) -> None:
        self.publish = publish
        self.head_height = head_height
        self.head_is = head_is

    def on_own_block(self, block: Block, height: int) -> None:
        self.publish(block)

    def on_peer_block(self, height: int) -> None:
        """A block from a peer entered the chain at `height` (after fork choice ran)."""

    def private_blocks(self) -> list[Block]:
        return []

    def release(self) -> list[Block]:
        """Publish everything held back (called when the role changes); returns what it sent."""
        return []


class SelfishMiner(MiningStrategy):
    name = "selfish-miner"

    def __init__(self, publish: Callable[[Block], None], head_height: Callable[[], int],
                 head_is: Callable[[bytes], bool]) -> None:
        super().__init__(publish, head_height, head_is)
        self.private: list[tuple[int, Block]] = []   # unpublished own blocks (height, block)
        self.public_height = self.head_height()
        self.racing = False

    def private_blocks(self) -> list[Block]:
        return [b for _, b in self.private]

    def on_own_block(self, block: Block, height: int) -> None:
        lead_before = (height - 1) - self.public_height
        self.private.append((height, block))
        if lead_before == 0 and self.racing:
            # We were in a tie race and just pulled ahead: reveal and win it.
            self._publish_upto(height)
            self.racing = False
        # Otherwise keep mining on the private branch.

    def on_peer_block(self, height: int) -> None:
        if height <= self.public_height:
            return
        self.public_height = height
        if not self.private or not self.head_is(self.private[-1][1].hash):
            # The public chain overtook us (fork choice switched): adopt it.
            self.private.clear()
            self.racing = False
            return
        lead = self.private[-1][0] - self.public_height
        if lead == 0:
            self._publish_upto(self.public_height)      # tie: race with our block
            self.racing = True
        elif lead == 1:
            self._publish_upto(self.private[-1][0])     # reveal everything: we win by one
            self.racing = False
        else:
            self._publish_upto(self.public_height)      # stay ahead, reveal what they matched

    def release(self) -> list[Block]:
        return self._publish_upto(self.private[-1][0]) if self.private else []

    def _publish_upto(self, height: int) -> list[Block]:
        sent = [b for h, b in self.private if h <= height]
        self.private = [(h, b) for h, b in self.private if h > height]
        for block in sent:
            log.info("selfish miner reveals %s", hash_hex(block.hash)[:16])
            self.publish(block)
        return sent


class Withholder(MiningStrategy):
    name = "withhold"
    relays_own_transactions = False
    holds_peer_blocks = True

    def __init__(self, publish: Callable[[Block], None], head_height: Callable[[], int],
                 head_is: Callable[[bytes], bool]) -> None:
        super().__init__(publish, head_height, head_is)
        self.private: list[Block] = []

    def on_own_block(self, block: Block, height: int) -> None:
        self.private.append(block)

    def private_blocks(self) -> list[Block]:
        return list(self.private)

    def release(self) -> list[Block]:
        sent, self.private = self.private, []
        for block in sent:
            self.publish(block)
        return sent


def make_strategy(role: str, *, publish: Callable[[Block], None], head_height: Callable[[], int],
                  head_is: Callable[[bytes], bool]) -> MiningStrategy:
    classes: dict[str, type[MiningStrategy]] = {
        "honest": MiningStrategy, "selfish-miner": SelfishMiner, "withhold": Withholder}
    try:
        cls = classes[role]
    except KeyError:
        raise ValueError(f"unknown role {role!r}; PoW roles are {', '.join(ROLES)}") from None
    return cls(publish, head_height, head_is)
