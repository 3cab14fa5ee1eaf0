"""Work on one owned partition: batched reads, per-key lanes, batched acknowledgements.

Entries are read in batches. Each partition key has a lane: its messages run one after another, in
stream order, while different keys run concurrently (bounded by the instance's in-flight budget).
A finished message is acknowledged together with its "handled" mark in one script call per batch.
On acquisition the worker first reclaims the partition's pending entries from whoever held it
before (lease ownership decides, so nothing a live owner handles is taken) and runs them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import ResponseError

from contracts.base import DecodeError, Envelope, Message
from contracts.topology import StreamSpec
from shared.bus import naming, wire
from shared.bus.acks import AckBatcher
from shared.bus.budget import InFlightBudget
from shared.bus.handling import Outcome, Runner
from shared.bus.pending import attempts_made, id_key, reclaim
from shared.bus.settings import ConsumerSettings
from shared.bus.streak import FailureStreak
from shared.redis.client import AnyRedis

log = logging.getLogger(__name__)

Decoder = Callable[[wire.Fields], tuple[Envelope, Message] | None]
"""Decode an entry for this group; None when the group has no handler for its type."""
EnsureGroup = Callable[[str], Awaitable[None]]


class _Item:
    __slots__ = ("attempts", "delivery", "fields")

    def __init__(self, delivery: wire.Delivery, fields: wire.Fields, attempts: int) -> None:
        self.delivery = delivery
        self.fields = fields
        self.attempts = attempts


class PartitionWorker:
    """Consumes one partition for one group while this instance holds its lease."""

    def __init__(
        self,
        client: AnyRedis,
        spec: StreamSpec,
        partition: int,
        *,
        group: str,
        consumer: str,
        settings: ConsumerSettings,
        budget: InFlightBudget,
        decoder: Decoder,
        runner: Runner,
        ensure_group: EnsureGroup,
    ) -> None:
        self._client = client
        self.spec = spec
        self.partition = partition
        self.key = spec.key(partition)
        self.group = group
        self.consumer = consumer
        self._settings = settings
        self._budget = budget
        self._decode = decoder
        self._runner = runner
        self._ensure_group = ensure_group
        self._acks = AckBatcher(
            client,
            self.key,
            group=group,
            mark_prefix=naming.dedupe_prefix(spec, group, partition),
            batch=settings.ack_batch,
            linger=settings.ack_linger,
            mark_ttl=settings.handled_ttl,
            reply_ttl=settings.reply_ttl,
            on_settled=self._settle,
        )
        self._lanes: dict[str, deque[_Item]] = {}
        self._lane_tasks: set[asyncio.Task[None]] = set()
        self._active: set[str] = set()
        self._held: set[str] = set()  # entry ids handed to lanes, not finished yet
        self._stop = asyncio.Event()
        self._last_seen = "0"
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start reading and acknowledging."""
        self._tasks = [asyncio.create_task(self._read_loop(), name=f"read {self.key}")]
        self._acks.start()

    async def drain(self) -> None:
        """Stop reading, let every lane finish or return its message, acknowledge, stop."""
        self._stop.set()
        self._tasks[0].cancel()
        await asyncio.wait([self._tasks[0]], timeout=self._settings.block_ms / 1000 + 1)
        while self._lane_tasks:
            await asyncio.gather(*list(self._lane_tasks), return_exceptions=True)
        try:
            await self._acks.close()
        finally:
            self._runner.settled(self._acks.unsettled())  # the worker goes: so does its memory

    async def abandon(self) -> None:
        """Stop at once (the lease is lost): unfinished messages stay pending for the new owner."""
        self._stop.set()
        tasks = [*self._tasks, *self._lane_tasks]
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=self._settings.block_ms / 1000 + 1)
        self._acks.cancel()
        with contextlib.suppress(Exception):  # best effort: unacknowledged entries run again
            await self._acks.flush()
        self._runner.settled(self._acks.unsettled())

    # -- reading -------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        await _persist(self._reclaim, self._stop, f"reclaiming {self.key}")
        cursor = "0"  # our own pending entries first, then new ones (">")
        # An idle partition's blocking read reserves little of the budget, a busy one a batch.
        # Start small: many partitions starting at once must not park the whole budget in
        # blocking reads on streams that may well be idle.
        want = min(self._settings.batch, 8)
        failing = FailureStreak(f"reads on {self.key} (group {self.group})", log)
        while not self._stop.is_set():
            granted = await self._budget.take(want)
            try:
                entries = await self._read(cursor, granted)
            except ResponseError as e:
                self._budget.give(granted)
                if "NOGROUP" in str(e):
                    await _persist(self._recover_group, self._stop, f"recreating {self.group}")
                elif "UNBLOCKED" not in str(e):  # UNBLOCKED: the key was deleted while we waited
                    await asyncio.sleep(failing.failed(e))
                continue
            except asyncio.CancelledError:
                self._budget.give(granted)
                raise
            except Exception as e:
                self._budget.give(granted)
                await asyncio.sleep(failing.failed(e))
                continue
            failing.succeeded()
            self._budget.give(granted - len(entries))
            want = min(self._settings.batch, max(8, 2 * len(entries)))
            if cursor != ">":
                if not entries:
                    cursor = ">"
                    continue
                cursor = wire.as_text(entries[-1][0])
                try:
                    counts = await attempts_made(
                        self._client, self.key, self.group, self.consumer, entries
                    )
                except Exception:
                    counts = {}  # attempts restart from the count the handler sees: harmless
            else:
                counts = {}
            try:
                await self._dispatch(entries, counts)
            except Exception:
                # Whatever was not handed to a lane is still pending for us: read our pending
                # entries again (those in lanes are recognised and skipped).
                log.exception("dispatch failed on %s; re-reading pending entries", self.key)
                cursor = "0"
                await asyncio.sleep(0.5)

    async def _read(self, cursor: str, count: int) -> list[tuple[bytes, wire.Fields]]:
        block = self._settings.block_ms if cursor == ">" else None
        result: Any = await self._client.xreadgroup(
            self.group, self.consumer, {self.key: cursor}, count=count, block=block
        )
        if not result:
            return []
        entries: list[tuple[bytes, wire.Fields]] = result[0][1]
        if entries:
            self._last_seen = max(self._last_seen, wire.as_text(entries[-1][0]), key=id_key)
        return entries

    async def _reclaim(self) -> None:
        try:
            await reclaim(self._client, self.key, self.group, self.consumer)
        except ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            await self._recover_group()
            await reclaim(self._client, self.key, self.group, self.consumer)

    async def _recover_group(self) -> None:
        log.error(
            "NOGROUP: group %s vanished on %s; recreating it at %s (entries after it run again)",
            self.group,
            self.key,
            self._last_seen,
        )
        await self._ensure_group(self._last_seen)

    # -- dispatching -----------------------------------------------------------------------------

    async def _dispatch(
        self, entries: list[tuple[bytes, wire.Fields]], counts: dict[str, int]
    ) -> None:
        # The batch holds len(entries) of the budget; lanes give back what they were handed.
        handed = [0]
        try:
            await self._dispatch_batch(entries, counts, handed)
        finally:
            self._budget.give(len(entries) - handed[0])

    async def _dispatch_batch(
        self, entries: list[tuple[bytes, wire.Fields]], counts: dict[str, int], handed: list[int]
    ) -> None:
        fresh: list[_Item] = []
        for raw_id, fields in entries:
            entry_id = wire.as_text(raw_id)
            item = await self._prepare(entry_id, fields, counts.get(entry_id, 0))
            if item is not None:
                fresh.append(item)
        if not fresh:
            return
        # Replays run again on purpose; idempotent handlers need no marks read (nor written).
        first_time: list[_Item] = []
        checked: list[_Item] = []
        for item in fresh:
            marked = not item.delivery.replay and self._settings.marks(item.delivery.envelope.type)
            (checked if marked else first_time).append(item)
        if checked:
            keys = [self._mark(i.delivery.envelope.id) for i in checked]
            marks: list[Any] = []

            async def read_marks() -> None:
                marks[:] = await self._client.mget(keys)

            # Entries read are ours until acknowledged: insist rather than drop them.
            await _persist(read_marks, None, f"reading marks on {self.key}")
            for item, mark in zip(checked, marks, strict=True):
                if mark is None:
                    first_time.append(item)
                else:
                    await self._runner.answer_duplicate(item.delivery)
                    self._finish(item.delivery.entry_id, mark_id=None)
        for item in sorted(first_time, key=lambda i: id_key(i.delivery.entry_id)):
            message_id = item.delivery.envelope.id
            if not item.delivery.replay:
                # The same message id twice in flight (a producer retry): its mark is not
                # written yet, so only this set can tell.
                if message_id in self._active:
                    await self._runner.answer_duplicate(item.delivery, in_flight=True)
                    self._finish(item.delivery.entry_id, mark_id=None)
                    continue
                self._active.add(message_id)
            self._enqueue(item)
            handed[0] += 1

    async def _prepare(self, entry_id: str, fields: wire.Fields, attempts: int) -> _Item | None:
        if entry_id in self._held:  # re-read after a failed dispatch, but already in a lane
            return None
        if not fields:  # deleted while pending: nothing left to run
            self._finish(entry_id, mark_id=None)
            return None
        only = fields.get(wire.ONLY_GROUP)
        if only is not None and wire.as_text(only) != self.group:
            self._finish(entry_id, mark_id=None)
            return None
        try:
            decoded = self._decode(fields)
        except DecodeError as e:
            await self._runner.dead_letter_raw(self.partition, entry_id, fields, e)
            self._finish(entry_id, mark_id=None)
            return None
        if decoded is None:
            self._finish(entry_id, mark_id=None)
            return None
        envelope, message = decoded
        delivery = wire.Delivery(
            entry_id, self.partition, envelope, message, replay=wire.REPLAY in fields
        )
        return _Item(delivery, fields, attempts)

    def _enqueue(self, item: _Item) -> None:
        self._held.add(item.delivery.entry_id)
        key = item.delivery.key
        lane = self._lanes.get(key)
        if lane is not None:
            lane.append(item)
            return
        self._lanes[key] = deque((item,))
        task = asyncio.create_task(self._run_lane(key))
        self._lane_tasks.add(task)
        task.add_done_callback(self._lane_tasks.discard)

    async def _run_lane(self, key: str) -> None:
        lane = self._lanes[key]
        try:
            while lane:
                item = lane[0]
                outcome = await self._runner.run(
                    item.delivery, item.fields, attempts=item.attempts, stop=self._stop
                )
                if outcome is Outcome.RETURNED:
                    return  # stopping: this and later messages of the key stay pending, in order
                lane.popleft()
                self._budget.give(1)
                message_id = item.delivery.envelope.id
                if outcome is Outcome.HANDLED and self._settings.marks(item.delivery.envelope.type):
                    reply = self._runner.kept.get(message_id)
                    self._finish(item.delivery.entry_id, mark_id=message_id, reply=reply)
                else:  # no mark: the runner kept no reply either
                    self._active.discard(message_id)
                    self._finish(item.delivery.entry_id, mark_id=None)
        finally:
            self._budget.give(len(lane))
            for left in lane:
                self._active.discard(left.delivery.envelope.id)
                self._held.discard(left.delivery.entry_id)
            del self._lanes[key]

    def _finish(self, entry_id: str, *, mark_id: str | None, reply: bytes | None = None) -> None:
        self._held.discard(entry_id)
        self._acks.add(entry_id, mark_id=mark_id, reply=reply)

    def _settle(self, message_ids: list[str]) -> None:
        # Marked (and replies kept) in Redis now: the in-memory guards can let go.
        self._active.difference_update(message_ids)
        self._runner.settled(message_ids)

    def _mark(self, message_id: str) -> str:
        return self._acks.mark_key(message_id)


async def _persist(
    action: Callable[[], Awaitable[None]], stop: asyncio.Event | None, what: str
) -> None:
    delay = 0.05
    while stop is None or not stop.is_set():
        try:
            await action()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("%s failed (%r); retrying in %.2fs", what, e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        else:
            return
