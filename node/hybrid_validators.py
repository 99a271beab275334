"""The votes of the validators a hybrid node hosts: EIP-1011's validator client, on the PoW chain's
rhythm instead of a slot clock.

Once per epoch each validator signs one vote: target = the epoch's checkpoint (the last block of
the previous epoch), source = the contract's recommended source (`expected_source_epoch`), and
gossips it for miners to include. It votes once the epoch's first block is on its head (the
checkpoint then has one confirmation, so a one-block fork at the epoch's edge rarely wastes the
vote; EIP-1011's contract had the same idea, `epoch_length / 4` blocks, commented out), and only
while its vote can still go into a block of the epoch. A head change wakes it; a tick every
second catches anything missed.

Honest validators keep a slashing-protection record on disk (node/signing_history.py) and never
sign a vote that would be a double or surround vote. Roles for experiments, per validator:
- `silent`: never votes (offline, node still up);
- `double-vote`: also signs a second vote for the same target epoch from another source
  (genesis);
- `surround-vote`: instead of its honest vote, votes from the genesis source, surrounding its
  previous vote.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from consensus.ffg import VoteProtection
from consensus.hybrid.builder import make_vote
from consensus.hybrid.types import HybridVote
from consensus.keys import public_key
from node.events import EventBus
from node.hybrid_service import HybridChainService

log = logging.getLogger(__name__)

VALIDATOR_ROLES = ("honest", "silent", "double-vote", "surround-vote")
VOTE_AFTER_BLOCKS = 1
TICK_S = 1.0


class HybridValidators:
    def __init__(self, service: HybridChainService, private_keys: list[bytes], *,
                 publish_vote: Callable[[HybridVote], None], events: EventBus,
                 protection: VoteProtection[HybridVote] | None = None) -> None:
        self.service = service
        self.spec = service.spec
        self.publish_vote = publish_vote
        self.events = events
        by_pubkey = {pk: i for i, (pk, _deposit) in enumerate(self.spec.validators)}
        self.keys: dict[int, bytes] = {}
        for key in private_keys:
            index = by_pubkey.get(public_key(key))
            if index is None:
                log.warning("validator key %s is not in the genesis set; ignored",
                            public_key(key).hex()[:16])
                continue
            self.keys[index] = key
        self.roles: dict[int, str] = {}
        self.protection = protection if protection is not None else VoteProtection()
        self.voted = 0
        self.refused = 0
        self._done: dict[int, int] = {}           # validator -> last epoch it acted in
        self._last: dict[int, HybridVote] = {}
        self._wake = asyncio.Event()
        service.head_listeners.append(self._wake.set)

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
        self._wake.set()

    def role(self, validator: int) -> str:
        return self.roles.get(validator, "honest")

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK_S)
            self._wake.clear()
            try:
                self.vote_now()
            except (ValueError, KeyError, LookupError) as exc:
                log.warning("voting failed: %s", exc)

    def vote_now(self) -> None:
        """Each hosted validator's vote for the next block's epoch, if it is time and not done."""
        if not self.keys:
            return
        head = self.service.chain.head
        state = self.service.operations.next_state()
        epoch = state.epoch
        if epoch == 0 or head.height < self.spec.checkpoint_height(epoch) + VOTE_AFTER_BLOCKS:
            return
        for index, key in sorted(self.keys.items()):
            role = self.role(index)
            if self._done.get(index) == epoch or role == "silent":
                continue
            if (index >= len(state.validators) or not state.may_vote(index)
                    or index in state.voted):
                continue
            self._done[index] = epoch
            vote = make_vote(state, index, key)
            previous = self._last.get(index)
            if role == "surround-vote" and previous is not None and previous.source_epoch > 0:
                vote = make_vote(state, index, key, source_epoch=0)
                log.info("validator %d casts a surround vote 0 -> %d", index, epoch)
            elif role == "honest" and not self.protection.may_vote(vote):
                self.refused += 1
                log.info("validator %d: not signing a vote that would be slashable", index)
                continue
            self.protection.record_vote(vote)
            self._cast(vote)
            self._last[index] = vote
            if role == "double-vote" and vote.source_epoch > 0:
                twin = make_vote(state, index, key, source_epoch=0)
                self._cast(twin)
                log.info("validator %d double-voted in epoch %d", index, epoch)

    def _cast(self, vote: HybridVote) -> None:
        result = self.service.submit_vote(vote)
        if result.outcome == "accept" or result.evidence is not None:
            self.publish_vote(vote)
            self.voted += 1

    def describe(self) -> dict:
        return {"validators": sorted(self.keys),
                "roles": {str(k): v for k, v in sorted(self.roles.items())},
                "voted": self.voted, "refused_slashable": self.refused,
                "signing_records_loaded": self.protection.loaded}
