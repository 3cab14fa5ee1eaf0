"""Where a notification goes, and how long to wait between delivery attempts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from notification.domain.deciding import Verdict
from notification.domain.notifications import Notification
from notification.domain.preferences import UserSettings

ChannelName = Literal["in_app", "log", "webhook"]


INSTANT_CHANNELS: frozenset[ChannelName] = frozenset({"in_app"})
"""Channels announced right after the commit rather than through the delivery queue."""


def channels_for(
    verdict: Verdict, settings: UserSettings, *, online: bool = False
) -> list[ChannelName]:
    """The channels of one notification: in-app always; outbound ones (log, webhook) only for a
    user who is offline and outside quiet hours. A connected user's devices get the in-app frame
    already; pushing the same notification outside would reach them twice."""
    if not verdict.notifies:
        return []
    channels: list[ChannelName] = ["in_app"]
    if verdict is Verdict.NOTIFY and not online:
        channels.append("log")
        if settings.webhook_url:
            channels.append("webhook")
    return channels


def backoff(attempt: int, *, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): base * 2^(n-1), capped."""
    return float(min(cap, base * 2 ** max(attempt - 1, 0)))


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryJob:
    """One notification to hand to one channel (an entry of the delivery queue)."""

    notification: Notification
    channel: ChannelName
    webhook_url: str | None = None

    @property
    def queued(self) -> bool:
        """Whether the job goes through the delivery queue (outbound channels) or is instant."""
        return self.channel not in INSTANT_CHANNELS
