"""The webhook channel: an HTTP POST signed per Standard Webhooks, retried with backoff.

Signature (https://www.standardwebhooks.com): headers ``webhook-id`` (the notification id and its
count: a coalesced notification that grew is a new message, a retry is not), ``webhook-timestamp``
(unix seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>``,
where the key is the user's own secret (``whsec_<base64 key>``, shown to them once).

Every attempt goes through the SSRF guard again (:mod:`notification.channels.destinations`): the
host is resolved, every address checked, and the request connects to the checked address with
the original ``Host`` header and TLS server name (no DNS rebinding, no proxy from the
environment). Redirects are not followed, and at most ``max_response`` bytes of an answer are
read.

A 2xx is success. 408, 425, 429, 5xx and transport errors are retried; any other status
(3xx included) is final at once, as is a destination the guard refuses; a host that does not
resolve is retried. After the last attempt
the channel raises DeliveryFailedError and the worker dead-letters the job.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import ClassVar

import httpx
import msgspec

from notification.channels.destinations import WebhookGuard
from notification.domain.delivery import ChannelName, DeliveryJob, backoff
from notification.domain.errors import (
    DeliveryFailedError,
    UnresolvedWebhookError,
    UnsafeWebhookError,
)
from notification.store.wire import to_wire
from shared import tracing

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
_RETRYABLE_4XX = {408, 425, 429}

KeyOf = Callable[[str], Awaitable[bytes | None]]
"""A user id to the raw key of their webhook secret (None: they have none)."""


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of ``body`` (Standard Webhooks, version 1)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    mac = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class _FinalError(Exception):
    """An answer that retrying cannot change."""


class WebhookChannel:
    """POSTs notifications to the user's webhook URL."""

    name: ClassVar[ChannelName] = "webhook"

    def __init__(
        self,
        *,
        guard: WebhookGuard,
        key_of: KeyOf,
        attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        timeout: float = 5.0,
        max_response: int = 64 * 1024,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._guard = guard
        self._key_of = key_of
        self._attempts = attempts
        self._base = backoff_base
        self._cap = backoff_max
        self._max_response = max_response
        # trust_env=False: a proxy from the environment would resolve the name itself.
        self._client = client or httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False
        )
        self._sleep = sleep

    async def send(self, job: DeliveryJob) -> int:
        """POST until a 2xx; returns the attempts it took or raises DeliveryFailedError."""
        if not job.webhook_url:
            raise DeliveryFailedError("no webhook URL", attempts=0)
        key = await self._key_of(job.notification.user_id)
        if key is None:
            raise DeliveryFailedError("no webhook secret", attempts=0)
        body = msgspec.json.encode(
            {"type": "notification.created", "notification": to_wire(job.notification)}
        )
        message_id = f"{job.notification.id}.{job.notification.count}"
        error = ""
        for attempt in range(1, self._attempts + 1):
            try:
                error = await self._attempt(job.webhook_url, key, message_id, body)
            except UnsafeWebhookError as e:
                raise DeliveryFailedError(f"refused destination: {e}", attempts=attempt) from e
            except _FinalError as e:
                raise DeliveryFailedError(f"rejected: {e}", attempts=attempt) from e
            if not error:
                return attempt
            if attempt < self._attempts:
                await self._sleep(backoff(attempt, base=self._base, cap=self._cap))
        raise DeliveryFailedError(
            f"gave up after {self._attempts} attempts: {error}", attempts=self._attempts
        )

    async def _attempt(self, url: str, key: bytes, message_id: str, body: bytes) -> str:
        """One POST: "" on success, the error of a retryable failure; raises when final."""
        try:
            destination = await self._guard.destination(url)  # again: resolution may change
        except UnresolvedWebhookError as e:
            return str(e)  # DNS may fail for a while: retried like a transport error
        timestamp = int(time.time())
        headers = {
            "Host": destination.host_header,
            "Content-Type": "application/json",
            ID_HEADER: message_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(key, message_id, timestamp, body),
        }
        extensions = {"sni_hostname": destination.server_name} if destination.server_name else {}
        with tracing.span(
            "POST webhook",
            kind="client",
            # The host only: a webhook URL's path and query may hold the receiver's secrets.
            attributes={"http.request.method": "POST", "server.address": destination.host_header},
        ) as span:
            if span is not None and (traceparent := tracing.format_traceparent(span)):
                headers["traceparent"] = traceparent
            try:
                async with self._client.stream(
                    "POST", destination.url, content=body, headers=headers, extensions=extensions
                ) as response:
                    await self._drain(response)
            except httpx.HTTPError as e:
                tracing.record_error(e)
                return f"{type(e).__name__}: {e}"
            if span is not None:
                span.set_attribute("http.response.status_code", response.status_code)
                if not response.is_success:
                    tracing.record_error(_FinalError(f"HTTP {response.status_code}"))
        status = response.status_code
        if response.is_success:
            return ""
        if response.is_redirect:
            raise _FinalError(f"HTTP {status} (redirects are not followed)")
        if status < 500 and status not in _RETRYABLE_4XX:
            raise _FinalError(f"HTTP {status}")
        return f"HTTP {status}"

    async def _drain(self, response: httpx.Response) -> None:
        # The answer is not used; read a bounded amount so the connection can be reused, and
        # stop there (leaving the stream closes it): a receiver cannot make us read forever.
        read = 0
        async for chunk in response.aiter_raw():
            read += len(chunk)
            if read >= self._max_response:
                break

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
