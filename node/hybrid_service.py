"""The node's hybrid chain: the PoW chain service (node/chain_service.py: blocks, store, mempool,
the PoW events) with Casper FFG's inputs and events on top.

Blocks go through the PoW `submit_block` unchanged; what the hybrid chain adds to an update
becomes events: `justified` and `finalized` (epoch, root shown like every block hash, the
checkpoint's height and when its block was mined), `slashed`, and `reorg_refused` (a heavier branch
that does not contain the finalized checkpoint: PoW alone would have switched). Votes, slashing
evidence, deposits and logouts come in through `submit_*` (gossip, the API, local validators) and
are judged by `consensus.hybrid.operations.Operations`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from consensus.errors import Violation
from consensus.hybrid.chain import HybridChain, HybridChainUpdate
from consensus.hybrid.operations import OperationResult, Operations, VoteResult
from consensus.hybrid.spec import HybridSpec
from consensus.hybrid.state import FinalityPoint
from consensus.hybrid.types import Deposit, Exit, HybridBlock, HybridVote, VoteSlashing
from consensus.orphan_pool import DEFAULT_MAX_ORPHANS
from consensus.pos.signing import SignatureCache
from consensus.pow import hash_hex
from consensus.types import Block, Transaction
from node.chain_service import ChainService
from node.chain_service_base import LOCAL
from node.events import EventBus
from node.mempool import Mempool
from node.store import BlockStore

log = logging.getLogger(__name__)


class HybridChainService(ChainService):
    spec: HybridSpec
    chain: HybridChain

    def __init__(self, spec: HybridSpec, store: BlockStore, events: EventBus, mempool: Mempool,
                 clock: Callable[[], float], *, max_orphans: int = DEFAULT_MAX_ORPHANS,
                 signature_cache: SignatureCache | None = None) -> None:
        super().__init__(spec, store, events, mempool, clock, max_orphans=max_orphans,
                         signature_cache=signature_cache)
        self.operations = Operations(self.chain)
        self.evidence_listeners: list[Callable[[VoteSlashing], None]] = []
        self.operation_listeners: list[Callable[[], None]] = []    # the miner's next template

    def _new_chain(self, verify_tx: Callable[[Transaction], bool], max_orphans: int
                   ) -> HybridChain:
        assert isinstance(self.spec, HybridSpec)
        return HybridChain(self.spec, verify_tx=verify_tx, max_orphans=max_orphans,
                           archive=self.archive,   # the PoW rule: bodies 64 deep leave memory
                           signature_cache=self.signature_cache)

    def decode_block(self, raw: bytes) -> HybridBlock:
        return HybridBlock.deserialize(raw, self.spec.max_block_bytes, self.spec.max_casper_bytes)

    # ---- blocks --------------------------------------------------------------------------------
    def submit_block(self, block: Block, source: str = LOCAL) -> HybridChainUpdate:
        update = super().submit_block(block, source)
        assert isinstance(update, HybridChainUpdate)
        for result in update.stored:
            entry = self.chain.get(result.block_hash)
            if entry is not None and isinstance(entry.block, HybridBlock):
                for evidence in self.operations.on_block_votes(entry.block.casper.votes):
                    self._evidence_found(evidence, LOCAL)
        self._report(update)
        if update.head_changed:
            self.operations.on_new_head()
        return update

    def _report(self, update: HybridChainUpdate) -> None:
        for refused in update.refused:
            point = refused.finalized
            log.warning("refused a reorg to %s at height %d (work %d > %d): it does not contain "
                        "the finalized checkpoint of epoch %d", hash_hex(refused.tip)[:16],
                        refused.height, refused.total_work, refused.head_work, point.epoch)
            self.events.emit("reorg_refused", tip=hash_hex(refused.tip), height=refused.height,
                             total_work=str(refused.total_work),
                             head_work=str(refused.head_work), fork_height=refused.fork_height,
                             finalized_epoch=point.epoch, finalized_root=hash_hex(point.hash),
                             finalized_height=refused.finalized_height,
                             reason="the branch does not contain the finalized checkpoint")
        if update.justified_changed is not None:
            self.events.emit("justified", **self._checkpoint(update.justified_changed))
        if update.finalized_changed is not None:
            point = update.finalized_changed
            log.info("finalized epoch %d (%s)", point.epoch, hash_hex(point.hash)[:16])
            self.events.emit("finalized", **self._checkpoint(point))
        for slashed in update.slashed:
            self.events.emit("slashed", validator=slashed.validator_index, reason=slashed.reason,
                             block=hash_hex(slashed.block_hash))

    def _checkpoint(self, point: FinalityPoint) -> dict:
        entry = self.chain.get(point.hash)
        return {"epoch": point.epoch, "root": hash_hex(point.hash),
                "height": entry.height if entry else self.spec.checkpoint_height(point.epoch),
                "epoch_start_ts": entry.time if entry else None}

    # ---- votes, evidence, deposits and logouts -------------------------------------------------
    def submit_vote(self, vote: HybridVote, source: str = LOCAL) -> VoteResult:
        result = self.operations.on_vote(vote)
        if result.outcome == "accept":
            self.events.emit("vote", validator=vote.validator_index,
                             target_epoch=vote.target_epoch, source_epoch=vote.source_epoch,
                             target=hash_hex(vote.target_hash), peer=source)
            self._operations_changed()
        elif result.evidence is None and result.violation is not Violation.DUPLICATE:
            level = logging.WARNING if result.outcome == "reject" else logging.INFO
            log.log(level, "%s vote of validator %d from %s: %s", "rejected" if
                    result.outcome == "reject" else "ignored", vote.validator_index,
                    source[:16], result.reason)
            self.events.emit("vote_rejected", validator=vote.validator_index,
                             target_epoch=vote.target_epoch, reason=result.reason, peer=source,
                             verdict=result.outcome)
        if result.evidence is not None:
            self._evidence_found(result.evidence, source)
        return result

    def submit_evidence(self, evidence: VoteSlashing, source: str = LOCAL) -> OperationResult:
        result = self.operations.on_evidence(evidence)
        if result.outcome == "accept":
            self._evidence_found(evidence, source)
        return result

    def submit_operation(self, op: Deposit | Exit) -> OperationResult:
        if isinstance(op, Deposit):
            result = self.operations.on_deposit(op)
        else:
            result = self.operations.on_exit(op)
        if result.outcome == "accept":
            self._operations_changed()
        return result

    def _evidence_found(self, evidence: VoteSlashing, source: str) -> None:
        self.events.emit("slashing_evidence", validator=evidence.offender, kind=evidence.kind,
                         peer=source)
        for listener in self.evidence_listeners:
            listener(evidence)
        self._operations_changed()

    def _operations_changed(self) -> None:
        for listener in self.operation_listeners:
            listener()

    # ---- views ---------------------------------------------------------------------------------
    def status_fields(self) -> dict:
        chain = self.chain
        state = self.operations.next_state()
        finalized = chain.finalized
        active = [i for i in range(len(state.validators)) if state.may_vote(i)]
        return {
            "epoch": state.epoch, "epoch_length": self.spec.epoch_length,
            "dynasty": state.dynasty,
            "justified": {"epoch": chain.justified.epoch, "root": hash_hex(chain.justified.hash)},
            "finalized": ({"epoch": finalized.epoch, "root": hash_hex(finalized.hash),
                           "height": chain.finalized_height} if finalized is not None
                          else {"epoch": -1, "root": None, "height": None}),
            "expected_source_epoch": state.expected_source_epoch,
            "active_validators": len(active),
            "total_deposits": sum(state.validators[i].deposit for i in active),
            "slashed_validators": sum(1 for v in state.validators if v.slashed),
            "votes_pooled": len(self.operations.pool.votes),
        }

    def validators_json(self) -> list[dict]:
        return self.chain.validators_json()
