"""Bad input: every rejected attestation and block is refused with its own reason and leaves the
chain exactly as it was."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consensus.pos import fork_choice as fc
from consensus.pos.chain import PosChain
from consensus.pos.errors import AttestationError, AttestationIgnored, InvalidAttestation
from consensus.pos.signing import sign_attestation, sign_randao
from consensus.pos.types import Attestation, BlockBody, Checkpoint, sha256
from tests.consensus.pos.pos_steps import (
    VALIDATOR_KEYS,
    Network,
    make_spec,
    propose,
    slot_time,
    store_fingerprint,
    tamper,
)


@pytest.fixture
def net() -> Network:
    network = Network(make_spec(16), [list(range(16))])
    network.run_epochs(3)                      # justified checkpoints, a populated store
    return network


def vote_now(net: Network):
    """A valid, not yet submitted vote of a validator due in the next slot, and the time."""
    chain = net.nodes[0].chain
    slot = net.slot + 1
    now = slot_time(chain.spec, slot, 0.5)
    chain.on_tick(now)
    validator = chain.get_attesters(slot)[0]
    return chain, chain.make_attestation(slot, validator, VALIDATOR_KEYS[validator]), now


def resign(att: Attestation, key_index: int | None = None, **changes) -> Attestation:
    fields = dict(slot=att.slot, validator_index=att.validator_index, head_root=att.head_root,
                  source=att.source, target=att.target)
    fields.update(changes)
    key = VALIDATOR_KEYS[att.validator_index if key_index is None else key_index]
    return sign_attestation(key, **fields)


def bad_attestations(chain, att: Attestation):
    spe = chain.spec.slots_per_epoch
    other = next(v for v in range(16) if v not in chain.get_attesters(att.slot))
    return {
        "unknown block": (resign(att, head_root=sha256(b"nowhere")), "ignore",
                          "unknown head block"),
        "unknown validator": (resign(att, 3, validator_index=99), "reject",
                              "unknown validator 99"),
        "bad signature": (replace(att, signature=bytes(64)), "reject",
                          "bad attestation signature"),
        "signed by another key": (resign(att, 1 if att.validator_index != 1 else 2), "reject",
                                  "bad attestation signature"),
        "future slot": (resign(att, slot=att.slot + 2), "ignore", "in the future"),
        "target of another epoch": (resign(att, target=Checkpoint(att.target.epoch + 1,
                                                                  att.target.root)),
                                    "reject", "is not the epoch of slot"),
        "target not on the head's chain": (resign(att, target=Checkpoint(att.target.epoch,
                                                                         chain.genesis_root)),
                                           "reject", "not the epoch-boundary ancestor"),
        "wrong duty slot": (resign(att, other, validator_index=other), "reject",
                            "attests at slot"),
        "wrong source": (resign(att, source=Checkpoint(0, chain.genesis_root)), "reject",
                         "is not the justified checkpoint"),
        "too old": (resign(att, slot=att.slot - 2 * spe - 1,
                           target=Checkpoint(att.target.epoch - 3, att.target.root)),
                    "ignore", "more than an epoch old"),
    }


CASES = ["unknown block", "unknown validator", "bad signature", "signed by another key",
         "future slot", "target of another epoch", "target not on the head's chain",
         "wrong duty slot", "wrong source", "too old"]


@pytest.mark.parametrize("case", CASES)
def test_bad_attestation_is_refused_and_changes_nothing(net, case):
    chain, att, now = vote_now(net)
    bad, outcome, reason = bad_attestations(chain, att)[case]
    before = store_fingerprint(chain)
    result = chain.on_attestation(bad, now)
    assert (result.outcome, result.evidence) == (outcome, None), result
    assert reason in result.reason, result.reason
    assert store_fingerprint(chain) == before
    assert chain.on_attestation(att, now).accepted          # the good one still goes through


def test_each_bad_attestation_has_its_own_reason(net):
    chain, att, now = vote_now(net)
    reasons = {case: chain.on_attestation(bad, now).reason
               for case, (bad, _o, _r) in bad_attestations(chain, att).items()
               if case != "signed by another key"}          # the same rule as "bad signature"
    assert len(set(reasons.values())) == len(reasons), reasons


@pytest.mark.parametrize("case, raised, not_raised", [
    ("unknown block", AttestationIgnored, InvalidAttestation),
    ("future slot", AttestationIgnored, InvalidAttestation),
    ("unknown validator", InvalidAttestation, AttestationIgnored),
    ("bad signature", InvalidAttestation, AttestationIgnored),
])
def test_ignore_and_reject_are_sibling_errors_of_the_fork_choice(net, case, raised, not_raised):
    chain, att, now = vote_now(net)
    bad = bad_attestations(chain, att)[case][0]
    with pytest.raises(AttestationError) as caught:
        fc.validate_on_attestation(chain.store, bad, chain.checks)
    assert isinstance(caught.value, raised) and not isinstance(caught.value, not_raised)


def test_a_duplicate_attestation_is_ignored_without_a_second_verification(net):
    chain, att, now = vote_now(net)
    assert chain.on_attestation(att, now).accepted
    checked = chain.signatures.verified
    result = chain.on_attestation(att, now)
    assert result.outcome == "ignore" and "already seen" in result.reason
    assert chain.signatures.verified == checked


def test_an_attestation_seen_on_gossip_is_not_verified_again_inside_a_block(net):
    chain, att, now = vote_now(net)
    assert chain.on_attestation(att, now).accepted
    checked = chain.signatures.verified
    block = propose(chain, att.slot + 1)
    assert att in block.body.attestations
    update = chain.on_block(block, slot_time(chain.spec, att.slot + 1))
    assert update.results[0].outcome == "connected"
    assert chain.signatures.verified == checked



def test_a_vote_whose_target_state_was_pruned_at_finality_is_ignored_not_crashing():
    """A peer can vote for genesis long after finality dropped its state: the node must answer
    with a reason, not an internal error."""
    net = Network(make_spec(16), [list(range(16))])
    net.run_epochs(5)
    chain, att, now = vote_now(net)
    assert chain.finalized.epoch >= 1
    stale = resign(att, head_root=chain.genesis_root,
                   target=Checkpoint(att.target.epoch, chain.genesis_root))
    before = store_fingerprint(chain)
    result = chain.on_attestation(stale, now)
    assert result.outcome == "ignore" and "cannot be checked" in result.reason, result
    assert store_fingerprint(chain) == before
    assert chain.on_attestation(att, now).accepted

# ---- blocks -----------------------------------------------------------------------------------
def next_block(net: Network):
    chain = net.nodes[0].chain
    slot = net.slot + 1
    now = slot_time(chain.spec, slot)
    chain.on_tick(now)
    return chain, propose(chain, slot), now


def bad_blocks(chain, block):
    proposer = block.proposer_index
    wrong = (proposer + 1) % 16
    epoch = block.slot // chain.spec.slots_per_epoch
    forged = Attestation(block.slot - 1, 0, block.parent_root, Checkpoint(0, chain.genesis_root),
                         Checkpoint(epoch, block.parent_root), bytes(64))
    included = chain.head.block.body.attestations[0]
    return {
        "wrong proposer": (tamper(block, proposer_index=wrong), "wrong proposer"),
        "attestation already on this chain": (tamper(block, body=BlockBody(
            attestations=(included,))), "already attested for epoch"),
        "future slot": (propose(chain, block.slot + 3), "in the future"),
        "bad signature": (tamper(block, signature=bytes(64)), "bad block signature"),
        "signed by another key": (tamper(block, wrong), "bad block signature"),
        "bad randao reveal": (tamper(block, randao_reveal=sign_randao(VALIDATOR_KEYS[proposer],
                                                                      epoch + 1)),
                              "bad randao reveal"),
        "bad state root": (tamper(block, state_root=sha256(b"state")), "state root"),
        "same slot as parent": (tamper(block, slot=chain.head.slot), "is not after its parent"),
        "forged attestation": (tamper(block, body=BlockBody(attestations=(forged,))),
                               "attestation 0"),
    }


BLOCK_CASES = ["wrong proposer", "attestation already on this chain", "future slot",
               "bad signature", "signed by another key",
               "bad randao reveal", "bad state root", "same slot as parent", "forged attestation"]


@pytest.mark.parametrize("case", BLOCK_CASES)
def test_bad_block_is_rejected_and_changes_nothing(net, case):
    chain, block, now = next_block(net)
    bad, reason = bad_blocks(chain, block)[case]
    before = store_fingerprint(chain)
    update = chain.on_block(bad, now)
    [result] = update.results
    assert result.outcome == "rejected" and reason in result.reason, result
    assert result.temporary is (case == "future slot")
    assert store_fingerprint(chain) == before
    assert not update.head_changed and not update.reorgs
    assert chain.on_block(block, now).results[0].outcome == "connected"


def test_each_bad_block_has_its_own_reason(net):
    chain, block, now = next_block(net)
    reasons = {case: chain.on_block(bad, now).results[0].reason
               for case, (bad, _r) in bad_blocks(chain, block).items()
               if case != "signed by another key"}          # the same rule as "bad signature"
    assert len(set(reasons.values())) == len(reasons), reasons


def test_a_forged_copy_does_not_poison_the_real_block(net):
    """The block root does not commit to the signature: a copy with a bad signature is refused
    without marking the root invalid."""
    chain, block, now = next_block(net)
    forged = tamper(block, signature=bytes(64))
    assert forged.root == block.root
    assert chain.on_block(forged, now).results[0].outcome == "rejected"
    assert chain.on_block(block, now).results[0].outcome == "connected"


def test_a_future_block_is_accepted_once_its_slot_comes(net):
    chain, block, now = next_block(net)
    early = propose(chain, block.slot + 2)
    assert chain.on_block(early, now).results[0].temporary
    later = slot_time(chain.spec, early.slot)
    assert chain.on_block(early, later).results[0].outcome == "connected"


def test_an_orphan_waits_for_its_parent(net):
    chain, block, now = next_block(net)
    other = Network(chain.spec, [list(range(16))])
    for b in net.blocks:
        other.nodes[0].chain.on_block(b, now)
    other.nodes[0].chain.on_block(block, now)
    child = propose(other.nodes[0].chain, block.slot + 1)
    update = chain.on_block(child, slot_time(chain.spec, child.slot))
    assert update.results[0].outcome == "orphan" and update.missing_parent == block.root
    update = chain.on_block(block, slot_time(chain.spec, child.slot))
    assert [r.outcome for r in update.results] == ["connected", "connected"]
    assert chain.head.root == child.root


def test_the_child_of_an_invalid_block_is_rejected(net):
    chain, block, now = next_block(net)
    bad = tamper(block, state_root=sha256(b"state"))
    assert chain.on_block(bad, now).results[0].outcome == "rejected"
    child = tamper(block, parent_root=bad.root, slot=block.slot + 1)
    result = chain.on_block(child, slot_time(chain.spec, child.slot)).results[0]
    assert result.outcome == "rejected" and "parent block is invalid" in result.reason
    assert chain.on_block(bad, now).results[0].reason == "block is known to be invalid"


def test_a_block_conflicting_with_the_finalized_checkpoint_is_rejected():
    """A side block that was fine when it arrived can no longer be built on once the other
    branch is finalized, whatever its slot."""
    net = Network(make_spec(16), [list(range(16))])
    net.run_slots(2)
    chain = net.nodes[0].chain
    side = propose(chain, 3, parent_root=net.blocks[0].root)     # fork off the slot-1 block
    assert chain.on_block(side, slot_time(chain.spec, 3)).results[0].outcome == "side"
    observer = PosChain(chain.spec)                              # knows only the side branch
    for block in (net.blocks[0], side):
        observer.on_block(block, slot_time(chain.spec, 3))
    net.run_epochs(5)
    finalized_slot = chain.finalized.epoch * chain.spec.slots_per_epoch
    assert finalized_slot > 8
    late = propose(observer, finalized_slot + 1, parent_root=side.root)
    before = store_fingerprint(chain)
    result = chain.on_block(late, slot_time(chain.spec, net.slot)).results[0]
    assert result.outcome == "rejected"
    assert "conflicts with the finalized checkpoint" in result.reason
    assert store_fingerprint(chain) == before
