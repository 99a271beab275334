"""Runs a scenario: starts its cluster, plays the steps, observes, judges, writes the report.

The run's history (docs/history.md) merges three sources: every node's event log, the nemesis's
fault log, and the runner's own observations (step starts and ends, transactions sent, transaction
status seen during the run, final heads, a from-outside audit of every node's chain). Checkers and
fork metrics are pure functions of that history.

Each step is an action of the action table (testnet/faults/actions.py), performed with this
runner's hooks (`RunHooks`: observe, wait, send_tx, start_load) for the verbs that exist only in a
run.

Companions (a soak's resource sampler) are async context managers made from the running cluster:
entered once it is up and followed, left after the final observations, while the nodes still run.

Errors: a step that fails on purpose (a `TestnetError`: a wait that times out, a node that does not
answer, a fault the backend cannot apply) is recorded as `step_failed` and the run goes on, so the
checks still judge what happened; the run as a whole is then not passed. Anything else is a bug and
propagates. The scenario's `timeout` bounds everything. The history is written before any checker
runs, and a checker that raises is `unknown` (testnet/checks/specs.py), so a run is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consensus.chain_spec import ChainSpec
from consensus.dpos.spec import DposSpec
from consensus.dpos.types import OpKind, sign_operation
from consensus.hybrid.spec import HybridSpec
from consensus.pos.spec import PosSpec
from consensus.types import sign_transaction
from testnet.backends.base import backend_class
from testnet.checks.events import event_matches
from testnet.clock import monotonic, wall_time
from testnet.cluster import LocalCluster
from testnet.config.cluster_files import validator_keys
from testnet.config.manifest import ClusterManifest
from testnet.errors import NodeAPIError, NodeUnreachable, ScenarioError, TestnetError
from testnet.faults.actions import ActionContext, perform_action
from testnet.faults.nemesis import Nemesis
from testnet.faults.run_verbs import LoadArgs, RaceArgs, TxArgs, VoteArgs, WaitArgs
from testnet.history.event_log import read_event_log
from testnet.observe.collector import Collector
from testnet.scenarios.chain_audit import audit_headers, audit_pos_headers
from testnet.scenarios.double_spend_race import play_race
from testnet.scenarios.outcome import RunResult, judge_run
from testnet.scenarios.spec import Scenario, Step
from testnet.scenarios.transfer_load import send_transfers
from testnet.waiting import wait_until

log = logging.getLogger(__name__)

TX_POLL_S = 1.0
# Load transfers looked up at the end (evenly spaced among those sent): enough for confirmation
# percentiles, few enough that the final look stays a few seconds.
LOAD_LOOKUPS = 400
# Something that runs beside a run on its cluster (a resource sampler in a soak): entered once
# the cluster is up and followed, left after the final observations while the nodes still run.
Companion = Callable[[LocalCluster], contextlib.AbstractAsyncContextManager[Any]]


@dataclass
class TxRecord:
    label: str
    txid: str
    sender: int
    nonce: int
    node: int


class ScenarioRunner:
    def __init__(self, scenario: Scenario, report_dir: Path, *,
                 progress: Callable[[str], None] | None = None, keep_cluster: bool = False,
                 backend: str = "local", dashboard_port: int | None = None,
                 companions: Sequence[Companion] = (), image: str | None = None) -> None:
        self.scenario = scenario
        self.companions = companions
        self.report_dir = report_dir
        self.backend = backend  # local processes, or containers (docker, swarm)
        self.image = image      # the containers' node image (None: the backend's default)
        self.progress = progress or (lambda message: None)
        self.keep_cluster = keep_cluster
        self.observations: list[dict] = []
        self.failed_steps: list[dict] = []
        self.txs: dict[str, TxRecord] = {}
        self.load_txs: list[TxRecord] = []     # background load, looked up once at the end
        self._background: list[asyncio.Task] = []
        self._loads: list[asyncio.Task] = []
        self._start = 0.0
        self.collector: Collector | None = None
        self.dashboard_port = dashboard_port  # serve the live dashboard during the run (0: any)
        self.dashboard_url: str | None = None
        self._exit = contextlib.AsyncExitStack()

    # ---- the run -------------------------------------------------------------------------------
    async def run(self) -> RunResult:
        self._refuse_what_the_backend_cannot_do()
        if self.report_dir.exists():
            shutil.rmtree(self.report_dir)
        self.report_dir.mkdir(parents=True)
        cluster_dir = self.report_dir / "cluster"
        manifest = self.scenario.manifest.model_dump(mode="json")
        manifest["overrides"] = {int(k): v for k, v in manifest["overrides"].items()}
        self.cluster = LocalCluster(directory=cluster_dir, backend=self.backend,
                                    image=self.image, **manifest)
        genesis = json.loads((cluster_dir / "genesis.json").read_text())
        self.spec = spec_from_json(self.scenario.manifest, genesis)
        self.progress(f"starting {self.scenario.manifest.nodes} nodes")
        try:
            await self.cluster.__aenter__()
            self.collector = Collector(self.cluster,
                                       poll_interval=max(1.0, 5 * self.cluster.poll_s),
                                       record_path=self.report_dir / "timeline.jsonl")
            await self.collector.start()
            if self.dashboard_port is not None:
                await self._serve_dashboard()
            for companion in self.companions:
                await self._exit.enter_async_context(companion(self.cluster))
            self._start = monotonic()
            self.observe("run_started", seed=self.scenario.seed, name=self.scenario.name)
            try:
                async with asyncio.timeout(self.scenario.timeout):
                    await self._play()
            except TimeoutError:
                self._fail(None, f"scenario timeout of {self.scenario.timeout:.0f} s reached")
            await self._final_observations()
        finally:
            for task in self._background + self._loads:
                task.cancel()
            await asyncio.gather(*self._background, *self._loads, return_exceptions=True)
            await self._exit.aclose()
            if self.collector is not None:
                await self.collector.catch_up()
                await self.collector.stop()
            if not self.keep_cluster:
                await self.cluster.backend_call(self.cluster.stop_all)
            await self.cluster.close()
        return self._judge()

    def _refuse_what_the_backend_cannot_do(self) -> None:
        """Steps a backend cannot perform (`refuses`: action -> reason, e.g. the simulation's
        pause) fail the run before any node starts, naming the step and the reason."""
        refuses: dict[str, str] = getattr(backend_class(self.backend), "refuses", {})
        for step in self.scenario.steps:
            if step.action in refuses:
                raise ScenarioError(f"{step.describe()}: the {self.backend} backend cannot do "
                                    f"this: {refuses[step.action]}")

    async def _serve_dashboard(self) -> None:
        """The live dashboard on this run's collector, read-only: a click must not add faults
        the scenario's schedule and checks know nothing about."""
        from testnet.observe.dashboard import dashboard_site
        assert self.collector is not None
        self.dashboard_url = await self._exit.enter_async_context(
            dashboard_site(self.cluster, self.collector, port=self.dashboard_port,
                           controls=False))
        self.progress(f"dashboard: {self.dashboard_url}")

    async def _play(self) -> None:
        self._background.append(asyncio.create_task(self._poll_transactions()))
        for step in self.scenario.steps:
            if step.at_s is not None:
                delay = self._start + step.at_s - monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            self.progress(f"step {step.index}: {step.action} {_short(step.args)}")
            self.observe("step_started", step=step.index, action=step.action,
                         args=step.args, label=step.label)
            try:
                await self._execute(step)
            except TestnetError as exc:
                self._fail(step, str(exc))
                continue
            self.observe("step_finished", step=step.index, action=step.action)
        if self._loads:
            self.progress("waiting for background load to finish")
            await asyncio.gather(*self._loads)

    def _fail(self, step: Step | None, reason: str) -> None:
        entry = {"step": step.index if step else None,
                 "action": step.action if step else None, "reason": reason}
        self.failed_steps.append(entry)
        self.observe("step_failed", **entry)
        self.progress(f"  failed: {reason}")

    async def _execute(self, step: Step) -> None:
        context = ActionContext(self.cluster, Nemesis(self.cluster, step=step.index), run=self,
                                step=step.index, label=step.label)
        await perform_action(step.action, context, step.call)

    # ---- the runner's hooks (RunHooks) -----------------------------------------------------------
    def observe(self, what: str, **data: Any) -> None:
        self.observations.append({"ts": wall_time(), "source": "runner", "type": "observation",
                                  "what": what, **data})

    async def wait(self, args: WaitArgs) -> None:
        nodes, timeout = args.nodes, args.timeout
        if args.converged is not None:
            running = nodes or self._up()
            await self.cluster.converged(args.converged, indices=running)
        if args.height is not None or args.blocks is not None:
            height = args.height or 0
            if args.blocks is not None:
                height = max(s["height"] for s in await self._answering()) + args.blocks
            await self.cluster.wait_for_height(height, timeout, indices=nodes or self._up())
        if args.tx is not None:
            depth = 1 if args.confirmations is None else args.confirmations
            await self._wait_for_tx(args.tx, depth, nodes, timeout)
        if args.event is not None:
            await self._wait_for_event(args.event, nodes, timeout)
        if args.epochs is not None:
            await self._wait_for_epochs(args.epochs, nodes, timeout)
        if args.finalized_epoch is not None or args.finalized_epochs is not None:
            target = args.finalized_epoch or 0
            if args.finalized_epochs is not None:
                statuses = await self._answering()
                target = max(s["finalized"]["epoch"] for s in statuses) + args.finalized_epochs
            await self._wait_for_status(
                lambda s: (s.get("finalized") or {}).get("epoch", -1) >= target, nodes, timeout,
                f"finalized epoch {target}",
                lambda s: f"finalized {(s.get('finalized') or {}).get('epoch')}")
        if args.lib_height is not None or args.lib_blocks is not None:
            await self._wait_for_lib(args, nodes, timeout)
        if args.rounds is not None:
            await self._wait_for_rounds(args.rounds, nodes, timeout)

    async def _wait_for_lib(self, args: WaitArgs, nodes: list[int] | None,
                            timeout: float) -> None:
        lib = args.lib_height or 0
        if args.lib_blocks is not None:
            statuses = await self._answering()
            lib = max(s["finalized"]["height"] for s in statuses) + args.lib_blocks
        await self._wait_for_status(
            lambda s: s["finalized"]["height"] >= lib, nodes, timeout, f"LIB at height {lib}",
            lambda s: f"LIB {s['finalized']['height']} (head {s['height']})")

    async def _wait_for_rounds(self, rounds: int, nodes: list[int] | None,
                               timeout: float) -> None:
        """Until the nodes' own slot clocks are `rounds` DPoS rounds past the furthest now."""
        assert isinstance(self.spec, DposSpec), "rounds exist on DPoS clusters only"
        spec = self.spec
        target = max(s["slot"] for s in await self._answering()) + rounds * spec.round_slots
        await self._wait_for_status(lambda s: s.get("slot", -1) >= target, nodes,
                                    max(timeout, rounds * spec.round_slots *
                                        spec.slot_duration_ms / 1000 * 3),
                                    f"slot {target} ({rounds} round(s) on)",
                                    lambda s: f"at slot {s.get('slot')}")

    async def send_votes(self, args: VoteArgs) -> None:
        """Each account signs a vote for the candidates (genesis producer keys) and posts it."""
        from consensus.keys import public_key
        keys = [public_key(k) for node_keys in validator_keys(self.scenario.manifest)
                for k in node_keys]
        candidates = tuple(keys[i] for i in args.candidates)
        client = self.cluster.client(args.node)
        for index in args.accounts:
            account = self.cluster.genesis_account(index)
            nonce = (await client.account(account["account"]))["pending_nonce"]
            op = sign_operation(bytes.fromhex(account["private_key"]), OpKind.VOTE, nonce,
                                candidates=candidates)
            result = await client.post_dpos_operation(op.serialize())
            self.observe("vote_sent", account=index, candidates=args.candidates,
                         node=self.cluster.name(args.node), outcome=result["outcome"])

    async def send_tx(self, args: TxArgs, label: str) -> None:
        sender = self.cluster.genesis_account(args.sender)
        recipient = self.cluster.recipient(args.to)
        client = self.cluster.client(args.node)
        if args.conflicts_with:
            other = self._tx(args.conflicts_with)
            if other.sender != args.sender:
                raise ScenarioError("conflicts_with: a double spend must come from the same "
                                    "account")
            nonce = other.nonce
        else:
            nonce = (await client.account(sender["account"]))["pending_nonce"]
        tx = sign_transaction(bytes.fromhex(sender["private_key"]), recipient, args.amount,
                              args.fee, nonce)
        result = await client.post_tx({"raw": tx.serialize().hex()})
        self.txs[label] = TxRecord(label, result["txid"], args.sender, nonce, args.node)
        self.observe("tx_sent", txid=result["txid"], node=self.cluster.name(args.node),
                     label=label, nonce=nonce, amount=args.amount)

    async def race(self, args: RaceArgs) -> None:
        record = self._tx(args.tx)
        await play_race(self.cluster, attacker=args.attacker, txid=record.txid,
                        confirmations=args.confirmations, give_up_behind=args.give_up_behind,
                        timeout=args.timeout, observe=self.observe)

    def start_load(self, args: LoadArgs) -> None:
        self._loads.append(asyncio.create_task(self._load(args)))

    # ---- waits -----------------------------------------------------------------------------------
    def _up(self) -> list[int]:
        return [i for i in range(self.cluster.size)
                if self.cluster.backend.process_state(i) == "running"]

    async def _answering(self) -> list[dict]:
        statuses = [s for s in await self.cluster.statuses() if s]
        if not statuses:
            raise NodeUnreachable("no node answers /status")
        return statuses

    async def _wait_for_status(self, holds: Callable[[dict], bool], nodes: list[int] | None,
                               timeout: float, what: str, show: Callable[[dict], str]) -> None:
        """Until every node of `nodes` (else every running one) answers with a status for which
        `holds` is true; a timeout names each node and what it last said."""
        seen: dict[str, str] = {}

        async def all_hold() -> bool:
            targets = nodes or self._up()
            statuses = await self.cluster.statuses(targets)
            seen.clear()
            for i, status in zip(targets, statuses):
                seen[self.cluster.name(i)] = "no answer" if status is None else show(status)
            return bool(targets) and all(s is not None and holds(s) for s in statuses)
        await wait_until(all_hold, timeout, what, interval=self.cluster.poll_s,
                         last=lambda: ", ".join(f"{n} {v}" for n, v in seen.items()))

    async def _wait_for_epochs(self, epochs: int, nodes: list[int] | None,
                               timeout: float) -> None:
        """Until the nodes' own slot clocks have advanced `epochs` epochs from the furthest of
        them now: a wait on the nodes' slots, not a guess at how long an epoch takes here.
        Hybrid epochs are counted in blocks: until the nodes' heads reach the epoch."""
        if isinstance(self.spec, HybridSpec):
            target = max(s["epoch"] for s in await self._answering()) + epochs
            expected_s = epochs * self.spec.epoch_length * self.spec.target_block_interval_s
            await self._wait_for_status(lambda s: s.get("epoch", -1) >= target, nodes,
                                        max(timeout, expected_s * 4), f"epoch {target}",
                                        lambda s: f"in epoch {s.get('epoch')}")
            return
        slots_per_epoch = getattr(self.spec, "slots_per_epoch", None)
        if slots_per_epoch is None:
            raise ScenarioError("epochs exist on PoS and hybrid clusters only")
        target = max(s["slot"] for s in await self._answering()) + epochs * slots_per_epoch
        await self._wait_for_status(lambda s: s.get("slot", -1) >= target, nodes,
                                    max(timeout, epochs * slots_per_epoch *
                                        self.spec.slot_duration_ms / 1000 * 3),
                                    f"slot {target} ({epochs} epoch(s) on)",
                                    lambda s: f"at slot {s.get('slot')}")

    async def _wait_for_tx(self, label: str, confirmations: int, nodes: list[int] | None,
                           timeout: float) -> None:
        """Until the nodes see the labelled transfer `confirmations` deep; 0 means zero-conf:
        in the node's mempool or on its main chain (what a merchant sees when it is paid)."""
        record = self._tx(label)

        def holds(status: dict) -> bool:
            if confirmations == 0:
                return bool(status.get("in_mempool") or status["in_main_chain"])
            return status["confirmations"] >= confirmations
        await self._wait_for_node_view(
            lambda client: client.tx(record.txid), holds, nodes, timeout,
            f"tx {record.label} with {confirmations} confirmation(s)" if confirmations
            else f"tx {record.label} in the mempool",
            lambda status: f"{status['confirmations']} confirmation(s)"
            + (", in the mempool" if status.get("in_mempool") else ""))

    async def _wait_for_node_view(self, ask: Callable[[Any], Any], holds: Callable[[dict], bool],
                                  nodes: list[int] | None, timeout: float, what: str,
                                  show: Callable[[dict], str]) -> None:
        seen: dict[str, str] = {}

        async def all_hold() -> bool:
            ok = True
            for i in nodes or self._up():
                view = await ask(self.cluster.client(i))
                seen[self.cluster.name(i)] = show(view)
                ok = ok and holds(view)
            return ok
        await wait_until(all_hold, timeout, what, interval=max(0.5, self.cluster.poll_s),
                         last=lambda: ", ".join(f"{n} {v}" for n, v in seen.items()))

    async def _wait_for_event(self, spec: dict, nodes: list[int] | None, timeout: float) -> None:
        """Until a node (of `nodes`) emits a matching event after this step began: the scenario
        goes on when the thing happened, not after a guess at how long it takes."""
        assert self.collector is not None
        names = None if nodes is None else {self.cluster.name(i) for i in nodes}
        scanned = len(self.collector.timeline)   # the timeline only grows: look at each once
        what = spec["type"] + (f" containing {spec['contains']!r}" if "contains" in spec else "")

        def seen(c: Collector) -> bool:
            nonlocal scanned
            fresh, scanned = c.timeline[scanned:], len(c.timeline)
            return any(event_matches(e, spec["type"], spec.get("contains"))
                       and (names is None or e.get("node") in names) for e in fresh)
        await self.collector.wait_for(seen, timeout, f"a {what} event")

    def _tx(self, label: str) -> TxRecord:
        try:
            return self.txs[label]
        except KeyError:
            raise ScenarioError(f"no transaction labelled {label!r} has been sent") from None

    async def _load(self, args: LoadArgs) -> None:
        """Background transfers at `tps` for `duration_s`, from the accounts no labelled
        transfer uses (their nonces stay the scenario's)."""
        labelled = {r.sender for r in self.txs.values()}
        senders = [i for i in range(len(self.cluster.accounts())) if i not in labelled] or [0]

        def sent(txid: str, node: int, nonce: int) -> None:
            self.load_txs.append(TxRecord("load", txid, -1, nonce, node))
            self.observe("tx_sent", txid=txid, node=self.cluster.name(node), label="load",
                         nonce=nonce)
        stats = await send_transfers(self.cluster, args.tps, duration_s=args.duration_s,
                                     nodes=args.nodes, senders=senders, on_sent=sent)
        self.observe("load_finished", sent=stats.sent, failed=stats.failed)

    # ---- observations --------------------------------------------------------------------------
    async def _poll_transactions(self) -> None:
        while True:
            await asyncio.sleep(TX_POLL_S)
            await self._observe_transactions()

    async def _observe_transactions(self, records: list[TxRecord] | None = None) -> None:
        for record in list(self.txs.values()) if records is None else records:
            for i in self._up():
                try:
                    status = await self.cluster.client(i, timeout=2.0).tx(record.txid)
                except (NodeUnreachable, NodeAPIError):
                    continue
                self.observe("tx_status", txid=record.txid, label=record.label,
                             node=self.cluster.name(i), in_main_chain=status["in_main_chain"],
                             height=status["height"], confirmations=status["confirmations"],
                             block=next((b["block"] for b in status.get("blocks", [])
                                         if b.get("main_chain")), None))

    async def _final_observations(self) -> None:
        self.progress("final observations: heads, transactions, chain audit")
        await self._observe_transactions()
        step = max(1, len(self.load_txs) // LOAD_LOOKUPS)
        await self._observe_transactions(self.load_txs[::step][:LOAD_LOOKUPS])
        payouts, hashrates = {}, {}
        for i in range(self.cluster.size):
            status = await self.cluster.status(i)
            name = self.cluster.name(i)
            hashrates[name] = self.scenario.manifest.node_hashrate(i) or 0
            if status is None:
                self.observe("final_status", node=name, up=False, head=None, height=None,
                             total_work=None)
                continue
            if "miner" in status:
                payouts[name] = status["miner"]["payout"]
            self.observe("final_status", node=name, up=True, head=status["head"],
                         height=status["height"], total_work=str(status.get("total_work", "")),
                         finalized=status.get("finalized"))
            try:
                valid, reason = await self._audit(i, status["height"])
            except (NodeUnreachable, NodeAPIError) as exc:
                valid, reason = False, f"could not read the chain: {exc}"
            self.observe("chain_check", node=name, valid=valid, reason=reason,
                         height=status["height"])
        for entry in self.observations:
            if entry["what"] == "miner_set" and entry.get("hashrate"):
                hashrates[entry["node"]] = entry["hashrate"]
        # A node that played an adversarial role at any time is not an honest node of this run.
        roles = {self.cluster.name(i): "honest" for i in range(self.cluster.size)}
        for entry in Nemesis(self.cluster).history():
            if entry["fault"] == "role" and entry["params"].get("role", "honest") != "honest":
                roles[entry["nodes"][0]] = entry["params"]["role"]
        self.observe("roles", roles=roles, hashrate=hashrates, payout=payouts)

    async def _audit(self, index: int, height: int) -> tuple[bool, str]:
        headers: list[dict] = []
        client = self.cluster.client(index, timeout=10.0)
        start = 0
        while start <= height:
            chunk = await client.chain(start, min(height, start + 1999))
            headers.extend(chunk["headers"])
            start += 2000
        if isinstance(self.spec, PosSpec | DposSpec):
            return audit_pos_headers(headers[: height + 1], self.cluster.info["genesis"])
        return audit_headers(headers[: height + 1], self.spec)

    # ---- judging and the report ----------------------------------------------------------------
    def _history(self) -> list[dict]:
        """The collector's merged timeline (node events with the host time they arrived, and the
        nemesis actions) plus the runner's observations; node events the collector could not get
        (a node down at the end) are taken from the nodes' logs on disk where they exist."""
        collected = [e for e in (self.collector.timeline if self.collector is not None else [])
                     if e.get("source") == "node"]
        entries = list(self.observations) + collected
        have = {(e["node"], e["seq"]) for e in collected}
        cluster_dir = self.report_dir / "cluster"
        for events_file in sorted(cluster_dir.glob("node*/data/events.jsonl")):
            for entry in read_event_log(events_file).events:   # lines cut by SIGKILL skipped
                if (entry.get("node"), entry.get("seq")) not in have:
                    entries.append({**entry, "source": "node", "filled": True})
        nemesis_log = cluster_dir / "nemesis.jsonl"  # the record of every fault, complete
        if nemesis_log.exists():
            entries.extend(json.loads(line) for line in nemesis_log.read_text().splitlines()
                           if line)
        entries.sort(key=lambda e: e.get("rx_ts", e["ts"]))
        return entries

    def _judge(self) -> RunResult:
        return judge_run(self.scenario, self.report_dir, self._history(), self.failed_steps)


def spec_from_json(manifest: ClusterManifest, genesis: dict) -> ChainSpec | PosSpec | DposSpec:
    """The chain spec a cluster's genesis.json holds, by what its consensus has."""
    if manifest.has_producers:
        return DposSpec.from_json(genesis)
    if not manifest.has_mining:
        return PosSpec.from_json(genesis)
    return HybridSpec.from_json(genesis) if manifest.has_validators else \
        ChainSpec.from_json(genesis)


def _short(args: Any) -> str:
    text = json.dumps(args, default=str) if not isinstance(args, str) else args
    return text if len(text) <= 80 else text[:77] + "..."
