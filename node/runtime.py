"""What a node's environment supplies: the seams between the node's logic and the world it runs in.

A node process (`testnet node`, `python -m node`) uses the default `NodeRuntime()`: the host's wall
clock, websockets, an HTTP site, a hashing process, SQLite files in the data dir, unseeded
randomness -- exactly the behaviour of a node before the runtime existed. The simulation backend
(`--backend sim`, issue 14) runs hundreds of unchanged nodes in one process by supplying another:
a virtual wall clock (`epoch + loop.time()` on a virtual-time loop), an in-memory transport, no
HTTP site (an in-process client calls the app's handlers, node/inprocess_client.py), sampled
mining, in-memory stores and a seed from which every random choice of the node is drawn.

None of these fields changes a consensus rule. Sampled mining needs the chain spec's
`proof_of_work: "sampled"` to be accepted by the network; that is the spec's decision (every node
must share it), not the runtime's.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from consensus.pos.signing import SignatureCache
from node.mempool import VerifiedCache
from p2p.transport import Transport

MEMORY_STORE = ":memory:"
# Bounds of the process-wide caches (trust_honest_signatures): ~150 bytes an entry, so ~10 MB and
# ~40 MB; a PoS simulation's votes of a few epochs, or a PoW one's transactions of many blocks.
SHARED_TX_CACHE_ITEMS = 65_536
SHARED_VOTE_CACHE_ITEMS = 262_144


@dataclass(frozen=True)
class NodeRuntime:
    """The environment of one node.

    - `time_source`: wall-clock seconds (the node clock adds its skew on top). Durations read the
      running event loop's clock, so a virtual loop plus a virtual time source make the node fully
      virtual.
    - `seed`: None = unseeded randomness (a real node). An int seeds every random choice of the
      node (the p2p host's peer sampling and link faults, its handshake challenges, the sampled
      miner) from `f"{seed}/{node_id}/{purpose}"` (string seeds hash with SHA-512, not with
      PYTHONHASHSEED). Predictable challenges are for simulations only: a real node keeps None.
    - `transport`: the p2p Transport (an in-memory network), or None for websockets.
    - `serve_http`: `Node.run()` serves the HTTP site (API, admin API, /p2p websocket) when True;
      when False it runs everything else (`Node.run_services()`) and the app stays buildable
      through `Node.make_runner()`/`make_app()` for an in-process client. False also says the
      node is embedded in a process it shares: /status reports no `resident_bytes` and the node
      leaves malloc_trim to its host.
    - `miner`: "process" hashes in a child process (node/miner.py); "sampled" draws each block's
      time from an exponential distribution instead (node/sampled_miner.py; the chain spec must
      say `proof_of_work: "sampled"` for the blocks to be valid).
    - `store_path`: None = `chain.sqlite` (and `signing.sqlite`) in the data dir; ":memory:" = both
      in memory (a restart then starts from genesis and a blank signing record); another path =
      the chain store there, the signing record beside it.
    - `event_log`: write `events.jsonl` in the data dir (the in-memory history and subscribers
      work either way).
    - `trust_honest_signatures`: a speed switch for simulations, default False. When True, the
      signatures one node has verified count as verified for every node of the process with the
      switch on: transactions (by txid) and PoS/hybrid votes (by root and pubkey) go through
      process-wide caches (`shared_verified_cache`, `shared_signature_cache`), so a signature
      gossiped to 1000 simulated nodes is checked once, not 1000 times. The cache keys commit
      to the signature bytes and only successes are cached, so no invalid signature is ever
      accepted: a byzantine node's bad signature is checked, and rejected, by every node, and
      blocks, RANDAO reveals and slashing evidence are verified as always. It is a memo, not
      trust in anyone; the name says what it buys (honest signatures are the ones that repeat).
    """

    time_source: Callable[[], float] = time.time
    seed: int | None = None
    transport: Transport | None = None
    serve_http: bool = True
    miner: Literal["process", "sampled"] = "process"
    store_path: Path | str | None = None
    event_log: bool = True
    trust_honest_signatures: bool = False

    def __post_init__(self) -> None:
        if self.miner not in ("process", "sampled"):
            raise ValueError(f"miner must be 'process' or 'sampled', got {self.miner!r}")

    def rng(self, node_id: str, purpose: str) -> random.Random:
        """A random source for one purpose of one node: seeded from (seed, node id, purpose) when
        the runtime has a seed, from the OS otherwise."""
        if self.seed is None:
            return random.Random()
        return random.Random(f"{self.seed}/{node_id}/{purpose}")

    def chain_store_path(self, data_dir: Path) -> Path | str:
        if self.store_path is None:
            return data_dir / "chain.sqlite"
        return self.store_path

    def signing_store_path(self, data_dir: Path) -> Path | str:
        if self.store_path is None:
            return data_dir / "signing.sqlite"
        if str(self.store_path) == MEMORY_STORE:
            return MEMORY_STORE
        return Path(self.store_path).with_name("signing.sqlite")


_shared_tx_cache: VerifiedCache | None = None
_shared_vote_cache: SignatureCache | None = None


def shared_verified_cache(runtime: NodeRuntime) -> VerifiedCache | None:
    """The process-wide transaction-signature cache when the runtime shares verification; None
    (each node its own cache) otherwise."""
    global _shared_tx_cache
    if not runtime.trust_honest_signatures:
        return None
    if _shared_tx_cache is None:
        _shared_tx_cache = VerifiedCache(SHARED_TX_CACHE_ITEMS)
    return _shared_tx_cache


def shared_signature_cache(runtime: NodeRuntime) -> SignatureCache | None:
    """The process-wide vote-signature cache (PoS attestations, hybrid votes) when the runtime
    shares verification; None (each chain its own cache) otherwise."""
    global _shared_vote_cache
    if not runtime.trust_honest_signatures:
        return None
    if _shared_vote_cache is None:
        _shared_vote_cache = SignatureCache(SHARED_VOTE_CACHE_ITEMS)
    return _shared_vote_cache
