"""Batched acknowledgement of one partition: XACK, "handled" marks and kept replies in one call.

Finished entries are queued; a background loop sends everything queued so far in one call per
flush (up to ``ack_batch`` entries each), so acknowledgements cost one round trip per batch rather
than per message. When nothing queued carries a mark, a flush waits ``linger`` seconds first,
so the acknowledgements of messages that finish within that time share one call (acknowledging
later only widens the window in which a crash redelivers a handled message, which a group without
marks tolerates by definition: its handlers are idempotent); an acknowledgement without marks or
replies is a plain ``XACK``, not a script call. Marks are never held back: they are what tells
another instance that a message was handled. The marks are set before the
acknowledgement in the same script, so an entry is never acknowledged without its mark; a handled
command's reply is stored beside its mark (same slot, same script), so a duplicate that finds the
mark finds the reply too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from shared.bus import scripts
from shared.bus.naming import kept_reply_key
from shared.redis.client import AnyRedis

log = logging.getLogger(__name__)


class AckBatcher:
    """Acknowledges entries of one partition for one group, in batches."""

    def __init__(
        self,
        client: AnyRedis,
        key: str,
        *,
        group: str,
        mark_prefix: str,
        batch: int,
        linger: float = 0.0,
        mark_ttl: float,
        reply_ttl: float,
        on_settled: Callable[[list[str]], None],
    ) -> None:
        self._key = key
        self._group = group
        self._prefix = mark_prefix
        self._batch = batch
        self._linger = linger
        self._client = client
        self._ttl_ms = int(mark_ttl * 1000)
        self._reply_ttl_ms = max(1, int(reply_ttl * 1000))
        self._on_settled = on_settled
        self._script = client.register_script(scripts.ACK_AND_MARK)
        self._acks: list[str] = []
        self._marks: list[tuple[str, bytes | None]] = []  # (message id, reply), in entry order
        self._wanted = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def mark_key(self, message_id: str) -> str:
        """The "handled by this group" mark of a message id."""
        return self._prefix + message_id

    def start(self) -> None:
        """Start the background flush loop."""
        self._task = asyncio.create_task(self._loop(), name=f"ack {self._key}")

    def add(self, entry_id: str, *, mark_id: str | None, reply: bytes | None = None) -> None:
        """Queue an entry's acknowledgement, and its message's mark (and the command's reply to
        keep for duplicates) when it was handled."""
        self._acks.append(entry_id)
        if mark_id is not None:
            self._marks.append((mark_id, reply))
        self._wanted.set()

    def unsettled(self) -> list[str]:
        """Message ids whose marks are queued and not written yet."""
        return [m for m, _ in self._marks]

    async def close(self) -> None:
        """Stop the loop and send what is still queued."""
        self._closing = True
        self._wanted.set()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=5)
        await self.flush()

    def cancel(self) -> None:
        """Stop the loop without flushing (the caller flushes if it can)."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()

    async def _loop(self) -> None:
        while not self._closing:
            await self._wanted.wait()
            if self._linger > 0 and not self._closing and not self._marks:
                await asyncio.sleep(self._linger)
            self._wanted.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("acknowledgement failed on %s; retrying", self._key)
                await asyncio.sleep(0.2)
                self._wanted.set()

    async def flush(self) -> None:
        """Send everything queued."""
        while self._acks:
            acks, marks = self._acks[: self._batch], self._marks[: self._batch]
            if not marks:
                await self._client.xack(self._key, self._group, *acks)
                del self._acks[: len(acks)]
                continue
            replies = [(m, r) for m, r in marks if r is not None]
            keys = [
                self._key,
                *(self._prefix + m for m, _ in marks),
                *(kept_reply_key(self._prefix, m) for m, _ in replies),
            ]
            args: list[str | int | bytes] = [
                self._group,
                self._ttl_ms,
                len(marks),
                self._reply_ttl_ms,
                len(replies),
                *(r for _, r in replies),
                *acks,
            ]
            await self._script(keys=keys, args=args)
            del self._acks[: len(acks)]
            del self._marks[: len(marks)]
            self._on_settled([m for m, _ in marks])
