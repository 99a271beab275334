"""The crash campaign: SIGKILL nodes round after round while transfers flow, and check after every
restart that nothing the node had promised was lost.

Each round of a kill schedule (testnet/faults/kill_schedule.py) is performed through the nemesis:

1. wait until the cluster has added the round's `lead_blocks`, then the planned `delay_s` (the
   moment of the kill is part of the plan, so kills land anywhere in a node's work);
2. `kill` the victims (SIGKILL: no shutdown code runs), then read each victim's own events.jsonl
   as the kill left it (testnet/history/event_log.py): the blocks it reported accepted;
3. wait until the survivors add `down_blocks`, so the victims come back behind;
4. `start` the victims (the nemesis waits until they answer /status), ask each restarted node
   for every block it had reported (its main chain through /chain, the rest by /blocks/{hash}),
   and compare (testnet/checks/durability.py): a block reported accepted and now unknown is lost;
5. wait until every node is on one head: the time from restart to healthy and to converged are
   the round's rejoin figures.

On PoS the victims' signing records must survive too: the file is still there after the kill and
a restarted node that had signed anything loaded records from it (/status validators); at the end
no validator may be slashed (the campaign gives no validator a role, so every one is honest):
`slashed` events in any node's log and /validators are both read.

Error handling: a victim that does not come back healthy ends the campaign (the rest of the plan
needs it), and so does a cluster that stops growing before a kill or a kill the nemesis refuses:
the figures then say `aborted` and why. A cluster that does not converge in time is recorded for
that round and the campaign goes on; a victim that does not answer the block query fails its
round, without counting as lost blocks. Anything else propagates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from consensus.keys import public_key
from testnet.checks.crash_figures import RoundRecord, VictimRecord, campaign_figures
from testnet.checks.durability import (
    accepted_blocks,
    events_of_last_start,
    lost_blocks,
    no_honest_slashing,
    stored_blocks_kept,
)
from testnet.cluster import Cluster
from testnet.config.cluster_files import validator_keys
from testnet.errors import NodeAPIError, NodeUnreachable, TestnetError, WaitTimeout
from testnet.faults.kill_schedule import KillRound
from testnet.faults.nemesis import Nemesis
from testnet.history.event_log import read_event_log
from testnet.scenarios.transfer_load import LoadStats, send_transfers

log = logging.getLogger(__name__)

CHAIN_PAGE = 2000            # the most headers /chain serves per call
BLOCK_WAIT_S = 60.0          # for the cluster to add a round's lead or down blocks

Progress = Callable[[RoundRecord, int, int, float], None]   # record, done, total, eta_s
AfterKill = Callable[[Path], None]                          # a victim's data dir, while down


@dataclass
class CampaignResult:
    rounds: list[RoundRecord]
    figures: dict
    load: LoadStats
    stored_blocks_check: dict
    elapsed_s: float
    schedule: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"figures": self.figures, "stored_blocks_check": self.stored_blocks_check,
                "transfers": {"sent": self.load.sent, "failed": self.load.failed},
                "elapsed_s": round(self.elapsed_s, 1), "schedule": self.schedule,
                "rounds": [r.to_json() for r in self.rounds]}


class CrashCampaign:
    def __init__(self, cluster: Cluster, schedule: list[KillRound], *, tps: float = 2.0,
                 rejoin_timeout_s: float = 120.0, progress: Progress | None = None,
                 after_kill: AfterKill | None = None) -> None:
        """`after_kill` is called with each victim's data dir while it is down: nothing happens
        to a crashed node's disk in a campaign, but a test simulates a store that lost its last
        commits there, to see the campaign catch it."""
        self.cluster = cluster
        self.after_kill = after_kill
        self.schedule = schedule
        self.tps = tps
        self.rejoin_timeout_s = rejoin_timeout_s
        self.progress = progress or (lambda *args: None)
        self.nemesis = Nemesis(cluster)
        # PoS or hybrid validators, or DPoS producers: they sign, and keep a signing record
        self.pos = cluster.manifest.has_validators or cluster.manifest.has_producers
        self.rounds: list[RoundRecord] = []
        self.load = LoadStats()

    async def run(self) -> CampaignResult:
        """Plays the whole schedule (or up to a node that does not come back) under background
        transfers, then judges: figures, the stored-blocks check and, on PoS, slashings."""
        began = time.monotonic()
        aborted = None
        load = asyncio.create_task(send_transfers(self.cluster, self.tps, stats=self.load))
        try:
            for plan in self.schedule:
                started = time.monotonic()
                try:
                    record = await self._round(plan)
                except TestnetError as exc:   # the chain stopped growing, a kill was refused
                    aborted = f"round {plan.index}: {exc}"
                    log.error("campaign aborted in %s", aborted)
                    break
                self.rounds.append(record)
                per_round = (time.monotonic() - began) / len(self.rounds)
                self.progress(record, len(self.rounds), len(self.schedule),
                              per_round * (len(self.schedule) - len(self.rounds)))
                log.info("round %d took %.1f s", plan.index, time.monotonic() - started)
                if any(v.healthy_s is None for v in record.victims):
                    aborted = f"round {plan.index}: a victim did not come back"
                    break
        finally:
            load.cancel()
            await asyncio.gather(load, return_exceptions=True)
        history = self.history()
        slashing = no_honest_slashing(history) if self.pos else None
        figures = campaign_figures(self.rounds, slashing,
                                   await self._slashed_in_state() if self.pos else None)
        figures.update(planned_rounds=len(self.schedule), aborted=aborted)
        return CampaignResult(self.rounds, figures, self.load,
                              stored_blocks_kept(history).to_json(), time.monotonic() - began,
                              [p.to_json() for p in self.schedule])

    # ---- one round -------------------------------------------------------------------------------
    async def _round(self, plan: KillRound) -> RoundRecord:
        everyone = list(range(self.cluster.size))
        await self._blocks_added(plan.lead_blocks, everyone)
        await asyncio.sleep(plan.delay_s)   # the planned moment of the kill, not a settling wait
        signed = {i: await self._signed_anything(i) for i in plan.nodes}
        await asyncio.gather(*(self.nemesis.kill(i) for i in plan.nodes))
        victims, accepted = [], {}
        for i in plan.nodes:
            victim, accepted[i] = self._read_victim(i)
            victims.append(victim)
            if self.after_kill is not None:
                self.after_kill(self._data_dir(i))
        record = RoundRecord(plan.index, plan.minority, victims)
        survivors = [i for i in everyone if i not in plan.nodes]
        try:
            await self._blocks_added(plan.down_blocks, survivors)
        except WaitTimeout as exc:  # the victims come back all the same
            log.warning("round %d: survivors did not add %d blocks: %s", plan.index,
                        plan.down_blocks, exc)
        restarted = time.monotonic()
        present = await asyncio.gather(*(self._restart(i, v, signed[i], accepted[i], restarted)
                                         for i, v in zip(plan.nodes, victims)))
        if all(v.healthy_s is not None for v in victims):
            try:
                await self.cluster.converged(self.rejoin_timeout_s)
                record.converged_s = time.monotonic() - restarted
            except WaitTimeout as exc:
                record.error = str(exc)
        for i, victim, served in zip(plan.nodes, victims, present):
            if served is not None:
                self._judge_victim(i, victim, accepted[i], served)
        return record

    def _judge_victim(self, index: int, victim: VictimRecord, accepted: dict[str, dict],
                      served: set[str]) -> None:
        """Lost: accepted before the kill, and absent after the restart or accepted again
        since (read now, after the rejoin, so a block the network handed back shows)."""
        events = read_event_log(self._data_dir(index) / "events.jsonl").events
        since = events_of_last_start(events)
        if since and since[0].get("type") == "node_started":
            victim.blocks_loaded = since[0].get("blocks_loaded")
        victim.lost = lost_blocks(accepted, served, since)
        for block in victim.lost:
            log.error("%s lost block %s (height %s, event seq %s: %s) to a SIGKILL",
                      victim.node, block["hash"], block["height"], block["seq"], block["why"])

    def _data_dir(self, index: int) -> Path:
        return self.cluster.directory / self.cluster.name(index) / "data"

    def _read_victim(self, index: int) -> tuple[VictimRecord, dict[str, dict]]:
        """What the killed node's own log says it accepted, and whether its signing record is
        still on disk (PoS nodes that run validators)."""
        events = read_event_log(self._data_dir(index) / "events.jsonl")
        accepted = accepted_blocks(events.events)
        victim = VictimRecord(self.cluster.name(index), accepted=len(accepted),
                              cut_lines=events.cut)
        if self.pos and self.cluster.info["nodes"][index].get("validators"):
            victim.signing_record = (self._data_dir(index) / "signing.sqlite").exists()
        return victim, accepted

    async def _restart(self, index: int, victim: VictimRecord, signed: bool,
                       accepted: dict[str, dict], restarted: float) -> set[str] | None:
        """Starts the victim; returns which of its accepted blocks it serves once healthy (None
        when it did not come back or could not be asked: the victim's error says which)."""
        try:
            await self.nemesis.start(index, timeout=self.rejoin_timeout_s)
        except TestnetError as exc:
            victim.error = f"did not come back healthy: {exc}"
            return None
        victim.healthy_s = time.monotonic() - restarted
        try:
            present = await self._present(index, accepted)
            if self.pos and signed and victim.signing_record:
                victim.signing_record = await self._signing_records_loaded(index) > 0
        except (NodeUnreachable, NodeAPIError) as exc:
            victim.error = f"could not be asked for its blocks: {exc}"
            return None
        return present

    # ---- questions to the nodes ----------------------------------------------------------------
    async def _present(self, index: int, accepted: dict[str, dict]) -> set[str]:
        """Which of `accepted` the node knows: its main chain in pages, then the others one by
        one (side branches; a block can also leave the main chain between two pages)."""
        client = self.cluster.client(index, timeout=10.0)
        height = (await client.status())["height"]
        present: set[str] = set()
        for start in range(0, height + 1, CHAIN_PAGE):
            page = await client.chain(start, min(height, start + CHAIN_PAGE - 1))
            present.update(h["hash"] for h in page["headers"])
        for block_hash in accepted:
            if block_hash in present:
                continue
            try:
                await client.block(block_hash)
            except NodeAPIError as exc:
                if exc.status != 404:
                    raise
                continue
            present.add(block_hash)
        return present

    async def _blocks_added(self, blocks: int, nodes: list[int]) -> None:
        """Until `nodes` are all `blocks` above the highest of them now (nothing for 0)."""
        if blocks <= 0 or not nodes:
            return
        statuses = [s for s in await self.cluster.statuses(nodes) if s]
        top = max((s["height"] for s in statuses), default=0)
        await self.cluster.wait_for_height(top + blocks, BLOCK_WAIT_S, indices=nodes)

    async def _signed_anything(self, index: int) -> bool:
        """PoS: the node's validators proposed or attested since it started (its /status)."""
        if not self.pos:
            return False
        status = await self.cluster.status(index)
        duties = _signer_status(status or {})
        return bool(duties.get("attested") or duties.get("proposed") or duties.get("voted")
                    or duties.get("produced") or duties.get("signing_records_loaded"))

    async def _signing_records_loaded(self, index: int) -> int:
        status = await self.cluster.client(index).status()
        return int(_signer_status(status).get("signing_records_loaded") or 0)

    async def _slashed_in_state(self) -> list[int]:
        """Validators any answering node's state marks slashed (/validators; DPoS: /producers,
        by genesis index)."""
        slashed: set[int] = set()
        if self.cluster.manifest.has_producers:
            return await self._slashed_producers()
        for i in range(self.cluster.size):
            try:
                validators = await self.cluster.client(i).validators()
            except (NodeUnreachable, NodeAPIError):
                continue
            slashed.update(v["index"] for v in validators if v.get("slashed"))
        return sorted(slashed)

    async def _slashed_producers(self) -> list[int]:
        genesis = [public_key(k).hex() for keys in validator_keys(self.cluster.manifest)
                   for k in keys]
        slashed: set[int] = set()
        for i in range(self.cluster.size):
            try:
                producers = await self.cluster.client(i).producers()
            except (NodeUnreachable, NodeAPIError):
                continue
            slashed.update(genesis.index(c["producer"]) for c in producers["candidates"]
                           if c.get("slashed") and c["producer"] in genesis)
        return sorted(slashed)

    # ---- the record ------------------------------------------------------------------------------
    def history(self) -> list[dict]:
        """Every node's events from its own log (in the order each node wrote them, node after
        node) and the nemesis's actions: what the history checkers read."""
        entries: list[dict] = []
        for i in range(self.cluster.size):
            events = read_event_log(self._data_dir(i) / "events.jsonl").events
            entries.extend({**e, "source": "node", "node": self.cluster.name(i)} for e in events)
        entries.extend(self.nemesis.history())
        return entries


def _signer_status(status: dict) -> dict:
    """What a node's /status says of its signers: PoS/hybrid `validators`, DPoS
    `local_producers`."""
    return status.get("validators") or status.get("local_producers") or {}
