"""Sending a typed command to its owning service and getting its typed result back.

Public API (stable; the WebSocket and GraphQL sides build on it)::

    backend = Backend(requester)                      # one per gateway instance
    ctx = RequestContext.new(request_id="...", traceparent="00-...", client_address="1.2.3.4")
    profile = await backend.call(GetProfile(user_id="u1"), ctx)      # -> contracts.user.Profile
    try:
        ...
    except BackendError as e:                         # e.code: a stable code (see domain.errors)
        e.code, e.message, e.retry_after, e.field

* ``call(command, ctx=None, *, timeout=None) -> Any``: the command's ``RESULT`` struct. ``ctx``
  defaults to the context of the HTTP request being served (:func:`current_context`, set by the
  request middleware), else a fresh one.
* The command's envelope carries ``correlation_id = ctx.request_id`` (the ``X-Request-ID``) and
  ``ctx.traceparent``/``tracestate``, so every event the command causes inherits them and
  ``parley events trace <request id>`` shows the chain. Its ``causation_id`` is the request id.
* A command with a ``client`` field (:class:`contracts.auth.ClientInfo`: register, login,
  refresh, change_password) gets the client's address and user agent filled in, for auth's
  per-address limits.
* A command's ``SECRETS`` fields (passwords, refresh tokens) are sealed before it leaves and a
  result's (tokens) opened when it comes back (:mod:`shared.transit`, ``GATEWAY_TRANSIT_KEYS``):
  Redis never holds them in clear. A backend without a transit keyring refuses such commands.
* A failed reply raises :class:`BackendError` with the reply's ``ErrorCode`` value as ``code``
  (``invalid``, ``not_found``, ``forbidden``, ``conflict``, ``rate_limited``,
  ``unauthenticated``, ``expired``, ``unavailable``, ``internal``); no reply in time, or Redis
  down, raises ``BackendError("unavailable")``; so does an open circuit breaker (the target's or
  Redis's), at once and with ``retry_after`` (the 503's ``Retry-After``).
"""

from __future__ import annotations

import contextvars
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from redis.exceptions import RedisError

from contracts.auth import ClientInfo
from contracts.base import Command, Envelope, Reply, new_message_id, utcnow
from gateway.domain import errors
from gateway.domain.errors import GatewayError
from shared.breaker import CircuitOpenError
from shared.bus import Requester, RequestTimeoutError
from shared.bus.context import handling
from shared.transit import Transit, TransitError, secret_fields

log = logging.getLogger(__name__)

__all__ = [
    "Backend",
    "BackendError",
    "RequestContext",
    "current_context",
    "reset_context",
    "use_context",
]

ORIGIN_TYPE: Final = "gateway.http_request"
"""Type name of the (never published) origin envelope a request's commands are caused by."""

_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "gateway_request_context", default=None
)


class BackendError(GatewayError):
    """A command failed: ``code`` is the reply's stable error code (or ``unavailable``)."""


def new_traceparent() -> str:
    """A fresh W3C traceparent (version 00, random trace and span ids, sampled)."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestContext:
    """Who asks and which client request this is: travels into every command's envelope.

    ``request_id`` is the correlation id (``X-Request-ID``, an :data:`contracts.base.Id`);
    ``traceparent`` is the W3C trace context of the gateway's span for the request.
    """

    request_id: str
    traceparent: str | None = None
    tracestate: str | None = None
    client_address: str | None = None
    user_agent: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def new(cls, **values: Any) -> RequestContext:
        """A context with a fresh request id and traceparent unless given."""
        values.setdefault("request_id", new_message_id())
        values.setdefault("traceparent", new_traceparent())
        return cls(**values)

    def origin(self) -> Envelope:
        """The envelope the request's commands are caused by (never published itself)."""
        return Envelope(
            id=self.request_id,
            type=ORIGIN_TYPE,
            version=1,
            occurred_at=utcnow(),
            producer="gateway",
            correlation_id=self.request_id,
            traceparent=self.traceparent,
            tracestate=self.tracestate,
        )

    def client_info(self) -> ClientInfo:
        """What auth is told about the client (bounded to the contract's lengths)."""
        return ClientInfo(
            address=self.client_address[:64] if self.client_address else None,
            user_agent=self.user_agent[:512] if self.user_agent else None,
        )


def current_context() -> RequestContext | None:
    """The context of the request being served in this task (set by the middleware), if any."""
    return _current.get()


def use_context(ctx: RequestContext | None) -> contextvars.Token[RequestContext | None]:
    """Make ``ctx`` the current context; undo with :func:`reset_context`."""
    return _current.set(ctx)


def reset_context(token: contextvars.Token[RequestContext | None]) -> None:
    """Undo :func:`use_context`."""
    _current.reset(token)


class Backend:
    """The gateway's door to the other services: one :class:`Requester`, typed results."""

    def __init__(
        self,
        requester: Requester,
        *,
        timeout: float | None = None,
        transit: Transit | None = None,
    ) -> None:
        self._requester = requester
        self.timeout = timeout
        self._transit = transit

    async def call(
        self,
        command: Command,
        ctx: RequestContext | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - it is also the command's deadline
    ) -> Any:
        """The result of ``command`` (its ``RESULT`` struct), or :class:`BackendError`."""
        ctx = ctx or current_context() or RequestContext.new()
        command = _with_client(command, ctx)
        sealed = bool(secret_fields(type(command)) or secret_fields(type(command).RESULT))
        if sealed:
            if self._transit is None:
                raise BackendError(errors.INTERNAL, "no transit keys to seal the command with")
            command = self._transit.seal(command)
        wait = timeout if timeout is not None else self.timeout
        try:
            with handling(ctx.origin()):
                reply: Reply[Any] = await self._requester.request(command, timeout=wait)
        except CircuitOpenError as e:
            # A breaker on the way is open (the target's, or Redis's): answer at once, and say
            # when it probes again.
            raise BackendError(
                errors.UNAVAILABLE, "the service is unavailable", retry_after=e.retry_after
            ) from e
        except RequestTimeoutError as e:
            log.warning("no reply to %s in time (request %s)", command.TYPE, ctx.request_id)
            raise BackendError(errors.UNAVAILABLE, "the service did not answer in time") from e
        except (RedisError, OSError) as e:
            log.warning("cannot send %s: %s", command.TYPE, e)
            raise BackendError(errors.UNAVAILABLE, "the service cannot be reached") from e
        result = unwrap(reply)
        if sealed and self._transit is not None and isinstance(result, msgspec.Struct):
            try:
                return self._transit.open(result)
            except TransitError as e:
                log.error("a %s reply does not open: %s", command.TYPE, e)
                raise BackendError(errors.INTERNAL, "the reply could not be read") from e
        return result


def unwrap(reply: Reply[Any]) -> Any:
    """The result of an ``ok`` reply; a failed one raised as :class:`BackendError`."""
    if reply.ok:
        return reply.result
    info = reply.error
    if info is None:
        raise BackendError(errors.INTERNAL, "the service failed without saying why")
    raise BackendError(str(info.code), info.message, retry_after=info.retry_after, field=info.field)


def _with_client(command: Command, ctx: RequestContext) -> Command:
    """Fill an auth command's ``client`` with what the gateway knows, unless already set."""
    if "client" not in command.__struct_fields__:
        return command
    current = getattr(command, "client", None)
    if isinstance(current, ClientInfo) and current != ClientInfo():
        return command
    return msgspec.structs.replace(command, client=ctx.client_info())
