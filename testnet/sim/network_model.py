"""Latency and bandwidth of simulated links: SimBlock's 6-region matrices and node link profiles.

`RegionLinks` is a `LinkModel` for p2p/memory_transport.py's MemoryNetwork: every node lives
in a region, and the link from node a to node b gets

- latency: the mean latency between their regions, drawn once per (a, b) direction from
  SimBlock's Pareto distribution around it (`pareto=False`: the mean itself);
- bandwidth: min(upload of a's region, download of b's region), as SimBlock's
  `Network.getBandwidth` (transmission time = size / bandwidth in the MemoryNetwork);
- then each end's `LinkClass` (ethshadow-style "reliability"): added latency, loss and a
  bandwidth cap of the node's own access link.

Sources (data read, not code copied):
- dsg-titech/simblock, simulator/src/main/java/simblock/settings/NetworkConfiguration.java
  (commit 6a52865): REGION_LIST, LATENCY_2015/2019 (ms; 2015 from Gervais et al., CCS 2016),
  UPLOAD/DOWNLOAD_BANDWIDTH_2015/2019 (bit/s; their last element, a 6 Mbit/s inter-regional
  figure, is not used by getBandwidth and not here), REGION_DISTRIBUTION_BITCOIN_2015/2019.
- dsg-titech/simblock, simulator/src/main/java/simblock/simulator/Network.java: getLatency
  draws Pareto(scale = mean - 5 ms, shape = 0.2 * mean) -- whose mean is exactly `mean` --
  and getBandwidth = min(upload[from], download[to]).
- Link classes after ethshadow's reliabilities (ethereum/ethshadow docs, summarised in
  /work/shared/reference/simulators.md): reliable 1 Gbit/s; home +20 ms, 0.1% loss, 50 Mbit/s;
  laggy +300 ms, 5% loss; constrained 5 Mbit/s. Where the summary gives no bandwidth (laggy) we
  use home's 50 Mbit/s.

`build_link_model(spec, names, seed)` turns a scenario's simulated network section (uniform or
regions, pinned regions, link classes per node) into one of these, checked whole first.

Differences from SimBlock, and their costs: SimBlock draws a latency per message; we draw one
per link direction (a TCP stream's latency is steady; per-message draws would reorder a stream,
which websockets never do). Jitter per frame, if wanted, comes from `LinkClass.jitter_s`. The
draws use rngs seeded by (seed, a, b) alone, so a link's latency does not depend on dial order.
Pareto draws are capped at MAX_LATENCY_S (a draw beyond it needs u < 1e-15).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from p2p.memory_transport import LinkModel, LinkProfile, UniformLinks

REGIONS: tuple[str, ...] = ("north_america", "europe", "south_america", "asia_pacific", "japan",
                            "australia")
MAX_LATENCY_S = 60.0
PARETO_SCALE_OFFSET_MS = 5.0  # SimBlock: scale = mean - 5 ms
PARETO_SHAPE_PER_MS = 0.2  # SimBlock: shape = 0.2 * mean (in ms)
MBIT = 1_000_000  # bits per second


@dataclass(frozen=True)
class RegionTable:
    """Mean one-way latency between regions (ms, [from][to]), upload and download bandwidth per
    region (bit/s) and the share of nodes in each region, all indexed like REGIONS."""

    name: str
    latency_ms: tuple[tuple[float, ...], ...]
    upload_bits: tuple[float, ...]
    download_bits: tuple[float, ...]
    distribution: tuple[float, ...]

    def __post_init__(self) -> None:
        size = len(REGIONS)
        # [REJECT] every table is REGIONS-sized and the shares sum to 1
        if len(self.latency_ms) != size or any(len(row) != size for row in self.latency_ms):
            raise ValueError(f"{self.name}: latency matrix must be {size}x{size}")
        for field_name in ("upload_bits", "download_bits", "distribution"):
            if len(getattr(self, field_name)) != size:
                raise ValueError(f"{self.name}: {field_name} must have {size} entries")
        if abs(sum(self.distribution) - 1.0) > 1e-3:
            raise ValueError(f"{self.name}: region shares sum to {sum(self.distribution)}, not 1")


BITCOIN_2019 = RegionTable(
    name="bitcoin-2019",
    latency_ms=((32, 124, 184, 198, 151, 189),
                (124, 11, 227, 237, 252, 294),
                (184, 227, 88, 325, 301, 322),
                (198, 237, 325, 85, 58, 198),
                (151, 252, 301, 58, 12, 126),
                (189, 294, 322, 198, 126, 16)),
    upload_bits=(19.2 * MBIT, 20.7 * MBIT, 5.8 * MBIT, 15.7 * MBIT, 10.2 * MBIT, 11.3 * MBIT),
    download_bits=(52 * MBIT, 40 * MBIT, 18 * MBIT, 22.8 * MBIT, 22.8 * MBIT, 29.9 * MBIT),
    distribution=(0.3316, 0.4998, 0.0090, 0.1177, 0.0224, 0.0195),
)

BITCOIN_2015 = RegionTable(
    name="bitcoin-2015",
    latency_ms=((36, 119, 255, 310, 154, 208),
                (119, 12, 221, 242, 266, 350),
                (255, 221, 137, 347, 256, 269),
                (310, 242, 347, 99, 172, 278),
                (154, 266, 256, 172, 9, 163),
                (208, 350, 269, 278, 163, 22)),
    upload_bits=(4.7 * MBIT, 8.1 * MBIT, 1.8 * MBIT, 5.3 * MBIT, 3.4 * MBIT, 5.2 * MBIT),
    download_bits=(25 * MBIT, 24 * MBIT, 6.5 * MBIT, 10 * MBIT, 17.5 * MBIT, 14 * MBIT),
    distribution=(0.3869, 0.5159, 0.0113, 0.0574, 0.0119, 0.0166),
)

REGION_TABLES: dict[str, RegionTable] = {t.name: t for t in (BITCOIN_2019, BITCOIN_2015)}


@dataclass(frozen=True)
class LinkClass:
    """A node's own access link: added one-way latency, loss, jitter and a bandwidth cap
    (bit/s; None = no cap beyond the region's)."""

    added_latency_s: float = 0.0
    loss: float = 0.0
    jitter_s: float = 0.0
    bandwidth_bits: float | None = None


LINK_CLASSES: dict[str, LinkClass] = {
    "reliable": LinkClass(bandwidth_bits=1000 * MBIT),
    "home": LinkClass(added_latency_s=0.020, loss=0.001, bandwidth_bits=50 * MBIT),
    "laggy": LinkClass(added_latency_s=0.300, loss=0.05, bandwidth_bits=50 * MBIT),
    "constrained": LinkClass(bandwidth_bits=5 * MBIT),
}


def with_link_classes(link: LinkProfile, src: LinkClass | None,
                      dst: LinkClass | None) -> LinkProfile:
    """`link` as the two ends' access links change it: their added latencies and jitters add
    up, their losses compound, and the slowest of the three bandwidths wins."""
    latency, jitter, kept = link.latency_s, link.jitter_s, 1.0 - link.loss
    bandwidth = link.bandwidth_bps
    for link_class in (src, dst):
        if link_class is None:
            continue
        latency += link_class.added_latency_s
        jitter += link_class.jitter_s
        kept *= 1.0 - link_class.loss
        if link_class.bandwidth_bits is not None:
            cap = link_class.bandwidth_bits / 8
            bandwidth = cap if bandwidth is None else min(bandwidth, cap)
    return LinkProfile(latency_s=latency, bandwidth_bps=bandwidth, jitter_s=jitter,
                       loss=1.0 - kept)


def assign_regions(names: Sequence[str], seed: int,
                   table: RegionTable = BITCOIN_2019) -> dict[str, str]:
    """Each node's region: the table's shares of len(names) nodes (cumulative rounding, as
    SimBlock's makeRandomListFollowDistribution fills its list), shuffled by `seed`."""
    regions: list[str] = []
    cumulative = 0.0
    for region, share in zip(REGIONS, table.distribution, strict=True):
        cumulative += share
        regions.extend([region] * (round(len(names) * cumulative) - len(regions)))
    regions.extend([REGIONS[-1]] * (len(names) - len(regions)))
    del regions[len(names):]
    random.Random(f"regions/{seed}").shuffle(regions)
    return dict(zip(names, regions, strict=True))


def pareto_latency_s(mean_ms: float, rng: random.Random) -> float:
    """One draw of SimBlock's latency around `mean_ms` (Pareto; its mean is `mean_ms`)."""
    scale = mean_ms - PARETO_SCALE_OFFSET_MS
    shape = PARETO_SHAPE_PER_MS * mean_ms
    if scale <= 0 or shape <= 1:  # no Pareto with that mean: use the mean
        return mean_ms / 1000
    u = 1.0 - rng.random()  # in (0, 1]
    return min(MAX_LATENCY_S, scale / u ** (1.0 / shape) / 1000)


class RegionLinks:
    """A LinkModel from node regions and link classes; see the module docstring."""

    def __init__(self, regions: Mapping[str, str], *, table: RegionTable = BITCOIN_2019,
                 seed: int = 0, pareto: bool = True,
                 link_classes: Mapping[str, str] | None = None) -> None:
        for node, region in regions.items():
            # [REJECT] every node is in a known region
            if region not in REGIONS:
                raise ValueError(f"node {node!r}: unknown region {region!r} "
                                 f"(known: {', '.join(REGIONS)})")
        classes = dict(link_classes or {})
        for node, name in classes.items():
            # [REJECT] every link class is a known one
            if name not in LINK_CLASSES:
                raise ValueError(f"node {node!r}: unknown link class {name!r} "
                                 f"(known: {', '.join(LINK_CLASSES)})")
        self.regions = dict(regions)
        self.table = table
        self.seed = seed
        self.pareto = pareto
        self._classes = {node: LINK_CLASSES[name] for node, name in classes.items()}
        self._cache: dict[tuple[str, str], LinkProfile] = {}

    def profile(self, src: str, dst: str) -> LinkProfile:
        key = (src, dst)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._compute(src, dst)
        return cached

    def _compute(self, src: str, dst: str) -> LinkProfile:
        i, j = self._region_index(src), self._region_index(dst)
        mean_ms = self.table.latency_ms[i][j]
        latency = (pareto_latency_s(mean_ms, random.Random(f"latency/{self.seed}/{src}->{dst}"))
                   if self.pareto else mean_ms / 1000)
        bandwidth = min(self.table.upload_bits[i], self.table.download_bits[j])
        region_link = LinkProfile(latency_s=latency, bandwidth_bps=bandwidth / 8)
        return with_link_classes(region_link, self._classes.get(src), self._classes.get(dst))

    def _region_index(self, node: str) -> int:
        region = self.regions.get(node)
        if region is None:
            raise KeyError(f"node {node!r} has no region")
        return REGIONS.index(region)


class ClassedLinks:
    """Another LinkModel with each node's link class applied on top (see with_link_classes)."""

    def __init__(self, base: LinkModel, link_classes: Mapping[str, LinkClass]) -> None:
        self.base = base
        self._classes = dict(link_classes)

    def profile(self, src: str, dst: str) -> LinkProfile:
        return with_link_classes(self.base.profile(src, dst), self._classes.get(src),
                                 self._classes.get(dst))


NETWORK_KINDS = ("uniform", "regions")
SPEC_FIELDS = frozenset({"network", "table", "pareto", "latency_ms", "bandwidth_mbit",
                         "link_classes", "regions"})


def build_link_model(spec: Mapping[str, Any], names: Sequence[str], seed: int) -> LinkModel:
    """The LinkModel a scenario's simulated network section describes; checked whole first.

    `spec` (every field optional):
      network: uniform | regions          (default uniform)
      latency_ms: 0, bandwidth_mbit: null  (uniform: every link alike; null = unlimited)
      table: bitcoin-2019 | bitcoin-2015, pareto: true   (regions)
      regions: {node: region}             (regions: pin nodes; the rest drawn from the seed with
                                           the table's shares)
      link_classes: {node or "default": reliable | home | laggy | constrained}
    Raises ValueError naming the field and the value for anything else.
    """
    _check_spec(spec, names)
    kind = spec.get("network", "uniform")
    base: LinkModel
    if kind == "uniform":
        bandwidth = spec.get("bandwidth_mbit")
        base = UniformLinks(LinkProfile(
            latency_s=spec.get("latency_ms", 0) / 1000,
            bandwidth_bps=None if bandwidth is None else bandwidth * MBIT / 8))
    else:
        table = REGION_TABLES[spec.get("table", BITCOIN_2019.name)]
        regions = assign_regions(names, seed, table)
        regions.update(spec.get("regions") or {})
        base = RegionLinks(regions, table=table, seed=seed, pareto=spec.get("pareto", True))
    classes = spec.get("link_classes") or {}
    if not classes:
        return base
    chosen: dict[str, LinkClass] = {}
    for name in names:
        class_name = classes.get(name, classes.get("default"))
        if class_name is not None:
            chosen[name] = LINK_CLASSES[class_name]
    return ClassedLinks(base, chosen)


def _check_spec(spec: Mapping[str, Any], names: Sequence[str]) -> None:
    # [REJECT] the section is a mapping of known fields
    if not isinstance(spec, Mapping):
        raise ValueError(f"the simulated network must be a mapping, got {spec!r}")
    unknown = sorted(str(key) for key in spec if key not in SPEC_FIELDS)
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (known: {', '.join(sorted(SPEC_FIELDS))})")
    kind = spec.get("network", "uniform")
    # [REJECT] a known kind of network, and only its own fields
    if kind not in NETWORK_KINDS:
        raise ValueError(f"network: {kind!r} is not one of {', '.join(NETWORK_KINDS)}")
    own = {"uniform": {"latency_ms", "bandwidth_mbit"}, "regions": {"table", "pareto", "regions"}}
    for field_name in sorted(set().union(*own.values()) - own[kind]):
        if field_name in spec:
            raise ValueError(f"{field_name}: only for network {_other(kind)}, not {kind}")
    # [REJECT] numbers are numbers in range
    latency = spec.get("latency_ms", 0)
    if not _is_number(latency) or not 0 <= latency <= 60_000:
        raise ValueError(f"latency_ms must be a number in 0..60000, got {latency!r}")
    bandwidth = spec.get("bandwidth_mbit")
    if bandwidth is not None and (not _is_number(bandwidth) or bandwidth <= 0):
        raise ValueError(f"bandwidth_mbit must be a positive number or null, got {bandwidth!r}")
    # [REJECT] known table, boolean pareto
    if spec.get("table", BITCOIN_2019.name) not in REGION_TABLES:
        raise ValueError(f"table: {spec['table']!r} is not one of {', '.join(REGION_TABLES)}")
    if not isinstance(spec.get("pareto", True), bool):
        raise ValueError(f"pareto must be true or false, got {spec['pareto']!r}")
    known = set(names)
    # [REJECT] pinned regions and link classes name known nodes and known values
    for node, region in (spec.get("regions") or {}).items():
        if node not in known:
            raise ValueError(f"regions: unknown node {node!r}")
        if region not in REGIONS:
            raise ValueError(f"regions: node {node!r}: {region!r} is not one of "
                             f"{', '.join(REGIONS)}")
    for node, name in (spec.get("link_classes") or {}).items():
        if node != "default" and node not in known:
            raise ValueError(f"link_classes: unknown node {node!r}")
        if name not in LINK_CLASSES:
            raise ValueError(f"link_classes: {node}: {name!r} is not one of "
                             f"{', '.join(LINK_CLASSES)}")


def _other(kind: str) -> str:
    return next(other for other in NETWORK_KINDS if other != kind)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
