"""PosChain as node/ uses it: reorg reports, transactions, deposits and exits, rewards, sync
queries, replay from storage, and memory after finality."""

from __future__ import annotations

from consensus.pos.chain import PosChain
from consensus.pos.signing import sign_deposit, sign_exit
from consensus.pos.state import get_current_epoch, is_active_validator
from consensus.types import sign_transaction
from tests.consensus.pos.pos_steps import (
    ALICE,
    ALICE_FUNDS,
    ALICE_KEY,
    BOB,
    STAKE,
    VALIDATOR_KEYS,
    VALIDATOR_PUBKEYS,
    Network,
    add_block,
    make_spec,
    propose,
    slot_time,
)
from tests.consensus.pos.test_fork_choice import VOTE_SLOT, forked_chain, head_after_tick, vote


def one_node(n: int = 16, **spec_overrides) -> Network:
    return Network(make_spec(n, **spec_overrides), [list(range(n))])


def test_a_reorg_reports_depth_common_ancestor_and_transactions():
    chain, roots = forked_chain()
    for v in (0, 1):
        vote(chain, v, roots["A1"])
    assert head_after_tick(chain) == roots["A1"]
    tx = sign_transaction(ALICE_KEY, BOB, 1000, 10, 0)
    c1 = propose(chain, VOTE_SLOT + 1, parent_root=roots["B3"], txs=(tx,))
    assert tx in c1.body.transactions
    update = chain.on_block(c1, slot_time(chain.spec, VOTE_SLOT + 1))
    assert update.results[0].outcome == "side"               # B is still lighter
    for v in (2, 3, 4):
        vote(chain, v, roots["B3"])
    update = chain.on_tick(slot_time(chain.spec, VOTE_SLOT + 1, 0.5))
    [reorg] = update.reorgs
    assert (reorg.depth, reorg.common_ancestor, reorg.common_height) == (1, chain.genesis_root, 0)
    assert reorg.old_head == roots["A1"] and reorg.new_head == c1.root == chain.head.root
    assert reorg.reverted == [roots["A1"]]
    assert reorg.applied == [roots["B1"], roots["B2"], roots["B3"], c1.root]
    assert update.applied_txs == [tx] and update.reverted_txs == []
    assert chain.ledger.balance(BOB) == 1000
    assert chain.ledger.balance(chain.spec.validators[c1.proposer_index][0]) == 10   # the fee
    assert [n.root for n in chain.blocks_after([chain.genesis_root], 10)] == reorg.applied


def test_transactions_follow_ledger_rules():
    net = one_node()
    chain = net.nodes[0].chain
    net.run_slots(2)
    good = sign_transaction(ALICE_KEY, BOB, 500, 5, 0)
    replay = sign_transaction(ALICE_KEY, BOB, 500, 5, 0)
    overdraft = sign_transaction(ALICE_KEY, BOB, ALICE_FUNDS * 2, 5, 1)
    block = propose(chain, net.slot + 1, txs=(good, replay, overdraft))
    assert block.body.transactions == (good,)                 # the builder keeps the valid prefix
    add_block(chain, block)
    assert chain.ledger.balance(ALICE) == ALICE_FUNDS - 505
    assert chain.ledger.nonce(ALICE) == 1


def test_deposit_activates_after_the_delay_and_exit_returns_the_stake():
    net = one_node(8, activation_delay_epochs=2, withdrawal_delay_epochs=3, min_stake=STAKE)
    chain = net.nodes[0].chain
    net.run_slots(3)
    newcomer = VALIDATOR_PUBKEYS[40]
    deposit = sign_deposit(ALICE_KEY, newcomer, 2 * STAKE, nonce=0)
    assert chain.on_deposit(deposit).outcome == "accept"
    assert chain.on_deposit(deposit).outcome == "ignore"
    too_small = sign_deposit(ALICE_KEY, VALIDATOR_PUBKEYS[41], STAKE - 1, nonce=0)
    assert "below the minimum" in chain.on_deposit(too_small).reason
    net.run_slots(1)
    state = chain.state
    index = len(state.validators) - 1
    assert state.validators[index].pubkey == newcomer
    epoch = get_current_epoch(state)
    assert state.validators[index].activation_epoch == epoch + 2
    assert chain.ledger.balance(ALICE) == ALICE_FUNDS - 2 * STAKE
    assert not is_active_validator(state.validators[index], epoch + 1)
    net.run_until_epoch_start(epoch + 2)
    assert chain.validators_json()[index]["active"] is True

    request = sign_exit(VALIDATOR_KEYS[3], 3, get_current_epoch(chain.state))
    assert chain.on_exit(request).outcome == "accept"
    forged = sign_exit(VALIDATOR_KEYS[4], 3, get_current_epoch(chain.state))
    assert "bad exit signature" in chain.on_exit(forged).reason
    net.run_slots(1)
    v = chain.state.validators[3]
    exit_epoch = get_current_epoch(chain.state) + 1
    assert (v.exit_epoch, v.withdrawable_epoch) == (exit_epoch, exit_epoch + 3)
    stake = chain.state.stakes[3]
    net.run_until_epoch_start(exit_epoch)
    assert 3 not in {chain.get_proposer(s) for s in range(net.slot + 1, net.slot + 9)}
    net.run_until_epoch_start(exit_epoch + 3)
    net.run_slots(1)
    assert chain.state.stakes[3] == 0
    assert chain.ledger.balance(VALIDATOR_PUBKEYS[3]) >= stake - stake // 10   # minus penalties


def test_online_validators_earn_and_an_offline_one_loses():
    spec = make_spec(8)
    net = Network(spec, [list(range(7)), [7]])
    net.split_network([[0], [1]])                     # validator 7 is cut off alone
    net.run_epochs(5)
    stakes = net.nodes[0].chain.state.stakes
    assert all(s > STAKE for s in stakes[:7])
    assert stakes[7] < STAKE
    assert net.nodes[0].chain.finalized.epoch >= 2    # 7/8 online still finalizes


def test_trusted_replay_rebuilds_the_same_chain_without_checking_signatures():
    net = one_node()
    net.run_epochs(4)
    chain = net.nodes[0].chain
    replay = PosChain(chain.spec)
    for block in net.blocks:
        replay.on_block(block, slot_time(chain.spec, net.slot), trusted=True)
    assert replay.head.root == chain.head.root
    assert replay.finalized == chain.finalized and replay.justified == chain.justified
    assert replay.signatures.verified == 0


def test_sync_queries_mirror_powchain():
    net = one_node()
    net.run_epochs(2)
    chain = net.nodes[0].chain
    locator = chain.locator()
    assert locator[0] == chain.head.root and locator[-1] == chain.genesis_root
    assert len(locator) < chain.head.height
    after = chain.blocks_after([net.blocks[4].root], 3)
    assert [n.root for n in after] == [b.root for b in net.blocks[5:8]]
    assert chain.blocks_after([chain.head.root], 10) == []
    assert chain.main_chain_at(chain.head.height) is chain.head
    info = chain.validators_json()
    assert len(info) == 16 and info[0]["exit_epoch"] is None and info[0]["active"]


def test_finality_drops_states_before_the_finalized_block():
    net = one_node()
    net.run_epochs(6)
    chain = net.nodes[0].chain
    finalized = chain.get(chain.finalized.root)
    assert chain.finalized.epoch >= 4
    assert finalized.state is not None and chain.head.state is not None
    assert chain.get(chain.genesis_root).state is None
    kept = [n for n in chain.store.blocks.values() if n.state is not None]
    assert all(n.slot >= finalized.slot for n in kept)
    # building on a block before finality is refused
    old = chain.get(net.blocks[0].root)
    result = chain.on_block(propose(chain, net.slot + 1), slot_time(chain.spec, net.slot + 1))
    assert result.results[0].outcome == "connected"
    assert old.state is None


def test_blocks_conflicting_with_finality_are_rejected():
    net = one_node()
    net.run_epochs(1)
    fork_point = net.blocks[2].root
    side = propose(net.nodes[0].chain, net.slot + 1, parent_root=fork_point)
    net.run_epochs(4)
    chain = net.nodes[0].chain
    assert chain.finalized.epoch >= 2
    result = chain.on_block(side, slot_time(chain.spec, net.slot)).results[0]
    assert result.outcome == "rejected"
    assert "finalized" in result.reason
