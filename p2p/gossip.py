"""Gossip: flood (topic, msg_id, payload) to every peer once, validated by the node.

p2p/ does not know what a payload means. node/ registers one validator per topic (a pure rule
from consensus/ wrapped in a coroutine) that answers accept, ignore or reject, as the
`[IGNORE]`/`[REJECT]` conditions of consensus-specs do. A verdict carries a free-text reason for
the log and a category, a short label from a fixed set the validator knows: rejects are counted
as `stats["rejected"]["<topic>: <category>"]`, and past MAX_REJECT_CATEGORIES labels per topic
as "<topic>: other", so no validator can grow the stats (and /metrics) without bound. A received
message is dropped if its (topic, msg_id) is in the seen-cache; otherwise it is marked seen and
queued for that topic's validator, which runs one message at a time in arrival order. Accepted
messages are forwarded to every peer except the ones known to have them (the sender, and anyone
who sent or announced it) -- so no host forwards a message twice.

Topics come in two kinds:
- push (announce=False): the full payload travels in a `gossip` frame;
- announce (announce=True): peers get `inv {topic, ids}` and ask with `getdata`; the answer is
  `data` (or `notfound`). One getdata is in flight per id; if the peer does not answer in
  FETCH_TIMEOUT_S or says notfound, the next peer that announced the id is asked. Payloads are
  served from a bounded cache of recent messages, then from the topic's `fetch` (the node's store).

Every peer's frames are charged to its budgets in peer_policy.py: announced and requested ids,
duplicates and unsolicited answers; over a budget a frame is dropped (and a peer that stays over
is banned by the host). Ids are asked of a peer only within its in-flight bound, and an id it
announced but then did not deliver (notfound, timeout) is a broken promise that costs it score.

An announce topic may batch its announcements (`batch_s`, Bitcoin's transaction trickle): the ids
accepted within batch_s go to each peer as one `inv`, and the peer asks for all it lacks with one
`getdata`. For transactions in a full mesh this replaces one full frame per peer per message
(decoded by every receiver, most of them duplicates) with one frame per peer per batch: the
receivers' loops stay short, so a block is not held behind them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from p2p.connection import Connection
from p2p.errors import EncodeError
from p2p.peer_policy import PeerPolicy
from p2p.seen_cache import ANNOUNCE_TTL_S, PUSH_TTL_S, Key, PayloadCache, SeenCache
from p2p.wire import (
    MAX_ID_BYTES,
    MAX_IDS_PER_FRAME,
    MAX_NAME_CHARS,
    PROTOCOL_VERSION,
    encode_frame,
)

VALIDATION_QUEUE_MESSAGES = 4096  # per topic
FETCH_TIMEOUT_S = 2.0
# Recent announce-topic payloads kept to answer getdata without the node's store: a few hundred
# blocks is what announcements still ask for; older ones come from the store (the topic's fetch).
RECENT_PAYLOAD_BYTES = 4 * 1024 * 1024
MAX_REJECT_CATEGORIES = 32  # per topic: distinct reject labels counted before "other"


@dataclass(frozen=True)
class GossipMessage:
    topic: str
    msg_id: bytes
    payload: bytes
    peer_id: str  # the peer that delivered it


@dataclass(frozen=True)
class Verdict:
    kind: Literal["accept", "ignore", "reject"]
    reason: str = ""  # for people: the log
    category: str = ""  # for counting: a label from a fixed set, never built from the payload

    @classmethod
    def accept(cls) -> Verdict:
        return cls("accept")

    @classmethod
    def ignore(cls, reason: str = "", category: str = "ignored") -> Verdict:
        return cls("ignore", reason, category)

    @classmethod
    def reject(cls, reason: str, category: str = "rejected") -> Verdict:
        return cls("reject", reason, category)


Validator = Callable[[GossipMessage], Awaitable[Verdict]]
Fetch = Callable[[bytes], "bytes | None"]


@dataclass
class _Topic:
    name: str
    validator: Validator
    announce: bool
    fetch: Fetch | None
    push_first: int = 0   # announce topics: push the full payload to this many peers first
    batch_s: float = 0.0  # announce topics: gather the ids accepted within batch_s in one inv
    queue: asyncio.Queue[GossipMessage] = field(
        default_factory=lambda: asyncio.Queue(VALIDATION_QUEUE_MESSAGES)
    )
    reject_labels: set[str] = field(default_factory=set)  # at most MAX_REJECT_CATEGORIES


@dataclass
class _Fetch:
    """One id being fetched: who we asked last, and who else announced it."""

    peer_id: str
    asked: set[str]
    candidates: list[str]
    timer: asyncio.TimerHandle | None = None


class GossipRouter:
    def __init__(
        self,
        *,
        connections: Mapping[str, Connection],
        penalise: Callable[[str, str], None],
        stats: dict[str, Any],
        log: logging.Logger,
        seen_cache_size: int,
        max_frame_bytes: int,
        version: int = PROTOCOL_VERSION,
        policy: PeerPolicy | None = None,
    ) -> None:
        self._max_frame_bytes = max_frame_bytes
        self._policy = policy if policy is not None else PeerPolicy(lambda: 0.0)
        self._connections = connections
        self._penalise = penalise
        self._stats = stats
        self._log = log
        self._version = version
        self._topics: dict[str, _Topic] = {}
        self._seen = SeenCache(seen_cache_size)
        self._payloads = PayloadCache(RECENT_PAYLOAD_BYTES)
        self._fetches: dict[Key, _Fetch] = {}
        self._task_group: asyncio.TaskGroup | None = None
        # batched announcements not sent yet: peer id -> topic -> ids, flushed by one timer
        self._pending_inv: defaultdict[str, dict[str, list[bytes]]] = defaultdict(dict)
        self._flush_timer: asyncio.TimerHandle | None = None

    def add_topic(self, name: str, validator: Validator, *, announce: bool = False,
                  fetch: Fetch | None = None, push_first: int = 0,
                  batch_s: float = 0.0) -> None:
        if name in self._topics:
            raise ValueError(f"topic {name!r} already registered")
        # [REJECT] topic names fit the wire schema, or peers would drop our frames as malformed
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS:
            raise ValueError(f"topic name must be 1..{MAX_NAME_CHARS} characters, got {name!r}")
        if batch_s and not announce:
            raise ValueError(f"topic {name!r}: only announce topics batch their announcements")
        topic = self._topics[name] = _Topic(name, validator, announce, fetch, push_first,
                                            batch_s)
        self._seen.set_ttl(name, ANNOUNCE_TTL_S if announce else PUSH_TTL_S)
        if self._task_group is not None:
            self._task_group.create_task(self._validate_loop(topic))

    def memory_items(self) -> dict[str, int]:
        """Sizes of the bounded gossip structures (for /status)."""
        return {"seen": len(self._seen), "payloads": len(self._payloads),
                "payload_bytes": self._payloads.total_bytes,
                "fetches": len(self._fetches)}

    def has_seen(self, topic: str, msg_id: bytes) -> bool:
        return (topic, msg_id) in self._seen

    async def run(self) -> None:
        """Run one validation worker per topic. Returns: never; ends when cancelled."""
        try:
            async with asyncio.TaskGroup() as task_group:
                self._task_group = task_group
                for topic in self._topics.values():
                    task_group.create_task(self._validate_loop(topic))
                await asyncio.Future()  # the workers run until we are cancelled
        finally:
            self._task_group = None
            if self._flush_timer is not None:
                self._flush_timer.cancel()
                self._flush_timer = None
            self._pending_inv.clear()
            for fetch in self._fetches.values():
                self._policy.release(fetch.peer_id)
                if fetch.timer is not None:
                    fetch.timer.cancel()
            self._fetches.clear()

    def publish(self, topic_name: str, msg_id: bytes, payload: bytes, *,
                urgent: bool = False) -> None:
        """Send a locally created message to all peers and mark it seen.

        `urgent` (a node's own new block): the full payload to every peer, announce topic or
        not, ahead of the frames already queued to them -- nobody has it yet, so an
        announcement would only add a round trip to a node that is busy with other work.
        Raises ValueError for an unknown topic, EncodeError if the frame would exceed the cap.
        """
        topic = self._topics.get(topic_name)
        if topic is None:
            raise ValueError(f"unknown topic {topic_name!r}")
        # [REJECT] message ids are bytes of at most MAX_ID_BYTES (wire schema)
        if not isinstance(msg_id, bytes) or len(msg_id) > MAX_ID_BYTES:
            raise ValueError(f"msg_id must be at most {MAX_ID_BYTES} bytes, got {msg_id!r}")
        msg_type, data = self._encode_forward(topic, msg_id, payload)
        if len(data) > self._max_frame_bytes:
            raise EncodeError(f"{topic_name} message of {len(payload)} bytes exceeds the frame cap")
        self._seen.add((topic_name, msg_id))
        if topic.announce:
            self._payloads.put((topic_name, msg_id), payload)
        if urgent:
            msg_type, data = "gossip", encode_frame(
                "gossip", {"topic": topic_name, "id": msg_id, "payload": payload},
                version=self._version)
            self._send_to_peers((topic_name, msg_id), msg_type, data, urgent=True)
            return
        self._spread(topic, msg_id, payload, msg_type, data)

    # -- receiving -----------------------------------------------------------------------------

    def on_frame(self, conn: Connection, msg_type: str, body: dict) -> None:
        """Handle a gossip-family frame (gossip, inv, getdata, data, notfound)."""
        handler = {
            "gossip": self._on_push,
            "data": self._on_data,
            "inv": self._on_inv,
            "getdata": self._on_getdata,
            "notfound": self._on_notfound,
        }[msg_type]
        topic = self._topics.get(body["topic"])
        if topic is None:
            # [IGNORE] topic is one we registered (the peer may run a newer node)
            self._stats["dropped"]["unknown topic"] += 1
            if conn.peer_id is not None and not self._policy.charge(conn.peer_id, "unsolicited"):
                return
            if msg_type == "getdata":
                conn.send("notfound", {"topic": body["topic"], "ids": body["ids"]})
            return
        assert conn.peer_id is not None
        handler(conn.peer_id, conn, topic, body)

    def _on_push(self, peer_id: str, conn: Connection, topic: _Topic, body: dict) -> None:
        key = (topic.name, body["id"])
        # [IGNORE] message not already seen
        if not self._seen.add(key, peer_id):
            self._stats["dropped"]["duplicate"] += 1
            self._policy.charge(peer_id, "duplicate")
            return
        self._enqueue(topic, GossipMessage(topic.name, body["id"], body["payload"], peer_id))

    def _on_data(self, peer_id: str, conn: Connection, topic: _Topic, body: dict) -> None:
        key = (topic.name, body["id"])
        fetch = self._fetches.get(key)
        # [IGNORE] data answers a getdata we sent to this peer
        if fetch is None or peer_id not in fetch.asked:
            self._stats["dropped"]["unsolicited data"] += 1
            self._policy.charge(peer_id, "unsolicited")
            return
        self._end_fetch(key)
        # [IGNORE] message not already seen (it may have arrived by another path meanwhile)
        is_new = self._seen.add(key, peer_id)
        for holder in fetch.asked.union(fetch.candidates):  # everyone who announced it has it
            self._seen.note_holder(key, holder)
        if not is_new:
            self._stats["dropped"]["duplicate"] += 1
            return
        self._enqueue(topic, GossipMessage(topic.name, body["id"], body["payload"], peer_id))

    def _on_inv(self, peer_id: str, conn: Connection, topic: _Topic, body: dict) -> None:
        # [IGNORE] the peer stays within its announcement budget
        if not self._policy.charge(peer_id, "inv_ids", len(body["ids"])):
            return
        wanted = []
        duplicates = 0
        for msg_id in body["ids"]:
            key = (topic.name, msg_id)
            if key in self._seen:
                self._seen.note_holder(key, peer_id)
                self._stats["dropped"]["duplicate inv"] += 1
                duplicates += 1
            elif (fetch := self._fetches.get(key)) is not None:
                if peer_id not in fetch.asked and peer_id not in fetch.candidates:
                    fetch.candidates.append(peer_id)
            elif self._policy.may_request(peer_id):  # [IGNORE] within the in-flight bounds
                self._fetches[key] = _Fetch(peer_id=peer_id, asked={peer_id}, candidates=[])
                self._policy.track(peer_id)
                self._arm_timer(key, peer_id)
                wanted.append(msg_id)
            else:
                self._stats["dropped"]["in-flight limit"] += 1
        if duplicates:
            self._policy.charge(peer_id, "duplicate", duplicates)
        if wanted:
            conn.send("getdata", {"topic": topic.name, "ids": wanted})

    def _on_getdata(self, peer_id: str, conn: Connection, topic: _Topic, body: dict) -> None:
        # [IGNORE] the peer stays within its request budget
        if not self._policy.charge(peer_id, "getdata_ids", len(body["ids"])):
            return
        missing = []
        for msg_id in body["ids"]:
            payload = self._lookup(topic, msg_id)
            if payload is None:
                missing.append(msg_id)
                continue
            try:
                conn.send("data", {"topic": topic.name, "id": msg_id, "payload": payload})
            except EncodeError as exc:
                self._log.warning("cannot serve %s %s: %s", topic.name, msg_id.hex()[:16], exc)
                self._stats["errors"]["serve failed"] += 1
                missing.append(msg_id)
        if missing:
            conn.send("notfound", {"topic": topic.name, "ids": missing})

    def _on_notfound(self, peer_id: str, conn: Connection, topic: _Topic, body: dict) -> None:
        for msg_id in body["ids"]:
            key = (topic.name, msg_id)
            fetch = self._fetches.get(key)
            if fetch is not None and fetch.peer_id == peer_id:
                self._policy.broken_promise(peer_id)
                self._retry_fetch(key)
            else:
                self._policy.charge(peer_id, "unsolicited")

    def on_peer_closed(self, peer_id: str) -> None:
        """Ask someone else for every id we were fetching from this peer."""
        for key in [k for k, f in self._fetches.items() if f.peer_id == peer_id]:
            self._retry_fetch(key)

    # -- fetching ------------------------------------------------------------------------------

    def _lookup(self, topic: _Topic, msg_id: bytes) -> bytes | None:
        payload = self._payloads.get((topic.name, msg_id))
        if payload is not None or topic.fetch is None:
            return payload
        try:
            return topic.fetch(msg_id)
        except Exception:
            self._log.exception("fetch(%s) for topic %s raised", msg_id.hex()[:16], topic.name)
            self._stats["errors"]["fetch error"] += 1
            return None

    def _arm_timer(self, key: Key, peer_id: str) -> None:
        loop = asyncio.get_running_loop()
        self._fetches[key].timer = loop.call_later(FETCH_TIMEOUT_S, self._on_fetch_timeout, key,
                                                   peer_id)

    def _on_fetch_timeout(self, key: Key, peer_id: str) -> None:
        fetch = self._fetches.get(key)
        if fetch is not None and fetch.peer_id == peer_id:
            self._stats["dropped"]["fetch timeout"] += 1
            if peer_id in self._connections:
                self._policy.broken_promise(peer_id)
            self._retry_fetch(key)

    def _retry_fetch(self, key: Key) -> None:
        fetch = self._fetches[key]
        if fetch.timer is not None:
            fetch.timer.cancel()
        self._policy.release(fetch.peer_id)
        while fetch.candidates:
            peer_id = fetch.candidates.pop(0)
            conn = self._connections.get(peer_id)
            if conn is not None and conn.send("getdata", {"topic": key[0], "ids": [key[1]]}):
                fetch.peer_id = peer_id
                fetch.asked.add(peer_id)
                self._policy.track(peer_id)
                self._arm_timer(key, peer_id)
                return
        del self._fetches[key]
        self._stats["dropped"]["fetch failed"] += 1
        self._log.debug("no peer could serve %s %s", key[0], key[1].hex()[:16])

    def _end_fetch(self, key: Key) -> None:
        fetch = self._fetches.pop(key, None)
        if fetch is not None:
            self._policy.release(fetch.peer_id)
            if fetch.timer is not None:
                fetch.timer.cancel()

    # -- validating and forwarding -------------------------------------------------------------

    def _enqueue(self, topic: _Topic, msg: GossipMessage) -> None:
        try:
            topic.queue.put_nowait(msg)
        except asyncio.QueueFull:
            # Forget it so that a later copy can still get in once the validator catches up.
            self._seen.discard((topic.name, msg.msg_id))
            self._stats["dropped"]["validation queue full"] += 1

    async def _validate_loop(self, topic: _Topic) -> None:
        """Validate this topic's messages one at a time, in arrival order, yielding to the loop
        between two messages: validators rarely wait, so without the yield a backlog of
        transactions would hold a block (another topic's worker) until the last one is done.

        Returns: never; ends when cancelled. A validator that raises counts as `ignore`
        (logged, `stats["errors"]["validator error"]`): a node bug is not the peer's fault.
        """
        while True:
            if not topic.queue.empty():
                await asyncio.sleep(0)
            msg = await topic.queue.get()
            try:
                verdict = await topic.validator(msg)
            except Exception:
                self._log.exception("validator for %s raised on %s", topic.name,
                                    msg.msg_id.hex()[:16])
                self._stats["errors"]["validator error"] += 1
                continue
            self._apply_verdict(topic, msg, verdict)

    def _apply_verdict(self, topic: _Topic, msg: GossipMessage, verdict: Verdict) -> None:
        if verdict.kind == "accept":
            if topic.announce:
                self._payloads.put((topic.name, msg.msg_id), msg.payload)
            msg_type, data = self._encode_forward(topic, msg.msg_id, msg.payload)
            self._spread(topic, msg.msg_id, msg.payload, msg_type, data)
        elif verdict.kind == "ignore":
            self._stats["dropped"]["ignored"] += 1
            self._log.debug("ignored %s %s: %s", topic.name, msg.msg_id.hex()[:16], verdict.reason)
        elif verdict.kind == "reject":
            self._stats["rejected"][self._reject_label(topic, verdict.category)] += 1
            self._log.warning(
                "rejected %s %s from %s: %s", topic.name, msg.msg_id.hex()[:16], msg.peer_id[:12],
                verdict.reason,
            )
            self._penalise(msg.peer_id, verdict.reason)
        else:
            self._log.error("validator for %s returned %r, treating as ignore", topic.name, verdict)
            self._stats["errors"]["bad verdict"] += 1

    def _reject_label(self, topic: _Topic, category: str) -> str:
        """The stats key of a reject: the topic and the verdict's category, from a bounded set."""
        label = f"{topic.name}: {str(category)[:MAX_NAME_CHARS] or 'rejected'}"
        if label in topic.reject_labels:
            return label
        if len(topic.reject_labels) >= MAX_REJECT_CATEGORIES:
            return f"{topic.name}: other"
        topic.reject_labels.add(label)
        return label

    def _spread(self, topic: _Topic, msg_id: bytes, payload: bytes, msg_type: str,
                data: bytes) -> None:
        """Forward an accepted or published message: pushed or announced now, or (batching
        topics) its id added to each peer's next inv."""
        if topic.batch_s:
            self._announce_later(topic, msg_id)
            return
        self._send_to_peers((topic.name, msg_id), msg_type, data,
                            self._push_frame(topic, msg_id, payload))

    def _announce_later(self, topic: _Topic, msg_id: bytes) -> None:
        holders = self._seen.holders((topic.name, msg_id))
        for peer_id in self._connections:
            if peer_id in holders:
                continue
            ids = self._pending_inv[peer_id].setdefault(topic.name, [])
            ids.append(msg_id)
            if len(ids) >= MAX_IDS_PER_FRAME:   # a full frame goes now
                self._send_inv(peer_id, topic.name, self._pending_inv[peer_id].pop(topic.name))
        if self._flush_timer is None and self._pending_inv:
            self._flush_timer = asyncio.get_running_loop().call_later(
                topic.batch_s, self._flush_announcements)

    def _flush_announcements(self) -> None:
        """Send every peer one inv per topic with the ids gathered since the last flush."""
        self._flush_timer = None
        pending, self._pending_inv = self._pending_inv, defaultdict(dict)
        for peer_id, topics in pending.items():
            for topic_name, ids in topics.items():
                self._send_inv(peer_id, topic_name, ids)

    def _send_inv(self, peer_id: str, topic_name: str, ids: list[bytes]) -> None:
        """One inv of the ids this peer is still not known to have (it may have announced some
        to us meanwhile); a peer gone since is skipped."""
        conn = self._connections.get(peer_id)
        wanted = [m for m in ids if peer_id not in self._seen.holders((topic_name, m))]
        if conn is None or not wanted:
            return
        if conn.send("inv", {"topic": topic_name, "ids": wanted}):
            for msg_id in wanted:
                self._seen.note_holder((topic_name, msg_id), peer_id)

    def _encode_forward(self, topic: _Topic, msg_id: bytes, payload: bytes) -> tuple[str, bytes]:
        """The frame that spreads a message: its id alone (announce) or the full payload (push)."""
        body: dict[str, Any]
        if topic.announce:
            msg_type, body = "inv", {"topic": topic.name, "ids": [msg_id]}
        else:
            msg_type, body = "gossip", {"topic": topic.name, "id": msg_id, "payload": payload}
        return msg_type, encode_frame(msg_type, body, version=self._version)

    def _push_frame(self, topic: _Topic, msg_id: bytes,
                    payload: bytes) -> tuple[str, bytes, int] | None:
        """For announce topics with `push_first`: the full-payload frame for the first few peers
        (Bitcoin's high-bandwidth compact-block peers): they skip the getdata round trip, the rest
        still save the bandwidth of a payload they may already have."""
        if not (topic.announce and topic.push_first):
            return None
        body = {"topic": topic.name, "id": msg_id, "payload": payload}
        return "gossip", encode_frame("gossip", body, version=self._version), topic.push_first

    def _send_to_peers(self, key: Key, msg_type: str, data: bytes,
                       push: tuple[str, bytes, int] | None = None, urgent: bool = False) -> None:
        """Send to every peer not known to have the message, encoded once for all of them."""
        holders = self._seen.holders(key)
        pushes = push[2] if push else 0
        for peer_id, conn in list(self._connections.items()):
            if peer_id in holders:
                continue
            if pushes > 0 and push is not None:
                pushes -= 1
                sent = conn.send_encoded(push[0], push[1])
            else:
                sent = conn.send_encoded(msg_type, data, urgent=urgent)
            if sent:
                self._seen.note_holder(key, peer_id)
