"""``/api/v1/auth``: register, login, refresh, logout, sessions, password (auth commands)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response

from contracts.auth import (
    ChangePassword,
    ListSessions,
    Login,
    Logout,
    Refresh,
    Register,
    RevokedSessions,
    RevokeSession,
    SessionList,
    TokenPair,
)
from gateway.api import shapes
from gateway.api.rest_common import (
    Deps,
    Me,
    json_response,
    limit_credentials,
    no_content,
    request_context,
)
from gateway.api.schemas import LoginBody, PasswordBody, RefreshBody, RegisterBody, TokensOut
from gateway.domain import errors
from gateway.handlers.backend import BackendError

router = APIRouter(prefix="/auth", tags=["auth"])
credentials = [Depends(limit_credentials)]
IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


@router.post("/register", status_code=201, response_model=TokensOut, dependencies=credentials)
async def register(body: RegisterBody, request: Request, deps: Deps) -> Response:
    """Create an account and its first session."""
    command = Register(
        username=body.username, password=body.password, display_name=body.display_name
    )
    pair: TokenPair = await deps.backend.call(command, request_context(request))
    return json_response(shapes.tokens(pair), status=201)


@router.post("/login", response_model=TokensOut, dependencies=credentials)
async def login(body: LoginBody, request: Request, deps: Deps) -> Response:
    """Open a session (a wrong username or password: 401 ``unauthenticated``)."""
    command = Login(username=body.username, password=body.password)
    pair: TokenPair = await deps.backend.call(command, request_context(request))
    return json_response(shapes.tokens(pair))


@router.post("/refresh", response_model=TokensOut, dependencies=credentials)
async def refresh(body: RefreshBody, request: Request, deps: Deps) -> Response:
    """Rotate a refresh token for a new pair (a reused one ends the session: 401)."""
    pair: TokenPair = await deps.backend.call(
        Refresh(refresh_token=body.refresh_token), request_context(request)
    )
    return json_response(shapes.tokens(pair))


@router.post("/logout", status_code=204)
async def logout(me: Me, deps: Deps) -> Response:
    """End the session of the presented access token; its tokens are refused at once."""
    await deps.backend.call(Logout(user_id=me.user_id, session_id=me.session_id), me.ctx)
    # Read-your-writes on this instance; the revocation event tells the others.
    await deps.tokens.revoke(me.user_id, me.session_id, tokens_expire_at=me.claims.expires_at)
    return no_content()


@router.get("/sessions")
async def sessions(me: Me, deps: Deps) -> Response:
    """The caller's live sessions (``current`` marks this one); never cached."""
    found: SessionList = await deps.backend.call(ListSessions(user_id=me.user_id), me.ctx)
    items = [shapes.session(s, current=me.session_id) for s in found.items]
    return json_response(shapes.page(items), headers={"Cache-Control": "no-store"})


@router.delete("/sessions")
async def end_other_sessions(me: Me, deps: Deps) -> Response:
    """End every session of the caller but this one (``{"ended": n}``): after a lost device."""
    result: RevokedSessions = await deps.backend.call(
        RevokeSession(user_id=me.user_id, keep_session_id=me.session_id), me.ctx
    )
    # The other gateways learn it from auth's session_revoked events, as for one session.
    return json_response({"ended": result.count}, headers={"Cache-Control": "no-store"})


@router.delete("/sessions/{session_id}", status_code=204)
async def revoke_session(session_id: IdPath, me: Me, deps: Deps) -> Response:
    """End one of the caller's sessions (404 when it has no such live session)."""
    result: RevokedSessions = await deps.backend.call(
        RevokeSession(user_id=me.user_id, session_id=session_id), me.ctx
    )
    if result.count == 0:
        raise BackendError(errors.NOT_FOUND, "no such session")
    return no_content()


@router.post("/password", status_code=204)
async def change_password(body: PasswordBody, me: Me, deps: Deps) -> Response:
    """Change the password; every other session of the caller ends."""
    command = ChangePassword(
        user_id=me.user_id,
        session_id=me.session_id,
        old_password=body.old_password,
        new_password=body.new_password,
    )
    await deps.backend.call(command, me.ctx)
    return no_content()
