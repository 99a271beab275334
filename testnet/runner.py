"""Runs a scenario: starts its cluster, plays the steps, observes, judges, writes the report.

The run's history (docs/history.md) merges three sources: every node's event log, the nemesis's
fault log, and the runner's own observations (step starts and ends, transactions sent, transaction
status seen during the run, final heads, a from-outside audit of every node's chain). Checkers and
fork metrics are pure functions of that history.

Errors: a step that fails (a wait that times out, a node that does not answer) is recorded as
`step_failed` and the run goes on, so the checks still judge what happened; the run as a whole is
then not passed. The scenario's `timeout` bounds everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from consensus.chain_spec import ChainSpec
from consensus.pos.spec import PosSpec
from consensus.types import sign_transaction
from testnet.chain_audit import audit_headers, audit_pos_headers
from testnet.checkers import CheckResult, check_from_spec, event_matches
from testnet.client import NodeAPIError
from testnet.cluster import ClusterTimeout, LocalCluster
from testnet.collector import Collector
from testnet.fork_metrics import fork_metrics
from testnet.nemesis import Nemesis, NemesisError
from testnet.report_page import ReportSummary, write_report_pages
from testnet.scenario import Scenario, Step

log = logging.getLogger(__name__)

TX_POLL_S = 1.0


@dataclass
class TxRecord:
    label: str
    txid: str
    sender: int
    nonce: int
    node: int


@dataclass
class RunResult:
    scenario: Scenario
    report_dir: Path
    checks: list[CheckResult]
    passed_checks: list[bool]
    failed_steps: list[dict]
    metrics: dict
    history: list[dict] = field(repr=False, default_factory=list)

    @property
    def passed(self) -> bool:
        return all(self.passed_checks) and not self.failed_steps


class ScenarioRunner:
    def __init__(self, scenario: Scenario, report_dir: Path, *,
                 progress: Callable[[str], None] | None = None, keep_cluster: bool = False,
                 backend: str = "local", dashboard_port: int | None = None) -> None:
        self.scenario = scenario
        self.report_dir = report_dir
        self.backend = backend  # local processes, or containers (docker, swarm)
        self.progress = progress or (lambda message: None)
        self.keep_cluster = keep_cluster
        self.observations: list[dict] = []
        self.failed_steps: list[dict] = []
        self.txs: dict[str, TxRecord] = {}
        self._background: list[asyncio.Task] = []
        self._loads: list[asyncio.Task] = []
        self._start = 0.0
        self.collector: Collector | None = None
        self.dashboard_port = dashboard_port  # serve the live dashboard during the run (0: any)
        self.dashboard_url: str | None = None
        self._exit = contextlib.AsyncExitStack()

    # ---- the run -------------------------------------------------------------------------------
    async def run(self) -> RunResult:
        if self.report_dir.exists():
            shutil.rmtree(self.report_dir)
        self.report_dir.mkdir(parents=True)
        cluster_dir = self.report_dir / "cluster"
        manifest = self.scenario.manifest.model_dump(mode="json")
        manifest["overrides"] = {int(k): v for k, v in manifest["overrides"].items()}
        self.cluster = LocalCluster(directory=cluster_dir, backend=self.backend, **manifest)
        genesis = json.loads((cluster_dir / "genesis.json").read_text())
        self.spec = (PosSpec.from_json(genesis) if self.scenario.manifest.consensus == "pos"
                     else ChainSpec.from_json(genesis))
        self.progress(f"starting {self.scenario.manifest.nodes} nodes")
        try:
            await self.cluster.__aenter__()
            self.collector = Collector(self.cluster,
                                       record_path=self.report_dir / "timeline.jsonl")
            await self.collector.start()
            if self.dashboard_port is not None:
                await self._serve_dashboard()
            self._start = time.monotonic()
            self._observe("run_started", seed=self.scenario.seed, name=self.scenario.name)
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
                await asyncio.to_thread(self.cluster.stop_all)
            await self.cluster.close()
        return self._judge()

    async def _serve_dashboard(self) -> None:
        """The live dashboard on this run's collector, read-only: a click must not add faults
        the scenario's schedule and checks know nothing about."""
        from testnet.dashboard import dashboard_site
        assert self.collector is not None
        self.dashboard_url = await self._exit.enter_async_context(
            dashboard_site(self.cluster, self.collector, port=self.dashboard_port,
                           controls=False))
        self.progress(f"dashboard: {self.dashboard_url}")

    async def _play(self) -> None:
        self._background.append(asyncio.create_task(self._poll_transactions()))
        for step in self.scenario.steps:
            if step.at_s is not None:
                delay = self._start + step.at_s - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            self.progress(f"step {step.index}: {step.action} {_short(step.args)}")
            self._observe("step_started", step=step.index, action=step.action,
                          args=step.args, label=step.label)
            try:
                await self._execute(step)
            except (ClusterTimeout, NemesisError, NodeAPIError, ValueError, KeyError,
                    aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self._fail(step, str(exc))
                continue
            self._observe("step_finished", step=step.index, action=step.action)
        if self._loads:
            self.progress("waiting for background load to finish")
            await asyncio.gather(*self._loads)

    def _fail(self, step: Step | None, reason: str) -> None:
        entry = {"step": step.index if step else None,
                 "action": step.action if step else None, "reason": reason}
        self.failed_steps.append(entry)
        self._observe("step_failed", **entry)
        self.progress(f"  failed: {reason}")

    # ---- steps ---------------------------------------------------------------------------------
    async def _execute(self, step: Step) -> None:
        nemesis = Nemesis(self.cluster, step=step.index)
        action, args = step.action, step.args
        if action == "sleep":
            await asyncio.sleep(args)
        elif action == "log":
            self._observe("note", text=args)
        elif action == "wait":
            await self._wait(args)
        elif action == "partition":
            await nemesis.partition({int(k): set(v) for k, v in args.items()})
        elif action == "heal":
            await nemesis.heal()
        elif action == "link":
            await nemesis.link(args["rule"], args["from"], args["to"])
        elif action == "link_clear":
            await nemesis.link_clear()
        elif action in ("kill", "stop", "pause", "resume"):
            await asyncio.to_thread(getattr(nemesis, action), args)
        elif action in ("start", "restart"):
            await getattr(nemesis, action)(args)
        elif action == "skew":
            await nemesis.skew(args["node"], args["offset_s"])
        elif action == "role":
            if "validator" in args:
                node = nemesis.validator_node(args["validator"])
                await nemesis.role(node, args["role"], args["validator"])
            else:
                await nemesis.role(args["node"], args["role"])
        elif action == "miner":
            await self._miner(nemesis, args)
        elif action == "tx":
            await self._send_tx(step, args)
        elif action == "load":
            self._loads.append(asyncio.create_task(self._load(args)))
        else:  # validated in scenario.py; reaching here is a bug
            raise ValueError(f"unhandled action {action}")

    async def _miner(self, nemesis: Nemesis, args: dict) -> None:
        rate = args.get("hashrate")
        if "share" in args:
            index = args["node"]
            others = sum(self.scenario.manifest.node_hashrate(i) or 0
                         for i in range(self.cluster.size) if i != index)
            rate = others * args["share"] / (1 - args["share"])
        await nemesis.miner(args["node"], enabled=args.get("enabled"), hashrate=rate)
        self._observe("miner_set", node=f"node{args['node']}", hashrate=rate,
                      enabled=args.get("enabled"))

    async def _wait_for_event(self, spec: dict, nodes: list[int] | None, timeout: float) -> None:
        """Until a node (of `nodes`) emits a matching event after this step began: the scenario
        goes on when the thing happened, not after a guess at how long it takes."""
        assert self.collector is not None
        names = None if nodes is None else {f"node{i}" for i in nodes}
        scanned = len(self.collector.timeline)   # the timeline only grows: look at each once
        what = spec["type"] + (f" containing {spec['contains']!r}" if "contains" in spec else "")

        def seen(c: Collector) -> bool:
            nonlocal scanned
            fresh, scanned = c.timeline[scanned:], len(c.timeline)
            return any(event_matches(e, spec["type"], spec.get("contains"))
                       and (names is None or e.get("node") in names) for e in fresh)
        await self.collector.wait_for(seen, timeout, f"a {what} event")

    async def _wait(self, args: dict) -> None:
        nodes = args["nodes"]
        timeout = args["timeout"]
        if "converged" in args:
            running = nodes or [i for i in range(self.cluster.size)
                                if self.cluster.backend.process_state(i) == "running"]
            await self.cluster.converged(args["converged"], indices=running)
        if "height" in args or "blocks" in args:
            height = args.get("height", 0)
            if "blocks" in args:
                statuses = [s for s in await self.cluster.statuses() if s]
                height = max(s["height"] for s in statuses) + args["blocks"]
            await self.cluster.wait_for_height(height, timeout, indices=nodes or self._up())
        if "tx" in args:
            record = self._tx(args["tx"])

            async def confirmed() -> bool:
                for i in nodes or self._up():
                    status = await self.cluster.client(i).tx(record.txid)
                    if status["confirmations"] < args["confirmations"]:
                        return False
                return True
            await self.cluster.wait_until(confirmed, timeout,
                                          f"tx {record.label} with {args['confirmations']} "
                                          "confirmation(s)", interval=0.5)
        if "event" in args:
            await self._wait_for_event(args["event"], nodes, timeout)
        if "epochs" in args:
            statuses = [s for s in await self.cluster.statuses() if s]
            epoch_s = self.spec.slot_duration_ms * self.spec.slots_per_epoch / 1000
            await asyncio.sleep(args["epochs"] * epoch_s)
        if "finalized_epoch" in args or "finalized_epochs" in args:
            target = args.get("finalized_epoch", 0)
            if "finalized_epochs" in args:
                statuses = [s for s in await self.cluster.statuses() if s]
                target = max(s["finalized"]["epoch"] for s in statuses) + args["finalized_epochs"]

            async def finalized() -> bool:
                for i in nodes or self._up():
                    status = await self.cluster.status(i)
                    if not status or (status.get("finalized") or {}).get("epoch", -1) < target:
                        return False
                return True
            await self.cluster.wait_until(finalized, timeout, f"finalized epoch {target}")

    def _up(self) -> list[int]:
        return [i for i in range(self.cluster.size)
                if self.cluster.backend.process_state(i) == "running"]

    def _tx(self, label: str) -> TxRecord:
        try:
            return self.txs[label]
        except KeyError:
            raise ValueError(f"no transaction labelled {label!r} has been sent") from None

    async def _send_tx(self, step: Step, args: dict) -> None:
        accounts = self.cluster.accounts()
        sender = args["from"]
        if not 0 <= sender < len(accounts):
            raise ValueError(f"from: no genesis account {sender}")
        to = args["to"]
        recipient = accounts[int(to)]["account"] if isinstance(to, int) or str(to).isdigit() \
            else str(to)
        client = self.cluster.client(args["node"])
        if args["conflicts_with"]:
            other = self._tx(args["conflicts_with"])
            if other.sender != sender:
                raise ValueError("conflicts_with: a double spend must come from the same account")
            nonce = other.nonce
        else:
            nonce = (await client.account(accounts[sender]["account"]))["pending_nonce"]
        tx = sign_transaction(bytes.fromhex(accounts[sender]["private_key"]),
                              bytes.fromhex(recipient), args["amount"], args["fee"], nonce)
        result = await client.post_tx({"raw": tx.serialize().hex()})
        label = step.label or f"tx{step.index}"
        self.txs[label] = TxRecord(label, result["txid"], sender, nonce, args["node"])
        self._observe("tx_sent", txid=result["txid"], node=f"node{args['node']}", label=label,
                      nonce=nonce, amount=args["amount"])

    async def _load(self, args: dict) -> None:
        """Background transfers at `tps` for `duration_s`, each account through one node."""
        accounts = self.cluster.accounts()
        labelled = {r.sender for r in self.txs.values()}
        senders = [i for i in range(len(accounts)) if i not in labelled] or [0]
        targets = args["nodes"] or list(range(self.cluster.size))
        nonces: dict[int, int | None] = {i: None for i in senders}
        deadline = time.monotonic() + args["duration_s"]
        sent = failed = k = 0
        while time.monotonic() < deadline:
            sender = senders[k % len(senders)]
            node = targets[sender % len(targets)]
            k += 1
            try:
                client = self.cluster.client(node, timeout=2.0)
                if nonces[sender] is None:
                    nonces[sender] = (await client.account(accounts[sender]["account"]))[
                        "pending_nonce"]
                tx = sign_transaction(bytes.fromhex(accounts[sender]["private_key"]),
                                      bytes.fromhex(accounts[(sender + 1) % len(accounts)][
                                          "account"]), 1, 1, nonces[sender])
                await client.post_tx({"raw": tx.serialize().hex()})
                nonces[sender] += 1  # type: ignore[operator]
                sent += 1
            except (aiohttp.ClientError, asyncio.TimeoutError, NodeAPIError):
                nonces[sender] = None   # node down or nonce raced: ask again next time
                failed += 1
            await asyncio.sleep(1.0 / args["tps"])
        self._observe("load_finished", sent=sent, failed=failed)

    # ---- observations --------------------------------------------------------------------------
    def _observe(self, what: str, **data: Any) -> None:
        self.observations.append({"ts": time.time(), "source": "runner", "type": "observation",
                                  "what": what, **data})

    async def _poll_transactions(self) -> None:
        while True:
            await asyncio.sleep(TX_POLL_S)
            await self._observe_transactions()

    async def _observe_transactions(self) -> None:
        for record in list(self.txs.values()):
            for i in self._up():
                try:
                    status = await self.cluster.client(i, timeout=2.0).tx(record.txid)
                except (aiohttp.ClientError, asyncio.TimeoutError, NodeAPIError):
                    continue
                self._observe("tx_status", txid=record.txid, label=record.label,
                              node=f"node{i}", in_main_chain=status["in_main_chain"],
                              height=status["height"], confirmations=status["confirmations"])

    async def _final_observations(self) -> None:
        self.progress("final observations: heads, transactions, chain audit")
        await self._observe_transactions()
        payouts, hashrates = {}, {}
        for i in range(self.cluster.size):
            status = await self.cluster.status(i)
            name = f"node{i}"
            hashrates[name] = self.scenario.manifest.node_hashrate(i) or 0
            if status is None:
                self._observe("final_status", node=name, up=False, head=None, height=None,
                              total_work=None)
                continue
            if "miner" in status:
                payouts[name] = status["miner"]["payout"]
            self._observe("final_status", node=name, up=True, head=status["head"],
                          height=status["height"], total_work=str(status.get("total_work", "")),
                          finalized=status.get("finalized"))
            valid, reason = await self._audit(i, status["height"])
            self._observe("chain_check", node=name, valid=valid, reason=reason,
                          height=status["height"])
        for entry in self.observations:
            if entry["what"] == "miner_set" and entry.get("hashrate"):
                hashrates[entry["node"]] = entry["hashrate"]
        # A node that played an adversarial role at any time is not an honest node of this run.
        roles = {f"node{i}": "honest" for i in range(self.cluster.size)}
        for entry in Nemesis(self.cluster).history():
            if entry["fault"] == "role" and entry["params"].get("role", "honest") != "honest":
                roles[entry["nodes"][0]] = entry["params"]["role"]
        self._observe("roles", roles=roles, hashrate=hashrates, payout=payouts)

    async def _audit(self, index: int, height: int) -> tuple[bool, str]:
        headers: list[dict] = []
        client = self.cluster.client(index, timeout=10.0)
        start = 0
        while start <= height:
            chunk = await client.chain(start, min(height, start + 1999))
            headers.extend(chunk["headers"])
            start += 2000
        if isinstance(self.spec, PosSpec):
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
            for line in events_file.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by SIGKILL
                if (entry.get("node"), entry.get("seq")) not in have:
                    entries.append({**entry, "source": "node", "filled": True})
        nemesis_log = cluster_dir / "nemesis.jsonl"  # the record of every fault, complete
        if nemesis_log.exists():
            entries.extend(json.loads(line) for line in nemesis_log.read_text().splitlines()
                           if line)
        entries.sort(key=lambda e: e.get("rx_ts", e["ts"]))
        return entries

    def _judge(self) -> RunResult:
        history = self._history()
        checks, passed = [], []
        for spec in self.scenario.checks:
            result = check_from_spec(history, spec)
            checks.append(result)
            expected = spec.get("expect", "valid")
            passed.append(result.verdict == expected)
        metrics = fork_metrics(history)
        result = RunResult(self.scenario, self.report_dir, checks, passed, self.failed_steps,
                           metrics, history)
        write_report(result)
        return result


def write_report(result: RunResult) -> None:
    out = result.report_dir
    (out / "history.jsonl").write_text(
        "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in result.history))
    (out / "schedule.json").write_text(json.dumps(result.scenario.schedule(), indent=2) + "\n")
    faults = [{k: e[k] for k in ("type", "fault", "nodes", "params", "step") if k in e}
              for e in result.history if e.get("source") == "nemesis"]
    (out / "faults.json").write_text(json.dumps(faults, indent=2) + "\n")
    checks = [{**c.to_json(), "passed": p} for c, p in zip(result.checks, result.passed_checks)]
    (out / "checks.json").write_text(json.dumps(checks, indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(result.metrics, indent=2, default=str) + "\n")
    lines = [f"# {result.scenario.name}", "", result.scenario.description, "",
             f"seed {result.scenario.seed}; {result.scenario.manifest.nodes} nodes; "
             f"result: {'PASSED' if result.passed else 'FAILED'}", "",
             "Plots (head heights, block tree, convergence) and this summary as a page: "
             "[index.html](index.html)", "", "## Checks", ""]
    for check, ok in zip(result.checks, result.passed_checks):
        lines.append(f"- {'PASS' if ok else 'FAIL'} {check.name}: {check.verdict} — "
                     f"{check.message}")
    if result.failed_steps:
        lines += ["", "## Failed steps", ""]
        lines += [f"- step {f['step']} ({f['action']}): {f['reason']}" for f in result.failed_steps]
    lines += miner_summary(result)
    lines += ["", "## Fork metrics", "", "```json",
              json.dumps(result.metrics, indent=2, default=str), "```", ""]
    (out / "report.md").write_text("\n".join(lines))
    summary = ReportSummary(result.scenario.name, result.scenario.description,
                            result.scenario.seed, result.scenario.manifest.nodes,
                            result.scenario.manifest.consensus, result.passed, result.failed_steps)
    try:  # written last: a plotting error must not cost the files above
        write_report_pages(out, result.history, result.metrics, checks, summary)
    except Exception:  # noqa: BLE001  report_plots already isolates each picture; this is a bug
        log.exception("index.html could not be written; the rest of the report stands")


def selfish_mining_revenue(alpha: float, gamma: float = 0.0) -> float:
    """Eyal and Sirer's relative revenue of a selfish pool with hashrate share alpha."""
    num = alpha * (1 - alpha) ** 2 * (4 * alpha + gamma * (1 - 2 * alpha)) - alpha ** 3
    den = 1 - alpha * (1 + (2 - alpha) * alpha)
    return num / den


def miner_summary(result: RunResult) -> list[str]:
    miners = result.metrics.get("miners") or {}
    if not miners or result.scenario.manifest.consensus != "pow":
        return []
    roles = {}
    for entry in result.history:
        if entry.get("what") == "roles":
            roles = entry.get("roles", {})
    lines = ["", "## Miners", "", "| node | role | hashrate share | revenue share "
             "(main-chain blocks) | stale blocks |", "| --- | --- | --- | --- | --- |"]
    notes = []
    for node, m in sorted(miners.items()):
        role = roles.get(node, "honest")
        if m.get("hashrate_share") is None or m.get("revenue_share") is None:
            continue
        lines.append(f"| {node} | {role} | {m['hashrate_share']:.1%} | {m['revenue_share']:.1%} "
                     f"({m['main_chain_blocks']}) | {m['stale_blocks']} |")
        if role == "selfish-miner" and m["hashrate_share"]:
            alpha = m["hashrate_share"]
            expected = selfish_mining_revenue(alpha) if alpha < 0.5 else 1.0
            verdict = ("above" if m["revenue_share"] > alpha else "not above")
            notes.append(f"{node} (selfish) earned {m['revenue_share']:.1%} of the main-chain "
                         f"blocks with {alpha:.1%} of the hashrate: {verdict} its hashrate share. "
                         f"Eyal-Sirer predicts {expected:.1%} at gamma = 0 (ties go to the block "
                         f"seen first); over {m['main_chain_blocks']} of its blocks luck alone "
                         f"moves the share by about "
                         f"{(alpha * (1 - alpha) / max(1, sum(x['main_chain_blocks'] for x in miners.values()))) ** 0.5:.1%}.")
    return lines + ([""] + notes if notes else [])


def _short(args: Any) -> str:
    text = json.dumps(args, default=str) if not isinstance(args, str) else args
    return text if len(text) <= 80 else text[:77] + "..."
