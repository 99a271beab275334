"""The node's DPoS chain: consensus rules (`DposChain`) + block store + mempool + events.
Bodies below the LIB leave memory once stored and are read back through the archive
(docs/memory.md).

The DPoS twin of node/pos_service.py (the constructor and the views they share are in
node/chain_service_base.py). Every block, operation and piece of double-production evidence goes
through here; what the chain reports becomes events:
- `block_accepted`, `block_rejected`, `block_orphaned`, `head_changed`, `reorg` as on PoS;
- `lib_advanced` (height, root, slot, the head-to-LIB gap in blocks, and `irreversible_after_s`:
  our clock minus the LIB block's slot start, the time-to-irreversible);
- `schedule_changed` (version, the head's slot when it took effect, producers in order);
- `producer_missed` (slot, producer) for each empty slot on the head chain;
- `double_production` (producer, its genesis index as `validator`, slot, both roots), once per
  piece of evidence.
Roots are plain hex; producers are their public keys in hex.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from consensus.dpos.chain import DposChain, DposChainUpdate, DposNode, OperationResult
from consensus.dpos.spec import DposSpec
from consensus.dpos.types import DoubleProduction, DposBlock, DposOperation
from consensus.orphan_pool import DEFAULT_MAX_ORPHANS
from consensus.pos.signing import SignatureCache
from consensus.types import Transaction
from node.chain_service_base import LOCAL, ChainServiceBase
from node.events import EventBus
from node.mempool import Mempool
from node.store import BlockStore

log = logging.getLogger(__name__)


class DposChainService(ChainServiceBase[DposSpec, DposChain]):
    consensus = "dpos"

    def __init__(self, spec: DposSpec, store: BlockStore, events: EventBus, mempool: Mempool,
                 clock: Callable[[], float], *, max_orphans: int = DEFAULT_MAX_ORPHANS,
                 signature_cache: SignatureCache | None = None) -> None:
        super().__init__(spec, store, events, mempool, clock, max_orphans=max_orphans,
                         signature_cache=signature_cache)
        self.evidence_listeners: list[Callable[[DoubleProduction], None]] = []
        self.missed_total = 0

    def _new_chain(self, verify_tx: Callable[[Transaction], bool], max_orphans: int
                   ) -> DposChain:
        return DposChain(self.spec, verify_tx=verify_tx, max_orphans=max_orphans,
                         archive=self.archive)

    def decode_block(self, raw: bytes) -> DposBlock:
        return DposBlock.deserialize(raw)

    @staticmethod
    def show_id(block_id: bytes) -> str:
        return block_id.hex()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- start-up ------------------------------------------------------------------------------
    def load(self) -> int:
        self.store.check_network(self.spec.chain_id, self.chain.genesis_root.hex())
        count = 0
        indexed: list[tuple[bytes, bytes]] = []
        for raw, _received in self.store.iter_blocks():
            block = DposBlock.deserialize(raw)
            self.chain.on_block(block, self.now_ms(), trusted=True)
            indexed.extend((tx.txid, block.root) for tx in block.body.transactions)
            self.chain.release_irreversible_bodies()
            count += 1
        self.store.index_transactions(indexed)   # a store written before the index had one
        self.mempool.on_new_head(self.chain.ledger, [])
        return count

    # ---- inputs --------------------------------------------------------------------------------
    def submit_block(self, block: DposBlock, source: str = LOCAL) -> DposChainUpdate:
        now_ms = self.now_ms()
        update = self.chain.on_block(block, now_ms)
        for result in update.results:
            root_hex = result.block_hash.hex()
            if result.outcome in ("connected", "side"):
                node = self.chain.get(result.block_hash)
                assert node is not None
                self.store.put_block(result.block_hash, node.height, node.block.serialize(),
                                     now_ms / 1000,
                                     [tx.txid for tx in node.block.body.transactions])
                self.events.emit("block_accepted", hash=root_hex, height=node.height,
                                 slot=node.slot, parent=node.block.parent_root.hex(),
                                 peer=source, main_chain=result.outcome == "connected",
                                 txs=len(node.block.body.transactions),
                                 producer=node.block.producer.hex(),
                                 delay_ms=round(now_ms - self.spec.slot_start_ms(node.slot), 1))
            elif result.outcome == "rejected":
                if result.temporary:
                    log.info("ignored block %s from %s: %s", root_hex[:16], source[:16],
                             result.reason)
                    self.events.emit("block_ignored", hash=root_hex, reason=result.reason,
                                     peer=source)
                else:
                    self.block_rejected(result.block_hash, result.reason, source)
            elif result.outcome == "orphan":
                self.events.emit("block_orphaned", hash=root_hex, peer=source,
                                 parent=block.parent_root.hex())
        self.chain.release_irreversible_bodies()   # this call's blocks are stored by now
        self._report(update)
        return update

    def submit_operation(self, op: DposOperation, source: str = LOCAL) -> OperationResult:
        result = self.chain.on_operation(op)
        if result.outcome == "accept":
            self.events.emit("dpos_operation", kind=op.kind_label, account=op.account.hex(),
                             root=op.root.hex(), peer=source)
        return result

    def submit_evidence(self, evidence: DoubleProduction, source: str = LOCAL
                        ) -> OperationResult:
        result = self.chain.on_evidence(evidence)
        if result.outcome == "accept":
            self._evidence_found(evidence, source)
        return result

    # ---- outputs -------------------------------------------------------------------------------
    def _evidence_found(self, evidence: DoubleProduction, source: str) -> None:
        h1, h2 = evidence.header_1.message, evidence.header_2.message
        log.warning("double production by %s at slot %d", evidence.offender.hex()[:16],
                    evidence.slot)
        genesis = self.spec.schedule + self.spec.candidates
        index = genesis.index(evidence.offender) if evidence.offender in genesis else None
        self.events.emit("double_production", producer=evidence.offender.hex(),
                         validator=index, slot=evidence.slot,
                         roots=[h1.root.hex(), h2.root.hex()], peer=source)
        for listener in self.evidence_listeners:
            listener(evidence)

    def _report(self, update: DposChainUpdate) -> None:
        for evidence in update.evidence:
            self._evidence_found(evidence, LOCAL)
        for reorg in update.reorgs:
            self.reorgs_total += 1
            self.events.emit("reorg", depth=reorg.depth, old_head=reorg.old_head.hex(),
                             new_head=reorg.new_head.hex(),
                             common_ancestor=reorg.common_ancestor.hex(),
                             common_height=reorg.common_height,
                             reverted=[h.hex() for h in reorg.reverted],
                             applied=[h.hex() for h in reorg.applied])
        for slot, producer in update.missed:
            self.missed_total += 1
            self.events.emit("producer_missed", slot=slot, producer=producer.hex())
        if update.lib_changed is not None:
            self._lib_advanced(update.lib_changed)
        if update.schedule_changed is not None:
            version, schedule = update.schedule_changed
            log.info("schedule version %d active: %d producers", version, len(schedule))
            self.events.emit("schedule_changed", version=version, slot=self.chain.head.slot,
                             producers=[p.hex() for p in schedule])
        if update.head_changed:
            head = self.chain.head
            self.events.emit("head_changed", head=head.root.hex(), height=head.height,
                             slot=head.slot, previous=update.old_head.hex())
            self.tidy.schedule(update.reverted_txs)

    def _lib_advanced(self, lib: DposNode) -> None:
        head = self.chain.head
        slot_start_s = self.spec.slot_start_ms(lib.slot) / 1000
        self.events.emit("lib_advanced", height=lib.height, root=lib.root.hex(), slot=lib.slot,
                         gap=head.height - lib.height, slot_start_ts=slot_start_s,
                         irreversible_after_s=round(self.clock() - slot_start_s, 3))

    # ---- read-only views for the API -----------------------------------------------------------
    def block_json(self, text: str) -> dict | None:
        root = bytes.fromhex(text)
        if len(root) != 32:
            raise ValueError("a root is 64 hex digits")
        node = self.chain.get(root)
        if node is None:
            return None
        out = node.block.to_json()
        main = self.chain.is_on_main_chain(node)
        out.update({"hash": root.hex(), "height": node.height, "main_chain": main,
                    "irreversible": main and node.height <= self.chain.lib.height,
                    "confirmations": self.chain.head.height - node.height + 1 if main else 0})
        return out

    def headers_json(self, start: int, end: int) -> list[dict]:
        out = []
        for height in range(start, min(end, self.chain.head.height) + 1):
            node = self.chain.main_chain_at(height)
            if node is None:
                break
            block = node.block
            out.append({"hash": node.root.hex(), "height": height, "slot": block.slot,
                        "producer": block.producer.hex(), "parent_root": block.parent_root.hex(),
                        "txs": len(block.body.transactions),
                        "operations": len(block.body.operations)})
        return out

    def tips_json(self) -> list[dict]:
        tips: list[dict[str, Any]] = []
        head = self.chain.head
        for node in self.chain.blocks.values():
            if node.children:
                continue
            fork: DposNode | None = node
            while fork is not None and not self.chain.is_on_main_chain(fork):
                fork = fork.parent
            tips.append({"hash": node.root.hex(), "height": node.height, "slot": node.slot,
                         "status": "active" if node is head else "valid-fork",
                         "branchlen": node.height - (fork.height if fork else 0),
                         "lib_height": node.state.lib_height if node.state else None})
        tips.sort(key=lambda t: -t["height"])
        return tips

    def status_fields(self) -> dict:
        chain = self.chain
        state = chain.state
        slot = chain.current_slot(self.now_ms())
        lib = chain.lib
        return {
            "slot": slot, "round": self.spec.round_of(slot), "head_slot": chain.head.slot,
            "producer": chain.scheduled_producer(slot).hex(),
            "finalized": {"height": lib.height, "root": lib.root.hex(), "slot": lib.slot},
            "lib_gap": chain.head.height - lib.height,
            "schedule_version": state.schedule_version,
            "producers": len(state.schedule),
            "pending_schedule": state.pending_schedule is not None,
            "missed_slots": self.missed_total,
        }

    def producers_json(self) -> dict:
        """The schedule, the pending one, and every candidate's votes, production and misses."""
        state = self.chain.state
        totals = state.vote_totals(self.spec.vote_weight_doubling_slots)
        sitting = set(state.schedule)
        candidates: list[dict[str, Any]] = [{
            "producer": key.hex(), "votes": totals.get(key, 0), "in_schedule": key in sitting,
            "produced": state.produced.get(key, 0), "missed": state.missed.get(key, 0),
            "last_produced_height": state.last_produced.get(key, 0),
            "offences": sum(1 for p, _slot in state.offences if p == key),
            "slashed": key in state.slashed} for key in state.candidates]
        candidates.sort(key=lambda c: (-c["votes"], not c["in_schedule"], c["producer"]))
        return {"schedule": [p.hex() for p in state.schedule],
                "schedule_version": state.schedule_version,
                "pending_schedule": None if state.pending_schedule is None
                else [p.hex() for p in state.pending_schedule],
                "pending_height": state.pending_height if state.pending_schedule else None,
                "lib_height": state.lib_height, "repetitions": self.spec.repetitions,
                "slot_duration_ms": self.spec.slot_duration_ms,
                "voters": len(state.votes), "candidates": candidates}
