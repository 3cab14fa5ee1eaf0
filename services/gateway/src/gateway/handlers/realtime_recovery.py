"""Fetching what a connection missed from the chat history (the durable record), bounded.

:func:`fetch_missed` asks chat for the conversation's latest seq (the head), then, when the gap
is within the bound (:func:`gateway.domain.recovery.plan_recovery`), for the messages after
``after`` up to the head, page by page. Membership is checked by chat on every call: a
non-member gets ``forbidden``/``not_found`` as a :class:`~gateway.handlers.backend.BackendError`.

A ``resume`` of a conversation the connection does not hold yet subscribes *before* the history
is read (so a member misses nothing published meanwhile) but holds every frame of the channel
back until chat has answered: a member's are then delivered in order with the history, a
non-member's are dropped with the channel. When chat cannot answer (timeout, unavailable) the
membership is unknown, so the conversation is not subscribed either: no frame of a conversation
reaches a connection before chat has said the user is a member.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from contracts.base import Command
from contracts.chat import ChatMessage, GetHistory, History
from gateway.domain.errors import FORBIDDEN, NOT_FOUND, UNAVAILABLE
from gateway.domain.frames import error_frame
from gateway.domain.recovery import Cursor, plan_recovery
from gateway.handlers.backend import BackendError, RequestContext
from gateway.handlers.realtime_frames import encode, posted
from gateway.handlers.realtime_options import RealtimeOptions
from shared.pubsub import PubSubError

log = logging.getLogger(__name__)


class CommandCaller(Protocol):
    """What sends commands: :class:`gateway.handlers.backend.Backend` (a fake in unit tests)."""

    async def call(
        self,
        command: Command,
        ctx: RequestContext | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the command's deadline
    ) -> Any:
        """The command's result, or BackendError."""


@dataclass(frozen=True, slots=True)
class Missed:
    """The outcome of one fetch: ``items`` ascending; ``recovered`` false past the bound."""

    items: list[ChatMessage]
    recovered: bool
    head: int


async def fetch_missed(
    backend: CommandCaller,
    ctx: RequestContext,
    *,
    user_id: str,
    conversation_id: str,
    after: int,
    bound: int,
) -> Missed:
    """The messages of ``conversation_id`` with seq > ``after``, if at most ``bound`` of them."""
    latest: History = await backend.call(
        GetHistory(user_id=user_id, conversation_id=conversation_id, limit=1), ctx
    )
    head = latest.items[-1].seq if latest.items else 0
    plan = plan_recovery(after, head, bound=bound)
    if not plan.recovered:
        return Missed([], False, head)
    items: list[ChatMessage] = []
    for start, limit in plan.pages():
        page: History = await backend.call(
            GetHistory(user_id=user_id, conversation_id=conversation_id, after=start, limit=limit),
            ctx,
        )
        if not page.recovered:
            return Missed([], False, head)
        items.extend(page.items)
        if len(page.items) < limit:
            break  # the head moved back (cannot) or the page is short: nothing more to ask
    return Missed(items, True, head)


class RecoveryHost(Protocol):
    """The connection side of a recovery (:class:`gateway.handlers.realtime.Connection`)."""

    user_id: str
    options: RealtimeOptions

    @property
    def backend(self) -> CommandCaller:
        """Where commands go."""

    def context(self) -> RequestContext:
        """A request context for one command."""

    def cursor(self, conversation_id: str) -> Cursor[str]:
        """The conversation's delivery state."""

    def forget(self, conversation_id: str) -> None:
        """Drop the conversation's delivery state."""

    def holds(self, conversation_id: str) -> bool:
        """Whether the conversation is held with the user's membership confirmed."""

    def confirm(self, conversation_id: str) -> bool:
        """Membership confirmed: deliver what was held back; false if no longer held."""

    def push_text(self, text: str) -> None:
        """Queue an encoded essential frame."""

    def send(self, frame: dict[str, Any]) -> None:
        """Queue an essential frame."""

    async def join(self, conversation_id: str, *, confirmed: bool = True) -> None:
        """Hold the conversation's channel (its frames held back unless ``confirmed``)."""

    async def leave(self, conversation_id: str) -> None:
        """Release the conversation's channel."""


async def resume(host: RecoveryHost, conversation_id: str, last_seen: int) -> None:
    """A client's ``resume`` of one conversation: hold its channel, then catch up.

    The channel is held before the history is read, so nothing published meanwhile is missed
    (live messages are held back by the cursor until the catch-up is delivered); a channel not
    held yet delivers nothing until chat confirms the membership (see the module docstring).
    """
    confirmed = host.holds(conversation_id)
    cursor = host.cursor(conversation_id)
    cursor.begin(last_seen)
    try:
        await host.join(conversation_id, confirmed=confirmed)
    except PubSubError:
        log.warning("resume of %s: channel not subscribed yet", conversation_id)
    await recover(host, conversation_id, reason="resume")


async def recover(host: RecoveryHost, conversation_id: str, *, reason: str) -> None:
    """Deliver the missed messages of a recovering cursor, then a ``resumed`` frame."""
    cursor = host.cursor(conversation_id)
    cursor.recovering = True
    recovered, count = True, 0
    for _ in range(host.options.recovery_rounds):
        try:
            missed = await fetch_missed(
                host.backend,
                host.context(),
                user_id=host.user_id,
                conversation_id=conversation_id,
                after=cursor.last or 0,
                bound=host.options.recovery_bound,
            )
        except BackendError as e:
            await _failed(host, conversation_id, e)
            return
        except Exception as e:  # whatever broke, held messages must not stay held
            log.warning("recovery of %s failed: %r", conversation_id, e)
            await _failed(host, conversation_id, BackendError(UNAVAILABLE, "history unavailable"))
            return
        if not host.confirm(conversation_id):
            host.forget(conversation_id)  # left meanwhile (another resume failed, or removed)
            return
        history = [(m.seq, encode(posted(m))) for m in missed.items]
        for text in cursor.finish(history, head=None if missed.recovered else missed.head):
            host.push_text(text)
        count += len(missed.items)
        recovered = recovered and missed.recovered
        if not cursor.gap_remains():
            break
    else:
        recovered = False  # a hole the history could not fill: the client should reload
        for text in cursor.abandon():
            host.push_text(text)
    host.send(
        {
            "type": "resumed",
            "conversation_id": conversation_id,
            "recovered": recovered,
            "count": count,
            "last_seq": cursor.last,
            "reason": reason,
        }
    )


async def _failed(host: RecoveryHost, conversation_id: str, error: BackendError) -> None:
    frame = error_frame(error.code, error.message)
    frame["conversation_id"] = conversation_id
    member = error.code not in (NOT_FOUND, FORBIDDEN)
    if not member or not host.holds(conversation_id):
        # Not a member (any more), or not known to be one: stop delivering this conversation
        # to this user, and drop whatever was held back for it.
        if member:
            frame["message"] = (
                f"membership could not be checked ({error.message}); the conversation is not "
                "subscribed: resume it again later"
            )
        host.forget(conversation_id)
        await host.leave(conversation_id)
        host.send(frame)
        return
    cursor = host.cursor(conversation_id)
    for text in cursor.abandon():
        host.push_text(text)
    host.send(frame)
    host.send(
        {
            "type": "resumed",
            "conversation_id": conversation_id,
            "recovered": False,
            "count": 0,
            "last_seq": cursor.last,
            "reason": "unavailable",
        }
    )
