"""Step helpers for DPoS tests: a chain whose genesis schedule is made of known producer keys,
blocks produced by whoever a test names, operations signed by known accounts.

Tests read as scripts -- `produce(chain, slot)`, `produce_round(chain)`, `vote(chain, voter,
[c1, c2])` -- so each could be dumped as a vector of (block, expected outcome). Time is an
argument: `now_ms` is the start of the block's slot unless a test says otherwise.
"""

from __future__ import annotations

from consensus import keys
from consensus.dpos.chain import DposChain, DposChainUpdate, DposNode
from consensus.dpos.schedule import get_scheduled_producer
from consensus.dpos.spec import DposSpec
from consensus.dpos.types import DposBlock, DposOperation, OpKind

PRODUCER_KEYS = [keys.derive_private_key("dpos-tests", f"producer/{i}") for i in range(32)]
PRODUCERS = [keys.public_key(k) for k in PRODUCER_KEYS]
KEY_OF = dict(zip(PRODUCERS, PRODUCER_KEYS, strict=True))
VOTER_KEYS = [keys.derive_private_key("dpos-tests", f"voter/{i}") for i in range(4)]
VOTERS = [keys.public_key(k) for k in VOTER_KEYS]
STAKE = 1000_0000_0000
FUNDS = 5000_0000_0000


def dpos_spec(producers: int = 7, repetitions: int = 2, candidates: int = 0, **overrides
              ) -> DposSpec:
    fields = dict(producers=producers, repetitions=repetitions,
                  schedule=tuple(PRODUCERS[:producers]),
                  candidates=tuple(PRODUCERS[producers:producers + candidates]),
                  stakes=tuple((v, STAKE) for v in VOTERS),
                  allocations=tuple((v, FUNDS) for v in VOTERS))
    fields.update(overrides)
    return DposSpec(**fields)


def new_chain(producers: int = 7, repetitions: int = 2, candidates: int = 0, **overrides
              ) -> DposChain:
    return DposChain(dpos_spec(producers, repetitions, candidates, **overrides))


def slot_ms(chain: DposChain, slot: int) -> int:
    return chain.spec.slot_start_ms(slot)


def make_block(chain: DposChain, slot: int, *, producer: bytes | None = None,
               parent: DposNode | None = None, txs=()) -> DposBlock:
    """A block for `slot` on `parent` (default: the head), by the scheduled producer unless
    `producer` names another key (to break the schedule on purpose)."""
    parent = parent or chain.head
    assert parent.state is not None
    if producer is None:
        producer = get_scheduled_producer(parent.state.schedule, slot, chain.spec.repetitions)
    return chain.build_block(slot, KEY_OF[producer], txs, parent_root=parent.root)


def produce(chain: DposChain, slot: int, **kwargs) -> DposChainUpdate:
    """The scheduled producer makes a block for `slot`, delivered at the slot's start."""
    block = make_block(chain, slot, **kwargs)
    return chain.on_block(block, slot_ms(chain, slot))


def produce_slots(chain: DposChain, slots, *, skip=frozenset()) -> list[DposChainUpdate]:
    """Blocks for each slot in `slots` except those whose producer is in `skip` (offline)."""
    updates = []
    for slot in slots:
        producer = chain.scheduled_producer(slot)
        if producer in skip:
            continue
        updates.append(produce(chain, slot))
    return updates


def next_slot(chain: DposChain) -> int:
    return chain.head.slot + 1


def produce_round(chain: DposChain, *, skip=frozenset()) -> list[DposChainUpdate]:
    start = next_slot(chain)
    return produce_slots(chain, range(start, start + chain.spec.round_slots), skip=skip)


def sign_op(private_key: bytes, kind: OpKind, nonce: int, *, amount: int = 0,
            candidates=()) -> DposOperation:
    account = keys.public_key(private_key)
    unsigned = DposOperation(int(kind), account, nonce, amount, tuple(candidates))
    return DposOperation(int(kind), account, nonce, amount, tuple(candidates),
                         keys.sign(private_key, unsigned.signing_root))


def vote(chain: DposChain, voter: int, candidates) -> DposOperation:
    key = VOTER_KEYS[voter]
    op = sign_op(key, OpKind.VOTE, chain.ledger.nonce(VOTERS[voter]), candidates=candidates)
    result = chain.on_operation(op)
    assert result.outcome == "accept", result.reason
    return op
