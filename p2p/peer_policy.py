"""Per-peer budgets: what one peer can make this node do, and what happens when it asks for more.

A handshake proves a key, not good intent, and keys cost nothing. Each handshaked peer therefore
gets budgets, checked where its frames are handled (gossip.py, rpc.py, sync.py) and enforced here:

- **Rates per message kind** (token buckets, `KIND_LIMITS`): announcements, duplicates, unsolicited
  answers, data requests, requests, status. A frame over its bucket is dropped quietly (counted in
  `stats["dropped"]["over budget: <kind>"]`); a peer that stays over a bucket for
  OVER_BUDGET_GRACE_S is disconnected and banned like a peer that sends invalid messages. Bitcoin
  Core bounds `inv` to MAX_INV_SZ items and disconnects past it; gossipsub v1.1 caps IHAVE ids per
  heartbeat (`max_ihave_length`, `max_ihave_messages`). Ours is the same idea as a rate.
- **Requests in flight** (`InFlight`): we ask a peer only for ids nobody else is fetching
  (gossip.py keeps one fetch per id), at most MAX_IN_FLIGHT_PER_PEER from one peer and
  MAX_IN_FLIGHT_TOTAL in all; entries end on delivery, notfound, timeout or disconnect. An id a
  peer announced and then did not deliver (notfound or timeout) costs BROKEN_PROMISE_PENALTY:
  gossipsub v1.1's P7 behaviour penalty for broken IWANT promises, Bitcoin Core's getdata
  in-flight map (`mapBlocksInFlight`, MAX_PEER_TX_REQUEST_IN_FLIGHT) with its stalling timeouts.
- **Sync answers** (`get_blocks`): at most SYNC_ANSWER_MAX_BYTES per answer and
  SYNC_BYTES_PER_S per peer (an answer over the rate waits up to SYNC_MAX_THROTTLE_S, else the peer
  gets "busy" and the refusal counts as over budget); an answer from genesis -- a locator that
  matched nothing, or a fresh node's first request -- at most once per GENESIS_ANSWER_INTERVAL_S
  per peer.
- **Admission** (per remote address, inbound only): ADMISSION_BURST handshakes at once, then
  ADMISSION_PER_S; each ban of a peer from the address takes ADMISSION_BAN_COST more. So churn of
  fresh ids that misbehave is what runs out, not the number of honest peers: a 48-node cluster all
  on 127.0.0.1 connects in its first burst and then stays connected. When MAX_INBOUND_PEERS are
  connected, the worst-scored inbound peer (the youngest among equals) makes room
  (`choose_eviction`; Bitcoin Core's `AttemptToEvictConnection`, much simplified).
- **Logs**: a handled bad input is logged at most once per LOG_INTERVAL_S per peer and kind
  (`should_log`), without a traceback; the counters still see every one.

Every map here is bounded: per-peer state lives while the peer is connected (`forget`), addresses
and log marks are capped at MAX_TRACKED_KEYS. Time comes from the host clock. The policy never
closes links itself: it tells the host through `on_over_budget` and `penalise`.
docs/threat-model.md lists the bounds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

# -- rates per kind: (tokens per second, burst); a token is one frame, or one id for *_ids kinds
KIND_LIMITS: dict[str, tuple[float, float]] = {
    "inv_ids": (2048.0, 8192.0),       # ids announced; honest: one per new block per peer
    "getdata_ids": (2048.0, 8192.0),   # ids asked of us
    "duplicate": (1000.0, 5000.0),     # pushes and announcements of what we already have
    "unsolicited": (20.0, 100.0),      # data, notfound, resp nobody asked this peer for
    "requests": (20.0, 100.0),         # req frames (get_blocks runs one batch at a time)
    "status": (2.0, 10.0),             # honest: one per STATUS_INTERVAL_S (2 s)
}
OVER_BUDGET_GRACE_S = 3.0  # over a bucket this long (refusals never pausing CALM_S) -> ban
OVER_BUDGET_CALM_S = 1.0   # a refusal-free pause this long forgives the overrun

MAX_IN_FLIGHT_PER_PEER = 256
MAX_IN_FLIGHT_TOTAL = 4096
BROKEN_PROMISE_PENALTY = 2.0  # per announced id not delivered; DISCONNECT_SCORE is -100

SYNC_ANSWER_MAX_BYTES = 2 * 1024 * 1024
SYNC_BYTES_PER_S = 4 * 1024 * 1024
SYNC_BYTES_BURST = 8 * 1024 * 1024
SYNC_MAX_THROTTLE_S = 2.0
GENESIS_ANSWER_INTERVAL_S = 10.0

ADMISSION_BURST = 128.0
ADMISSION_PER_S = 0.5
ADMISSION_BAN_COST = 8.0
MAX_INBOUND_PEERS = 128

LOG_INTERVAL_S = 10.0
MAX_TRACKED_KEYS = 4096  # addresses, and log marks, each


class TokenBucket:
    """`burst` tokens, refilled at `rate` per second; time from `clock`."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._when = clock()

    @property
    def tokens(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._when) * self.rate)
        self._when = now
        return self._tokens

    def take(self, cost: float = 1.0) -> bool:
        """Spend `cost` tokens if there are that many; False (nothing spent) otherwise."""
        if self.tokens < cost:
            return False
        self._tokens -= cost
        return True

    def spend(self, cost: float) -> None:
        """Spend `cost` tokens even if that leaves a debt the refill pays back first."""
        self._tokens = self.tokens - cost

    def drain(self, cost: float) -> None:
        """Spend up to `cost` tokens, stopping at zero (a penalty, never a debt)."""
        self._tokens = max(0.0, self.tokens - cost)

    def wait_for(self, cost: float) -> float:
        """Seconds until `cost` tokens are there (0 if they are now; inf if never)."""
        missing = min(cost, self.burst) - self.tokens
        if missing <= 0:
            return 0.0
        return missing / self.rate if self.rate > 0 else float("inf")


@dataclass
class _Budget:
    bucket: TokenBucket
    over_since: float | None = None
    last_refused: float = 0.0


@dataclass
class _PeerState:
    budgets: dict[str, _Budget] = field(default_factory=dict)
    in_flight: int = 0
    sync_bytes: TokenBucket | None = None
    genesis_answered_at: float | None = None
    banned: bool = False


@dataclass(frozen=True)
class EvictionCandidate:
    peer_id: str
    score: float
    connected_at: float


def choose_eviction(candidates: Iterable[EvictionCandidate]) -> str | None:
    """The inbound peer to drop when inbound slots are full: the lowest score, and among equal
    scores the most recently connected (it has proven the least). None if there is nobody."""
    ranked = sorted(candidates, key=lambda c: (c.score, -c.connected_at))
    return ranked[0].peer_id if ranked else None


def address_of(url: str) -> str:
    """The host part of an inbound link's "host:port" (IPv6 hosts keep their colons)."""
    return url.rsplit(":", 1)[0] if ":" in url else url


@dataclass(frozen=True)
class PolicyLimits:
    """The knobs; the defaults are the module constants. `admission=False` turns off the
    per-address handshake budget (fuzzing opens thousands of fresh ids from one address on
    purpose), `rates=False` the per-kind buckets."""

    admission: bool = True
    rates: bool = True
    kind_limits: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(KIND_LIMITS))
    max_in_flight_per_peer: int = MAX_IN_FLIGHT_PER_PEER
    max_in_flight_total: int = MAX_IN_FLIGHT_TOTAL
    max_inbound_peers: int = MAX_INBOUND_PEERS


class PeerPolicy:
    def __init__(
        self,
        clock: Callable[[], float],
        *,
        limits: PolicyLimits | None = None,
        on_over_budget: Callable[[str, str], None] | None = None,
        penalise: Callable[[str, float], None] | None = None,
        stats: dict | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.limits = limits if limits is not None else PolicyLimits()
        self._clock = clock
        self.on_over_budget = on_over_budget
        self.penalise = penalise
        self._stats = stats
        self._log = log if log is not None else logging.getLogger("p2p")
        self._peers: dict[str, _PeerState] = {}
        self._in_flight_total = 0
        self._addresses: dict[str, TokenBucket] = {}
        self._logged: dict[tuple[str, str], float] = {}

    def _peer(self, peer_id: str) -> _PeerState:
        state = self._peers.get(peer_id)
        if state is None:
            state = self._peers[peer_id] = _PeerState()
        return state

    def _count(self, group: str, label: str, n: int = 1) -> None:
        if self._stats is not None:
            self._stats[group][label] += n

    # -- rates ---------------------------------------------------------------------------------

    def charge(self, peer_id: str, kind: str, cost: float = 1.0) -> bool:
        """Spend `cost` from the peer's `kind` bucket. False: drop the frame (already counted);
        a peer over the bucket for OVER_BUDGET_GRACE_S is reported to `on_over_budget` once."""
        if not self.limits.rates:
            return True
        state = self._peer(peer_id)
        budget = state.budgets.get(kind)
        if budget is None:
            rate, burst = self.limits.kind_limits[kind]
            budget = state.budgets[kind] = _Budget(TokenBucket(rate, burst, self._clock))
        now = self._clock()
        if budget.bucket.take(cost):
            if budget.over_since is not None and now - budget.last_refused >= OVER_BUDGET_CALM_S:
                budget.over_since = None
            return True
        self._count("dropped", f"over budget: {kind}")
        budget.last_refused = now
        if budget.over_since is None:
            budget.over_since = now
        elif now - budget.over_since >= OVER_BUDGET_GRACE_S and not state.banned:
            state.banned = True
            if self.on_over_budget is not None:
                self.on_over_budget(peer_id, kind)
        return False

    # -- requests in flight --------------------------------------------------------------------

    def may_request(self, peer_id: str) -> bool:
        """Whether one more id may be asked of this peer (per-peer and overall bounds)."""
        if self._in_flight_total >= self.limits.max_in_flight_total:
            return False
        state = self._peers.get(peer_id)
        return state is None or state.in_flight < self.limits.max_in_flight_per_peer

    def track(self, peer_id: str) -> None:
        self._peer(peer_id).in_flight += 1
        self._in_flight_total += 1

    def release(self, peer_id: str) -> None:
        state = self._peers.get(peer_id)
        if state is not None and state.in_flight > 0:
            state.in_flight -= 1
            self._in_flight_total -= 1

    def in_flight(self, peer_id: str | None = None) -> int:
        if peer_id is None:
            return self._in_flight_total
        state = self._peers.get(peer_id)
        return state.in_flight if state is not None else 0

    def broken_promise(self, peer_id: str) -> None:
        """The peer announced an id and then did not deliver it (notfound or timeout)."""
        self._count("rejected", "broken promise")
        if self.penalise is not None:
            self.penalise(peer_id, BROKEN_PROMISE_PENALTY)

    # -- sync answers --------------------------------------------------------------------------

    def may_answer_from_genesis(self, peer_id: str) -> bool:
        """At most one answer from genesis per GENESIS_ANSWER_INTERVAL_S per peer; a refusal
        counts against the peer's request budget as if over it."""
        state = self._peer(peer_id)
        now = self._clock()
        last = state.genesis_answered_at
        if last is None or now - last >= GENESIS_ANSWER_INTERVAL_S or not self.limits.rates:
            state.genesis_answered_at = now
            return True
        self._count("dropped", "over budget: genesis answers")
        self._mark_over(peer_id, "genesis answers")
        return False

    def sync_delay(self, peer_id: str, nbytes: int) -> float | None:
        """Seconds to hold an answer of `nbytes` so the peer stays within SYNC_BYTES_PER_S (the
        bytes are spent now), or None: refuse it, the wait would exceed SYNC_MAX_THROTTLE_S."""
        if not self.limits.rates:
            return 0.0
        state = self._peer(peer_id)
        if state.sync_bytes is None:
            state.sync_bytes = TokenBucket(SYNC_BYTES_PER_S, SYNC_BYTES_BURST, self._clock)
        delay = state.sync_bytes.wait_for(nbytes)
        if delay > SYNC_MAX_THROTTLE_S:
            self._count("dropped", "over budget: sync bytes")
            self._mark_over(peer_id, "sync bytes")
            return None
        state.sync_bytes.spend(nbytes)
        if delay > 0:
            self._count("dropped", "throttled: sync bytes")
        return delay

    def _mark_over(self, peer_id: str, kind: str) -> None:
        """A refusal outside the token buckets: the peer is over budget as of now."""
        state = self._peer(peer_id)
        budget = state.budgets.setdefault(kind, _Budget(TokenBucket(0.0, 0.0, self._clock)))
        now = self._clock()
        if budget.over_since is None or now - budget.last_refused >= OVER_BUDGET_CALM_S:
            budget.over_since = now
        budget.last_refused = now
        if now - budget.over_since >= OVER_BUDGET_GRACE_S and not state.banned:
            state.banned = True
            if self.on_over_budget is not None:
                self.on_over_budget(peer_id, kind)

    # -- admission -----------------------------------------------------------------------------

    def admit_address(self, address: str) -> bool:
        """Whether a new inbound handshake from `address` may start (spends one token)."""
        if not self.limits.admission:
            return True
        allowed = self._address_bucket(address).take(1.0)
        if not allowed:
            self._count("rejected", "admission: address rate")
        return allowed

    def note_ban(self, address: str) -> None:
        """A peer from `address` was banned or refused as banned: churn that costs the address."""
        if self.limits.admission:
            self._address_bucket(address).drain(ADMISSION_BAN_COST)

    def _address_bucket(self, address: str) -> TokenBucket:
        bucket = self._addresses.pop(address, None)
        if bucket is None:
            bucket = TokenBucket(ADMISSION_PER_S, ADMISSION_BURST, self._clock)
            if len(self._addresses) >= MAX_TRACKED_KEYS:
                self._prune_addresses()
        self._addresses[address] = bucket  # most recently used last
        return bucket

    def _prune_addresses(self) -> None:
        """Forget full buckets (nothing to remember), then the least recently used."""
        for address in [a for a, b in self._addresses.items() if b.tokens >= b.burst]:
            del self._addresses[address]
        while len(self._addresses) >= MAX_TRACKED_KEYS * 3 // 4:
            del self._addresses[next(iter(self._addresses))]

    def inbound_full(self, inbound_count: int) -> bool:
        return inbound_count >= self.limits.max_inbound_peers

    # -- logs and lifetime ---------------------------------------------------------------------

    def should_log(self, peer_id: str, what: str) -> bool:
        """True at most once per LOG_INTERVAL_S for this (peer, what)."""
        key = (peer_id, what)
        now = self._clock()
        last = self._logged.get(key)
        if last is not None and now - last < LOG_INTERVAL_S:
            self._count("dropped", "log line suppressed")
            return False
        if len(self._logged) >= MAX_TRACKED_KEYS:
            for old in [k for k, t in self._logged.items() if now - t >= LOG_INTERVAL_S]:
                del self._logged[old]
            while len(self._logged) >= MAX_TRACKED_KEYS:
                del self._logged[next(iter(self._logged))]
        self._logged.pop(key, None)
        self._logged[key] = now
        return True

    def forget(self, peer_id: str) -> None:
        """The peer disconnected: free its buckets and in-flight count (gossip.py retries or
        drops its fetches as it closes)."""
        state = self._peers.pop(peer_id, None)
        if state is not None:
            self._in_flight_total -= state.in_flight

    def __len__(self) -> int:
        """Peers with state (connected ones, or ones whose frames are still being handled)."""
        return len(self._peers)
