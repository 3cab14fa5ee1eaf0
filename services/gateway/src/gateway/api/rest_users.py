"""``/api/v1/users`` and ``/api/v1/presence``: profiles, preferences, contacts, blocks (user)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from contracts.user import (
    AddContact,
    BlockUser,
    GetPreferences,
    GetPresence,
    GetProfile,
    GetProfiles,
    ListBlocks,
    ListContacts,
    Preferences,
    PresenceList,
    Profile,
    ProfileList,
    RemoveContact,
    SearchUsers,
    UnblockUser,
    UpdatePreferences,
    UpdateProfile,
    UserIdList,
)
from gateway.api import shapes
from gateway.api.rest_common import Deps, Me, Viewer, cached_get, json_response, no_content
from gateway.api.schemas import PreferencesPut, ProfilePatch, UserRef
from gateway.domain import errors
from gateway.domain.errors import GatewayError
from gateway.handlers.deps import GatewayDeps

router = APIRouter(tags=["users"])
IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
MAX_IDS = 100


def parse_ids(raw: str) -> list[str]:
    """A comma-separated id list: 1..100 distinct valid ids, in order, or 422."""
    ids = list(dict.fromkeys(i.strip() for i in raw.split(",") if i.strip()))
    if not ids or len(ids) > MAX_IDS:
        raise GatewayError(errors.INVALID, f"ids: give 1 to {MAX_IDS} ids", field="ids")
    for i in ids:
        if len(i) > 64 or not all(c.isalnum() or c in "_.:-" for c in i) or not i.isascii():
            raise GatewayError(errors.INVALID, "ids: not a valid id", field="ids")
    return ids


async def _profile(
    deps: GatewayDeps, me: Viewer, user_id: str, tags: list[str]
) -> dict[str, object]:
    found: Profile = await deps.backend.call(GetProfile(user_id=user_id), me.ctx)
    tags.append(f"profile:{user_id}")
    return shapes.profile(found)


@router.get("/users/me")
async def get_me(request: Request, me: Me, deps: Deps) -> Response:
    """The caller's profile."""
    return await cached_get(
        request, deps, me, "me", lambda tags: _profile(deps, me, me.user_id, tags)
    )


@router.patch("/users/me")
async def patch_me(body: ProfilePatch, me: Me, deps: Deps) -> Response:
    """Change the given fields of the caller's profile."""
    command = UpdateProfile(user_id=me.user_id, **body.model_dump(exclude_none=True))
    updated: Profile = await deps.backend.call(command, me.ctx)
    await deps.responses.invalidate([f"profile:{me.user_id}"])
    return json_response(shapes.profile(updated))


@router.get("/users/me/preferences")
async def get_preferences(request: Request, me: Me, deps: Deps) -> Response:
    """The caller's preferences."""

    async def load(tags: list[str]) -> object:
        found: Preferences = await deps.backend.call(GetPreferences(user_id=me.user_id), me.ctx)
        tags.append(f"prefs:{me.user_id}")
        return shapes.preferences(found)

    return await cached_get(request, deps, me, "preferences", load)


@router.put("/users/me/preferences")
async def put_preferences(body: PreferencesPut, me: Me, deps: Deps) -> Response:
    """Change the given preferences."""
    command = UpdatePreferences(user_id=me.user_id, **body.model_dump(exclude_none=True))
    updated: Preferences = await deps.backend.call(command, me.ctx)
    await deps.responses.invalidate([f"prefs:{me.user_id}"])
    return json_response(shapes.preferences(updated))


async def _people(
    request: Request, deps: GatewayDeps, me: Viewer, route: str, command: ListContacts | ListBlocks
) -> Response:
    tag = f"{route}:{me.user_id}"

    async def load(tags: list[str]) -> object:
        found: UserIdList = await deps.backend.call(command, me.ctx)
        tags.append(tag)
        ids = found.items[:MAX_IDS]
        if not ids:
            return shapes.page([])
        profiles: ProfileList = await deps.backend.call(GetProfiles(user_ids=ids), me.ctx)
        tags.extend(f"profile:{p.user_id}" for p in profiles.items)
        return shapes.page([shapes.profile(p) for p in profiles.items])

    return await cached_get(request, deps, me, route, load)


@router.get("/users/me/contacts")
async def get_contacts(request: Request, me: Me, deps: Deps) -> Response:
    """The caller's contacts, as profiles (the first 100)."""
    return await _people(request, deps, me, "contacts", ListContacts(user_id=me.user_id))


@router.post("/users/me/contacts", status_code=204)
async def add_contact(body: UserRef, me: Me, deps: Deps) -> Response:
    """Add a contact."""
    await deps.backend.call(AddContact(user_id=me.user_id, contact_id=body.user_id), me.ctx)
    await deps.responses.invalidate([f"contacts:{me.user_id}"])
    return no_content()


@router.delete("/users/me/contacts/{user_id}", status_code=204)
async def remove_contact(user_id: IdPath, me: Me, deps: Deps) -> Response:
    """Remove a contact."""
    await deps.backend.call(RemoveContact(user_id=me.user_id, contact_id=user_id), me.ctx)
    await deps.responses.invalidate([f"contacts:{me.user_id}"])
    return no_content()


@router.get("/users/me/blocks")
async def get_blocks(request: Request, me: Me, deps: Deps) -> Response:
    """The users the caller blocks, as profiles (the first 100)."""
    return await _people(request, deps, me, "blocks", ListBlocks(user_id=me.user_id))


@router.post("/users/me/blocks", status_code=204)
async def block(body: UserRef, me: Me, deps: Deps) -> Response:
    """Block a user."""
    await deps.backend.call(BlockUser(user_id=me.user_id, blocked_id=body.user_id), me.ctx)
    await deps.responses.invalidate([f"blocks:{me.user_id}"])
    return no_content()


@router.delete("/users/me/blocks/{user_id}", status_code=204)
async def unblock(user_id: IdPath, me: Me, deps: Deps) -> Response:
    """Unblock a user."""
    await deps.backend.call(UnblockUser(user_id=me.user_id, blocked_id=user_id), me.ctx)
    await deps.responses.invalidate([f"blocks:{me.user_id}"])
    return no_content()


@router.get("/users/{user_id}")
async def get_user(user_id: IdPath, request: Request, me: Me, deps: Deps) -> Response:
    """One user's profile."""
    return await cached_get(
        request, deps, me, "user", lambda tags: _profile(deps, me, user_id, tags)
    )


@router.get("/users")
async def find_users(
    request: Request,
    me: Me,
    deps: Deps,
    ids: Annotated[str | None, Query(max_length=6600)] = None,
    prefix: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Profiles by ``ids`` (comma-separated, up to 100) or by username ``prefix``."""
    if (ids is None) == (prefix is None):
        raise GatewayError(errors.INVALID, "give exactly one of ids and prefix", field="ids")
    command: GetProfiles | SearchUsers = (
        GetProfiles(user_ids=parse_ids(ids))
        if ids is not None
        else SearchUsers(prefix=prefix or "", limit=limit)
    )

    async def load(tags: list[str]) -> object:
        found: ProfileList = await deps.backend.call(command, me.ctx)
        tags.extend(f"profile:{p.user_id}" for p in found.items)
        return shapes.page([shapes.profile(p) for p in found.items])

    return await cached_get(request, deps, me, "users", load)


@router.get("/presence", tags=["presence"])
async def get_presence(
    request: Request, me: Me, deps: Deps, ids: Annotated[str, Query(max_length=6600)]
) -> Response:
    """Presence of up to 100 users (``ids`` comma-separated)."""
    user_ids = parse_ids(ids)

    async def load(tags: list[str]) -> object:
        found: PresenceList = await deps.backend.call(
            GetPresence(user_ids=user_ids, viewer_id=me.user_id), me.ctx
        )
        tags.extend(f"presence:{i}" for i in user_ids)
        return shapes.page([shapes.presence(p) for p in found.items])

    return await cached_get(request, deps, me, "presence", load)
