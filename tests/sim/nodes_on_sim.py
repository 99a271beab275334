"""Run a few real `Node`s on the virtual-time loop over a MemoryNetwork and print every event they
emitted, as JSON lines: `python -m tests.sim.nodes_on_sim pow|pos SEED VIRTUAL_SECONDS`.

A test helper of tests/sim/test_nodes_on_sim.py, which runs it in fresh processes under different
PYTHONHASHSEEDs and compares the output byte for byte.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
from pathlib import Path

from consensus.chain_spec import ChainSpec, bits_for_hashrate
from consensus.keys import derive_private_key, public_key
from consensus.pos.spec import PosSpec
from node.app import Node
from node.config import MinerConfig, NodeConfig
from node.runtime import NodeRuntime
from p2p.memory_transport import MemoryNetwork, url_of
from testnet.sim.loop import run as run_virtual
from testnet.sim.network_model import RegionLinks, assign_regions

EPOCH = 1_767_225_600.0
NODES = 5
HASHRATE = 1000.0
VALIDATORS_PER_NODE = 2


def spec_for(consensus: str, seed: int) -> ChainSpec | PosSpec:
    if consensus == "pos":
        validators = tuple((public_key(validator_key(seed, i)), 32_0000_0000)
                           for i in range(NODES * VALIDATORS_PER_NODE))
        return PosSpec(chain_id="sim-test-pos", genesis_time_ms=int(EPOCH * 1000),
                       validators=validators, slots_per_epoch=4)
    return ChainSpec(chain_id="sim-test-pow", genesis_time=int(EPOCH) - 60,
                     proof_of_work="sampled", target_block_interval_s=2,
                     genesis_bits=bits_for_hashrate(HASHRATE * NODES, 2,
                                                    ChainSpec().pow_limit))


def validator_key(seed: int, i: int) -> bytes:
    return derive_private_key(f"sim-test/{seed}", f"validator/{i}")


async def run_nodes(consensus: str, seed: int, seconds: float, directory: Path) -> list[dict]:
    loop = asyncio.get_running_loop()
    names = [f"node{i}" for i in range(NODES)]
    (directory / "genesis.json").write_text(json.dumps(spec_for(consensus, seed).to_json()))
    network = MemoryNetwork(RegionLinks(assign_regions(names, seed), seed=seed), seed=seed)
    nodes = []
    for i, name in enumerate(names):
        config = NodeConfig(
            node_id=name, consensus=consensus, data_dir=directory / name,
            genesis=directory / "genesis.json", port=1,
            node_key=derive_private_key(f"sim-test/{seed}", name).hex(),
            peers=[url_of(names[j]) for j in range(i)],          # each dials those before it
            miner=MinerConfig(hashrate=HASHRATE),
            validator_keys=[validator_key(seed, i * VALIDATORS_PER_NODE + k).hex()
                            for k in range(VALIDATORS_PER_NODE)] if consensus == "pos" else [])
        runtime = NodeRuntime(time_source=lambda: EPOCH + loop.time(), seed=seed,
                              transport=network.transport(name), serve_http=False,
                              miner="sampled", store_path=":memory:", event_log=False)
        nodes.append(Node(config, runtime))
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(node.run()) for node in nodes]
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
    return [event for node in nodes for event in node.events.history]


def main() -> None:
    consensus, seed, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as directory:
        events = run_virtual(run_nodes(consensus, seed, seconds, Path(directory)),
                             virtual_epoch=EPOCH)
    for event in events or []:
        print(json.dumps(event, sort_keys=True))


if __name__ == "__main__":
    main()
