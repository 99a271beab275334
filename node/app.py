"""One node process: loads its config and chain, serves the API and the p2p websocket on one port,
mines (PoW, hybrid), proposes (PoS) or produces in its slots (DPoS), votes (PoS, hybrid), and runs
until SIGTERM/SIGINT.

All background work is a child of one `asyncio.TaskGroup` (the p2p host's dial loop, the miner);
`run()` ends when cancelled or when a child fails, and always closes the store and event log.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web

from consensus.block_builder import build_block
from consensus.dpos.chain import OperationResult as DposOperationResult
from consensus.dpos.spec import DposSpec
from consensus.dpos.types import DposOperation
from consensus.hybrid.builder import build_block as build_hybrid_block
from consensus.hybrid.operations import OperationResult as HybridOperationResult
from consensus.hybrid.spec import HybridSpec
from consensus.keys import public_key
from consensus.pos.chain import OperationResult
from consensus.pos.spec import PosSpec
from consensus.pos.types import Deposit, Exit
from consensus.pow import hash_hex
from consensus.types import Block, Transaction
from node import memory_trace
from node.admin_api import add_admin_routes
from node.api import add_routes
from node.chain_service import ChainService
from node.clock import NodeClock, loop_time
from node.config import ConfigError, NodeConfig, load_config
from node.dpos_bridge import DposBridge
from node.dpos_service import DposChainService
from node.events import EventBus
from node.http_input import QuietBadRequests
from node.hybrid_bridge import HybridBridge
from node.hybrid_service import HybridChainService
from node.hybrid_validators import HybridValidators
from node.link_faults import LinkFaults
from node.memory_report import memory_items, resident_bytes
from node.mempool import Mempool
from node.metrics import NodeMetrics
from node.miner import Miner
from node.mining_strategy import MiningStrategy, make_strategy
from node.p2p_bridge import PowBridge
from node.pos_bridge import PosBridge
from node.pos_service import PosChainService
from node.producer_duties import ProducerDuties
from node.runtime import NodeRuntime, shared_signature_cache, shared_verified_cache
from node.sampled_miner import SampledMiner
from node.signing_history import (
    DurableSlashingProtection,
    DurableVoteProtection,
    SigningHistoryError,
)
from node.store import BlockStore, StoreError
from node.validator_duties import ValidatorDuties
from p2p.host import P2PHost, PeerInfo
from p2p.wire import MAX_FRAME_BYTES

log = logging.getLogger("node")

API_MAX_BODY_BYTES = 1 << 20
TEMPLATE_REFRESH_S = 0.5


class Node:
    """One node of any consensus. Common parts (store, events, p2p host, API, faults) are
    built here; `_init_pow` adds the miner and mining strategies (and, on a hybrid node, the
    validators' votes), `_init_pos` the validator duties."""

    def __init__(self, config: NodeConfig, runtime: NodeRuntime | None = None) -> None:
        self.config = config
        self.runtime = runtime = runtime if runtime is not None else NodeRuntime()
        self.consensus = config.consensus
        self.spec = config.chain_spec()
        self.clock = NodeClock(runtime.time_source)
        self.started_at: float | None = None    # loop time when run() started
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.events = EventBus(config.node_id,
                               config.data_dir / "events.jsonl" if runtime.event_log else None,
                               self.clock)
        self.metrics = NodeMetrics()
        self.events.listeners.append(self.metrics.on_event)
        self.store = BlockStore(runtime.chain_store_path(config.data_dir))
        self.mempool = Mempool(config.mempool_max, verified=shared_verified_cache(runtime))
        self.node_key = bytes.fromhex(config.node_key)
        self.miner: Miner | SampledMiner | None = None
        self.strategy: MiningStrategy | None = None
        self.duties: ValidatorDuties | None = None
        self.voters: HybridValidators | None = None
        self.producers: ProducerDuties | None = None
        self.signing_history: DurableSlashingProtection | DurableVoteProtection | None = None
        # the one of this node's consensus
        self.service: ChainService | PosChainService | DposChainService
        service_type: type[ChainService | PosChainService | DposChainService]
        if isinstance(self.spec, DposSpec):
            service_type = DposChainService
        elif isinstance(self.spec, HybridSpec):
            service_type = HybridChainService
        elif isinstance(self.spec, PosSpec):
            service_type = PosChainService
        else:
            service_type = ChainService
        self.service = service_type(self.spec, self.store, self.events,  # type: ignore[arg-type]
                                    self.mempool, self.clock, max_orphans=config.max_orphans,
                                    signature_cache=shared_signature_cache(runtime))
        self.host = P2PHost(private_key=self.node_key, chain_id=self.spec.chain_id,
                            genesis_hash=self.service.chain.genesis_hash, peers=config.peers,
                            max_frame_bytes=max(MAX_FRAME_BYTES, self.spec.max_block_bytes + 4096),
                            rng=runtime.rng(config.node_id, "p2p"),
                            challenge_source=(None if runtime.seed is None else
                                              runtime.rng(config.node_id, "handshake").randbytes),
                            on_peer_connected=self._on_peer_connected,
                            on_peer_disconnected=self._on_peer_disconnected,
                            status_interval=config.status_interval_s,
                            transport=runtime.transport)
        self.link_faults = LinkFaults(self.host)
        self._template_dirty = False
        self.ready = asyncio.Event()
        self.bridge: PowBridge | PosBridge | DposBridge
        if isinstance(self.service, PosChainService):
            self._init_pos(self.service)
        elif isinstance(self.service, DposChainService):
            self._init_dpos(self.service)
        else:
            self._init_pow(self.service)

    def _init_pow(self, service: ChainService) -> None:
        config = self.config
        bridge = self.bridge = (HybridBridge(service, self.host)
                                if isinstance(service, HybridChainService)
                                else PowBridge(service, self.host))
        self.payout = (bytes.fromhex(config.miner.payout) if config.miner.payout
                       else public_key(self.node_key))
        if self.runtime.miner == "sampled":
            chain = service.chain
            self.miner = SampledMiner(build_template=self._template,
                                      next_bits=lambda: chain.expected_bits(chain.head),
                                      on_solved=self._on_block_mined,
                                      hashrate=config.miner.hashrate,
                                      rng=self.runtime.rng(config.node_id, "miner"),
                                      enabled=config.miner.enabled)
        else:
            self.miner = Miner(build_template=self._template, on_solved=self._on_block_mined,
                               hashrate=config.miner.hashrate, chunk=config.miner.chunk,
                               enabled=config.miner.enabled)
        service.head_listeners.append(self.miner.refresh)
        self.strategy = self._make_strategy("honest")
        bridge.strategy = self.strategy
        if isinstance(service, HybridChainService) and isinstance(bridge, HybridBridge):
            self._init_voters(service, bridge)

    def _init_voters(self, service: HybridChainService, bridge: HybridBridge) -> None:
        protection = None
        if self.config.validator_keys:
            protection = self.signing_history = DurableVoteProtection(self._signing_path())
        self.voters = HybridValidators(
            service, [bytes.fromhex(k) for k in self.config.validator_keys],
            publish_vote=bridge.publish_vote, events=self.events, protection=protection)
        service.operation_listeners.append(self._mark_template_dirty)

    def _mark_template_dirty(self) -> None:
        self._template_dirty = True

    def _init_pos(self, service: PosChainService) -> None:
        bridge = self.bridge = PosBridge(service, self.host)
        protection = None
        if self.config.validator_keys:
            protection = self.signing_history = DurableSlashingProtection(
                self._signing_path())
        self.duties = ValidatorDuties(
            service, [bytes.fromhex(k) for k in self.config.validator_keys],
            publish_block=bridge.publish_block,
            publish_attestation=bridge.publish_attestation,
            candidate_txs=self.mempool.candidates, events=self.events, protection=protection)

    def _init_dpos(self, service: DposChainService) -> None:
        bridge = self.bridge = DposBridge(service, self.host)
        protection = None
        if self.config.validator_keys:
            protection = self.signing_history = DurableSlashingProtection(
                self._signing_path())
        self.producers = ProducerDuties(
            service, [bytes.fromhex(k) for k in self.config.validator_keys],
            publish_block=bridge.publish_block, candidate_txs=self.mempool.candidates,
            protection=protection)

    def _dpos(self) -> tuple[DposChainService, DposBridge]:
        """The service and bridge of a DPoS node."""
        service, bridge = self.service, self.bridge
        assert isinstance(service, DposChainService) and isinstance(bridge, DposBridge), \
            "not a DPoS node"
        return service, bridge

    def _pow(self) -> tuple[ChainService, PowBridge]:
        """The service and bridge of a PoW node (what only PoW nodes do asks for them)."""
        service, bridge = self.service, self.bridge
        assert isinstance(service, ChainService) and isinstance(bridge, PowBridge), \
            "not a PoW node"
        return service, bridge

    def _pos(self) -> tuple[PosChainService, PosBridge]:
        """The service and bridge of a PoS node (what only PoS nodes do asks for them)."""
        service, bridge = self.service, self.bridge
        assert isinstance(service, PosChainService) and isinstance(bridge, PosBridge), \
            "not a PoS node"
        return service, bridge

    # ---- actions used by the API ---------------------------------------------------------------
    def _make_strategy(self, role: str) -> MiningStrategy:
        service, bridge = self._pow()
        chain = service.chain
        return make_strategy(role, publish=bridge.publish_block,
                             head_height=lambda: chain.head.height,
                             head_is=lambda block_hash: chain.head.hash == block_hash)

    def set_role(self, role: str, validator: int | None = None) -> dict:
        """PoW: switch the mining strategy (what the old one held back is released first).
        PoS: switch one local validator's behaviour. Hybrid: either, as `validator` says.
        DPoS: switch one local producer's behaviour (`validator` = its genesis index)."""
        if self.producers is not None:
            if validator is None:
                raise ValueError("a DPoS role names a producer (e.g. v3)")
            previous = self.producers.role(validator)
            self.producers.set_role(validator, role)
            self.events.emit("fault_applied" if role != "honest" else "fault_cleared",
                             fault="role", role=role, previous=previous, validator=validator)
            return {"role": role, "previous": previous, "validator": validator}
        validators = self.duties or self.voters
        if validators is not None and (validator is not None or self.duties is not None):
            if validator is None:
                raise ValueError("a PoS role names a validator (e.g. v7)")
            previous = validators.role(validator)
            validators.set_role(validator, role)
            self.events.emit("fault_applied" if role != "honest" else "fault_cleared",
                             fault="role", role=role, previous=previous, validator=validator)
            return {"role": role, "previous": previous, "validator": validator}
        assert self.strategy is not None and self.miner is not None
        _service, bridge = self._pow()
        new = self._make_strategy(role)  # raises ValueError for an unknown role
        old = self.strategy
        released = old.release()
        self.strategy = new
        bridge.strategy = new
        replayed = bridge.release_held_blocks() if old.holds_peer_blocks else 0
        self.events.emit("fault_applied", fault="role", role=role, previous=old.name,
                         released_blocks=len(released), replayed_peer_blocks=replayed)
        self.miner.refresh()
        return {"role": role, "previous": old.name, "released_blocks": len(released),
                "replayed_peer_blocks": replayed}

    def submit_stake_operation(self, kind: str, raw: bytes
                               ) -> OperationResult | HybridOperationResult:
        """A deposit or exit for the operation pool (PoS, hybrid); ValueError for malformed
        bytes."""
        op: Deposit | Exit
        hybrid, hybrid_bridge = self.service, self.bridge
        if isinstance(hybrid, HybridChainService) and isinstance(hybrid_bridge, HybridBridge):
            op = Deposit.deserialize(raw) if kind == "deposit" else Exit.deserialize(raw)
            outcome = hybrid.submit_operation(op)
            if outcome.outcome == "accept":
                self.events.emit("stake_operation", kind=kind, root=op.root.hex())
                hybrid_bridge.publish_operation(op)
            return outcome
        service, bridge = self._pos()
        chain = service.chain
        if kind == "deposit":
            op = Deposit.deserialize(raw)
            result = chain.on_deposit(op)
        else:
            op = Exit.deserialize(raw)
            result = chain.on_exit(op)
        if result.outcome == "accept":
            self.events.emit("stake_operation", kind=kind, root=op.root.hex())
            bridge.publish_operation(kind, op)
        return result

    def submit_dpos_operation(self, raw: bytes) -> DposOperationResult:
        """A stake, unstake, registration or vote for the pool (DPoS); ValueError for malformed
        bytes."""
        service, bridge = self._dpos()
        op = DposOperation.deserialize(raw)
        result = service.submit_operation(op)
        if result.outcome == "accept":
            bridge.publish_operation(op)
        return result

    def submit_transaction(self, tx: Transaction) -> bytes:
        txid = self.service.submit_transaction(tx)
        if self.strategy is None or self.strategy.relays_own_transactions:
            self.bridge.publish_transaction(tx)
        self._template_dirty = True
        return txid

    def status(self) -> dict:
        chain = self.service.chain
        head = chain.head
        peers = len(self.host.peers())
        common = {
            "node_id": self.config.node_id, "peer_id": self.host.peer_id,
            "consensus": self.consensus, "chain_id": self.spec.chain_id,
            "peers": peers, "mempool": len(self.mempool),
            "syncing": self.host.sync.syncing, "orphans": len(chain.orphans), "time": self.clock(),
            "clock_offset_s": self.clock.offset_s,
            "uptime_s": self.uptime_s(),
            "events_seq": self.events.last_seq, "reorgs": self.service.reorgs_total,
            "faults": {"blocked_peers": len(self.link_faults.blocks),
                       "shaped_links": len(self.link_faults.shaping),
                       "clock_offset_s": self.clock.offset_s},
            "memory": self._memory_json(peers),
        }
        service = self.service
        if isinstance(service, PosChainService):
            assert self.duties is not None, "a PoS node has validator duties"
            pos_chain = service.chain
            return {**common, "genesis": pos_chain.genesis_root.hex(), "height": head.height,
                    "head": pos_chain.head.root.hex(), **service.status_fields(),
                    "blocks_known": len(pos_chain.store.blocks), "role": "validator",
                    "validators": self.duties.describe()}
        if isinstance(service, DposChainService):
            assert self.producers is not None, "a DPoS node has producer duties"
            dpos_chain = service.chain
            return {**common, "genesis": dpos_chain.genesis_root.hex(), "height": head.height,
                    "head": dpos_chain.head.root.hex(), **service.status_fields(),
                    "blocks_known": len(dpos_chain.blocks), "role": "producer",
                    "local_producers": self.producers.describe()}
        assert self.miner is not None and self.strategy is not None
        pow_chain = service.chain
        out = {**common, "genesis": hash_hex(pow_chain.genesis_hash), "height": head.height,
               "head": hash_hex(pow_chain.head.hash), "total_work": pow_chain.head.total_work,
               "blocks_known": len(pow_chain.tree), "role": self.strategy.name,
               "private_blocks": len(self.strategy.private_blocks()),
               "miner": {"enabled": self.miner.enabled,
                         "hashrate": round(self.miner.hashrate, 1),
                         "hashrate_cap": self.miner.hashrate_cap,
                         "blocks_found": self.miner.blocks_found,
                         "payout": self.payout.hex()}}
        if isinstance(service, HybridChainService) and self.voters is not None:
            out.update(service.status_fields(), validators=self.voters.describe())
        return out

    def _memory_json(self, peers: int) -> dict[str, int]:
        """What the node holds, by kind, and the process's resident set when the node is a
        process of its own (an embedded node, `serve_http=False`, shares its process: the figure
        would be everyone's, and reading /proc for each of 1000 nodes' /status is the cost)."""
        memory = memory_items(self, peers)
        if self.runtime.serve_http:
            memory["resident_bytes"] = resident_bytes()
        return memory

    def known_peer_ids(self) -> set[str]:
        return {p.peer_id for p in self.host.peers()} | set(self.config.peer_ids)

    def faults_json(self) -> dict:
        out = {"links": self.link_faults.describe(), "clock_offset_s": self.clock.offset_s}
        if self.duties is not None or self.voters is not None:
            validators = self.duties or self.voters
            assert validators is not None
            out["validators"] = validators.describe()
        if self.producers is not None:
            out["producers"] = self.producers.describe()
        if self.miner is not None and self.strategy is not None:
            out["role"] = self.strategy.name
            out["miner"] = {"enabled": self.miner.enabled,
                            "hashrate_cap": self.miner.hashrate_cap}
        return out

    def peers_json(self) -> list[dict]:
        return [{"peer_id": p.peer_id, "url": p.url, "direction": p.direction,
                 "connected_at": p.connected_at, "score": p.score, "msgs_in": p.msgs_in,
                 "msgs_out": p.msgs_out} for p in self.host.peers()]

    # ---- mining --------------------------------------------------------------------------------
    def _template(self) -> Block:
        service, _bridge = self._pow()
        if isinstance(service, HybridChainService):
            return build_hybrid_block(service.chain, service.operations.pool, self.payout,
                                      self.mempool.candidates(), int(self.clock()))
        return build_block(service.chain, self.payout, self.mempool.candidates(),
                           int(self.clock()))

    def _on_block_mined(self, block: Block) -> None:
        service, _bridge = self._pow()
        update = service.submit_block(block)  # tidy-up work is deferred past publish
        result = update.results[0]
        if result.outcome in ("connected", "side"):
            log.info("mined block %s at height %s", hash_hex(block.hash)[:16], result.height)
            assert self.strategy is not None, "a PoW node has a mining strategy"
            self.strategy.on_own_block(block, result.height or 0)
        else:
            log.warning("own block %s not accepted: %s %s", hash_hex(block.hash)[:16],
                        result.outcome, result.reason)
        if not update.head_changed and self.miner is not None:
            self.miner.refresh()

    async def _refresh_template_on_new_txs(self) -> None:
        """New transactions reach the miner's template at most every TEMPLATE_REFRESH_S."""
        while True:
            await asyncio.sleep(TEMPLATE_REFRESH_S)
            if self._template_dirty and self.miner is not None:
                self._template_dirty = False
                self.miner.refresh()

    # ---- p2p callbacks -------------------------------------------------------------------------
    def _on_peer_connected(self, peer: PeerInfo) -> None:
        self.events.emit("peer_connected", peer=peer.peer_id, url=peer.url,
                         direction=peer.direction)

    def _on_peer_disconnected(self, peer: PeerInfo, reason: str) -> None:
        self.events.emit("peer_disconnected", peer=peer.peer_id, url=peer.url, reason=reason)

    # ---- lifecycle -----------------------------------------------------------------------------
    def head_hex(self) -> str:
        service = self.service
        if isinstance(service, PosChainService | DposChainService):
            return service.chain.head.root.hex()
        return hash_hex(service.chain.head.hash)

    async def run(self) -> None:
        """Run the node until cancelled: the HTTP site (API, admin API, /p2p websocket) when the
        runtime serves HTTP, and the services (`run_services`). Ends when cancelled or when a
        child task fails (the TaskGroup's ExceptionGroup, or OSError when the port is taken);
        always closes the store, the signing history and the event log."""
        await self._run(serve_http=self.runtime.serve_http)

    async def run_services(self) -> None:
        """Run everything but the HTTP site: the p2p host, the miner or the validator duties.
        The app stays buildable (`make_app`), so an in-process client can call its handlers.
        Ends as `run()` does."""
        await self._run(serve_http=False)

    async def _run(self, *, serve_http: bool) -> None:
        try:
            self.started_at = loop_time()
            loaded = self.service.load()
            head = self.service.chain.head
            log.info("node %s (%s) loaded %d stored blocks; head %s at height %d",
                     self.config.node_id, self.consensus, loaded, self.head_hex()[:16],
                     head.height)
            self.events.emit("node_started", height=head.height, head=self.head_hex(),
                             blocks_loaded=loaded, consensus=self.consensus)
            if not serve_http:
                await self._run_tasks()
                return
            runner = self.make_runner()
            await runner.setup()
            try:
                site = web.TCPSite(runner, self.config.host, self.config.port)
                await site.start()
                log.info("node %s serving on http://%s:%d", self.config.node_id,
                         self.config.host, self.config.port)
                await self._run_tasks()
            finally:
                await runner.cleanup()
        finally:
            self.close()

    async def _run_tasks(self) -> None:
        """The node's background tasks, children of one TaskGroup; sets `ready` once started."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.host.run())
            if self.miner is not None:
                tg.create_task(self.miner.run())
                if isinstance(self.miner, Miner):   # a sampled one builds its block when due
                    tg.create_task(self._refresh_template_on_new_txs())
            if self.duties is not None:
                tg.create_task(self.duties.run())
            if self.voters is not None:
                tg.create_task(self.voters.run())
            if self.producers is not None:
                tg.create_task(self.producers.run())
            if memory_trace.is_traced(self.config.node_id):
                tg.create_task(memory_trace.dump_periodically(self, self.config.node_id,
                                                              self.config.data_dir))
            self.ready.set()
            if self.runtime.serve_http:
                release_free_memory()   # a node process; not per node of a simulation

    def uptime_s(self) -> float:
        """Seconds since run() started, on the loop's clock (virtual on a simulated loop)."""
        return 0.0 if self.started_at is None else round(loop_time() - self.started_at, 3)

    def make_app(self) -> web.Application:
        """The node's aiohttp app: the API, the admin API and the p2p websocket."""
        app = web.Application(client_max_size=API_MAX_BODY_BYTES)
        add_routes(app, self)
        add_admin_routes(app, self)
        app.router.add_get("/p2p", self.host.handle_inbound)
        return app

    def make_runner(self) -> web.AppRunner:
        """The HTTP server of this node (`make_app`). aiohttp's own refusals of malformed
        requests are logged as one line (QuietBadRequests)."""
        server_log = QuietBadRequests(logging.getLogger("aiohttp.server"), {})
        return web.AppRunner(self.make_app(), access_log=None, handle_signals=False,
                             logger=server_log)

    def _signing_path(self) -> Path | str:
        return self.runtime.signing_store_path(self.config.data_dir)

    def close(self) -> None:
        """Close the store, the signing history and the event log (after run(), or instead of
        it)."""
        self.store.close()
        if self.signing_history is not None:
            self.signing_history.close()
        self.events.close()


def release_free_memory() -> None:
    """Hand the heap pages that start-up garbage left free back to the OS (glibc only). Chain
    replay and imports churn through memory that an idle node never needs again."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def main(config_path: str | Path) -> int:
    """Entry point of `testnet node --config FILE` and `python -m node`; returns the exit code."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level, stream=sys.stderr,
                        format=f"%(asctime)s {config.node_id} %(levelname)s %(name)s: %(message)s")
    if memory_trace.is_traced(config.node_id):
        memory_trace.start_tracing()
    try:
        node = Node(config)
    except (ConfigError, StoreError, SigningHistoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_run_until_signalled(node))


async def _run_until_signalled(node: Node) -> int:
    task = asyncio.current_task()
    assert task is not None, "runs as the main task of asyncio.run"
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await node.run()
    except asyncio.CancelledError:
        log.info("node %s stopping", node.config.node_id)
        return 0
    except OSError as exc:
        log.error("node %s cannot serve: %s", node.config.node_id, exc)
        return 1
    return 0
