"""The delivery queue: a partitioned Redis stream private to this service.

``notification.delivery`` is read only by this service's delivery workers, so it is declared
here rather than in the fleet registry (which holds only streams that cross services); the bus's
``Consumer`` and the service's outbox (``store/outbox.py``) take it through their ``stream_of``
hook. Partitioned by user id: one user's deliveries stay in order, a slow webhook holds up only
its own user. Jobs are written to the outbox with the notifications they deliver, and appended
after the commit.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from contracts import notification as wire
from contracts.base import Event, Id, Message
from contracts.topology import StreamSpec
from notification.domain.delivery import DeliveryJob
from notification.store.wire import from_wire, to_wire

DELIVERY_STREAM = StreamSpec(
    name="notification.delivery",
    owner="notification",
    partitions=8,
    max_len=200_000,
    max_age_s=86_400,
    description="notification -> its delivery workers (in-app, log, webhook)",
)


class DeliveryRequested(Event, frozen=True, kw_only=True):
    """Deliver one notification on one channel."""

    TYPE: ClassVar[str] = "notification.delivery_requested"
    STREAM: ClassVar[str] = DELIVERY_STREAM.name
    KEY: ClassVar[str | None] = "user_id"

    user_id: Id
    channel: Literal["in_app", "log", "webhook"]
    notification: wire.Notification
    webhook_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None

    @classmethod
    def of(cls, job: DeliveryJob) -> DeliveryRequested:
        """The entry that carries ``job``."""
        return cls(
            user_id=job.notification.user_id,
            channel=job.channel,
            notification=to_wire(job.notification),
            webhook_url=job.webhook_url,
        )

    def job(self) -> DeliveryJob:
        """The domain job this entry carries."""
        return DeliveryJob(
            notification=from_wire(self.notification),
            channel=self.channel,
            webhook_url=self.webhook_url,
        )


def delivery_stream_of(cls: type[Message]) -> StreamSpec:
    """``stream_of`` hook for the bus: the delivery stream for DeliveryRequested."""
    if cls is not DeliveryRequested:
        raise LookupError(f"{cls.__name__} does not travel on the delivery queue")
    return DELIVERY_STREAM
