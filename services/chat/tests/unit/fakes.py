"""In-memory implementations of the store protocols, for handler unit tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from types import SimpleNamespace

from chat.domain import messages as msg_rules
from chat.domain import reading as read_rules
from chat.domain.conversations import Conversation, Member, Role
from chat.domain.errors import NotFoundError
from chat.domain.messages import Draft, Message
from chat.store.protocols import Announce, Announcement, Summary


class Store:
    """Every fake store on one shared state, as one database would be."""

    def __init__(self) -> None:
        self.convs: dict[str, Conversation] = {}
        self.pairs: dict[str, str] = {}
        self.msgs: dict[str, list[Message]] = {}
        self.markers: dict[tuple[str, str], int] = {}
        self.blocked: set[tuple[str, str]] = set()
        self.typers: set[tuple[str, str]] = set()
        self.ttl = 6.0
        self.refuse_after = 1_000_000
        self.emitted: list[tuple[object, str | None, list[str]]] = []
        self.flashed: list[object] = []
        # What the message store published with its writes, and which emits said so.
        self.announced: list[tuple[object, Announcement]] = []
        self.emitted_announced: list[Announcement | None] = []

    # ConversationStore
    async def create(self, conv: Conversation, *, direct_pair: str | None) -> Conversation:
        if direct_pair is not None and direct_pair in self.pairs:
            return self.convs[self.pairs[direct_pair]]
        if direct_pair is not None:
            self.pairs[direct_pair] = conv.id
        self.convs[conv.id] = conv
        self.msgs[conv.id] = []
        for m in conv.members:
            self.markers[(conv.id, m.user_id)] = 0
        return conv

    async def get(self, conversation_id: str) -> Conversation | None:
        return self.convs.get(conversation_id)

    async def last_seq(self, conversation_id: str) -> int:
        return len(self.msgs.get(conversation_id, []))

    async def add_members(self, conversation_id: str, members: Sequence[Member]) -> None:
        conv = self.convs[conversation_id]
        self.convs[conversation_id] = replace(conv, members=(*conv.members, *members))
        for m in members:
            self.markers[(conversation_id, m.user_id)] = await self.last_seq(conversation_id)

    async def remove_member(
        self, conversation_id: str, user_id: str, *, new_owner: str | None = None
    ) -> None:
        conv = self.convs[conversation_id]
        kept = tuple(
            Member(m.user_id, Role.OWNER if m.user_id == new_owner else m.role)
            for m in conv.members
            if m.user_id != user_id
        )
        self.convs[conversation_id] = replace(conv, members=kept)

    async def list_for(
        self, user_id: str, *, cursor: str | None, limit: int
    ) -> tuple[list[Summary], str | None]:
        mine = [c for c in self.convs.values() if user_id in c.member_ids]
        out = []
        for c in mine[:limit]:
            msgs = self.msgs[c.id]
            out.append(
                Summary(c, len(msgs), await self.unread(c.id, user_id), msgs[-1] if msgs else None)
            )
        return out, None

    async def ids_for(self, user_id: str, *, limit: int) -> list[str]:
        return [c.id for c in self.convs.values() if user_id in c.member_ids][:limit]

    # MessageStore
    async def append(
        self, draft: Draft, *, announce: Announce | None = None
    ) -> tuple[Message, bool]:
        if draft.conversation_id not in self.msgs:
            raise NotFoundError("no conversation")
        msgs = self.msgs[draft.conversation_id]
        for m in msgs:
            if (m.sender_id, m.client_msg_id) == (draft.sender_id, draft.client_msg_id):
                self._publish(m, announce)
                return m, True
        message = Message(
            id=f"m{len(msgs) + 1}-{draft.conversation_id}",
            conversation_id=draft.conversation_id,
            seq=len(msgs) + 1,
            sender_id=draft.sender_id,
            client_msg_id=draft.client_msg_id,
            body=draft.body,
            created_at=draft.created_at,
            mentions=draft.mentions,
        )
        msgs.append(message)
        self._publish(message, announce)
        return message, False

    def _publish(self, message: Message, announce: Announce | None) -> None:
        if announce is not None:
            self.announced.append((message, announce(message)))

    async def get_message(self, conversation_id: str, seq: int) -> Message | None:
        msgs = self.msgs.get(conversation_id, [])
        return msgs[seq - 1] if 0 < seq <= len(msgs) else None

    async def save(self, message: Message, *, announce: Announce | None = None) -> bool:
        msgs = self.msgs[message.conversation_id]
        if msgs[message.seq - 1].version != message.version - 1:
            return False
        msgs[message.seq - 1] = message
        self._publish(message, announce)
        return True

    async def history(
        self, conversation_id: str, *, before: int | None, after: int | None, limit: int
    ) -> list[Message]:
        msgs = self.msgs[conversation_id]
        span = msg_rules.window(last_seq=len(msgs), before=before, after=after, limit=limit)
        return [msgs[s - 1] for s in span.seqs]

    # ReadStore
    async def marker(self, conversation_id: str, user_id: str) -> int:
        return self.markers.get((conversation_id, user_id), 0)

    async def markers_in(self, conversation_id: str) -> dict[str, int]:
        return {u: n for (c, u), n in self.markers.items() if c == conversation_id}

    async def advance(self, conversation_id: str, user_id: str, seq: int) -> int:
        key = (conversation_id, user_id)
        self.markers[key] = max(self.markers[key], min(seq, len(self.msgs[conversation_id])))
        return self.markers[key]

    async def unread(self, conversation_id: str, user_id: str) -> int:
        marker = self.markers.get((conversation_id, user_id), 0)
        return sum(
            read_rules.is_unread(
                seq=m.seq,
                sender_id=m.sender_id,
                deleted=m.deleted,
                reader_id=user_id,
                marker=marker,
            )
            for m in self.msgs.get(conversation_id, [])
        )

    async def unread_all(self, user_id: str) -> dict[str, int]:
        return {
            c: await self.unread(c, user_id)
            for c, conv in self.convs.items()
            if user_id in conv.member_ids
        }

    # BlockStore
    async def block(self, blocker_id: str, blocked_id: str) -> None:
        self.blocked.add((blocker_id, blocked_id))

    async def unblock(self, blocker_id: str, blocked_id: str) -> None:
        self.blocked.discard((blocker_id, blocked_id))

    async def blocked_between(self, a: str, b: str) -> bool:
        return (a, b) in self.blocked or (b, a) in self.blocked

    async def blockers_of(self, blocked_id: str, among: list[str]) -> list[str]:
        return [u for u in among if (u, blocked_id) in self.blocked]

    # TypingStore
    async def start(self, conversation_id: str, user_id: str) -> bool:
        fresh = (conversation_id, user_id) not in self.typers
        self.typers.add((conversation_id, user_id))
        return fresh

    async def stop(self, conversation_id: str, user_id: str) -> bool:
        was = (conversation_id, user_id) in self.typers
        self.typers.discard((conversation_id, user_id))
        return was

    async def typing(self, conversation_id: str) -> list[str]:
        return sorted(u for c, u in self.typers if c == conversation_id)

    # Throttle
    async def admit(self, subject: str) -> float | None:
        self.refuse_after -= 1
        return None if self.refuse_after >= 0 else 0.5

    # EventSink
    def announcement(self, event: object, *, envelope_id: str | None = None) -> Announcement:
        channel = f"rt:{{conv:{getattr(event, 'conversation_id', '?')}}}"
        payload = repr(event).encode()
        return Announcement("SPUBLISH", channel, payload, SimpleNamespace(id=envelope_id))

    async def emit(
        self,
        event: object,
        *,
        envelope_id: str | None = None,
        users: Iterable[str] = (),
        announced: Announcement | None = None,
    ) -> None:
        self.emitted.append((event, envelope_id, list(users)))
        self.emitted_announced.append(announced)

    async def flash(self, message: object) -> None:
        self.flashed.append(message)


class MessagesView:
    """The message-store face of :class:`Store` (its ``get`` is the conversation's)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.append = store.append
        self.save = store.save
        self.history = store.history

    async def get(self, conversation_id: str, seq: int) -> Message | None:
        return await self._store.get_message(conversation_id, seq)
