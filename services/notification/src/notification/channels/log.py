"""The log channel: one structured log line per notification (a real sink for operators/dev)."""

from __future__ import annotations

import logging
from typing import ClassVar

from notification.domain.delivery import ChannelName, DeliveryJob

log = logging.getLogger("notification.outbound")


class LogChannel:
    """Writes each notification to the ``notification.outbound`` logger."""

    name: ClassVar[ChannelName] = "log"

    def __init__(self, logger: logging.Logger = log) -> None:
        self._log = logger

    async def send(self, job: DeliveryJob) -> int:
        """Log the notification; never fails."""
        n = job.notification
        self._log.info(
            "notify user=%s kind=%s conversation=%s count=%d id=%s preview=%r",
            n.user_id,
            n.kind,
            n.conversation_id,
            n.count,
            n.id,
            n.preview,
        )
        return 1
