"""The webhook channel: an HTTP POST signed with HMAC-SHA256, retried with exponential backoff.

Signature (as Stripe and GitHub do it, so receivers know the shape): the header
``X-Parley-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``. Binding the
timestamp lets a receiver refuse replays older than a few minutes. ``X-Parley-Delivery`` carries
the notification id, so a receiver can drop a duplicate (a coalesced notification that grew is
delivered again with the same id and a larger count).

A 2xx is success. 408, 429 and 5xx and transport errors are retried; any other 4xx is final at
once (the receiver rejects it; retrying cannot help). After the last attempt the channel raises
DeliveryFailedError and the worker dead-letters the job.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import ClassVar

import httpx
import msgspec

from notification.domain.delivery import ChannelName, DeliveryJob, backoff
from notification.domain.errors import DeliveryFailedError
from notification.store.wire import to_wire

SIGNATURE_HEADER = "X-Parley-Signature"
DELIVERY_HEADER = "X-Parley-Delivery"
_RETRYABLE_4XX = {408, 425, 429}


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class WebhookChannel:
    """POSTs notifications to the user's webhook URL."""

    name: ClassVar[ChannelName] = "webhook"

    def __init__(
        self,
        *,
        secret: bytes,
        attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        timeout: float = 5.0,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._secret = secret
        self._attempts = attempts
        self._base = backoff_base
        self._cap = backoff_max
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._sleep = sleep

    async def send(self, job: DeliveryJob) -> int:
        """POST until a 2xx; returns the attempts it took or raises DeliveryFailedError."""
        if not job.webhook_url:
            raise DeliveryFailedError("no webhook URL", attempts=0)
        body = msgspec.json.encode(
            {"type": "notification.created", "notification": to_wire(job.notification)}
        )
        error = ""
        for attempt in range(1, self._attempts + 1):
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(self._secret, timestamp, body),
                DELIVERY_HEADER: job.notification.id,
            }
            try:
                response = await self._client.post(job.webhook_url, content=body, headers=headers)
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"
            else:
                if response.is_success:
                    return attempt
                error = f"HTTP {response.status_code}"
                if 400 <= response.status_code < 500 and response.status_code not in _RETRYABLE_4XX:
                    raise DeliveryFailedError(f"rejected: {error}", attempts=attempt)
            if attempt < self._attempts:
                await self._sleep(backoff(attempt, base=self._base, cap=self._cap))
        raise DeliveryFailedError(
            f"gave up after {self._attempts} attempts: {error}", attempts=self._attempts
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
