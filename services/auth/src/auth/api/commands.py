"""Subscribers of ``auth.commands``: decode (done by the bus), one handler call, map errors.

Each returns the command's reply; the bus sends it to the caller's reply channel. Domain errors
become failed replies with stable codes; anything else propagates so the bus retries it and, in
the end, dead-letters it and answers ``internal``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from auth.api.errors import failure
from auth.api.publishers import public_key
from auth.domain.errors import AuthError
from auth.domain.sessions import ClientDetails, IssuedTokens
from auth.handlers.accounts import AccountService
from auth.handlers.keys import SigningKeys
from auth.handlers.login import LoginService
from auth.handlers.permissions import PermissionService
from auth.handlers.sessions import SessionService
from contracts import auth as wire
from contracts.base import Empty, Envelope, ErrorCode, Message, Reply
from shared.bus import Handler
from shared.transit import Transit, TransitError, secret_fields


def _client(info: wire.ClientInfo) -> ClientDetails:
    return ClientDetails(address=info.address, device=info.device, user_agent=info.user_agent)


def _pair(tokens: IssuedTokens) -> wire.TokenPair:
    return wire.TokenPair(
        user_id=tokens.user_id,
        session_id=tokens.session_id,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
    )


def _carries_secrets(cls: type[Message]) -> bool:
    result = getattr(cls, "RESULT", None)
    return bool(secret_fields(cls) or (result is not None and secret_fields(result)))


def _at(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, tz=UTC)


async def _answer(call: Awaitable[Any]) -> Reply[Any]:
    try:
        return Reply.success(await call)
    except AuthError as e:
        return failure(e)


@dataclass(frozen=True)
class AuthCommands:
    """The command subscribers of the auth service, over its handlers."""

    accounts: AccountService
    login_service: LoginService
    sessions: SessionService
    keys: SigningKeys
    permissions: PermissionService
    transit: Transit
    """Opens the sealed passwords and tokens of commands, seals the tokens of replies."""

    def table(self) -> dict[type[Message], Handler]:
        """Command class -> subscriber, for :class:`shared.bus.Consumer`.

        Secrets stay sealed until here and are sealed again before a reply leaves, so neither the
        stream entry nor the reply the bus keeps holds them in clear.
        """
        table: dict[type[Message], Callable[[Any, Envelope], Awaitable[Reply[Any]]]] = {
            wire.Register: self.register,
            wire.Login: self.login,
            wire.Refresh: self.refresh,
            wire.Logout: self.logout,
            wire.RevokeSession: self.revoke_session,
            wire.ListSessions: self.list_sessions,
            wire.ChangePassword: self.change_password,
            wire.GetPublicKeys: self.get_public_keys,
            wire.CheckPermission: self.check_permission,
            wire.SetRoles: self.set_roles,
        }
        return {
            cls: self._sealed(handler) if _carries_secrets(cls) else handler
            for cls, handler in table.items()
        }

    def _sealed(
        self, handler: Callable[[Any, Envelope], Awaitable[Reply[Any]]]
    ) -> Callable[[Any, Envelope], Awaitable[Reply[Any]]]:
        async def run(cmd: Any, env: Envelope) -> Reply[Any]:
            try:
                opened = self.transit.open(cmd)
            except TransitError as e:
                return Reply.failure(ErrorCode.INVALID, str(e))
            reply = await handler(opened, env)
            if reply.ok and reply.result is not None:
                return Reply.success(self.transit.seal(reply.result))
            return reply

        return run

    async def register(self, cmd: wire.Register, env: Envelope) -> Reply[Any]:
        """``auth.register``."""
        return await _answer(self._register(cmd, env))

    async def _register(self, cmd: wire.Register, env: Envelope) -> wire.TokenPair:
        tokens = await self.accounts.register(
            env.id,
            username=cmd.username,
            password=cmd.password,
            display_name=cmd.display_name,
            client=_client(cmd.client),
        )
        return _pair(tokens)

    async def login(self, cmd: wire.Login, env: Envelope) -> Reply[Any]:
        """``auth.login``."""

        async def run() -> wire.TokenPair:
            tokens = await self.login_service.login(
                env.id, username=cmd.username, password=cmd.password, client=_client(cmd.client)
            )
            return _pair(tokens)

        return await _answer(run())

    async def refresh(self, cmd: wire.Refresh, env: Envelope) -> Reply[Any]:
        """``auth.refresh``."""

        async def run() -> wire.TokenPair:
            return _pair(await self.sessions.refresh(cmd.refresh_token, message_id=env.id))

        return await _answer(run())

    async def logout(self, cmd: wire.Logout, env: Envelope) -> Reply[Any]:
        """``auth.logout`` (ending an already ended session is fine)."""

        async def run() -> Empty:
            await self.sessions.logout(cmd.user_id, cmd.session_id)
            return Empty()

        return await _answer(run())

    async def revoke_session(self, cmd: wire.RevokeSession, env: Envelope) -> Reply[Any]:
        """``auth.revoke_session``: one session, or all but ``keep_session_id``."""

        async def run() -> wire.RevokedSessions:
            count = await self.sessions.revoke(
                cmd.user_id, cmd.session_id, keep=cmd.keep_session_id
            )
            return wire.RevokedSessions(count=count)

        return await _answer(run())

    async def list_sessions(self, cmd: wire.ListSessions, env: Envelope) -> Reply[Any]:
        """``auth.list_sessions``."""

        async def run() -> wire.SessionList:
            items = [
                wire.SessionInfo(
                    session_id=s.session_id,
                    created_at=_at(s.created_at),
                    last_used_at=_at(s.last_used_at),
                    client=wire.ClientInfo(
                        address=s.client.address,
                        device=s.client.device,
                        user_agent=s.client.user_agent,
                    ),
                )
                for s in await self.sessions.list(cmd.user_id)
            ]
            return wire.SessionList(items=items)

        return await _answer(run())

    async def change_password(self, cmd: wire.ChangePassword, env: Envelope) -> Reply[Any]:
        """``auth.change_password``: revokes every other session of the user."""

        async def run() -> Empty:
            await self.accounts.change_password(
                env.id,
                user_id=cmd.user_id,
                session_id=cmd.session_id,
                old=cmd.old_password,
                new=cmd.new_password,
                client=_client(cmd.client),
            )
            return Empty()

        return await _answer(run())

    async def get_public_keys(self, cmd: wire.GetPublicKeys, env: Envelope) -> Reply[Any]:
        """``auth.get_public_keys``: every key a live token may be signed with, active first."""
        return Reply.success(wire.PublicKeys(keys=[public_key(k) for k in self.keys.public_jwks()]))

    async def check_permission(self, cmd: wire.CheckPermission, env: Envelope) -> Reply[Any]:
        """``auth.check_permission``."""

        async def run() -> wire.PermissionDecision:
            allowed = await self.permissions.check(cmd.user_id, cmd.permission)
            return wire.PermissionDecision(allowed=allowed)

        return await _answer(run())

    async def set_roles(self, cmd: wire.SetRoles, env: Envelope) -> Reply[Any]:
        """``auth.set_roles``."""

        async def run() -> Empty:
            await self.accounts.set_roles(
                env.id, actor_id=cmd.actor_id, user_id=cmd.user_id, roles=tuple(cmd.roles)
            )
            return Empty()

        return await _answer(run())
