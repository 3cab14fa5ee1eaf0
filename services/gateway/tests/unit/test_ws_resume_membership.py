"""A ``resume`` of a conversation the connection does not hold: nothing before chat says yes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts import chat
from contracts.base import Command, Envelope, new_message_id
from gateway.domain.errors import EXPIRED, NOT_FOUND, UNAVAILABLE
from gateway.handlers.backend import BackendError, RequestContext
from gateway.handlers.realtime import Connection

from .test_ws_connection import FakeBackend, connection, deliver, posted, queued, settle, typing

pytestmark = pytest.mark.unit

CHANNEL = "rt:{conv:c1}"


class SlowChat(FakeBackend):
    """Answers history only once ``answer`` is set: with ``stored`` messages, or ``failure``."""

    def __init__(self, stored: int = 0, failure: str | None = None) -> None:
        super().__init__()
        self.answer = asyncio.Event()
        self.stored = [posted(seq).message for seq in range(1, stored + 1)]
        self.failure = failure

    async def call(
        self,
        command: Command,
        ctx: RequestContext | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Any:
        if not isinstance(command, chat.GetHistory):
            return await super().call(command, ctx)
        await self.answer.wait()
        if self.failure is not None:
            raise BackendError(self.failure, "chat says no")
        if command.after is None:
            return chat.History(items=self.stored[-command.limit :])
        later = [m for m in self.stored if m.seq > command.after]
        return chat.History(items=later[: command.limit])


def with_chat(chat_: SlowChat) -> tuple[Connection, Any]:
    conn, hub, _ = connection()
    conn._backend = chat_
    return conn, hub


async def subscribed(conn: Connection, hub: Any) -> None:
    for _ in range(100):
        if CHANNEL in hub.held:
            return
        await asyncio.sleep(0)
    raise AssertionError("the channel was never subscribed")


def edited(seq: int) -> chat.MessageEdited:
    return chat.MessageEdited(conversation_id="c1", message=posted(seq).message)


@pytest.mark.parametrize("failure", [NOT_FOUND, UNAVAILABLE, EXPIRED])
async def test_frames_published_while_chat_is_asked_never_reach_a_user_it_does_not_confirm(
    failure: str,
) -> None:
    slow = SlowChat(failure=failure)
    conn, hub = with_chat(slow)
    conn.receive('{"type": "resume", "conversations": {"c1": 0}}')
    await subscribed(conn, hub)
    for message in (posted(1), typing(), edited(1), posted(2)):
        deliver(conn, message)
    slow.answer.set()
    await settle(conn)
    frames = await queued(conn)
    assert [(f["type"], f["code"], f["conversation_id"]) for f in frames] == [
        ("error", failure, "c1")
    ]
    assert CHANNEL not in hub.held
    assert not conn.holds("c1") and conn.conversations == {}
    assert conn._unconfirmed == {} and conn._cursors == {}


async def test_a_member_resuming_gets_the_history_then_what_was_held_back_in_order() -> None:
    slow = SlowChat(stored=5)
    conn, hub = with_chat(slow)
    conn.receive('{"type": "resume", "conversations": {"c1": 2}}')
    await subscribed(conn, hub)
    assert not conn.holds("c1")
    for message in (posted(4), typing(), posted(5), posted(6)):  # 6 after chat's head
        deliver(conn, message)
    slow.answer.set()
    await settle(conn)
    frames = await queued(conn)
    posts = [f["message"]["seq"] for f in frames if f["type"] == "message.posted"]
    assert posts == [3, 4, 5, 6]
    assert [f["type"] for f in frames if f["type"] not in ("message.posted",)] == [
        "typing",
        "resumed",
    ]
    assert frames[-1]["recovered"] is True and frames[-1]["last_seq"] == 6
    assert conn.holds("c1") and CHANNEL in hub.held
    deliver(conn, posted(7))
    assert [f["message"]["seq"] for f in await queued(conn)] == [7]


async def test_being_added_meanwhile_confirms_a_resume_waiting_for_chat() -> None:
    slow = SlowChat(stored=1)
    conn, hub = with_chat(slow)
    conn.receive('{"type": "resume", "conversations": {"c1": 0}}')
    await subscribed(conn, hub)
    deliver(conn, typing())
    added = chat.MemberAdded(conversation_id="c1", user_id="me")
    env = Envelope(
        id=new_message_id(),
        type=added.TYPE,
        version=1,
        occurred_at=datetime.now(UTC),
        producer="chat",
    )
    conn.on_frame("rt:{user:me}", env, added)  # the personal channel is not held back
    assert conn.holds("c1")
    assert [f["type"] for f in await queued(conn)] == ["typing", "member.added"]
    slow.answer.set()
    await settle(conn)
