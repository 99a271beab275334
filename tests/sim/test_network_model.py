"""The region network model: SimBlock tables, region assignment, Pareto latency, link classes."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from p2p.memory_transport import MemoryNetwork, url_of
from p2p.transport import FrameSocket
from testnet.sim.loop import run
from testnet.sim.network_model import (
    BITCOIN_2015,
    BITCOIN_2019,
    MBIT,
    REGIONS,
    RegionLinks,
    assign_regions,
    build_link_model,
    pareto_latency_s,
)


@pytest.mark.parametrize("table", [BITCOIN_2019, BITCOIN_2015], ids=lambda t: t.name)
def test_tables_are_symmetric_six_region_matrices(table):
    assert len(table.latency_ms) == len(REGIONS) == 6
    for i in range(6):
        for j in range(6):
            assert table.latency_ms[i][j] == table.latency_ms[j][i]
    assert sum(table.distribution) == pytest.approx(1.0, abs=1e-3)


def test_known_values_from_simblock():
    na, eu, jp = (REGIONS.index(r) for r in ("north_america", "europe", "japan"))
    assert BITCOIN_2019.latency_ms[na][eu] == 124
    assert BITCOIN_2015.latency_ms[na][eu] == 119  # Gervais et al.'s NA-EU 119.49 ms, rounded
    assert BITCOIN_2019.latency_ms[jp][jp] == 12
    assert BITCOIN_2019.upload_bits[na] == 19.2 * MBIT
    assert BITCOIN_2019.download_bits[na] == 52 * MBIT


def test_regions_follow_the_distribution_and_the_seed():
    names = [f"n{i}" for i in range(1000)]
    regions = assign_regions(names, seed=1)
    counts = Counter(regions.values())
    for region, share in zip(REGIONS, BITCOIN_2019.distribution, strict=True):
        assert abs(counts[region] - 1000 * share) <= 1
    assert regions == assign_regions(names, seed=1)
    assert regions != assign_regions(names, seed=2)
    assert Counter(assign_regions(names, seed=2).values()) == counts  # same shares, other nodes
    assert len(assign_regions(names[:7], seed=1)) == 7


def test_pareto_draws_average_to_the_table_mean():
    rng = random.Random(3)
    for mean_ms in (11, 124, 325):
        draws = [pareto_latency_s(mean_ms, rng) for _ in range(20000)]
        assert min(draws) >= (mean_ms - 5) / 1000
        assert sum(draws) / len(draws) == pytest.approx(mean_ms / 1000, rel=0.05)


def test_link_profile_from_regions_and_classes():
    regions = {"a": "north_america", "b": "europe", "c": "europe"}
    links = RegionLinks(regions, pareto=False, link_classes={"c": "laggy"})
    a_to_b = links.profile("a", "b")
    assert a_to_b.latency_s == pytest.approx(0.124)
    assert a_to_b.bandwidth_bps == pytest.approx(min(19.2, 40) * MBIT / 8)
    assert a_to_b.loss == 0
    b_to_a = links.profile("b", "a")
    assert b_to_a.bandwidth_bps == pytest.approx(min(20.7, 52) * MBIT / 8)
    b_to_c = links.profile("b", "c")
    assert b_to_c.latency_s == pytest.approx(0.011 + 0.300)
    assert b_to_c.loss == pytest.approx(0.05)
    capped = RegionLinks(regions, pareto=False, link_classes={"a": "constrained"})
    assert capped.profile("a", "b").bandwidth_bps == pytest.approx(5 * MBIT / 8)


def test_pareto_latency_per_direction_depends_on_the_seed_not_the_order():
    regions = assign_regions([f"n{i}" for i in range(20)], seed=4)
    first = RegionLinks(regions, seed=9)
    second = RegionLinks(regions, seed=9)
    pairs = [(f"n{i}", f"n{j}") for i in range(20) for j in range(20) if i != j]
    forward = [first.profile(*pair) for pair in pairs]
    backward = [second.profile(*pair) for pair in reversed(pairs)]
    assert forward == list(reversed(backward))
    assert forward != [RegionLinks(regions, seed=10).profile(*pair) for pair in pairs]


def test_bad_regions_and_classes_are_refused_naming_the_node():
    with pytest.raises(ValueError, match="node 'x': unknown region 'mars'"):
        RegionLinks({"x": "mars"})
    with pytest.raises(ValueError, match="node 'x': unknown link class 'dialup'"):
        RegionLinks({"x": "europe"}, link_classes={"x": "dialup"})
    with pytest.raises(KeyError, match="'y' has no region"):
        RegionLinks({"x": "europe"}).profile("x", "y")


def test_a_memory_network_dials_across_regions_in_their_latency():
    links = RegionLinks({"tokyo": "japan", "paris": "europe"}, pareto=False)

    async def accept(socket: FrameSocket, remote_address: str) -> None:
        await socket.receive()

    async def main() -> float:
        network = MemoryNetwork(links)
        tokyo, paris = network.transport("tokyo"), network.transport("paris")
        async with tokyo.open(accept, 1024), paris.open(accept, 1024):
            socket = await tokyo.dial(url_of("paris"), 1024)
            dialed_at = asyncio.get_running_loop().time()
            await socket.close()
        return dialed_at

    assert run(main()) == pytest.approx(2 * 0.252)


NODES = ["n0", "n1", "n2", "n3"]


def test_a_uniform_network_from_its_section():
    model = build_link_model({"latency_ms": 40, "bandwidth_mbit": 8}, NODES, seed=1)
    link = model.profile("n0", "n1")
    assert (link.latency_s, link.bandwidth_bps, link.loss) == (0.04, 1_000_000, 0)
    assert build_link_model({}, NODES, seed=1).profile("n0", "n1").bandwidth_bps is None


def test_a_region_network_with_pinned_regions_and_link_classes():
    spec = {"network": "regions", "pareto": False, "regions": {"n0": "japan", "n1": "europe"},
            "link_classes": {"default": "home", "n1": "constrained"}}
    model = build_link_model(spec, NODES, seed=1)
    link = model.profile("n0", "n1")
    assert link.latency_s == pytest.approx(0.252 + 0.020)  # Japan-Europe, plus home's 20 ms
    assert link.bandwidth_bps == pytest.approx(5 * MBIT / 8)  # the constrained end
    assert link.loss == pytest.approx(0.001)  # only the home end loses
    assert model.profile("n2", "n3").loss == pytest.approx(1 - 0.999 ** 2)
    again = build_link_model(spec, NODES, seed=1)
    assert [again.profile(a, b) for a in NODES for b in NODES if a != b] == \
        [model.profile(a, b) for a in NODES for b in NODES if a != b]


@pytest.mark.parametrize("spec, message", [
    ({"network": "mesh"}, "network: 'mesh' is not one of uniform, regions"),
    ({"latency": 5}, "unknown field 'latency'"),
    ({"latency_ms": -1}, "latency_ms must be a number in 0..60000, got -1"),
    ({"bandwidth_mbit": 0}, "bandwidth_mbit must be a positive number or null, got 0"),
    ({"network": "regions", "latency_ms": 5}, "latency_ms: only for network uniform"),
    ({"table": "bitcoin-2019"}, "table: only for network regions"),
    ({"network": "regions", "table": "eth"}, "table: 'eth' is not one of"),
    ({"network": "regions", "pareto": "yes"}, "pareto must be true or false"),
    ({"network": "regions", "regions": {"n9": "japan"}}, "regions: unknown node 'n9'"),
    ({"network": "regions", "regions": {"n0": "mars"}}, "regions: node 'n0': 'mars' is not"),
    ({"link_classes": {"n0": "dialup"}}, "link_classes: n0: 'dialup' is not one of"),
    ({"link_classes": {"n7": "home"}}, "link_classes: unknown node 'n7'"),
])
def test_a_bad_section_is_refused_naming_the_field(spec, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_link_model(spec, NODES, seed=1)
