"""The sampled miner (node/sampled_miner.py): exponential block times of the right mean from a
seed, redrawn on refresh, and a real node mining a sampled chain with it.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import replace

from consensus import pow
from consensus.chain_spec import ChainSpec, bits_for_hashrate
from node.app import Node
from node.runtime import NodeRuntime
from node.sampled_miner import SampledMiner
from testnet.waiting import wait_until
from tests.node.api_harness import write_config

BITS = 0x1D00FFFF


def sampled_miner(seed: int | str, hashrate: float = 1e6) -> SampledMiner:
    def unused(*_args):
        raise AssertionError("not called by these tests")
    return SampledMiner(build_template=unused, next_bits=lambda: BITS, on_solved=unused,
                        hashrate=hashrate, rng=random.Random(seed))


def test_inter_block_times_have_the_mean_hashrate_and_difficulty_give():
    miner = sampled_miner(seed=11, hashrate=1e6)
    n = 2000
    draws = [miner.draw_interval(BITS) for _ in range(n)]
    expected = pow.block_work(BITS) / 1e6                      # ~4295 s at difficulty 1
    mean = sum(draws) / n
    # Exp(rate): sd = mean, so the sample mean's standard error is expected / sqrt(n) (2.2%);
    # 4 standard errors make a wrong mean fail and a right one pass with p > 0.9999.
    assert abs(mean - expected) < 4 * expected / n ** 0.5, (mean, expected)
    # and the shape is exponential: the median is ln 2 of the mean (within 4 of its SEs, ~3.5%)
    median = sorted(draws)[n // 2]
    assert abs(median / expected - 0.693) < 0.1, median / expected
    assert miner.draws == n


def test_the_same_seed_draws_the_same_times_and_another_seed_others():
    one, two, other = (sampled_miner(s) for s in ("5/node3/miner", "5/node3/miner",
                                                  "5/node4/miner"))
    first = [one.draw_interval(BITS) for _ in range(50)]
    assert first == [two.draw_interval(BITS) for _ in range(50)]
    assert first != [other.draw_interval(BITS) for _ in range(50)]


def test_the_runtime_seeds_each_node_and_purpose_apart():
    runtime = NodeRuntime(seed=5)
    assert runtime.rng("node3", "miner").random() == runtime.rng("node3", "miner").random()
    assert runtime.rng("node3", "miner").random() != runtime.rng("node4", "miner").random()
    assert runtime.rng("node3", "miner").random() != runtime.rng("node3", "p2p").random()


def test_a_harder_target_draws_longer_times():
    easy, hard = sampled_miner(1), sampled_miner(1)
    assert hard.draw_interval(0x1C00FFFF) > easy.draw_interval(BITS) * 200   # 256x the work


async def test_refresh_redraws_and_a_disabled_miner_finds_nothing():
    found = []
    miner = SampledMiner(build_template=lambda: None, next_bits=lambda: BITS,  # type: ignore
                         on_solved=found.append, hashrate=1.0, rng=random.Random(3),
                         enabled=True)
    ready = asyncio.Event()
    task = asyncio.create_task(miner.run(ready))
    await ready.wait()
    assert miner.draws == 1
    miner.refresh()
    assert miner.draws == 2
    miner.configure(enabled=False)
    assert miner.draws == 2 and miner.hashrate == 0.0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert found == []


async def wait_for_height(node: Node, height: int, timeout: float = 20.0) -> None:
    await wait_until(lambda: node.service.chain.head.height >= height, timeout,
                     f"the sampled chain at height {height}",
                     last=lambda: f"height {node.service.chain.head.height}")


async def test_a_node_mines_a_sampled_chain_without_hashing(tmp_path):
    config = write_config(tmp_path / "node")
    hashrate = 50_000.0
    spec = ChainSpec.from_json(json.loads(config.genesis.read_text()))
    spec = replace(spec, proof_of_work="sampled",
                   genesis_bits=bits_for_hashrate(hashrate, 0.2, spec.pow_limit))
    config.genesis.write_text(json.dumps(spec.to_json()))
    config.miner.hashrate = hashrate
    runtime = NodeRuntime(seed=9, miner="sampled", serve_http=False, store_path=":memory:",
                          event_log=False)
    node = Node(config, runtime)
    assert isinstance(node.miner, SampledMiner)
    task = asyncio.create_task(node.run())
    try:
        await wait_for_height(node, 4)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    chain = node.service.chain
    assert node.miner.blocks_found >= 4
    assert node.status()["miner"]["blocks_found"] == node.miner.blocks_found
    entry = chain.head
    while entry.parent is not None:          # a valid chain of sampled blocks, at genesis bits
        assert entry.block.header.bits == spec.genesis_bits
        entry = entry.parent
    assert not (tmp_path / "node" / "data" / "chain.sqlite").exists()   # the store was in memory
    assert not (tmp_path / "node" / "data" / "events.jsonl").exists()
