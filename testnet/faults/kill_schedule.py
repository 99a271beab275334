"""The crash campaign's plan: which nodes to SIGKILL in each round, and when, from a seed.

A plan is a value, as a grudge is (testnet/faults/grudge.py): `kill_schedule(seed, kills, nodes)`
gives the same rounds for the same arguments, so a campaign that finds a lost block can be run
again kill for kill. The mechanism that performs the rounds is testnet/scenarios/crash_campaign.py.

Each round kills one random node or, every so often (`minority_share` of the rounds), the largest
minority at once -- (n - 1) // 2 nodes, so the others can still make progress and the victims
must catch up (from 5 nodes on; in smaller clusters that minority is one node, a single kill).
A round's timing is stated in blocks where the chain can say it (`lead_blocks` before the kill,
`down_blocks` while the victims are down) plus a random `delay_s`, so that kills do not always
land just after a block arrived, but anywhere in a node's work.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from testnet.errors import CampaignError


@dataclass(frozen=True)
class KillRound:
    index: int                 # 1-based
    nodes: tuple[int, ...]     # the victims, killed together
    minority: bool             # a whole-minority round
    lead_blocks: int           # blocks the cluster adds after the last round before this kill
    delay_s: float             # then this long: the kill lands at a random moment
    down_blocks: int           # blocks the survivors add while the victims are down

    def to_json(self) -> dict:
        return {"round": self.index, "nodes": list(self.nodes), "minority": self.minority,
                "lead_blocks": self.lead_blocks, "delay_s": self.delay_s,
                "down_blocks": self.down_blocks}


def largest_minority(nodes: int) -> int:
    """The most nodes that are still fewer than half of `nodes`."""
    return (nodes - 1) // 2


def kill_schedule(seed: int, kills: int, nodes: int, *, minority_share: float = 0.15,
                  max_delay_s: float = 1.0, max_lead_blocks: int = 1,
                  max_down_blocks: int = 2) -> list[KillRound]:
    """`kills` rounds on a cluster of `nodes`, drawn from `seed`."""
    if nodes < 2:
        raise CampaignError(f"nodes: a crash campaign needs at least 2 nodes (one to rejoin the "
                            f"others), got {nodes}")
    if kills < 1:
        raise CampaignError(f"kills: at least 1, got {kills}")
    if not 0 <= minority_share <= 1:
        raise CampaignError(f"minority_share: between 0 and 1, got {minority_share}")
    rng = random.Random(seed)
    rounds = []
    for index in range(1, kills + 1):
        # Below 5 nodes the largest minority is one node: such a round is a single kill.
        minority = rng.random() < minority_share and largest_minority(nodes) >= 2
        victims = (tuple(sorted(rng.sample(range(nodes), largest_minority(nodes))))
                   if minority else (rng.randrange(nodes),))
        rounds.append(KillRound(index, victims, minority,
                                lead_blocks=rng.randint(0, max_lead_blocks),
                                delay_s=round(rng.uniform(0, max_delay_s), 3),
                                down_blocks=rng.randint(0, max_down_blocks)))
    return rounds
