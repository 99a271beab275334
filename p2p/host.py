"""P2PHost: the node's whole view of the network -- peers, gossip, requests and sync.

node/ creates one P2PHost, mounts `handle_inbound` at GET /p2p on its aiohttp app, registers
topics, handlers and a sync source, and runs `run()` as a child of its TaskGroup. Links come
through a Transport (transport.py): websockets by default, or an in-memory simulated network
(memory_transport.py), whose inbound links arrive through `accept`. The host:

- accepts inbound links (`handle_inbound`, `accept`) and dials the configured peer URLs with backoff
  (dialer.py); every link is a Connection (connection.py) that must pass the handshake
  (handshake.py) before anything else is read from it;
- keeps at most one connection per peer id. If both sides dial each other, the connection
  dialed by the peer with the smaller peer id survives; between two dialed by the same side the
  newer one survives (the older is likely stale). Both sides apply the same rule, so exactly one
  link remains and the loser's dial loop waits instead of redialing;
- routes frames: gossip family -> GossipRouter, req/resp -> RequestRouter, status -> SyncManager;
- scores peers (peer_score.py): rejected gossip, malformed requests and malformed frames cost
  points, and a peer that reaches the threshold is disconnected with "too many invalid messages"
  and refused for a while;
- holds every peer to its budgets (peer_policy.py, `policy`): message rates, requests in flight,
  sync answers; inbound handshakes per address, and inbound slots (the worst-scored inbound
  peer makes room). A peer that stays over a budget is disconnected and banned like above;
- shapes links for fault injection (link_shaper.py, `link_shaper`, `set_link_rule`): frames to
  or from a peer may be delayed, dropped, duplicated or rate limited; a rule that blocks both
  directions is a partition the node can see: the link closes with LINK_BLOCKED_REASON and the
  peer is refused at the handshake until the rule is cleared, when the dialer retries at once.

p2p/ never imports consensus/ or node/: payloads are bytes and meaning comes from the
validators, handlers and sync source node/ registers.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from aiohttp import WSCloseCode, web

from p2p.connection import SEND_QUEUE_BYTES, Connection, LinkDirection, new_stats
from p2p.dialer import Dialer, DialOutcome
from p2p.errors import HandshakeError
from p2p.gossip import Fetch, GossipRouter, Validator
from p2p.handshake import HANDSHAKE_TIMEOUT_S, SELF_CONNECTION, ChainParams, perform_handshake
from p2p.identity import Identity
from p2p.link_shaper import LinkRule, LinkShaper
from p2p.loop_clock import loop_time
from p2p.peer_policy import EvictionCandidate, PeerPolicy, PolicyLimits, address_of, choose_eviction
from p2p.peer_score import BAD_FRAME_PENALTY, REJECT_PENALTY, PeerScores
from p2p.rpc import DEFAULT_REQUEST_TIMEOUT_S, Handler, RequestRouter
from p2p.sync import GET_BLOCKS_METHOD, STATUS_INTERVAL_S, ChainStatus, SyncManager, SyncSource
from p2p.transport import CLOSE_TIMEOUT_S, HEARTBEAT_S, FrameSocket, Transport, WebSocketTransport
from p2p.wire import MAX_FRAME_BYTES, MAX_NAME_CHARS, PROTOCOL_VERSION

SHUTDOWN_TIMEOUT_S = 3.0
GOSSIP_TYPES = frozenset({"gossip", "inv", "getdata", "data", "notfound"})
LINK_BLOCKED_REASON = "link blocked by fault injection"


@dataclass(frozen=True)
class PeerInfo:
    peer_id: str
    url: str  # the dialed URL, or the remote address of an inbound link
    direction: LinkDirection
    connected_at: float  # host clock
    score: float
    msgs_in: int
    msgs_out: int
    status: ChainStatus | None = None  # the peer's last chain status, if it sent one


class P2PHost:
    def __init__(
        self,
        *,
        private_key: bytes,
        chain_id: str,
        genesis_hash: bytes,
        peers: Iterable[str] = (),
        max_frame_bytes: int = MAX_FRAME_BYTES,
        seen_cache_size: int = 65536,
        rng: random.Random | None = None,
        clock: Callable[[], float] = loop_time,
        logger: logging.Logger | None = None,
        on_peer_connected: Callable[[PeerInfo], None] | None = None,
        on_peer_disconnected: Callable[[PeerInfo, str], None] | None = None,
        status_interval: float = STATUS_INTERVAL_S,
        handshake_timeout: float = HANDSHAKE_TIMEOUT_S,
        protocol_version: int = PROTOCOL_VERSION,
        send_queue_bytes: int = SEND_QUEUE_BYTES,
        link_seed: int | None = None,
        policy_limits: PolicyLimits | None = None,
        transport: Transport | None = None,
        challenge_source: Callable[[int], bytes] | None = None,
    ) -> None:
        # [REJECT] genesis hash and chain id fit the hello message (wire.py)
        if not isinstance(genesis_hash, bytes) or len(genesis_hash) != 32:
            raise ValueError(f"genesis_hash must be 32 bytes, got {genesis_hash!r}")
        if not isinstance(chain_id, str) or not 0 < len(chain_id) <= MAX_NAME_CHARS:
            raise ValueError(f"chain_id must be 1..{MAX_NAME_CHARS} characters, got {chain_id!r}")
        self._identity = Identity.from_seed(private_key)
        self._params = ChainParams(chain_id=chain_id, genesis_hash=genesis_hash,
                                   version=protocol_version)
        self._max_frame_bytes = max_frame_bytes
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._log = logger if logger is not None else logging.getLogger("p2p")
        self._on_peer_connected = on_peer_connected
        self._on_peer_disconnected = on_peer_disconnected
        self._handshake_timeout = handshake_timeout
        self._send_queue_bytes = send_queue_bytes
        self.stats: dict[str, Any] = new_stats()
        self.started = asyncio.Event()
        self._running = False
        self._transport: Transport = transport if transport is not None else WebSocketTransport()
        # handshake challenges: the OS's randomness unless a simulation brings its seeded source
        self._challenge_source = challenge_source
        self._conns: dict[str, Connection] = {}  # peer id -> its one registered connection
        # every open connection, registered or not; a dict, not a set, so that closing them all
        # goes in one order (a set of objects iterates in memory-address order)
        self._live: dict[Connection, None] = {}
        self._url_peers: dict[str, str] = {}  # dialed URL -> the peer id it led to
        self._dial_failures: dict[str, int] = {}
        self._scores = PeerScores(clock)
        self.policy = PeerPolicy(clock, limits=policy_limits, on_over_budget=self._ban_over_budget,
                                 penalise=self._penalise, stats=self.stats, log=self._log)
        # Link timing is physical time on the event loop (virtual on a simulated one), whatever
        # the host clock says (a test's fake clock, a skewed node clock); the seed alone makes
        # the fault schedule repeatable.
        if link_seed is None:
            link_seed = self._rng.getrandbits(64)
        self.link_shaper = LinkShaper(random.Random(link_seed), clock=loop_time)
        self.gossip = GossipRouter(
            connections=self._conns,
            penalise=self._penalise_reject,
            stats=self.stats,
            log=self._log,
            seen_cache_size=seen_cache_size,
            max_frame_bytes=max_frame_bytes,
            version=protocol_version,
            policy=self.policy,
        )
        self.rpc = RequestRouter(connections=self._conns, stats=self.stats, log=self._log,
                                 penalise=lambda peer_id: self._penalise(peer_id, REJECT_PENALTY),
                                 policy=self.policy)
        self.sync = SyncManager(
            connections=self._conns,
            request=self.request,
            stats=self.stats,
            log=self._log,
            max_frame_bytes=max_frame_bytes,
            status_interval=status_interval,
            policy=self.policy,
        )
        self.rpc.add_handler(GET_BLOCKS_METHOD, self.sync.serve_get_blocks)
        self._dialer = Dialer(
            dial_once=self._dial_once, wait_until_needed=self._wait_until_needed, rng=self._rng,
            log=self._log,
        )
        for url in peers:
            self._dialer.add(url)

    # -- public API ----------------------------------------------------------------------------

    @property
    def peer_id(self) -> str:
        return self._identity.peer_id

    def peers(self) -> list[PeerInfo]:
        return [self._peer_info(conn) for conn in self._conns.values()]

    def add_peer(self, url: str) -> None:
        self._dialer.add(url)

    def remove_peer(self, url: str) -> None:
        """Stop dialing `url` and close the connection dialed to it (with a `bye`), if any."""
        dialed = [conn for conn in self._live if conn.direction == "outbound" and conn.url == url]
        for conn in dialed:
            conn.close(WSCloseCode.OK, "peer removed", category="peer removed")
        self._dialer.remove(url, wait_for_connection=bool(dialed))
        self._url_peers.pop(url, None)

    def add_topic(self, name: str, validator: Validator, *, announce: bool = False,
                  fetch: Fetch | None = None, push_first: int = 0,
                  batch_s: float = 0.0) -> None:
        self.gossip.add_topic(name, validator, announce=announce, fetch=fetch,
                              push_first=push_first, batch_s=batch_s)

    def publish(self, topic: str, msg_id: bytes, payload: bytes, *, urgent: bool = False) -> None:
        self.gossip.publish(topic, msg_id, payload, urgent=urgent)

    def add_handler(self, method: str, handler: Handler) -> None:
        self.rpc.add_handler(method, handler)

    async def request(self, peer_id: str, method: str, body: Any,
                      timeout: float = DEFAULT_REQUEST_TIMEOUT_S) -> Any:
        return await self.rpc.request(peer_id, method, body, timeout)

    def set_sync_source(self, source: SyncSource) -> None:
        self.sync.set_source(source)

    # -- link shaping (fault injection) ---------------------------------------------------------

    def set_link_rule(self, peer: str, rule: LinkRule,
                      direction: Literal["in", "out", "both"] = "both") -> None:
        """Shape the link with `peer` (a peer id, or "*" for every peer) in `direction`.

        A rule that leaves both directions blocked closes the link with LINK_BLOCKED_REASON and
        refuses the peer at the handshake while it holds; a block in one direction only drops
        frames that way and keeps the link up. Raises ValueError/TypeError for a bad argument.
        """
        blocked_before = self._blocking_rules()
        self.link_shaper.set(peer, rule, direction)
        self._log.info("link rule for %s (%s): %s", peer[:12], direction, rule)
        self._apply_link_blocks(blocked_before)

    def clear_link_rules(self, peer: str | None = None) -> None:
        """Remove the link rules for `peer` (a peer id or "*"), or all of them when None.

        If that lifts a block, dialing starts over at once, so a healed partition reconnects
        without waiting out the backoff.
        """
        blocked_before = self._blocking_rules()
        self.link_shaper.clear(peer)
        self._log.info("link rules cleared for %s", "every peer" if peer is None else peer[:12])
        self._apply_link_blocks(blocked_before)

    def _blocking_rules(self) -> set[tuple[str, str]]:
        return {(r["peer"], r["direction"]) for r in self.link_shaper.rules() if r["rule"]["block"]}

    def _apply_link_blocks(self, blocked_before: set[tuple[str, str]]) -> None:
        """Close the links the rules now block both ways; redial promptly where a block lifted."""
        for conn in list(self._live):
            if (conn.peer_id is not None and not conn.is_closing
                    and self.link_shaper.is_blocked(conn.peer_id)):
                self._log.info("closing link to %s (%s): %s", conn.peer_id[:12], conn.url,
                               LINK_BLOCKED_REASON)
                self.stats["shaped"]["links closed"] += 1
                conn.close(WSCloseCode.POLICY_VIOLATION, LINK_BLOCKED_REASON,
                           category="link blocked")
        lifted = {peer for peer, _ in blocked_before - self._blocking_rules()}
        if not lifted:
            return

        def may_reach_lifted_peer(url: str) -> bool:
            peer_id = self._url_peers.get(url)  # None: never got through a handshake yet
            return peer_id is None or peer_id in lifted or "*" in lifted

        self._dialer.reset_backoff([url for url in self._dialer.urls if may_reach_lifted_peer(url)])

    def _admit(self, peer_id: str) -> str | None:
        """Why the peer a hello claims to be is refused before we authenticate, or None."""
        return LINK_BLOCKED_REASON if self.link_shaper.is_blocked(peer_id) else None

    # -- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Dial peers, validate gossip and exchange status until cancelled.

        Returns: never returns normally; cancel it to stop. `started` is set once it is live.
        On cancellation every connection, inbound and outbound, is closed with 1001 and the
        transport is closed (`Transport.open` left) before CancelledError propagates.
        Error handling: dial and handshake failures are logged and retried with backoff; a
        failure on one connection never stops the host.
        """
        if self._running:
            raise RuntimeError("P2PHost.run() is already running")
        async with self._transport.open(self.accept, self._max_frame_bytes):
            try:
                async with asyncio.TaskGroup() as task_group:
                    task_group.create_task(self.gossip.run())
                    task_group.create_task(self.sync.run())
                    task_group.create_task(self._dialer.run())
                    self._running = True
                    self.started.set()
            finally:
                self._running = False
                self.started.clear()
                await self._close_all("host shutting down")

    async def handle_inbound(self, request: web.Request) -> web.StreamResponse:
        """aiohttp handler for GET /p2p: serve one inbound peer until its link closes.

        Answers 503 if run() is not live within the handshake timeout, 429 if the address is
        over its budget of new connections.
        """
        if not self._running:
            try:
                async with asyncio.timeout(self._handshake_timeout):
                    await self.started.wait()
            except TimeoutError:
                return web.Response(status=503, text="p2p host is not running")
        if not self._admits_address(str(request.remote)):
            return web.Response(status=429, text="too many new connections from this address")
        ws = web.WebSocketResponse(
            max_msg_size=self._max_frame_bytes,
            compress=False,
            heartbeat=HEARTBEAT_S,
            timeout=CLOSE_TIMEOUT_S,
        )
        await ws.prepare(request)
        peername = request.transport.get_extra_info("peername") if request.transport else None
        address = f"{peername[0]}:{peername[1]}" if peername else str(request.remote)
        await self._serve(self._new_connection(ws, url=address, direction="inbound"))
        return ws

    async def accept(self, socket: FrameSocket, remote_address: str) -> None:
        """Serve one inbound link a Transport hands over (remote_address: "host:port") until it
        closes; refused with 1013 (try again later) if the host is not running or the address
        is over its budget of new connections."""
        if not self._running or not self._admits_address(address_of(remote_address)):
            await socket.close(code=WSCloseCode.TRY_AGAIN_LATER,
                               message=b"too many new connections from this address")
            return
        await self._serve(self._new_connection(socket, url=remote_address, direction="inbound"))

    def _admits_address(self, address: str) -> bool:
        # [IGNORE] the address is within its budget of new handshakes (churn, not peer count)
        if self.policy.admit_address(address):
            return True
        if self.policy.should_log(address, "admission"):
            self._log.warning("refusing new connections from %s: too many", address)
        return False

    async def _close_all(self, reason: str) -> None:
        for conn in list(self._live):
            conn.close(WSCloseCode.GOING_AWAY, reason, category="host shutting down")
        waiting = [conn.closed.wait() for conn in self._live]
        if not waiting:
            return
        try:
            async with asyncio.timeout(SHUTDOWN_TIMEOUT_S):
                await asyncio.gather(*waiting)
        except TimeoutError:
            self._log.warning("%d connections did not close within %s s", len(self._live),
                              SHUTDOWN_TIMEOUT_S)

    # -- dialing -------------------------------------------------------------------------------

    async def _dial_once(self, url: str) -> DialOutcome:
        """Dial `url` and serve the connection until it ends."""
        try:
            ws = await self._transport.dial(url, self._max_frame_bytes)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            failures = self._dial_failures[url] = self._dial_failures.get(url, 0) + 1
            level = logging.INFO if failures == 1 else logging.DEBUG
            self._log.log(level, "dial %s failed (%d in a row): %r", url, failures, exc)
            self.stats["errors"]["dial failed"] += 1
            return DialOutcome.FAILED
        self._dial_failures.pop(url, None)
        conn = self._new_connection(ws, url=url, direction="outbound")
        established = await self._serve(conn)
        if conn.close_category == f"handshake: {SELF_CONNECTION}":
            return DialOutcome.GIVE_UP
        return DialOutcome.ESTABLISHED if established else DialOutcome.FAILED

    async def _wait_until_needed(self, url: str) -> None:
        """Wait while the peer behind `url` is connected through another link."""
        while ((peer_id := self._url_peers.get(url)) is not None
               and (conn := self._conns.get(peer_id)) is not None):
            await conn.closed.wait()

    # -- connection lifecycle ------------------------------------------------------------------

    def _new_connection(self, ws: FrameSocket, *, url: str, direction: LinkDirection) -> Connection:
        """A connection whose bad input is charged from its first frame: a junk frame that
        arrives while the handshake is finishing (before dispatch starts) costs its address too."""
        conn = Connection(
            ws,
            url=url,
            direction=direction,
            stats=self.stats,
            log=self._log,
            connected_at=self._clock(),
            max_frame_bytes=self._max_frame_bytes,
            version=self._params.version,
            send_queue_bytes=self._send_queue_bytes,
            shaper=self.link_shaper,
        )
        conn.on_bad_input = self._penalise_bad_input
        return conn

    async def _serve(self, conn: Connection) -> bool:
        """Run one connection from handshake to close. Returns True if the handshake succeeded."""
        established = False

        async def on_open(conn: Connection) -> None:
            nonlocal established
            established = await self._open_session(conn)

        self._live[conn] = None
        try:
            await conn.run(on_open)
        except Exception:
            # A bug in our own code on this connection: log it, keep the host serving others.
            self._log.exception("connection to %s failed", conn.label)
            self.stats["errors"]["internal"] += 1
        finally:
            self._live.pop(conn, None)
            self._release(conn)
        return established

    async def _open_session(self, conn: Connection) -> bool:
        """Handshake, then admit the peer (or refuse it). True if the handshake succeeded."""
        try:
            result = await perform_handshake(
                conn, self._identity, self._params, timeout=self._handshake_timeout,
                admit=self._admit,
                **({} if self._challenge_source is None
                   else {"challenge_source": self._challenge_source}),
            )
        except HandshakeError as exc:
            self._log.warning("handshake with %s failed: %s", conn.url, exc.reason)
            self.stats["rejected"][f"handshake: {exc.category}"] += 1
            conn.close(WSCloseCode.POLICY_VIOLATION, exc.reason,
                       category=f"handshake: {exc.category}", send_bye=not exc.from_peer)
            return False
        peer_id = conn.peer_id = result.peer_id
        if conn.direction == "outbound":
            self._url_peers[conn.url] = peer_id
        if not self._running:  # run() ended while this handshake was in flight
            conn.close(WSCloseCode.GOING_AWAY, "host shutting down", category="host shutting down")
            return False
        # [REJECT] the peer is not serving a ban for misbehaviour
        if self._scores.is_banned(peer_id):
            self._log.warning("refusing %s (%s): banned for too many invalid messages",
                              peer_id[:12], conn.url)
            self.stats["rejected"]["banned peer"] += 1
            self._note_ban(conn)
            conn.close(WSCloseCode.POLICY_VIOLATION, "banned: too many invalid messages",
                       category="banned")
            return False
        # [REJECT] no link rule partitions us from the peer (set while the handshake ran)
        if self.link_shaper.is_blocked(peer_id):
            self._log.info("refusing %s (%s): %s", peer_id[:12], conn.url, LINK_BLOCKED_REASON)
            self.stats["rejected"]["handshake: refused"] += 1
            conn.close(WSCloseCode.POLICY_VIOLATION, LINK_BLOCKED_REASON, category="link blocked")
            return False
        if conn.direction == "inbound" and peer_id not in self._conns:
            self._make_room()
        is_new_peer = self._register(conn)
        if conn.is_closing:  # lost the duplicate-connection rule
            return True
        conn.start_dispatch(self._on_frame)
        self.sync.send_status(conn)
        if is_new_peer:
            self._log.info("connected to %s (%s, %s)", peer_id[:12], conn.direction, conn.url)
            self._notify(self._on_peer_connected, self._peer_info(conn))
        return True

    def _register(self, conn: Connection) -> bool:
        """Make `conn` the peer's connection unless a better one exists. True if the peer is new."""
        assert conn.peer_id is not None
        existing = self._conns.get(conn.peer_id)
        if existing is None:
            self._conns[conn.peer_id] = conn
            return True
        if existing.is_closing:
            self._conns[conn.peer_id] = conn
            return False
        keep = self._choose_connection(existing, conn)
        loser = conn if keep is existing else existing
        self._log.info("closing duplicate %s connection to %s", loser.direction, conn.peer_id[:12])
        self.stats["dropped"]["duplicate connection"] += 1
        loser.close(WSCloseCode.OK, "duplicate connection", category="duplicate connection")
        self._conns[conn.peer_id] = keep
        return False

    def _choose_connection(self, old: Connection, new: Connection) -> Connection:
        """The link both sides agree to keep: dialed by the smaller peer id, else the newer."""
        preferred_dialer = min(self.peer_id, new.peer_id or "")

        def dialer(conn: Connection) -> str | None:
            return self.peer_id if conn.direction == "outbound" else conn.peer_id

        if (dialer(old) == preferred_dialer) != (dialer(new) == preferred_dialer):
            return old if dialer(old) == preferred_dialer else new
        return new

    def _release(self, conn: Connection) -> None:
        """Forget a finished connection; tell node/ if it was the peer's only link."""
        if conn.peer_id is None:
            return
        self.rpc.on_connection_closed(conn)
        if self._conns.get(conn.peer_id) is not conn:
            return
        del self._conns[conn.peer_id]
        self.gossip.on_peer_closed(conn.peer_id)
        self.sync.on_peer_closed(conn.peer_id)
        self.policy.forget(conn.peer_id)
        self._scores.forget(conn.peer_id)
        reason = conn.close_reason or "closed"
        self.stats["disconnects"][conn.close_category or "closed"] += 1
        self._log.info("disconnected from %s (%s): %s", conn.peer_id[:12], conn.url, reason)
        self._notify(self._on_peer_disconnected, self._peer_info(conn), reason)

    def _notify(self, callback: Callable[..., None] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            self._log.exception("peer callback %r raised", callback)
            self.stats["errors"]["callback error"] += 1

    def _peer_info(self, conn: Connection) -> PeerInfo:
        assert conn.peer_id is not None
        return PeerInfo(
            peer_id=conn.peer_id,
            url=conn.url,
            direction=conn.direction,
            connected_at=conn.connected_at,
            score=self._scores.get(conn.peer_id),
            msgs_in=conn.msgs_in,
            msgs_out=conn.msgs_out,
            status=self.sync.peer_status.get(conn.peer_id),
        )

    # -- frames and penalties ------------------------------------------------------------------

    def _on_frame(self, conn: Connection, msg_type: str, body: dict) -> None:
        if msg_type in GOSSIP_TYPES:
            self.gossip.on_frame(conn, msg_type, body)
        elif msg_type == "req":
            self.rpc.on_request(conn, body)
        elif msg_type == "resp":
            self.rpc.on_response(conn, body)
        elif msg_type == "status":
            assert conn.peer_id is not None
            # [IGNORE] the peer stays within its status rate
            if self.policy.charge(conn.peer_id, "status"):
                self.sync.on_status(conn.peer_id, body)
        elif msg_type == "bye":
            self._log.info("%s said bye: %s", conn.label, body["reason"])
            conn.close(WSCloseCode.OK, f"peer said bye: {body['reason']}",
                       category="peer said bye", send_bye=False)
        else:
            # [REJECT] hello and auth only during the handshake
            reason = f"unexpected {msg_type!r} after handshake"
            conn.reject_input("unexpected handshake message", reason, WSCloseCode.PROTOCOL_ERROR)

    def _penalise_reject(self, peer_id: str, reason: str) -> None:
        self._penalise(peer_id, REJECT_PENALTY)

    def _penalise_bad_input(self, conn: Connection, category: str) -> None:
        if conn.peer_id is not None:
            self._penalise(conn.peer_id, BAD_FRAME_PENALTY)
        if not conn.is_closing:  # (a ban has closed it and charged the address already)
            self._note_ban(conn)  # a link closed for bad input is churn its address pays for

    def _penalise(self, peer_id: str, penalty: float) -> None:
        self._scores.penalise(peer_id, penalty)
        if not self._scores.should_disconnect(peer_id):
            return
        self._scores.ban(peer_id)
        conn = self._conns.get(peer_id)
        if conn is not None and not conn.is_closing:
            self._log.warning("disconnecting %s: too many invalid messages", peer_id[:12])
            self._note_ban(conn)
            conn.close(WSCloseCode.POLICY_VIOLATION, "too many invalid messages",
                       category="too many invalid messages")

    def _ban_over_budget(self, peer_id: str, kind: str) -> None:
        """The policy's verdict on a peer that stayed over a budget: like an invalid-message ban."""
        self._scores.ban(peer_id)
        self.stats["rejected"][f"over budget: {kind}"] += 1
        conn = self._conns.get(peer_id)
        if conn is not None and not conn.is_closing:
            self._log.warning("disconnecting %s: over its %s budget", peer_id[:12], kind)
            self._note_ban(conn)
            conn.close(WSCloseCode.POLICY_VIOLATION, f"over budget: {kind}", category="over budget")

    def _note_ban(self, conn: Connection) -> None:
        if conn.direction == "inbound":
            self.policy.note_ban(address_of(conn.url))

    def _make_room(self) -> None:
        """Inbound slots full: close the worst-scored inbound peer (the youngest among equals)."""
        inbound = [c for c in self._conns.values() if c.direction == "inbound" and not c.is_closing]
        if not self.policy.inbound_full(len(inbound)):
            return
        worst = choose_eviction(EvictionCandidate(c.peer_id, self._scores.get(c.peer_id),
                                                  c.connected_at) for c in inbound if c.peer_id)
        if worst is not None:
            self._log.info("evicting inbound peer %s: inbound slots full", worst[:12])
            self.stats["disconnects"]["evicted"] += 1
            self._conns[worst].close(WSCloseCode.TRY_AGAIN_LATER, "inbound slots full",
                                     category="evicted")
