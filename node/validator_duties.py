"""The duties of the validators a node runs, on the slot clock.

Each slot: at its start the node ticks fork choice, reports the previous slot's proposal if none
arrived (`proposal_missed`), and proposes if one of its validators is the slot's proposer; a third
into the slot its validators assigned to this slot attest to the head they see (consensus-specs'
honest validator timing). The clock is the node's clock, so a skewed node proposes and votes at
the wrong times, as a real one would.

Roles (for experiments, per validator, switchable at run time):
- `silent`: does nothing (an offline validator whose node is still up);
- `double-propose`: proposes two different blocks for its slot (equivocation);
- `double-vote`: signs two different attestations for the same target epoch;
- `surround-vote`: signs a vote whose source/target surround its previous vote.

`run()` ends only when cancelled; a duty that fails (e.g. a block cannot be built) is logged and
the next slot goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from consensus.keys import public_key
from consensus.pos.fork_choice import BlockNode
from consensus.pos.slashing import SlashingProtection
from consensus.pos.types import Attestation, Checkpoint, PosBlock
from node.clock import sleep_until
from node.events import EventBus
from node.pos_service import PosChainService

log = logging.getLogger(__name__)

VALIDATOR_ROLES = ("honest", "silent", "double-propose", "double-vote", "surround-vote")


class ValidatorDuties:
    def __init__(self, service: PosChainService, private_keys: list[bytes], *,
                 publish_block: Callable[[PosBlock], None],
                 publish_attestation: Callable[[Attestation], None],
                 candidate_txs: Callable[[], list], events: EventBus,
                 protection: SlashingProtection | None = None) -> None:
        self.service = service
        self.spec = service.spec
        self.publish_block = publish_block
        self.publish_attestation = publish_attestation
        self.candidate_txs = candidate_txs
        self.events = events
        by_pubkey = {pk: i for i, (pk, _stake) in enumerate(self.spec.validators)}
        self.keys: dict[int, bytes] = {}
        for key in private_keys:
            index = by_pubkey.get(public_key(key))
            if index is None:
                log.warning("validator key %s is not in the genesis set; ignored",
                            public_key(key).hex()[:16])
                continue
            self.keys[index] = key
        self.roles: dict[int, str] = {}
        # Honest validators never sign an offence, even when a heal shows them a branch where
        # their duty slot differs (EIP-3076-style record); adversarial roles bypass it on purpose.
        # The node passes a durable one (node/signing_history.py) so the record outlives restarts.
        self.protection = protection if protection is not None else SlashingProtection()
        self.refused = 0
        self.proposed = 0
        self.attested = 0
        self._last_vote: dict[int, Attestation] = {}

    def set_role(self, validator: int, role: str) -> None:
        if role not in VALIDATOR_ROLES:
            raise ValueError(f"unknown validator role {role!r}; roles are "
                             f"{', '.join(VALIDATOR_ROLES)}")
        if validator not in self.keys:
            raise ValueError(f"validator {validator} is not run by this node (it runs "
                             f"{sorted(self.keys) or 'none'})")
        if role == "honest":
            self.roles.pop(validator, None)
        else:
            self.roles[validator] = role

    def role(self, validator: int) -> str:
        return self.roles.get(validator, "honest")

    # ---- the slot loop -------------------------------------------------------------------------
    async def run(self) -> None:
        spec = self.spec
        slot = spec.slot_at(self.service.now_ms())
        while True:
            slot += 1
            await sleep_until(self.service.now_ms, spec.slot_start_ms(slot))
            self._safely(self._on_slot_start, slot)
            await sleep_until(self.service.now_ms,
                              spec.slot_start_ms(slot) + spec.slot_duration_ms // 3)
            self._safely(self._attest, slot)

    def _safely(self, duty: Callable[[int], None], slot: int) -> None:
        try:
            duty(slot)
        except (ValueError, KeyError, LookupError) as exc:
            log.warning("%s for slot %d failed: %s", duty.__name__, slot, exc)

    def _on_slot_start(self, slot: int) -> None:
        self.service.tick()
        self._report_missed(slot - 1)
        if not self.keys:
            return
        proposer = self.service.chain.get_proposer(slot)
        if proposer in self.keys and self.role(proposer) != "silent":
            if self.role(proposer) == "honest" and not self.protection.may_propose(proposer, slot):
                self.refused += 1
                return
            self.protection.record_proposal(proposer, slot)
            self._propose(slot, proposer)

    def _report_missed(self, slot: int) -> None:
        if slot <= 0:
            return
        node: BlockNode | None = self.service.chain.head
        while node is not None and node.slot > slot:
            node = node.parent
        if node is None or node.slot != slot:
            try:
                proposer = self.service.chain.get_proposer(slot)
            except (ValueError, KeyError, LookupError):
                proposer = None
            self.events.emit("proposal_missed", slot=slot, proposer=proposer)

    def _propose(self, slot: int, proposer: int) -> None:
        chain = self.service.chain
        key = self.keys[proposer]
        block = chain.build_block(slot, proposer, key, self.candidate_txs(),
                                  self.service.now_ms())
        update = self.service.submit_block(block)
        if update.results[0].outcome not in ("connected", "side"):
            log.warning("own block for slot %d refused: %s", slot, update.results[0].reason)
            return
        self.publish_block(block)
        self.proposed += 1
        if self.role(proposer) == "double-propose":
            # A second, different block for the same slot: same parent, no transactions.
            twin = chain.build_block(slot, proposer, key, (), self.service.now_ms(),
                                     parent_root=block.parent_root)
            if twin.root == block.root:
                parent = chain.get(block.parent_root)
                grandparent = parent.parent if parent is not None else None
                twin = chain.build_block(slot, proposer, key, (), self.service.now_ms(),
                                         parent_root=grandparent.root if grandparent is not None
                                         else block.parent_root)
            if twin.root != block.root:
                self.service.submit_block(twin)
                self.publish_block(twin)
                log.info("validator %d double-proposed at slot %d", proposer, slot)

    def _attest(self, slot: int) -> None:
        if not self.keys:
            return
        chain = self.service.chain
        for validator in chain.get_attesters(slot):
            key = self.keys.get(validator)
            role = self.role(validator)
            if key is None or role == "silent":
                continue
            att = chain.make_attestation(slot, validator, key)
            if role == "honest" and not self.protection.may_attest(att):
                self.refused += 1
                log.info("validator %d: not signing a vote that would be slashable", validator)
                continue
            self.protection.record_attestation(att)
            self._cast(att)
            if role == "double-vote":
                self._double_vote(att, slot, validator, key)
            elif role == "surround-vote":
                self._surround_vote(att, slot, validator, key)
            self._last_vote[validator] = att

    def _cast(self, att: Attestation) -> None:
        result = self.service.submit_attestation(att)
        if result.outcome == "accept" or result.evidence is not None:
            self.publish_attestation(att)
            self.attested += 1

    def _double_vote(self, att: Attestation, slot: int, validator: int, key: bytes) -> None:
        """A second, different vote for the same target epoch: for the target block itself as
        head (when the first vote named a later head), else with another source."""
        chain = self.service.chain
        if att.head_root != att.target.root:
            twin = chain.make_attestation(slot, validator, key, head_root=att.target.root,
                                          target=att.target, source=att.source)
        elif att.source.epoch > 0:
            twin = chain.make_attestation(slot, validator, key, target=att.target,
                                          source=Checkpoint(0, chain.genesis_root))
        else:
            return
        if twin.root != att.root:
            self._cast(twin)
            log.info("validator %d double-voted in epoch %d", validator, att.target.epoch)

    def _surround_vote(self, att: Attestation, slot: int, validator: int, key: bytes) -> None:
        """A vote for this epoch's target whose source (genesis) is older than the previous
        vote's source: it surrounds that vote (s1 < s2 and t2 < t1)."""
        previous = self._last_vote.get(validator)
        if previous is None or previous.source.epoch == 0 or previous.target.epoch >= \
                att.target.epoch:
            return
        genesis = Checkpoint(0, self.service.chain.genesis_root)
        surrounding = self.service.chain.make_attestation(slot, validator, key,
                                                          target=att.target, source=genesis)
        if surrounding.root != att.root:
            self._cast(surrounding)
            log.info("validator %d cast a surround vote", validator)

    def describe(self) -> dict:
        return {"validators": sorted(self.keys), "roles": {str(k): v for k, v in
                                                            sorted(self.roles.items())},
                "proposed": self.proposed, "attested": self.attested,
                "refused_slashable": self.refused,
                "signing_records_loaded": self.protection.loaded}
