"""Chain sync: catch up with a peer that is ahead, in batches, driven by the node's SyncSource.

p2p/ does not know what a block is. The node gives a SyncSource: its chain status (tip, score,
height), a locator (tip-first ids, as in Bitcoin), `blocks_after(locator, limit)` to serve
peers, and `ingest(peer_id, payloads)` to apply what we fetched, in order.

Peers exchange `status {tip, score, height}` right after the handshake and every
`status_interval` seconds. When a peer's score is above ours we sync from it: request
`get_blocks {locator, limit}` (a request/response method, see rpc.py), ingest the batch, and
repeat until the peer returns nothing new or our score is no longer below theirs. One sync runs
per peer at a time, and status-triggered syncs run one at a time in all (the best peer first),
so a node that fell behind does not download the same blocks from every peer. node/ can force a
sync from a peer with `request_sync(peer_id)`, e.g. when it meets a block with an unknown parent;
a forced sync ignores the scores and goes on until a batch brings nothing new (a fork of equal
score is fetched too). Served batches are trimmed to fit one frame and SYNC_ANSWER_MAX_BYTES; a
peer gets at most one answer from genesis per GENESIS_ANSWER_INTERVAL_S and SYNC_BYTES_PER_S of
answers, held back up to SYNC_MAX_THROTTLE_S and else refused as busy (peer_policy.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from p2p.connection import Connection
from p2p.errors import BadRequest, EncodeError, OverBudget, RequestError, shown
from p2p.peer_policy import SYNC_ANSWER_MAX_BYTES, PeerPolicy
from p2p.wire import MAX_ID_BYTES

GET_BLOCKS_METHOD = "get_blocks"
SYNC_BATCH_BLOCKS = 500
MAX_LOCATOR_IDS = 128
STATUS_INTERVAL_S = 2.0
SYNC_REQUEST_TIMEOUT_S = 10.0
FRAME_OVERHEAD_BYTES = 1024  # room for the envelope around a get_blocks response


@dataclass(frozen=True)
class ChainStatus:
    tip: bytes
    score: int  # total work, or any int that orders chains; must fit in 64 bits on the wire
    height: int


class SyncSource(Protocol):
    def status(self) -> ChainStatus: ...

    def locator(self) -> list[bytes]: ...

    def blocks_after(self, locator: list[bytes], limit: int) -> list[bytes]: ...

    async def ingest(self, peer_id: str, payloads: list[bytes]) -> None: ...


Request = Callable[[str, str, Any, float], Awaitable[Any]]


def is_valid_get_blocks(body: Any) -> bool:
    # [REJECT] get_blocks body is {locator: at most MAX_LOCATOR_IDS ids, limit: positive int}
    return (
        isinstance(body, dict)
        and isinstance(body.get("locator"), list)
        and len(body["locator"]) <= MAX_LOCATOR_IDS
        and all(isinstance(i, bytes) and len(i) <= MAX_ID_BYTES for i in body["locator"])
        and isinstance(body.get("limit"), int)
        and not isinstance(body["limit"], bool)
        and body["limit"] > 0
    )


def is_valid_blocks_reply(reply: Any) -> bool:
    # [REJECT] a get_blocks reply is {blocks: list of bytes}
    return (
        isinstance(reply, dict)
        and isinstance(reply.get("blocks"), list)
        and all(isinstance(b, bytes) for b in reply["blocks"])
    )


class SyncManager:
    def __init__(
        self,
        *,
        connections: Mapping[str, Connection],
        request: Request,
        stats: dict[str, Any],
        log: logging.Logger,
        max_frame_bytes: int,
        status_interval: float = STATUS_INTERVAL_S,
        batch_blocks: int = SYNC_BATCH_BLOCKS,
        policy: PeerPolicy | None = None,
    ) -> None:
        self._connections = connections
        self._policy = policy if policy is not None else PeerPolicy(lambda: 0.0)
        self._request = request
        self._stats = stats
        self._log = log
        self._max_frame_bytes = max_frame_bytes
        self._status_interval = status_interval
        self._batch_blocks = batch_blocks
        self.source: SyncSource | None = None
        self.peer_status: dict[str, ChainStatus] = {}
        self._exhausted: dict[str, ChainStatus] = {}  # peer status a finished sync could not reach
        self._running: dict[str, asyncio.Task] = {}
        self._task_group: asyncio.TaskGroup | None = None

    @property
    def syncing(self) -> bool:
        return bool(self._running)

    def set_source(self, source: SyncSource) -> None:
        self.source = source

    async def run(self) -> None:
        """Send our status to every peer each status_interval and host the sync tasks.

        Returns: never; ends when cancelled, cancelling running syncs.
        """
        try:
            async with asyncio.TaskGroup() as task_group:
                self._task_group = task_group
                while True:
                    await asyncio.sleep(self._status_interval)
                    for conn in list(self._connections.values()):
                        self.send_status(conn)
        finally:
            self._task_group = None
            self._running.clear()

    # -- status --------------------------------------------------------------------------------

    def _our_status(self) -> ChainStatus | None:
        """The source's status, or None if there is no source or it failed (logged, counted)."""
        if self.source is None:
            return None
        try:
            return self.source.status()
        except Exception:
            self._log.exception("sync source status() raised")
            self._stats["errors"]["sync source error"] += 1
            return None

    def send_status(self, conn: Connection) -> None:
        status = self._our_status()
        if status is None:
            return
        try:
            conn.send("status", {"tip": status.tip, "score": status.score, "height": status.height})
        except EncodeError as exc:
            self._log.error("cannot send chain status %r: %s", status, exc)
            self._stats["errors"]["bad status"] += 1

    def on_status(self, peer_id: str, body: dict) -> None:
        status = ChainStatus(tip=body["tip"], score=body["score"], height=body["height"])
        self.peer_status[peer_id] = status
        if self._exhausted.get(peer_id) not in (None, status):
            del self._exhausted[peer_id]
        if not self._running:
            self._start_best()

    def on_peer_closed(self, peer_id: str) -> None:
        self.peer_status.pop(peer_id, None)
        self._exhausted.pop(peer_id, None)

    # -- syncing -------------------------------------------------------------------------------

    def request_sync(self, peer_id: str) -> None:
        """Fetch what `peer_id` has beyond our locator, even if its score is not above ours."""
        self._start(peer_id, forced=True)

    def _start_best(self) -> None:
        """Start a sync from the highest-scoring peer that is ahead of us, if any."""
        ours = self._our_status()
        if ours is None:
            return
        ahead = [
            (status.score, peer_id)
            for peer_id, status in self.peer_status.items()
            if status.score > ours.score and self._exhausted.get(peer_id) != status
            and peer_id in self._connections
        ]
        if ahead:
            self._start(max(ahead)[1], forced=False)

    def _start(self, peer_id: str, *, forced: bool) -> None:
        if self.source is None or self._task_group is None:
            self._log.debug("not syncing from %s: no sync source or host not running", peer_id[:12])
            return
        if peer_id in self._running:
            return
        task = self._task_group.create_task(self._sync_from(peer_id, forced=forced))
        self._running[peer_id] = task

    async def _sync_from(self, peer_id: str, *, forced: bool) -> None:
        """Pull batches from `peer_id` until it has nothing new or we are no longer behind it.

        Error handling: a failed request, a malformed reply or an ingest that raises ends this
        sync (logged, counted); the next status from a peer ahead of us starts another.
        """
        source = self.source
        assert source is not None
        batches = 0
        self._log.info("syncing from %s", peer_id[:12])
        try:
            while True:
                ours = source.status()
                theirs = self.peer_status.get(peer_id)
                # a forced sync goes on while batches move our chain, even if the peer is not ahead
                if not forced and (theirs is None or theirs.score <= ours.score):
                    break
                body = {"locator": source.locator()[:MAX_LOCATOR_IDS], "limit": self._batch_blocks}
                reply = await self._request(peer_id, GET_BLOCKS_METHOD, body,
                                            SYNC_REQUEST_TIMEOUT_S)
                if not is_valid_blocks_reply(reply):
                    self._log.warning("bad get_blocks reply from %s", peer_id[:12])
                    self._stats["rejected"]["bad get_blocks reply"] += 1
                    break
                blocks = reply["blocks"]
                if not blocks:
                    break
                await source.ingest(peer_id, blocks)
                batches += 1
                self._stats["sync_batches"] += 1
                if source.status() == ours:  # nothing new: the batch did not move our chain
                    break
        except RequestError as exc:
            self._log.info("sync from %s stopped: %s", peer_id[:12], exc)
            self._stats["errors"]["sync request failed"] += 1
        except Exception:
            self._log.exception("sync from %s stopped: the sync source raised", peer_id[:12])
            self._stats["errors"]["sync source error"] += 1
        finally:
            self._running.pop(peer_id, None)
        self._finish(peer_id, batches)

    def _finish(self, peer_id: str, batches: int) -> None:
        ours = self._our_status()
        if ours is None:
            return
        theirs = self.peer_status.get(peer_id)
        if theirs is not None and theirs.score > ours.score:
            self._exhausted[peer_id] = theirs  # do not retry until its status changes
        self._log.info("sync from %s done after %d batches, our height %d", peer_id[:12], batches,
                       ours.height)
        if not self._running:
            self._start_best()

    # -- serving -------------------------------------------------------------------------------

    async def serve_get_blocks(self, peer_id: str, body: Any) -> dict:
        """Request handler for get_blocks: payloads after the locator, trimmed to fit one frame.
        Raises BadRequest for a malformed body."""
        if not is_valid_get_blocks(body):
            raise BadRequest(f"get_blocks body must be {{locator: [id, ...], limit: int > 0}}, "
                             f"got {shown(body)}")
        if self.source is None:
            return {"blocks": []}
        limit = min(body["limit"], SYNC_BATCH_BLOCKS)
        first = self.source.blocks_after(body["locator"], 1)
        # [IGNORE] an answer from genesis (the locator matched nothing) at most once per interval
        if (first and first == self.source.blocks_after([], 1)
                and not self._policy.may_answer_from_genesis(peer_id)):
            raise OverBudget("answers from genesis are rate limited")
        frame_budget = self._max_frame_bytes - FRAME_OVERHEAD_BYTES
        blocks: list[bytes] = []
        size = 0
        for payload in self.source.blocks_after(body["locator"], limit)[:limit] if first else []:
            cost = len(payload) + 5  # msgpack bin header is at most 5 bytes
            # the answer fits a frame and, past its first block, SYNC_ANSWER_MAX_BYTES
            if size + cost > frame_budget or (blocks and size + cost > SYNC_ANSWER_MAX_BYTES):
                break
            blocks.append(payload)
            size += cost
        # [IGNORE] the peer stays within its sync bytes per second (held back a little, else busy)
        delay = self._policy.sync_delay(peer_id, size)
        if delay is None:
            raise OverBudget("sync answer rate exceeded")
        if delay > 0:
            await asyncio.sleep(delay)
        return {"blocks": blocks}
