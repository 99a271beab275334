"""The chain spec's `proof_of_work: "sampled"` (simulations, issue 14) as step scripts: blocks
whose hash misses its target are accepted, and every other rule -- the bits retargeting requires,
the merkle root, the timestamp rules, the pow limit -- still holds. The hash mode still refuses
the same blocks.

Blocks here are built and never solved, at Bitcoin's difficulty-1 bits, so no hash can meet the
target by luck (a chance of 2**-32 a block).
"""

from __future__ import annotations

import random

import pytest

from consensus import pow
from consensus.block_builder import build_block, with_nonce
from consensus.chain_spec import ChainSpec
from consensus.pow_chain import PowChain
from consensus.types import Block
from tests.consensus.chain_steps import (
    ALICE,
    ALICE_FUNDS,
    MINER_A,
    add,
    add_connected,
    outcome,
    with_header,
)

HARD_BITS = 0x1D00FFFF          # Bitcoin's difficulty 1: ~4.3e9 hashes a block


def sampled_spec(**overrides) -> ChainSpec:
    fields = dict(genesis_bits=HARD_BITS, allocations=((ALICE, ALICE_FUNDS),),
                  proof_of_work="sampled")
    fields.update(overrides)
    return ChainSpec(**fields)


def sampled_block(chain: PowChain, rng: random.Random, *, spacing: int | None = None) -> Block:
    """What a sampled miner makes: a template on the head with a seeded nonce, never hashed."""
    now = chain.head.time + (chain.spec.target_block_interval_s if spacing is None else spacing)
    template = build_block(chain, MINER_A, (), now)
    return with_nonce(template, template.header.time, rng.getrandbits(32))


def misses_target(block: Block) -> bool:
    return pow.hash_to_int(block.hash) > pow.bits_to_target(block.header.bits)


def test_a_sampled_chain_accepts_blocks_whose_hash_misses_the_target():
    chain, rng = PowChain(sampled_spec()), random.Random(1)
    for _ in range(3):
        block = sampled_block(chain, rng)
        assert misses_target(block)
        add_connected(chain, block)
    assert chain.head.height == 3


def test_the_hash_mode_rejects_the_same_block():
    block = sampled_block(PowChain(sampled_spec()), random.Random(1))
    hashed = PowChain(sampled_spec(proof_of_work="hash"))
    assert outcome(add(hashed, block)) == (
        "rejected", "invalid proof of work: hash does not meet the target in bits")
    assert hashed.head.height == 0


def test_a_sampled_block_with_other_bits_than_retargeting_requires_is_rejected():
    chain = PowChain(sampled_spec())
    block = with_header(sampled_block(chain, random.Random(2)), bits=0x1D00FFFE)
    assert outcome(add(chain, block)) == ("rejected", "bits 1d00fffe, expected 1d00ffff")
    assert chain.head.height == 0


def test_a_sampled_block_with_bits_beyond_the_pow_limit_is_rejected():
    chain = PowChain(sampled_spec())
    block = with_header(sampled_block(chain, random.Random(3)), bits=0x2100FFFF)
    assert outcome(add(chain, block)) == (
        "rejected", "invalid proof of work: bits 0x2100ffff outside the allowed range")


def test_a_sampled_block_whose_merkle_root_misses_its_transactions_is_rejected():
    chain = PowChain(sampled_spec())
    block = with_header(sampled_block(chain, random.Random(4)), merkle_root=bytes(32))
    assert outcome(add(chain, block)) == (
        "rejected", "merkle root does not match the transactions")


def test_a_sampled_block_too_far_in_the_future_is_not_connected():
    chain = PowChain(sampled_spec())
    block = sampled_block(chain, random.Random(5))
    now = block.header.time - chain.spec.max_future_block_time_s - 1
    assert add(chain, block, now).results[0].outcome != "connected"
    assert chain.head.height == 0


def test_retargeting_still_runs_on_a_sampled_chain():
    spec = sampled_spec(retarget_window=5, target_block_interval_s=10)
    chain, rng = PowChain(spec), random.Random(6)
    for _ in range(4):                               # blocks 2 s apart: 5x too fast
        add_connected(chain, sampled_block(chain, rng, spacing=2))
    harder = chain.expected_bits(chain.head)
    assert pow.bits_to_target(harder) < pow.bits_to_target(HARD_BITS)
    stale = sampled_block(chain, rng, spacing=2)
    assert stale.header.bits == harder               # the template follows the rule ...
    assert outcome(add(chain, with_header(stale, bits=HARD_BITS)))[0] == "rejected"  # ... and
    add_connected(chain, stale)                      # a block that ignores it is refused


def test_the_spec_writes_proof_of_work_only_when_sampled():
    assert "proof_of_work" not in ChainSpec().to_json()
    spec = sampled_spec()
    assert spec.to_json()["proof_of_work"] == "sampled"
    assert ChainSpec.from_json(spec.to_json()) == spec


def test_an_unknown_proof_of_work_mode_is_refused():
    with pytest.raises(ValueError, match="proof_of_work must be one of hash, sampled"):
        ChainSpec(proof_of_work="fake")
