"""The duties of the block producers a node runs, on the slot clock.

At the start of each slot the node asks its head's schedule whose turn it is; if that producer's
key is here, it builds a block on the head with the pooled evidence, transactions and operations,
and gossips it. The clock is the node's clock (`service.now_ms`), so a skewed node produces at the
wrong times, as a real one would; consensus/ never reads a clock.

Producers are numbered as genesis lists them: the schedule first, then the other candidates
(`c0`, `c1`, ... in the orchestrator). Roles (per producer, switchable at run time):
- `producer-offline`: skips its slots (its node stays up and relays);
- `double-produce`: signs a second, different block for each of its slots (on the head's parent);
- `censor:<account hex>`: leaves that account's transfers and operations out of its blocks
  (plain `censor`: the first funded genesis account, `accounts.json` index 0).

An honest producer never signs two blocks for one slot, even across a restart: it produces only
for slots after its head's slot, and only after the slot is on record in its slashing protection
(the node passes the durable one, node/signing_history.py, as PoS validators have; a node killed
in the middle of its slot does not sign that slot again when it comes back).

`run()` ends only when cancelled; a duty that fails (a block cannot be built) is logged and the
next slot goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from consensus.dpos.types import DposBlock
from consensus.keys import public_key
from consensus.pos.slashing import SlashingProtection
from node.clock import sleep_until
from node.dpos_service import DposChainService

log = logging.getLogger(__name__)

PRODUCER_ROLES = ("honest", "producer-offline", "double-produce", "censor")


class ProducerDuties:
    def __init__(self, service: DposChainService, private_keys: list[bytes], *,
                 publish_block: Callable[[DposBlock], None],
                 candidate_txs: Callable[[], list],
                 protection: SlashingProtection | None = None) -> None:
        self.service = service
        self.spec = service.spec
        self.publish_block = publish_block
        self.candidate_txs = candidate_txs
        genesis_keys = list(self.spec.schedule + self.spec.candidates)
        self.keys: dict[int, bytes] = {}
        for key in private_keys:
            pubkey = public_key(key)
            if pubkey not in genesis_keys:
                log.warning("producer key %s is not a genesis candidate; ignored",
                            pubkey.hex()[:16])
                continue
            self.keys[genesis_keys.index(pubkey)] = key
        self._by_pubkey = {public_key(k): i for i, k in self.keys.items()}
        self.roles: dict[int, str] = {}
        self.produced = 0
        self.skipped = 0
        self.refused = 0
        self.protection = protection if protection is not None else SlashingProtection()

    def set_role(self, producer: int, role: str) -> None:
        name, _, account = role.partition(":")
        if name not in PRODUCER_ROLES:
            raise ValueError(f"unknown producer role {role!r}; roles are "
                             f"{', '.join(PRODUCER_ROLES)} (censor:<account hex>)")
        if name == "censor" and account and (len(account) != 64 or not _is_hex(account)):
            raise ValueError("censor names an account: censor:<64 hex digits>")
        if producer not in self.keys:
            raise ValueError(f"producer {producer} is not run by this node (it runs "
                             f"{sorted(self.keys) or 'none'})")
        if role == "honest":
            self.roles.pop(producer, None)
        else:
            self.roles[producer] = role

    def role(self, producer: int) -> str:
        return self.roles.get(producer, "honest")

    # ---- the slot loop -------------------------------------------------------------------------
    async def run(self) -> None:
        spec = self.spec
        slot = spec.slot_at(self.service.now_ms())
        while True:
            slot = max(slot + 1, spec.slot_at(self.service.now_ms()))
            await sleep_until(self.service.now_ms, spec.slot_start_ms(slot))
            try:
                self.on_slot(slot)
            except (ValueError, KeyError, LookupError) as exc:
                log.warning("producing slot %d failed: %s", slot, exc)

    def on_slot(self, slot: int) -> None:
        chain = self.service.chain
        index = self._by_pubkey.get(chain.scheduled_producer(slot))
        if index is None:
            return
        role = self.role(index)
        # an honest producer signs one block per slot, after its head's slot
        if role == "producer-offline" or slot <= chain.head.slot:
            self.skipped += 1
            return
        if role != "double-produce" and not self.protection.may_propose(index, slot):
            self.refused += 1
            return
        self.protection.record_proposal(index, slot)    # on record before the block leaves
        key = self.keys[index]
        censored = self._censored(role)
        block = chain.build_block(slot, key, self.candidate_txs(), exclude_sender=censored)
        result = self.service.submit_block(block).results[0]
        if result.outcome not in ("connected", "side"):
            log.warning("own block for slot %d refused: %s", slot, result.reason)
            return
        self.publish_block(block)
        self.produced += 1
        if role == "double-produce":
            self._double_produce(block, key)

    def _censored(self, role: str) -> bytes | None:
        name, _, account = role.partition(":")
        if name != "censor":
            return None
        if account:
            return bytes.fromhex(account)
        return self.spec.allocations[0][0] if self.spec.allocations else None

    def _double_produce(self, block: DposBlock, key: bytes) -> None:
        """A second block for the same slot, on the first one's grandparent (another branch; none
        while the first block's parent is genesis)."""
        chain = self.service.chain
        parent = chain.get(block.parent_root)
        base = parent.parent if parent is not None and parent.parent is not None else parent
        if base is None or base.state is None:
            return
        twin = chain.build_block(block.slot, key, (), parent_root=base.root)
        if twin.root != block.root:
            self.service.submit_block(twin)
            self.publish_block(twin)
            log.info("producer %s double-produced at slot %d", block.producer.hex()[:16],
                     block.slot)

    def describe(self) -> dict:
        return {"producers": sorted(self.keys),
                "roles": {str(k): v for k, v in sorted(self.roles.items())},
                "produced": self.produced, "skipped": self.skipped,
                "refused_double_signing": self.refused,
                "signing_records_loaded": self.protection.loaded}


def _is_hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True
