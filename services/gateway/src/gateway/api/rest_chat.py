"""``/api/v1/conversations``: conversations, members, history, messages, read markers (chat)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from contracts.chat import (
    AddMembers,
    ChatMessage,
    Conversation,
    ConversationList,
    CreateConversation,
    DeleteMessage,
    EditMessage,
    GetConversation,
    GetHistory,
    GetReadMarkers,
    History,
    LeaveConversation,
    ListConversations,
    MarkRead,
    PostMessage,
    PostResult,
    ReadMarker,
    ReadMarkers,
    RemoveMember,
)
from gateway.api import shapes
from gateway.api.rest_common import Deps, Me, cached_get, fresh_get, json_response, no_content
from gateway.api.schemas import ConversationCreate, MembersAdd, MessageEdit, MessagePost, ReadBody
from gateway.domain import errors
from gateway.domain.bounds import MAX_SEQ
from gateway.domain.errors import GatewayError

router = APIRouter(prefix="/conversations", tags=["conversations"])
IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
SeqPath = Annotated[int, Path(ge=0, le=MAX_SEQ)]
SeqQuery = Annotated[int | None, Query(ge=0, le=MAX_SEQ)]
Cursor = Annotated[str | None, Query(max_length=256)]
Limit = Annotated[int, Query(ge=1, le=100)]

_CONV_OPS = "_api_v1_conversations__conversation_id_"
_BY_ID = {"conversation_id": "$response.body#/id"}
_BY_MESSAGE = {
    "conversation_id": "$response.body#/conversation_id",
    "seq": "$response.body#/seq",
}
# OpenAPI links: what a created conversation or message leads to (clients, and schemathesis's
# stateful phase, follow them). The operation ids are FastAPI's generated ones.
CONVERSATION_LINKS = {
    name: {"operationId": f"{op}{_CONV_OPS}{tail}", "parameters": _BY_ID}
    for name, op, tail in (
        ("GetConversation", "get_conversation", "_get"),
        ("AddMembers", "add_members", "_members_post"),
        ("History", "history", "_messages_get"),
        ("PostMessage", "post_message", "_messages_post"),
        ("MarkRead", "mark_read", "_read_post"),
    )
}
MESSAGE_LINKS = {
    name: {"operationId": f"{op}{_CONV_OPS}{tail}", "parameters": params}
    for name, op, tail, params in (
        ("EditMessage", "edit_message", "_messages__seq__patch", _BY_MESSAGE),
        ("DeleteMessage", "delete_message", "_messages__seq__delete", _BY_MESSAGE),
        (
            "MarkRead",
            "mark_read",
            "_read_post",
            {"conversation_id": _BY_MESSAGE["conversation_id"]},
        ),
    )
}


@router.get("")
async def list_conversations(
    request: Request, me: Me, deps: Deps, cursor: Cursor = None, limit: Limit = 50
) -> Response:
    """The caller's conversations, most recent activity first."""

    async def load(tags: list[str]) -> object:
        found: ConversationList = await deps.backend.call(
            ListConversations(user_id=me.user_id, cursor=cursor, limit=limit), me.ctx
        )
        tags.append(f"convs:{me.user_id}")
        tags.extend(f"conv:{c.id}" for c in found.items)
        return shapes.page([shapes.conversation(c) for c in found.items], found.next)

    return await cached_get(request, deps, me, "conversations", load)


@router.post(
    "", status_code=201, responses={201: {"description": "Created", "links": CONVERSATION_LINKS}}
)
async def create_conversation(body: ConversationCreate, me: Me, deps: Deps) -> Response:
    """Create a conversation with ``member_ids`` (the others; the caller is added)."""
    command = CreateConversation(
        creator_id=me.user_id, kind=body.kind, member_ids=list(body.member_ids), title=body.title
    )
    created: Conversation = await deps.backend.call(command, me.ctx)
    await deps.responses.invalidate([f"convs:{m}" for m in {me.user_id, *created.member_ids}])
    return json_response(shapes.conversation(created), status=201)


@router.get("/{conversation_id}")
async def get_conversation(
    conversation_id: IdPath, request: Request, me: Me, deps: Deps
) -> Response:
    """One conversation the caller is a member of (404 otherwise)."""

    async def load(tags: list[str]) -> object:
        found: Conversation = await deps.backend.call(
            GetConversation(user_id=me.user_id, conversation_id=conversation_id), me.ctx
        )
        tags.append(f"conv:{conversation_id}")
        return shapes.conversation(found)

    return await cached_get(request, deps, me, "conversation", load)


@router.post("/{conversation_id}/members")
async def add_members(conversation_id: IdPath, body: MembersAdd, me: Me, deps: Deps) -> Response:
    """Add members; answers the conversation."""
    command = AddMembers(
        user_id=me.user_id, conversation_id=conversation_id, member_ids=list(body.member_ids)
    )
    updated: Conversation = await deps.backend.call(command, me.ctx)
    await deps.responses.invalidate(
        [f"conv:{conversation_id}", *(f"convs:{m}" for m in body.member_ids)]
    )
    return json_response(shapes.conversation(updated))


@router.delete("/{conversation_id}/members/{user_id}", status_code=204)
async def remove_member(conversation_id: IdPath, user_id: IdPath, me: Me, deps: Deps) -> Response:
    """Remove a member; removing oneself leaves the conversation."""
    if user_id == me.user_id:
        await deps.backend.call(
            LeaveConversation(user_id=me.user_id, conversation_id=conversation_id), me.ctx
        )
    else:
        await deps.backend.call(
            RemoveMember(user_id=me.user_id, conversation_id=conversation_id, member_id=user_id),
            me.ctx,
        )
    await deps.responses.invalidate([f"conv:{conversation_id}", f"convs:{user_id}"])
    return no_content()


@router.get("/{conversation_id}/messages")
async def history(
    conversation_id: IdPath,
    request: Request,
    me: Me,
    deps: Deps,
    before: SeqQuery = None,
    after: SeqQuery = None,
    limit: Limit = 50,
) -> Response:
    """Messages in ascending ``seq``: ``after=N`` the first ``limit`` above N, ``before=N`` the
    last ``limit`` below N, neither the latest ``limit``. ``next`` continues in that direction."""
    if before is not None and after is not None:
        raise GatewayError(errors.INVALID, "give at most one of before and after", field="before")

    async def load(tags: list[str]) -> object:
        command = GetHistory(
            user_id=me.user_id,
            conversation_id=conversation_id,
            before=before,
            after=after,
            limit=limit,
        )
        found: History = await deps.backend.call(command, me.ctx)
        tags.append(f"conv:{conversation_id}")
        items = [shapes.message(m) for m in found.items]
        next_cursor: str | None = None
        if len(found.items) == limit:
            edge = found.items[-1] if after is not None else found.items[0]
            next_cursor = str(edge.seq)
        return {**shapes.page(items, next_cursor), "recovered": found.recovered}

    return await cached_get(request, deps, me, "messages", load)


@router.post(
    "/{conversation_id}/messages",
    status_code=201,
    responses={201: {"description": "Posted", "links": MESSAGE_LINKS}},
)
async def post_message(conversation_id: IdPath, body: MessagePost, me: Me, deps: Deps) -> Response:
    """Post a message: 201, or 200 with the original when ``client_msg_id`` was seen before."""
    command = PostMessage(
        sender_id=me.user_id,
        conversation_id=conversation_id,
        client_msg_id=body.client_msg_id,
        body=body.body,
        mentions=list(body.mentions),
    )
    result: PostResult = await deps.backend.call(command, me.ctx)
    await deps.responses.invalidate([f"conv:{conversation_id}"])
    return json_response(shapes.message(result.message), status=200 if result.replay else 201)


@router.patch("/{conversation_id}/messages/{seq}")
async def edit_message(
    conversation_id: IdPath, seq: SeqPath, body: MessageEdit, me: Me, deps: Deps
) -> Response:
    """Edit one's own message."""
    command = EditMessage(
        user_id=me.user_id, conversation_id=conversation_id, seq=seq, body=body.body
    )
    edited: ChatMessage = await deps.backend.call(command, me.ctx)
    await deps.responses.invalidate([f"conv:{conversation_id}"])
    return json_response(shapes.message(edited))


@router.delete("/{conversation_id}/messages/{seq}")
async def delete_message(conversation_id: IdPath, seq: SeqPath, me: Me, deps: Deps) -> Response:
    """Delete a message (its tombstone is answered: ``deleted: true``)."""
    command = DeleteMessage(user_id=me.user_id, conversation_id=conversation_id, seq=seq)
    deleted: ChatMessage = await deps.backend.call(command, me.ctx)
    await deps.responses.invalidate([f"conv:{conversation_id}"])
    return json_response(shapes.message(deleted))


@router.post("/{conversation_id}/read")
async def mark_read(conversation_id: IdPath, body: ReadBody, me: Me, deps: Deps) -> Response:
    """Move the read marker to ``seq``; answers ``{conversation_id, seq, unread_count}``."""
    marker: ReadMarker = await deps.backend.call(
        MarkRead(user_id=me.user_id, conversation_id=conversation_id, seq=body.seq), me.ctx
    )
    await deps.responses.invalidate([f"conv:{conversation_id}"])
    return json_response(
        {
            "conversation_id": marker.conversation_id,
            "seq": marker.seq,
            "unread_count": marker.unread_count,
        }
    )


@router.get("/{conversation_id}/read-markers")
async def read_markers(conversation_id: IdPath, request: Request, me: Me, deps: Deps) -> Response:
    """Every member's read marker: ``{conversation_id, items: [{user_id, seq}]}`` (members only)."""

    async def load(_: list[str]) -> object:
        found: ReadMarkers = await deps.backend.call(
            GetReadMarkers(user_id=me.user_id, conversation_id=conversation_id), me.ctx
        )
        items = [{"user_id": m.user_id, "seq": m.seq} for m in found.items]
        return {"conversation_id": found.conversation_id, "items": items}

    return await fresh_get(request, load)
