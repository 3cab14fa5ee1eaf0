"""The message and reading handlers on in-memory fakes of the store protocols."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Literal, TypeVar

import pytest

from contracts import chat, codec
from contracts.base import Envelope, Event, Message
from contracts.notification import ListNotifications, NotificationCreated, NotificationsRead
from notification.domain.deciding import Verdict
from notification.domain.delivery import ChannelName, DeliveryJob
from notification.domain.notifications import Notification
from notification.domain.preferences import (
    Audience,
    ConversationSettings,
    UserSettings,
)
from notification.handlers.delivering import Dispatcher
from notification.handlers.messages import MessageHandlers
from notification.handlers.reading import ReadingHandlers
from notification.store.protocols import (
    AudienceLoader,
    BadgeChange,
    BadgeLoader,
    DeliveryStatus,
    MembersLoader,
)
from notification.store.redis_delivery import DeliveryRequested
from shared.bus import wire
from shared.outbox import Staged

pytestmark = pytest.mark.unit

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


class FakeUnit:
    """The Unit protocol over dicts (no transactions: enough for single-task tests)."""

    def __init__(self, db: FakeStore) -> None:
        self.db = db
        self.wrote = False

    async def claim(self, message_id: str) -> bool:
        if message_id in self.db.processed:
            return False
        self.db.processed.add(message_id)
        return True

    async def members(self, conversation_id: str) -> list[str]:
        return sorted(self.db.members.get(conversation_id, set()))

    async def add_members(self, conversation_id: str, user_ids: Iterable[str]) -> None:
        self.db.members.setdefault(conversation_id, set()).update(user_ids)

    async def remove_member(self, conversation_id: str, user_id: str) -> None:
        self.db.members.get(conversation_id, set()).discard(user_id)

    async def set_block(self, user_id: str, blocked_id: str, *, blocked: bool) -> None:
        audience = self.db.audiences.get(user_id, Audience())
        ids = audience.blocked | {blocked_id} if blocked else audience.blocked - {blocked_id}
        self.db.audiences[user_id] = replace(audience, blocked=ids)

    async def audience(self, user_id: str) -> Audience:
        return self.db.audiences.get(user_id, Audience())

    async def audiences(self, user_ids: Sequence[str]) -> dict[str, Audience]:
        return {u: await self.audience(u) for u in user_ids}

    async def save_settings(self, user_id: str, settings: UserSettings) -> None:
        self.db.audiences[user_id] = replace(await self.audience(user_id), settings=settings)

    async def save_conversation_settings(
        self, user_id: str, conversation_id: str, settings: ConversationSettings
    ) -> None:
        audience = await self.audience(user_id)
        overrides = {**audience.conversations, conversation_id: settings}
        self.db.audiences[user_id] = replace(audience, conversations=overrides)

    async def open_notifications(
        self, user_ids: Sequence[str], conversation_id: str, since: datetime
    ) -> dict[str, Notification]:
        found = sorted(
            (
                n
                for n in self.db.notifications.values()
                if n.user_id in user_ids
                and not n.read
                and n.kind == "message"
                and n.conversation_id == conversation_id
                and n.created_at > since
            ),
            key=lambda n: n.created_at,
        )
        return {n.user_id: n for n in found}

    async def save_notifications(
        self, created: Sequence[Notification], grown: Sequence[Notification]
    ) -> None:
        for n in [*created, *grown]:
            self.db.notifications[n.id] = n

    async def queue_deliveries(self, jobs: Sequence[DeliveryJob], *, at: datetime) -> None:
        for j in jobs:
            self.db.deliveries[(j.notification.id, j.channel)] = "queued"

    async def mark_read(
        self,
        user_id: str,
        *,
        ids: Sequence[str] = (),
        conversation_id: str | None = None,
        up_to_seq: int | None = None,
        everything: bool = False,
    ) -> list[str]:
        changed = []
        for n in list(self.db.notifications.values()):
            if n.user_id != user_id or n.read:
                continue
            hit = (
                everything
                or n.id in ids
                or (
                    not ids
                    and conversation_id is not None
                    and n.conversation_id == conversation_id
                    and (up_to_seq is None or (n.seq or 0) <= up_to_seq)
                )
            )
            if hit:
                self.db.notifications[n.id] = replace(n, read=True)
                changed.append(n.id)
        return changed

    async def unread_count(self, user_id: str) -> int:
        return sum(1 for n in self.db.notifications.values() if n.user_id == user_id and not n.read)

    async def unread_counts(self, user_ids: Sequence[str]) -> dict[str, int]:
        self.db.count_queries += 1
        return {u: await self.unread_count(u) for u in user_ids}

    async def write_outbox(self, staged: Sequence[Staged]) -> None:
        if self.db.failing == "write":
            raise ConnectionError("the database went away")
        self.db.outbox.extend(staged)
        self.wrote = True

    async def page(
        self, user_id: str, *, before: tuple[datetime, str] | None, limit: int
    ) -> list[Notification]:
        mine = sorted(
            (n for n in self.db.notifications.values() if n.user_id == user_id),
            key=lambda n: (n.updated_at, n.id),
            reverse=True,
        )
        if before is not None:
            mine = [n for n in mine if (n.updated_at, n.id) < before]
        return mine[:limit]

    async def record_outcome(
        self,
        notification_id: str,
        channel: ChannelName,
        *,
        status: DeliveryStatus,
        attempts: int,
        error: str | None,
        at: datetime,
    ) -> None:
        self.db.deliveries[(notification_id, channel)] = status


class FakeStore:
    def __init__(self) -> None:
        self.processed: set[str] = set()
        self.members: dict[str, set[str]] = {}
        self.audiences: dict[str, Audience] = {}
        self.notifications: dict[str, Notification] = {}
        self.deliveries: dict[tuple[str, str], str] = {}
        self.outbox: list[Staged] = []
        self.count_queries = 0
        self.failing: Literal["write", "commit"] | None = None

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[FakeUnit]:
        unit = FakeUnit(self)
        yield unit
        if self.failing == "commit" and unit.wrote:  # read-only units have nothing to commit
            raise ConnectionError("the commit failed")


class NoCache:
    async def get_many(self, user_ids: Sequence[str], load: AudienceLoader) -> dict[str, Audience]:
        return await load(user_ids)

    async def invalidate(self, user_id: str) -> None:
        return None


class NoMembersCache:
    async def get(self, conversation_id: str, load: MembersLoader) -> list[str]:
        return await load()

    async def invalidate(self, conversation_id: str) -> None:
        return None


class FakeRealtime:
    def __init__(self) -> None:
        self.viewing: dict[str, str] = {}
        self.present: set[str] = set()

    async def set_presence(self, user_id: str, *, online: bool) -> None:
        if online:
            self.present.add(user_id)
        else:
            self.present.discard(user_id)
            self.viewing.pop(user_id, None)

    async def online(self, user_ids: Sequence[str]) -> frozenset[str]:
        return frozenset(u for u in user_ids if u in self.present)

    async def set_viewing(self, user_id: str, conversation_id: str | None) -> None:
        if conversation_id is None:
            self.viewing.pop(user_id, None)
        else:
            self.viewing[user_id] = conversation_id

    async def viewers(self, conversation_id: str) -> frozenset[str]:
        return frozenset(u for u, c in self.viewing.items() if c == conversation_id)


class FakeBadges:
    """Counters with the versions of :class:`Badges`: every change bumps a user's version."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.versions: dict[str, int] = {}

    async def add(self, deltas: dict[str, int]) -> BadgeChange:
        change = BadgeChange()
        for user_id, delta in deltas.items():
            if delta:
                self.versions[user_id] = self.versions.get(user_id, 0) + 1
            if user_id in self.counts:
                self.counts[user_id] = max(0, self.counts[user_id] + delta)
                change.counts[user_id] = self.counts[user_id]
            else:
                change.versions[user_id] = self.versions.get(user_id, 0)
        return change

    async def get(self, user_id: str, load: BadgeLoader) -> int:
        if user_id not in self.counts:
            self.counts[user_id] = await load()
        return self.counts[user_id]

    async def reconcile(self, user_id: str, count: int) -> None:
        self.counts[user_id] = count

    async def seed(self, counts: dict[str, int], versions: dict[str, int]) -> None:
        for user_id, n in counts.items():
            if versions.get(user_id) == self.versions.get(user_id, 0):
                self.counts[user_id] = n
            else:
                self.counts.pop(user_id, None)
            self.versions[user_id] = self.versions.get(user_id, 0) + 1


M = TypeVar("M", bound=Message)


def payloads(staged: Sequence[Staged], cls: type[M]) -> list[M]:
    """The payloads of the staged entries of type ``cls``, in order."""
    return [
        codec.decode(cls, s.fields[wire.PAYLOAD])
        for s in staged
        if wire.decode_envelope(s.fields).type == cls.TYPE
    ]


class FakeOutbox:
    """Stages entries as shared.outbox does; records the ones sent after a commit."""

    def __init__(self) -> None:
        self.sent: list[Staged] = []
        self.broken = False

    def stage(self, event: Event) -> Staged:
        envelope = Envelope.for_message(event, producer="notification")
        key = event.partition_value() or envelope.id
        return Staged(envelope, key, wire.entry_fields(envelope, event), NOW)

    async def send(self, staged: Sequence[Staged]) -> bool:
        if self.broken:
            return False
        self.sent.extend(staged)
        return True

    def jobs(self) -> list[tuple[str, str]]:
        """(user id, channel) of the delivery jobs sent."""
        return [(r.user_id, r.channel) for r in payloads(self.sent, DeliveryRequested)]


class FakeInApp:
    def __init__(self) -> None:
        self.pushed: list[tuple[str, Staged]] = []
        self.broken = False

    async def push(self, events: Sequence[tuple[str, Staged]]) -> None:
        if self.broken:
            raise ConnectionError("redis is down")
        self.pushed.extend(events)

    def created(self) -> list[NotificationCreated]:
        return payloads([s for _, s in self.pushed], NotificationCreated)


class World:
    def __init__(self) -> None:
        self.store = FakeStore()
        self.realtime = FakeRealtime()
        self.badges = FakeBadges()
        self.outbox = FakeOutbox()
        self.in_app = FakeInApp()
        dispatcher = Dispatcher(outbox=self.outbox, badges=self.badges, in_app=self.in_app)
        ids = count(1)
        self.messages = MessageHandlers(
            store=self.store,
            audiences=NoCache(),
            members=NoMembersCache(),
            realtime=self.realtime,
            dispatcher=dispatcher,
            coalesce_window=timedelta(seconds=60),
            clock=lambda: NOW,
            new_id=lambda: f"n{next(ids)}",
        )
        self.reading = ReadingHandlers(store=self.store, badges=self.badges, dispatcher=dispatcher)
        self.seq = 0

    def post(self, sender: str, *, mentions: list[str] | None = None) -> chat.MessagePosted:
        self.seq += 1
        return chat.MessagePosted(
            conversation_id="c1",
            message=chat.ChatMessage(
                id=f"m{self.seq}",
                conversation_id="c1",
                seq=self.seq,
                sender_id=sender,
                body=f"body {self.seq}",
                client_msg_id=f"k{self.seq}",
                created_at=NOW + timedelta(seconds=self.seq),
                mentions=mentions or [],
            ),
        )


@pytest.fixture
def world() -> World:
    w = World()
    w.store.members["c1"] = {"alice", "bob", "carol"}
    return w


async def test_a_posted_message_announces_in_app_and_queues_log_for_offline_members(
    world: World,
) -> None:
    outcome = await world.messages.on_message_posted(world.post("alice"), "e1")
    assert sorted(n.user_id for n in outcome.created) == ["bob", "carol"]
    assert sorted(e.user_id for e in world.in_app.created()) == ["bob", "carol"]
    assert sorted(world.outbox.jobs()) == [("bob", "log"), ("carol", "log")]
    # Only queued (outbound) jobs get a delivery row; the in-app announcement is not queued.
    ids = {n.user_id: n.id for n in outcome.created}
    assert sorted(world.store.deliveries) == sorted((ids[u], "log") for u, _ in world.outbox.jobs())


async def test_the_events_and_jobs_are_written_with_the_notifications_and_framed_alike(
    world: World,
) -> None:
    await world.messages.on_message_posted(world.post("alice"), "e1")
    # Two events and two jobs: written in the transaction, then sent; the frames are the events.
    assert [s.message_id for s in world.store.outbox] == [s.message_id for s in world.outbox.sent]
    assert len(world.store.outbox) == 4
    events = {s.message_id for s in world.outbox.sent if payloads([s], NotificationCreated)}
    assert {s.message_id for _, s in world.in_app.pushed} == events


async def test_an_online_member_gets_the_in_app_frame_and_nothing_outbound(world: World) -> None:
    await world.realtime.set_presence("bob", online=True)
    await world.messages.on_message_posted(world.post("alice"), "e1")
    assert sorted(e.user_id for e in world.in_app.created()) == ["bob", "carol"]
    assert world.outbox.jobs() == [("carol", "log")]


async def test_a_failed_in_app_frame_keeps_the_notification_the_event_and_the_job(
    world: World,
) -> None:
    world.in_app.broken = True
    outcome = await world.messages.on_message_posted(world.post("alice"), "e1")
    assert sorted(n.user_id for n in outcome.created) == ["bob", "carol"]
    assert len(world.outbox.jobs()) == 2
    assert len(payloads(world.outbox.sent, NotificationCreated)) == 2
    assert await world.reading.unread_count("bob") == 1


async def test_a_failed_append_does_not_fail_the_handler_and_leaves_the_rows(
    world: World,
) -> None:
    world.outbox.broken = True
    outcome = await world.messages.on_message_posted(world.post("alice"), "e1")
    assert len(outcome.created) == 2
    assert len(world.store.outbox) == 4  # written: the relay appends them
    assert len(world.in_app.pushed) == 2  # the frames still go out


async def test_the_same_event_twice_changes_nothing_the_second_time(world: World) -> None:
    event = world.post("alice")
    await world.messages.on_message_posted(event, "e1")
    again = await world.messages.on_message_posted(event, "e1")
    assert again.created == [] and again.grown == []
    assert len(world.store.notifications) == 2
    assert len(world.store.outbox) == 4  # nothing staged for the redelivery
    assert len(world.outbox.jobs()) == 2 and len(world.in_app.pushed) == 2


async def test_a_viewing_member_gets_nothing(world: World) -> None:
    await world.realtime.set_viewing("bob", "c1")
    outcome = await world.messages.on_message_posted(world.post("alice"), "e1")
    assert [n.user_id for n in outcome.created] == ["carol"]


async def test_a_message_everyone_is_viewing_opens_no_transaction(world: World) -> None:
    await world.realtime.set_viewing("bob", "c1")
    await world.realtime.set_viewing("carol", "c1")
    outcome = await world.messages.on_message_posted(world.post("alice"), "e1")
    assert outcome.created == [] and outcome.grown == []
    assert {d.verdict for d in outcome.decisions} == {Verdict.SKIP_SENDER, Verdict.SKIP_VIEWING}
    assert "e1" not in world.store.processed  # nothing claimed: there was nothing to write
    assert world.in_app.pushed == [] and world.store.outbox == []


async def test_a_burst_grows_one_notification_and_the_badge_counts_it_once(world: World) -> None:
    assert await world.reading.unread_count("bob") == 0
    for i in range(5):
        await world.messages.on_message_posted(world.post("alice"), f"e{i}")
    mine = [n for n in world.store.notifications.values() if n.user_id == "bob"]
    assert [(n.count, n.preview) for n in mine] == [(5, "5 new messages")]
    assert await world.reading.unread_count("bob") == 1
    # Every announcement carried the badge count: bob's from his counter; carol's counter was
    # missing, so the first transaction counted it in the database and created it afterwards.
    created = world.in_app.created()
    assert [e.unread_count for e in created if e.user_id == "bob"] == [1] * 5
    assert [e.unread_count for e in created if e.user_id == "carol"] == [1] * 5
    assert world.store.count_queries == 1 and world.badges.counts["carol"] == 1


@pytest.mark.parametrize("failing", ["write", "commit"])
async def test_a_transaction_that_fails_takes_its_badge_deltas_back(
    world: World, failing: Literal["write", "commit"]
) -> None:
    await world.messages.on_message_posted(world.post("alice"), "e0")
    assert await world.reading.unread_count("bob") == 1  # bob's counter exists
    world.store.notifications.clear()  # the next message opens a new notification: +1
    pushed = len(world.in_app.pushed)
    world.store.failing = failing
    with pytest.raises(ConnectionError):
        await world.messages.on_message_posted(world.post("alice"), "e1")
    assert world.badges.counts["bob"] == 1  # +1 before the failure, -1 after it
    assert len(world.in_app.pushed) == pushed  # nothing announced


async def test_reading_in_chat_marks_read_up_to_the_seq_and_announces_it(world: World) -> None:
    await world.messages.on_message_posted(world.post("alice", mentions=["bob"]), "e1")
    await world.messages.on_message_posted(world.post("alice", mentions=["bob"]), "e2")
    assert await world.reading.unread_count("bob") == 2
    await world.reading.on_read_updated(
        chat.ReadUpdated(conversation_id="c1", user_id="bob", seq=1), "r1"
    )
    assert await world.reading.unread_count("bob") == 1
    read = payloads(world.outbox.sent, NotificationsRead)
    assert [(e.user_id, e.ids, e.unread_count) for e in read] == [("bob", ["n1"], 1)]
    assert payloads([s for _, s in world.in_app.pushed], NotificationsRead) == read
    page = await world.reading.list_notifications(ListNotifications(user_id="bob"))
    assert [(n.seq, n.read) for n in page.items] == [(2, False), (1, True)]
