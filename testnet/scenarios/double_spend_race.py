"""The attacker's side of a double-spend race, played from the orchestrator.

Rosenfeld's model ("Analysis of hashrate-based double spending", 2014, section 5): the attacker
mines a private branch from the parent of the merchant's payment block; the merchant waits for
`z` confirmations on the honest chain; from then on the attacker wins as soon as its branch is
longer (carries more work) than the honest chain, which happens with probability
`r(q, z) = 1 - sum_{m=0}^{z} C(m+z-1, m) (p^z q^m - q^z p^m)` (testnet/experiments/theory.py).
The infinite race is cut off when the attacker is `give_up_behind` blocks behind: catching up
from there has probability (q/p)^(D+1), which the closing figures state next to the bound.

The node under the `withhold` role already keeps its branch private and ignores the public chain;
this module only watches both chains and says when the attacker's rule decides. It reads what
the nodes' APIs say (heights, total work, the payment's confirmations), so it works the same on
every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from testnet.cluster import LocalCluster
from testnet.errors import NodeAPIError, NodeUnreachable, ScenarioError
from testnet.waiting import wait_until

POLL_S = 0.05


@dataclass
class RaceView:
    """One look at both chains, counted from the fork point (the attacker's last public block)."""
    attacker_blocks: int
    honest_blocks: int
    attacker_work: int
    honest_work: int
    confirmations: int

    def decision(self, confirmations: int, give_up_behind: int) -> str | None:
        """`published` once the payment is confirmed and the attacker's branch has more work,
        `gave_up` once the attacker is `give_up_behind` blocks behind; None while undecided."""
        if self.honest_blocks - self.attacker_blocks >= give_up_behind:
            return "gave_up"
        if self.confirmations >= confirmations and self.attacker_work > self.honest_work:
            return "published"
        return None


async def play_race(cluster: LocalCluster, *, attacker: int, txid: str, confirmations: int,
                    give_up_behind: int, timeout: float,
                    observe: Callable[..., None]) -> str:
    """Wait for the attacker's decision; records `race_started` and `race_finished`
    observations and returns the decision."""
    start = await cluster.status(attacker)
    if start is None:
        raise ScenarioError(f"race: the attacker {cluster.name(attacker)} does not answer")
    if start.get("role") != "withhold":
        raise ScenarioError(f"race: the attacker {cluster.name(attacker)} must hold the withhold "
                            f"role (it is {start.get('role')!r}); add a role step before")
    fork_height = start["height"] - start["private_blocks"]
    honest = [i for i in range(cluster.size) if i != attacker]
    observe("race_started", attacker=cluster.name(attacker), txid=txid, fork_height=fork_height,
            premined=start["private_blocks"], confirmations=confirmations,
            give_up_behind=give_up_behind)
    last: list[RaceView] = []

    async def look() -> str | None:
        view = await _view(cluster, attacker, honest, txid, fork_height)
        if view is None:
            return None
        last[:] = [view]
        return view.decision(confirmations, give_up_behind)

    decision = await wait_until(look, timeout, "the double-spend race to be decided",
                                interval=POLL_S, last=lambda: last[0] if last else "no view")
    view = last[0]
    observe("race_finished", attacker=cluster.name(attacker), decision=decision,
            attacker_blocks=view.attacker_blocks, honest_blocks=view.honest_blocks,
            confirmations=view.confirmations, fork_height=fork_height)
    return decision


async def _view(cluster: LocalCluster, attacker: int, honest: list[int], txid: str,
                fork_height: int) -> RaceView | None:
    """Both chains as the nodes see them now (None if the attacker or every honest node is
    silent for a moment)."""
    mine = await cluster.status(attacker)
    answers = [(i, s) for i, s in zip(honest, await cluster.statuses(honest)) if s is not None]
    if mine is None or not answers:
        return None
    best_index, best = max(answers, key=lambda pair: _work(pair[1]))
    return RaceView(attacker_blocks=mine["height"] - fork_height,
                    honest_blocks=best["height"] - fork_height,
                    attacker_work=_work(mine), honest_work=_work(best),
                    confirmations=await _confirmations(cluster, best_index, txid))


def _work(status: dict[str, Any] | None) -> int:
    return int(status.get("total_work", 0)) if status else -1


async def _confirmations(cluster: LocalCluster, index: int, txid: str) -> int:
    try:
        status = await cluster.client(index, timeout=2.0).tx(txid)
    except (NodeUnreachable, NodeAPIError):
        return 0
    return int(status["confirmations"]) if status.get("in_main_chain") else 0
