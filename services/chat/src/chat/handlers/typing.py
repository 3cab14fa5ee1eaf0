"""Typing: members' frames become start/stop on the conversation channel, never a stream.

A frame refreshes the member's typing entry (it expires ``ttl`` seconds after the last one);
"start" is published when it was not typing, "stop" when it stops explicitly or, from a timer of
this instance, when the entry has expired on its own.
"""

from __future__ import annotations

import asyncio
import contextlib

from chat.domain.errors import RateLimitedError
from chat.handlers.conversations import member_view, refuse_direct_block
from chat.store.protocols import BlockStore, ConversationStore, EventSink, Throttle, TypingStore
from contracts import chat as wire


class Typing:
    """Typing use cases."""

    def __init__(
        self,
        *,
        conversations: ConversationStore,
        typing: TypingStore,
        throttle: Throttle,
        blocks: BlockStore,
        events: EventSink,
    ) -> None:
        self._blocks = blocks
        self._conversations = conversations
        self._typing = typing
        self._throttle = throttle
        self._events = events
        self._timers: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def set_typing(self, cmd: wire.SetTyping) -> None:
        """Record a frame of a member (rate-limited per user) and publish a change."""
        conv, _ = await member_view(self._conversations, cmd.conversation_id, cmd.user_id)
        if cmd.typing:  # a blocked user's typing does not reach the blocker either
            await refuse_direct_block(self._blocks, conv, cmd.user_id)
        wait = await self._throttle.admit(cmd.user_id)
        if wait is not None:
            raise RateLimitedError("too many typing frames", retry_after=wait)
        if cmd.typing:
            changed = await self._typing.start(cmd.conversation_id, cmd.user_id)
            self._watch(cmd.conversation_id, cmd.user_id)
        else:
            self._unwatch(cmd.conversation_id, cmd.user_id)
            changed = await self._typing.stop(cmd.conversation_id, cmd.user_id)
        if changed:
            await self._publish(cmd.conversation_id, cmd.user_id, typing=cmd.typing)

    async def who(self, cmd: wire.GetTyping) -> wire.TypingList:
        """The members typing now (members only)."""
        await member_view(self._conversations, cmd.conversation_id, cmd.user_id)
        users = await self._typing.typing(cmd.conversation_id)
        return wire.TypingList(conversation_id=cmd.conversation_id, user_ids=users)

    async def aclose(self) -> None:
        """Cancel the expiry timers (shutdown)."""
        timers = list(self._timers.values())
        for task in timers:
            task.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        self._timers.clear()

    def _watch(self, conversation_id: str, user_id: str) -> None:
        self._unwatch(conversation_id, user_id)
        task = asyncio.create_task(self._expire(conversation_id, user_id))
        self._timers[(conversation_id, user_id)] = task

    def _unwatch(self, conversation_id: str, user_id: str) -> None:
        previous = self._timers.pop((conversation_id, user_id), None)
        if previous is not None:
            previous.cancel()

    async def _expire(self, conversation_id: str, user_id: str) -> None:
        key = (conversation_id, user_id)
        try:
            await asyncio.sleep(self._typing.ttl + 0.05)
            if user_id not in await self._typing.typing(conversation_id):
                await self._publish(conversation_id, user_id, typing=False)
        except asyncio.CancelledError:
            raise
        except Exception:  # a lost "stop" is harmless: clients also expire typing themselves
            return
        finally:
            if self._timers.get(key) is asyncio.current_task():
                del self._timers[key]

    async def _publish(self, conversation_id: str, user_id: str, *, typing: bool) -> None:
        with contextlib.suppress(Exception):  # real-time only: may be dropped
            await self._events.flash(
                wire.TypingChanged(conversation_id=conversation_id, user_id=user_id, typing=typing)
            )
