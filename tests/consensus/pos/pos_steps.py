"""Step helpers for PoS consensus tests: keys, specs, and a pure slot-by-slot network simulation.

Tests read as scripts — `net.run_epochs(2)`, `net.split_network([[0, 1], [2, 3]])`,
`net.join_network()`, `assert net.finalized_epochs() ...` — and everything runs on a fake clock:
`run_slot(slot)` sets every node's clock to the slot start, lets the slot's proposer (if one of the
node's validators) build and broadcast a block, then sets the clock a third into the slot and lets
the slot's attesters vote. Messages reach the nodes of the sender's partition group at once; the
network keeps every message so `join_network` can deliver what each side missed.

Honest validators keep a slashing-protection record (a `SlashingDetector` of their own votes) and
never sign a vote that conflicts with one they signed, as a real validator client must.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus import keys
from consensus.pos.chain import PosChain, PosChainUpdate
from consensus.pos.signing import sign_block
from consensus.pos.slashing import SlashingProtection
from consensus.pos.spec import PosSpec
from consensus.pos.types import Attestation, PosBlock

STAKE = 32_0000_0000
N_KEYS = 64
VALIDATOR_KEYS = [keys.derive_private_key("pos-tests", f"validator/{i}") for i in range(N_KEYS)]
VALIDATOR_PUBKEYS = [keys.public_key(k) for k in VALIDATOR_KEYS]
ALICE_KEY = keys.derive_private_key("pos-tests", "alice")
ALICE = keys.public_key(ALICE_KEY)
BOB = keys.public_key(keys.derive_private_key("pos-tests", "bob"))
ALICE_FUNDS = 100 * STAKE


def make_spec(n_validators: int = 16, stakes: list[int] | None = None, **overrides) -> PosSpec:
    """A spec with `n_validators` test validators (equal stake unless `stakes`), Alice funded,
    and the inactivity leak off unless asked for."""
    stakes = stakes or [STAKE] * n_validators
    fields = dict(validators=tuple(zip(VALIDATOR_PUBKEYS, stakes)),
                  allocations=((ALICE, ALICE_FUNDS),), inactivity_leak_rate=0)
    fields.update(overrides)
    return PosSpec(**fields)


def slot_time(spec: PosSpec, slot: int, fraction: float = 0.0) -> int:
    return spec.slot_start_ms(slot) + int(spec.slot_duration_ms * fraction)


# ---- single-chain steps -----------------------------------------------------------------------
def propose(chain: PosChain, slot: int, *, parent_root: bytes | None = None,
            proposer: int | None = None, txs=()) -> PosBlock:
    """What the slot's proposer does: build (not add) a block on the head or on `parent_root`."""
    if proposer is None:
        proposer = chain.get_proposer(slot, parent_root)
    return chain.build_block(slot, proposer, VALIDATOR_KEYS[proposer], txs,
                             parent_root=parent_root)


def add_block(chain: PosChain, block: PosBlock, now_ms: int | None = None) -> PosChainUpdate:
    now = slot_time(chain.spec, block.slot) if now_ms is None else now_ms
    return chain.on_block(block, now)


def extend(chain: PosChain, slot: int, **kwargs) -> PosBlock:
    """Propose at `slot` and add the block; asserts it became the head."""
    block = propose(chain, slot, **kwargs)
    update = add_block(chain, block)
    assert update.results[-1].outcome == "connected", update.results
    return block


def attest(chain: PosChain, slot: int, validator: int, **overrides) -> Attestation:
    return chain.make_attestation(slot, validator, VALIDATOR_KEYS[validator], **overrides)


def duty_slots(chain: PosChain, epoch: int) -> dict[int, int]:
    """validator -> the slot it attests at in `epoch` (on the head's branch)."""
    spe = chain.spec.slots_per_epoch
    out = {}
    for slot in range(epoch * spe, (epoch + 1) * spe):
        for v in chain.get_attesters(slot):
            out[v] = slot
    return out


def store_fingerprint(chain: PosChain) -> tuple:
    """Everything a rejected input must leave as it was (the chain may remember the root of a
    rejected block as invalid: that is a verdict, not state)."""
    store = chain.store
    return (tuple(store.blocks), dict(store.latest_messages), frozenset(store.equivocating_indices),
            store.justified_checkpoint, store.finalized_checkpoint, chain.head.root,
            chain.state.slot, len(chain.orphans), tuple(chain.pool.attestations),
            tuple(chain.pool.evidence), len(chain._seen_attestations))


def tamper(block: PosBlock, key_index: int | None = None, **changes) -> PosBlock:
    """The block with some fields changed, re-signed by `key_index` (default: its proposer)."""
    fields = {name: getattr(block, name) for name in
              ("slot", "proposer_index", "parent_root", "state_root", "randao_reveal", "body",
               "signature")}
    fields.update(changes)
    changed = PosBlock(**fields)
    if "signature" in changes:
        return changed
    key = VALIDATOR_KEYS[changed.proposer_index if key_index is None else key_index]
    return sign_block(key, changed)


# ---- a simulated network ------------------------------------------------------------------------
@dataclass
class Node:
    name: str
    chain: PosChain
    validators: set[int]
    protection: SlashingProtection = field(default_factory=SlashingProtection)


class Network:
    """Nodes that each run some validators, connected all-to-all unless split."""

    def __init__(self, spec: PosSpec, validator_groups: list[list[int]]) -> None:
        self.spec = spec
        self.nodes = [Node(f"node{i}", PosChain(spec), set(group))
                      for i, group in enumerate(validator_groups)]
        self.groups: list[set[int]] = [set(range(len(self.nodes)))]
        self.blocks: list[PosBlock] = []
        self.attestations: list[Attestation] = []
        self.delivered: list[set[bytes]] = [set() for _ in self.nodes]
        self.slot = 0

    # -- faults, as verbs --
    def split_network(self, groups: list[list[int]]) -> None:
        self.groups = [set(g) for g in groups]

    def join_network(self) -> None:
        """Heal: every node receives every block and attestation it missed."""
        self.groups = [set(range(len(self.nodes)))]
        now = slot_time(self.spec, self.slot, 0.5)
        for i, node in enumerate(self.nodes):
            for block in sorted(self.blocks, key=lambda b: b.slot):
                self._deliver_block(i, block, now)
            for att in self.attestations:
                self._deliver_attestation(i, att, now)

    # -- running --
    def run_slot(self, slot: int) -> None:
        self.slot = slot
        start = slot_time(self.spec, slot)
        for node in self.nodes:
            node.chain.on_tick(start)
        for i, node in enumerate(self.nodes):
            proposer = node.chain.get_proposer(slot)
            if proposer in node.validators and node.protection.may_propose(proposer, slot):
                node.protection.record_proposal(proposer, slot)
                block = node.chain.build_block(slot, proposer, VALIDATOR_KEYS[proposer])
                self._broadcast_block(i, block, start)
        vote_time = slot_time(self.spec, slot, 1 / 3)
        for i, node in enumerate(self.nodes):
            node.chain.on_tick(vote_time)
            for validator in node.chain.get_attesters(slot):
                if validator not in node.validators:
                    continue
                att = node.chain.make_attestation(slot, validator, VALIDATOR_KEYS[validator])
                if not node.protection.may_attest(att):
                    continue            # slashing protection: never sign a conflicting vote
                node.protection.record_attestation(att)
                self._broadcast_attestation(i, att, vote_time)

    def run_slots(self, count: int) -> None:
        for _ in range(count):
            self.run_slot(self.slot + 1)

    def run_epochs(self, count: int) -> None:
        self.run_slots(count * self.spec.slots_per_epoch)

    def run_until_epoch_start(self, epoch: int) -> None:
        while self.slot < epoch * self.spec.slots_per_epoch:
            self.run_slot(self.slot + 1)

    # -- observations --
    def chains(self) -> list[PosChain]:
        return [n.chain for n in self.nodes]

    def heads(self) -> list[bytes]:
        return [c.head.root for c in self.chains()]

    def finalized_epochs(self) -> list[int]:
        return [c.finalized.epoch for c in self.chains()]

    def justified_epochs(self) -> list[int]:
        return [c.justified.epoch for c in self.chains()]

    # -- delivery --
    def _group_of(self, i: int) -> set[int]:
        return next(g for g in self.groups if i in g)

    def _broadcast_block(self, origin: int, block: PosBlock, now: int) -> None:
        self.blocks.append(block)
        for i in sorted(self._group_of(origin)):
            self._deliver_block(i, block, now)

    def _broadcast_attestation(self, origin: int, att: Attestation, now: int) -> None:
        self.attestations.append(att)
        for i in sorted(self._group_of(origin)):
            self._deliver_attestation(i, att, now)

    def _deliver_block(self, i: int, block: PosBlock, now: int) -> None:
        if block.root in self.delivered[i]:
            return
        self.delivered[i].add(block.root)
        self.nodes[i].chain.on_block(block, now)

    def _deliver_attestation(self, i: int, att: Attestation, now: int) -> None:
        if att.root in self.delivered[i]:
            return
        self.delivered[i].add(att.root)
        self.nodes[i].chain.on_attestation(att, now)

