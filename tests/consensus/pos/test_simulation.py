"""End-to-end, pure: four nodes of four validators each (16 equal stakes), driven slot by slot on a
fake clock, with partitions as values (`split_network`) and healing (`join_network`).

What a consensus researcher expects to see:
- everyone online: finality advances every epoch or two;
- 2|2: neither half has 2/3, neither finalizes; after healing, one head and finality resumes;
- 3|1: the 75% side keeps finalizing, the 25% side does not;
- a long 2|2 with an aggressive inactivity leak: each side drains the other side's stake until it
  finalizes alone, so the two sides finalize conflicting checkpoints — which the testnet must show.
"""

from __future__ import annotations

from fractions import Fraction

from consensus.pos.fork_choice import get_checkpoint_root
from tests.consensus.pos.pos_steps import Network, make_spec

GROUPS = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]]


def four_nodes(**spec_overrides) -> Network:
    return Network(make_spec(16, **spec_overrides), GROUPS)


def conflicting(net: Network, a: int, b: int) -> bool:
    """The finalized checkpoints of nodes a and b are on different branches."""
    chain_a, chain_b = net.nodes[a].chain, net.nodes[b].chain
    fa, fb = chain_a.finalized, chain_b.finalized
    spe = chain_a.spec.slots_per_epoch
    low, high_chain = (fa, chain_b) if fa.epoch <= fb.epoch else (fb, chain_a)
    high = high_chain.get(high_chain.finalized.root)
    return get_checkpoint_root(high, low.epoch, spe) != low.root


def test_all_online_finality_advances_every_epoch_or_two():
    net = four_nodes()
    net.run_epochs(3)
    finalized = net.finalized_epochs()
    assert len(set(net.heads())) == 1
    for _ in range(4):
        net.run_epochs(1)
        now = net.finalized_epochs()
        assert len(set(now)) == 1 and now[0] >= finalized[0] + 1      # at least one per epoch
        finalized = now
    assert finalized[0] >= net.slot // 8 - 2
    chain = net.nodes[0].chain
    assert chain.state.stakes[0] > chain.spec.validators[0][1]           # rewards were paid


def test_half_partition_stalls_finality_and_healing_restores_it():
    net = four_nodes()
    net.run_epochs(4)
    before = net.finalized_epochs()[0]
    assert before >= 2

    net.split_network([[0, 1], [2, 3]])
    net.run_epochs(4)
    assert net.finalized_epochs() == [before] * 4                      # exactly half: no finality
    assert net.heads()[0] == net.heads()[1] != net.heads()[2] == net.heads()[3]
    justified = net.justified_epochs()
    assert max(justified) <= before + 1

    net.join_network()
    net.run_slots(2)
    assert len(set(net.heads())) == 1                                  # one head
    net.run_epochs(4)
    assert len(set(net.heads())) == 1
    after = net.finalized_epochs()
    assert len(set(after)) == 1 and after[0] >= net.slot // 8 - 3      # finality resumes
    assert not conflicting(net, 0, 3)


def test_three_to_one_partition_the_majority_keeps_finalizing():
    net = four_nodes()
    net.run_epochs(4)
    before = net.finalized_epochs()[0]

    net.split_network([[0, 1, 2], [3]])
    net.run_epochs(8)
    majority, minority = net.nodes[0].chain, net.nodes[3].chain
    # Keeps finalizing, an epoch or two behind the all-online pace: with a quarter of the
    # proposals missing, the current epoch's votes fall just short of 2/3 within the epoch and
    # justify one epoch late (rules 1 and 2).
    assert majority.finalized.epoch >= before + 4
    assert majority.finalized.epoch >= net.slot // 8 - 5
    assert all(net.nodes[i].chain.finalized == majority.finalized for i in (1, 2))
    assert minority.finalized.epoch == before                          # 25%: never

    net.join_network()
    net.run_epochs(2)
    assert len(set(net.heads())) == 1
    assert minority.finalized == majority.finalized or \
        minority.finalized.epoch >= majority.finalized.epoch - 1


def test_long_partition_with_inactivity_leak_finalizes_conflicting_checkpoints():
    leak = dict(inactivity_leak_rate=Fraction(1, 4), inactivity_leak_after_epochs=1)
    net = four_nodes(**leak)
    net.run_epochs(3)
    base = net.finalized_epochs()[0]

    net.split_network([[0, 1], [2, 3]])
    for epochs in range(1, 16):
        net.run_epochs(1)
        a, b = net.nodes[0].chain, net.nodes[2].chain
        if a.finalized.epoch > base and b.finalized.epoch > base:
            break
    assert a.finalized.epoch > base and b.finalized.epoch > base, net.finalized_epochs()
    assert epochs <= 10
    assert conflicting(net, 0, 2)                                      # finality forked
    # Each side drained the other side's validators, not its own.
    stakes_a = a.state.stakes
    assert max(stakes_a[8:]) < min(stakes_a[:8]) // 2
    stakes_b = b.state.stakes
    assert max(stakes_b[:8]) < min(stakes_b[8:]) // 2

    # Healing cannot merge them: each side refuses blocks that conflict with its finality.
    now = net.spec.slot_start_ms(net.slot)
    b_only = [blk for blk in net.blocks if blk.root not in a.store.blocks]
    results = [r for blk in b_only for r in a.on_block(blk, now).results]
    assert results and all(r.outcome == "rejected" for r in results)
    assert "finalized" in results[0].reason
    net.join_network()
    net.run_slots(2)
    assert net.heads()[0] != net.heads()[2]
    assert conflicting(net, 0, 2)


def test_without_the_leak_a_long_half_partition_never_finalizes():
    net = four_nodes()
    net.run_epochs(3)
    base = net.finalized_epochs()[0]
    net.split_network([[0, 1], [2, 3]])
    net.run_epochs(10)
    assert net.finalized_epochs() == [base] * 4
