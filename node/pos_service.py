"""The node's PoS chain: consensus rules (`PosChain`) + block store + mempool + events.

The PoS twin of node/chain_service.py, with the same read-only views for the API (the constructor
and the views both share are in node/chain_service_base.py). Every block,
vote and piece of slashing evidence goes through here; what the chain reports (new head, reorgs,
justified and finalized checkpoints, slashings) becomes events. Roots are shown as plain hex.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from consensus.errors import Violation
from consensus.orphan_pool import DEFAULT_MAX_ORPHANS
from consensus.pos.chain import AttestationResult, OperationResult, PosChain, PosChainUpdate
from consensus.pos.fork_choice import BlockNode
from consensus.pos.signing import SignatureCache
from consensus.pos.spec import PosSpec
from consensus.pos.state import get_current_epoch
from consensus.pos.types import Attestation, Evidence, PosBlock
from consensus.types import Transaction
from node.chain_service_base import LOCAL, ChainServiceBase
from node.events import EventBus
from node.mempool import Mempool
from node.store import BlockStore

log = logging.getLogger(__name__)


class PosChainService(ChainServiceBase[PosSpec, PosChain]):
    consensus = "pos"

    def __init__(self, spec: PosSpec, store: BlockStore, events: EventBus, mempool: Mempool,
                 clock: Callable[[], float], *, max_orphans: int = DEFAULT_MAX_ORPHANS,
                 signature_cache: SignatureCache | None = None) -> None:
        super().__init__(spec, store, events, mempool, clock, max_orphans=max_orphans,
                         signature_cache=signature_cache)
        self.evidence_listeners: list[Callable[[Evidence], None]] = []
        self._leak_reported_epoch = -1

    def _new_chain(self, verify_tx: Callable[[Transaction], bool], max_orphans: int) -> PosChain:
        return PosChain(self.spec, verify_tx=verify_tx, max_orphans=max_orphans,
                        archive=self.archive, signature_cache=self.signature_cache)

    def decode_block(self, raw: bytes) -> PosBlock:
        return PosBlock.deserialize(raw)

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
            block = PosBlock.deserialize(raw)
            self.chain.on_block(block, self.now_ms(), trusted=True)
            indexed.extend((tx.txid, block.root) for tx in block.body.transactions)
            self.chain.release_finalized_bodies()
            count += 1
        self.store.index_transactions(indexed)   # a store written before the index had one
        self.mempool.on_new_head(self.chain.ledger, [])
        return count

    # ---- inputs --------------------------------------------------------------------------------
    def submit_block(self, block: PosBlock, source: str = LOCAL) -> PosChainUpdate:
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
                slot_start = self.spec.slot_start_ms(node.slot)
                self.events.emit("block_accepted", hash=root_hex, height=node.height,
                                 slot=node.slot, parent=node.block.parent_root.hex(),
                                 peer=source, main_chain=result.outcome == "connected",
                                 txs=len(node.block.body.transactions),
                                 proposer=node.block.proposer_index,
                                 attestations=len(node.block.body.attestations),
                                 delay_ms=round(now_ms - slot_start, 1))
            elif result.outcome in ("rejected", "invalidated"):
                self.block_rejected(result.block_hash, result.reason, source)
            elif result.outcome == "orphan":
                self.events.emit("block_orphaned", hash=root_hex, peer=source,
                                 parent=block.parent_root.hex())
        self.chain.release_finalized_bodies()   # this call's blocks are stored by now
        self._report(update)
        return update

    def submit_attestation(self, att: Attestation, source: str = LOCAL) -> AttestationResult:
        result = self.chain.on_attestation(att, self.now_ms())
        if result.outcome == "accept":
            self.events.emit("attestation", validator=att.validator_index, slot=att.slot,
                             head=att.head_root.hex(), source_epoch=att.source.epoch,
                             target_epoch=att.target.epoch, peer=source)
        elif result.outcome == "reject" or (result.outcome == "ignore" and result.evidence is None
                                            and result.violation is not Violation.DUPLICATE):
            level = logging.WARNING if result.outcome == "reject" else logging.INFO
            log.log(level, "%s attestation of validator %d from %s: %s",
                    "rejected" if result.outcome == "reject" else "ignored",
                    att.validator_index, source[:16], result.reason)
            self.events.emit("attestation_rejected", validator=att.validator_index,
                             slot=att.slot, reason=result.reason, peer=source,
                             verdict=result.outcome)
        if result.evidence is not None:
            self._evidence_found(result.evidence, source)
        return result

    def submit_evidence(self, evidence: Evidence, source: str = LOCAL) -> OperationResult:
        result = self.chain.on_slashing_evidence(evidence)
        if result.outcome == "accept":
            self._evidence_found(evidence, source)
        return result

    def tick(self) -> PosChainUpdate:
        update = self.chain.on_tick(self.now_ms())
        self._report(update)
        return update

    # ---- outputs -------------------------------------------------------------------------------
    def _evidence_found(self, evidence: Evidence, source: str) -> None:
        self.events.emit("slashing_evidence", validator=evidence.offender, kind=evidence.kind,
                         peer=source)
        for listener in self.evidence_listeners:
            listener(evidence)

    def _report(self, update: PosChainUpdate) -> None:
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
        if update.justified_changed is not None:
            cp = update.justified_changed
            self.events.emit("justified", epoch=cp.epoch, root=cp.root.hex(),
                             epoch_start_ts=self._epoch_start_s(cp.epoch))
        if update.finalized_changed is not None:
            cp = update.finalized_changed
            log.info("finalized epoch %d (%s)", cp.epoch, cp.root.hex()[:16])
            self.events.emit("finalized", epoch=cp.epoch, root=cp.root.hex(),
                             epoch_start_ts=self._epoch_start_s(cp.epoch))
        for slashed in update.slashed:
            self.events.emit("slashed", validator=slashed.validator_index, reason=slashed.reason,
                             block=slashed.block_root.hex())
        if update.head_changed:
            head = self.chain.head
            self.events.emit("head_changed", head=head.root.hex(), height=head.height,
                             slot=head.slot, previous=update.old_head.hex())
            self._check_leak()
            self.tidy.schedule(update.reverted_txs)

    def _epoch_start_s(self, epoch: int) -> float:
        return self.spec.slot_start_ms(epoch * self.spec.slots_per_epoch) / 1000

    def _check_leak(self) -> None:
        """An `inactivity_leak` event each epoch finality lags beyond the leak threshold."""
        state = self.chain.state
        epoch = get_current_epoch(state)
        delay = epoch - state.finalized_checkpoint.epoch
        if (self.spec.inactivity_leak_rate and delay > self.spec.inactivity_leak_after_epochs
                and epoch > self._leak_reported_epoch):
            self._leak_reported_epoch = epoch
            self.events.emit("inactivity_leak", epoch=epoch, finality_delay=delay,
                             finalized_epoch=state.finalized_checkpoint.epoch)

    # ---- read-only views for the API (same methods as the PoW ChainService) ---------------------
    def block_json(self, text: str) -> dict | None:
        root = bytes.fromhex(text)
        if len(root) != 32:
            raise ValueError("a root is 64 hex digits")
        node = self.chain.get(root)
        if node is None:
            return None
        out = node.block.to_json()
        out.update({"hash": root.hex(), "height": node.height,
                    "main_chain": self.chain.is_on_main_chain(node),
                    "weight": self.chain.get_weight(root)})
        out["confirmations"] = (self.chain.head.height - node.height + 1
                                if out["main_chain"] else 0)
        return out

    def headers_json(self, start: int, end: int) -> list[dict]:
        out = []
        for height in range(start, min(end, self.chain.head.height) + 1):
            node = self.chain.main_chain_at(height)
            if node is None:
                break
            block = node.block
            out.append({"hash": node.root.hex(), "height": height, "slot": block.slot,
                        "proposer_index": block.proposer_index,
                        "parent_root": block.parent_root.hex(),
                        "state_root": block.state_root.hex(),
                        "txs": len(block.body.transactions),
                        "attestations": len(block.body.attestations)})
        return out

    def tips_json(self) -> list[dict]:
        tips: list[dict[str, Any]] = []
        head = self.chain.head
        for node in self.chain.store.blocks.values():
            if node.children:
                continue
            fork: BlockNode | None = node
            while fork is not None and not self.chain.is_on_main_chain(fork):
                fork = fork.parent
            tips.append({"hash": node.root.hex(), "height": node.height, "slot": node.slot,
                         "status": "active" if node is head else "valid-fork",
                         "branchlen": node.height - (fork.height if fork else 0),
                         "weight": self.chain.get_weight(node.root)})
        tips.sort(key=lambda t: -t["height"])
        return tips

    def status_fields(self) -> dict:
        chain = self.chain
        state = chain.state
        now_slot = chain.current_slot(self.now_ms())
        active = [v for v in chain.validators_json() if v["active"]]
        return {
            "slot": now_slot, "epoch": now_slot // self.spec.slots_per_epoch,
            "head_slot": chain.head.slot,
            "justified": {"epoch": chain.justified.epoch, "root": chain.justified.root.hex()},
            "finalized": {"epoch": chain.finalized.epoch, "root": chain.finalized.root.hex()},
            "active_validators": len(active),
            "total_stake": sum(v["effective_stake"] for v in active),
            "slashed_validators": sum(1 for v in chain.validators_json() if v["slashed"]),
            "state_finalized_epoch": state.finalized_checkpoint.epoch,
        }
