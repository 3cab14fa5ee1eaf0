"""One WebSocket connection's real-time session: channels in, client frames out, client frames in.

The API layer (``gateway.api.ws``) authenticates, then runs a :class:`Connection`: a writer loop
takes :meth:`Connection.next_outgoing` and sends it (or closes with the code it names), a reader
loop feeds text frames to :meth:`Connection.receive`. Everything else lives here:

* channel frames (through :class:`~gateway.handlers.subscriptions.ChannelHub`) become client
  frames, queued in a bounded :class:`~gateway.domain.sendqueue.SendQueue` (typing/presence are
  dropped first; overflow of essential frames closes the connection as too slow);
* ``message.posted`` is delivered in ``seq`` order per conversation; a gap, a resubscription or a
  client's ``resume`` is filled from the chat history (:mod:`gateway.handlers.realtime_recovery`);
* membership changes of the user (re)subscribe or unsubscribe the conversation's channel;
* client ``typing`` (debounced) and ``read`` frames become chat commands; ``view`` tells
  notification which conversation is on the user's screen (kept fresh by the heartbeats).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from contracts import chat, registry
from contracts import notification as notify
from contracts.base import Envelope, Message
from gateway.domain import close_codes, errors
from gateway.domain.frame_budget import Admission, FrameBudget
from gateway.domain.frames import (
    ClientFrame,
    FrameError,
    PingFrame,
    ReadFrame,
    ResumeFrame,
    TypingFrame,
    ViewFrame,
    error_frame,
    parse_client_frame,
)
from gateway.domain.recovery import Cursor, Verdict
from gateway.domain.sendqueue import Offer, Outgoing, SendQueue
from gateway.handlers.backend import BackendError, RequestContext
from gateway.handlers.realtime_frames import ServerFrame, shared_frame
from gateway.handlers.realtime_limits import REFUSED
from gateway.handlers.realtime_metrics import count_dropped
from gateway.handlers.realtime_options import RealtimeOptions
from gateway.handlers.realtime_recovery import CommandCaller, recover, resume
from gateway.handlers.subscriptions import ChannelHub
from shared import tracing
from shared.tracing import state as tracing_state

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Who is connected: from the verified access token, plus the client's device."""

    user_id: str
    session_id: str
    device_id: str
    connection_id: str
    expires_at: float
    """Unix time the access token expires: the connection is closed then (refresh)."""


@dataclass(frozen=True, slots=True)
class Close:
    """The writer must close the socket with ``code``."""

    code: int
    reason: str


class Connection:
    """The session of one authenticated WebSocket (see the module docstring)."""

    def __init__(
        self,
        identity: Identity,
        *,
        hub: ChannelHub,
        backend: CommandCaller,
        options: RealtimeOptions,
    ) -> None:
        self.identity = identity
        self.user_id = identity.user_id
        self.options = options
        self._hub = hub
        self._backend = backend
        self._queue = SendQueue(
            options.send_queue, droppable_limit=options.droppable_limit, on_drop=count_dropped
        )
        # Per-socket state is kept small (10,000 sockets per process): the writer's wake-up is
        # a future made only while it waits, the dedupe window is made with the first frame.
        self._wake: asyncio.Future[None] | None = None
        self._close: Close | None = None
        self._gone = False
        self._conv_family = registry.channel("rt.conv")
        self.user_channel = registry.channel("rt.user").key(identity.user_id)
        self.conversations: dict[str, str] = {}
        """Conversation id -> its channel, for the channels this connection holds."""
        self._unconfirmed: dict[str, list[tuple[Envelope, Message]]] = {}
        """Channel -> its frames held back, for conversations held while the user's membership
        is being checked (a ``resume``): released once confirmed, dropped otherwise."""
        self._cursors: dict[str, Cursor[str]] = {}
        self._recoveries: dict[str, asyncio.Task[None]] = {}
        # Made with their first use: most sockets never send a command or resume.
        self._tasks: set[asyncio.Task[Any]] | None = None
        self._seen: deque[str] | None = None
        self._seen_set: set[str] | None = None
        self._typing_sent: dict[str, tuple[bool, float]] = {}
        self._resume_slots: asyncio.Semaphore | None = None
        self._resuming = 0
        """``resume`` entries accepted and not finished (at most ``options.max_resuming``)."""
        self._budget = FrameBudget(options.frame_rate, options.frame_burst)
        self.viewing: str | None = None
        """The conversation the client said is on its screen (``view``), if any."""

    # -- outgoing -------------------------------------------------------------------------------

    @property
    def closing(self) -> Close | None:
        """Why the connection is closing, once decided."""
        return self._close

    @property
    def dropped(self) -> int:
        """Droppable frames dropped so far."""
        return self._queue.dropped

    def send(self, frame: ServerFrame | dict[str, Any]) -> None:
        """Queue a frame for the client (a dict is essential)."""
        if isinstance(frame, dict):
            frame = ServerFrame(frame)
        self._push(frame.encode(), droppable=frame.droppable, kind=frame.data["type"])

    def _push(self, text: str, *, droppable: bool, kind: str, born: float = 0.0) -> None:
        if self._close is not None:
            return
        if self._queue.offer(text, droppable=droppable, kind=kind, born=born) is Offer.OVERFLOW:
            count_dropped(kind)
            log.info("closing connection %s: too slow", self.identity.connection_id)
            self.close(close_codes.SLOW_CONSUMER, "send queue full")
        self._wake_writer()

    def close(self, code: int, reason: str = "") -> None:
        """Decide to close (the first decision wins); the writer does it."""
        if self._close is None:
            self._close = Close(code, reason or close_codes.REASONS.get(code, ""))
        self._wake_writer()

    def _wake_writer(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def peer_gone(self) -> None:
        """The client's side is closed (its reader ended): the writer stops."""
        self._gone = True
        self._wake_writer()

    def peer_gone_callback(self, _: object) -> None:
        """:meth:`peer_gone` as a done callback of the reader's task."""
        self.peer_gone()

    async def next_outgoing(self) -> Outgoing | Close | None:
        """The next frame to send, the close to perform (which comes first), or ``None`` once
        the client is gone (nothing more can be sent)."""
        while True:
            if self._close is not None:
                return self._close
            if self._gone:
                return None
            item = self._queue.pop()
            if item is not None:
                return item
            self._wake = asyncio.get_running_loop().create_future()
            try:
                await self._wake
            finally:
                self._wake = None

    # -- lifecycle ------------------------------------------------------------------------------

    def context(self) -> RequestContext:
        """A fresh request context for a command this connection sends."""
        return RequestContext.new(
            user_id=self.identity.user_id, session_id=self.identity.session_id
        )

    async def hub_acquire_user(self) -> None:
        """Hold the user's personal channel."""
        await self._hub.acquire(self.user_channel, self)

    async def join(self, conversation_id: str, *, confirmed: bool = True) -> None:
        """Hold the conversation's channel (idempotent).

        Unless ``confirmed`` (the user is known to be a member), the channel's frames are held
        back until :meth:`confirm`; :meth:`leave` drops them.
        """
        if conversation_id in self.conversations:
            return
        conversation_id, channel = self._names(conversation_id)
        self.conversations[conversation_id] = channel
        if not confirmed:
            self._unconfirmed[channel] = []
        await self._hub.acquire(channel, self)

    async def join_many(self, conversation_ids: list[str]) -> None:
        """Hold the conversations' channels, subscribed together in one batch (idempotent)."""
        channels = []
        for conversation_id in conversation_ids:
            if conversation_id not in self.conversations:
                conversation_id, channel = self._names(conversation_id)
                self.conversations[conversation_id] = channel
                channels.append(channel)
        if channels:
            await self._hub.acquire_many(channels, self)

    def _names(self, conversation_id: str) -> tuple[str, str]:
        # Interned: the sockets of a conversation's members share one copy of its id and its
        # channel's name instead of holding one each (a connect decodes fresh strings).
        return sys.intern(conversation_id), sys.intern(self._conv_family.key(conversation_id))

    def holds(self, conversation_id: str) -> bool:
        """Whether the connection holds the conversation as the user's (membership confirmed)."""
        channel = self.conversations.get(conversation_id)
        return channel is not None and channel not in self._unconfirmed

    def confirm(self, conversation_id: str) -> bool:
        """The user is a member: deliver the frames held back; false if it is not held any more."""
        channel = self.conversations.get(conversation_id)
        if channel is None:
            return False
        for envelope, message in self._unconfirmed.pop(channel, ()):
            self.on_frame(channel, envelope, message)
        return True

    async def leave(self, conversation_id: str) -> None:
        """Release the conversation's channel and forget its delivery state."""
        channel = self.conversations.pop(conversation_id, None)
        if channel is not None:
            self._unconfirmed.pop(channel, None)
        self._cursors.pop(conversation_id, None)
        self._typing_sent.pop(conversation_id, None)
        task = self._recoveries.pop(conversation_id, None)
        if task is not None:
            task.cancel()
        if channel is not None:
            await self._hub.release(channel, self)

    async def release_all(self) -> None:
        """Release every channel and stop background work (on disconnect)."""
        for task in [*(self._tasks or ()), *self._recoveries.values()]:
            task.cancel()
        for conv in list(self.conversations):
            await self.leave(conv)
        await self._hub.release(self.user_channel, self)

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background for as long as the connection lives."""
        task = asyncio.ensure_future(coro)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        if self._tasks is not None:
            self._tasks.discard(task)
        if not task.cancelled() and (e := task.exception()) is not None:
            log.error("connection task failed", exc_info=e)

    # -- incoming client frames -----------------------------------------------------------------

    def receive(self, text: str | bytes) -> None:
        """Handle one client frame; a bad one gets an error frame, never a close.

        Frames beyond the connection's budget are refused (see
        :mod:`gateway.domain.frame_budget`) before they are even parsed.
        """
        admission = self._budget.admit(time.monotonic())
        if admission is not Admission.ACCEPT:
            self._refuse_frame(admission)
            return
        try:
            frame = parse_client_frame(text)
        except FrameError as e:
            self.send(error_frame(e.code, e.message))
            return
        if tracing_state.tracer is None:
            self._dispatch(frame)
            return
        # The commands a frame starts run in tasks spawned here: they inherit this span.
        kind = type(frame).__name__.removesuffix("Frame").lower()
        with tracing.span(
            f"ws receive {kind}",
            kind="server",
            attributes={
                "parley.ws.frame.type": kind,
                "parley.ws.connection_id": self.identity.connection_id,
                "parley.user_id": self.user_id,
            },
        ):
            self._dispatch(frame)

    def _refuse_frame(self, admission: Admission) -> None:
        REFUSED.labels("frames").inc()
        if admission is Admission.REFUSE_AND_TELL:
            frame = error_frame(errors.RATE_LIMITED, "too many frames; slow down")
            frame["retry_after"] = round(self._budget.retry_after(), 3)
            self.send(frame)
        elif admission is Admission.CLOSE:
            log.info("closing connection %s: frame flood", self.identity.connection_id)
            self.close(close_codes.RATE_LIMITED, "too many frames")

    def _dispatch(self, frame: ClientFrame) -> None:
        if isinstance(frame, PingFrame):
            pong: dict[str, Any] = {"type": "pong"}
            if frame.id is not None:
                pong["id"] = frame.id
            self.send(pong)
        elif isinstance(frame, TypingFrame):
            self._typing(frame)
        elif isinstance(frame, ReadFrame):
            self._command(
                chat.MarkRead(
                    user_id=self.user_id, conversation_id=frame.conversation_id, seq=frame.seq
                ),
                ack="read.ok",
            )
        elif isinstance(frame, ViewFrame):
            self._view(frame.conversation_id)
        elif isinstance(frame, ResumeFrame):
            self._resume(frame)
        else:
            self.send(error_frame("invalid", "already authenticated"))

    def _resume(self, frame: ResumeFrame) -> None:
        if self._resuming + len(frame.conversations) > self.options.max_resuming:
            REFUSED.labels("resumes").inc()
            self.send(
                error_frame(
                    errors.RATE_LIMITED,
                    f"{self._resuming} conversations are being resumed (at most "
                    f"{self.options.max_resuming}); resume these once they are answered",
                )
            )
            return
        self._resuming += len(frame.conversations)
        for conv, seq in frame.conversations.items():
            self.spawn(self.resume(conv, seq))

    def _not_held(self, conversation_id: str) -> None:
        frame = error_frame(errors.NOT_FOUND, "no such conversation")
        frame["conversation_id"] = conversation_id
        self.send(frame)

    def _typing(self, frame: TypingFrame) -> None:
        # Only a conversation this connection holds: any other id gets an error and leaves no
        # state behind (random ids must not grow the debounce table).
        if not self.holds(frame.conversation_id):
            self._not_held(frame.conversation_id)
            return
        # Debounce: a "typing" at most once per interval per conversation, a "stopped" only
        # after a "typing"; chat expires typing on its own, so repeats only refresh it.
        now = time.monotonic()
        last = self._typing_sent.get(frame.conversation_id)
        recent = last is not None and last[0] and now - last[1] < self.options.typing_interval
        if frame.typing and recent:
            return
        if not frame.typing and (last is None or not last[0]):
            return
        self._typing_sent[frame.conversation_id] = (frame.typing, now)
        command = chat.SetTyping(
            user_id=self.user_id, conversation_id=frame.conversation_id, typing=frame.typing
        )
        self._command(command, ack=None)

    def _view(self, conversation_id: str | None) -> None:
        # Only a conversation this connection holds (the user's own): anything else is not found.
        if conversation_id is not None and not self.holds(conversation_id):
            self._not_held(conversation_id)
            return
        self.viewing = conversation_id
        self._command(self.viewing_command(), ack="view.ok")

    def viewing_command(self) -> notify.SetViewing:
        """The command that (re)states what this connection views: sent on ``view``, refreshed
        with every heartbeat (the mark expires without it), and cleared on close."""
        return notify.SetViewing(user_id=self.user_id, conversation_id=self.viewing)

    def _command(self, command: Any, *, ack: str | None) -> None:
        if self._tasks is not None and len(self._tasks) >= self.options.max_pending_commands:
            self.send(error_frame("rate_limited", "too many frames in flight; slow down"))
            return
        self.spawn(self._run_command(command, ack))

    async def _run_command(self, command: Any, ack: str | None) -> None:
        try:
            result = await self._backend.call(command, self.context())
        except BackendError as e:
            frame = error_frame(e.code, e.message)
            if conv := getattr(command, "conversation_id", None):
                frame["conversation_id"] = conv
            self.send(frame)
            return
        if ack == "read.ok" and isinstance(result, chat.ReadMarker):
            self.send(
                {
                    "type": "read.ok",
                    "conversation_id": result.conversation_id,
                    "seq": result.seq,
                    "unread_count": result.unread_count,
                }
            )
        elif ack == "view.ok" and isinstance(command, notify.SetViewing):
            self.send({"type": "view.ok", "conversation_id": command.conversation_id})

    # -- channel frames -------------------------------------------------------------------------

    def on_frame(self, channel: str, envelope: Envelope, message: Message) -> None:
        """A frame of a held channel (see ChannelListener)."""
        held_back = self._unconfirmed.get(channel)
        if held_back is not None:
            # Not the user's until confirmed; beyond the bound, posts are refetched by the
            # recovery and ephemera are lost, as under backpressure.
            if len(held_back) < self.options.send_queue:
                held_back.append((envelope, message))
            return
        if self._seen is None or self._seen_set is None:
            self._seen, self._seen_set = deque(maxlen=self.options.dedupe_window), set()
        elif envelope.id in self._seen_set:
            return  # the same event on the conversation's and the user's channel
        elif len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(envelope.id)
        self._seen_set.add(envelope.id)
        self._follow_membership(message)
        shared = shared_frame(message)
        if shared is None:
            return
        frame, text = shared
        if isinstance(message, chat.MessagePosted):
            self._live_message(message.conversation_id, message.message.seq, frame, text)
        else:
            self._push(text, droppable=frame.droppable, kind=frame.data["type"])

    def on_gap(self, channel: str) -> None:
        """Frames of ``channel`` may be lost: recover the conversation from its last seq."""
        for conv, held in self.conversations.items():
            cursor = self._cursors.get(conv)
            if held == channel and cursor is not None and cursor.last is not None:
                cursor.begin()
                self.start_recovery(conv, reason="gap")

    def _live_message(self, conv: str, seq: int, frame: ServerFrame, text: str) -> None:
        cursor = self._cursors.setdefault(conv, Cursor())
        verdict = cursor.live(seq, text)
        if verdict is Verdict.DELIVER:
            self._push(text, droppable=False, kind="message.posted", born=frame.born)
        elif verdict is Verdict.GAP:
            self.start_recovery(conv, reason="gap")

    def _follow_membership(self, message: Message) -> None:
        me = self.user_id
        if (isinstance(message, chat.MemberAdded) and message.user_id == me) or (
            isinstance(message, chat.ConversationCreated) and me in message.member_ids
        ):
            self.confirm(message.conversation_id)  # chat says so: a pending resume is the user's
            self.spawn(self.join(message.conversation_id))
        elif isinstance(message, chat.MemberRemoved) and message.user_id == me:
            self.spawn(self.leave(message.conversation_id))
            if self.viewing == message.conversation_id:
                self.viewing = None
                self._command(self.viewing_command(), ack=None)

    # -- recovery (the procedure lives in realtime_recovery) ------------------------------------

    @property
    def backend(self) -> CommandCaller:
        """Where this connection's commands go."""
        return self._backend

    def cursor(self, conversation_id: str) -> Cursor[str]:
        """The delivery state of one conversation."""
        return self._cursors.setdefault(conversation_id, Cursor())

    def forget(self, conversation_id: str) -> None:
        """Drop the delivery state of a conversation the user may not see."""
        self._cursors.pop(conversation_id, None)

    def start_recovery(self, conversation_id: str, *, reason: str) -> None:
        """Fill the conversation's gap from the history unless a recovery already runs."""
        if conversation_id in self._recoveries:
            return
        task = asyncio.ensure_future(recover(self, conversation_id, reason=reason))
        self._recoveries[conversation_id] = task
        task.add_done_callback(lambda _: self._recoveries.pop(conversation_id, None))

    def push_text(self, text: str, *, kind: str = "message.posted") -> None:
        """Queue an already encoded essential frame (a recovered message unless ``kind`` says)."""
        self._push(text, droppable=False, kind=kind)

    async def resume(self, conversation_id: str, last_seen: int) -> None:
        """The client's ``resume`` for one conversation: subscribe, then catch up."""
        if self._resume_slots is None:
            self._resume_slots = asyncio.Semaphore(self.options.resume_concurrency)
        try:
            async with self._resume_slots:
                await resume(self, conversation_id, last_seen)
        finally:
            self._resuming -= 1
