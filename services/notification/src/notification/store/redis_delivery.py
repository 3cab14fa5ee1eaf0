"""The delivery queue: ``notification.delivery``, the service's own partitioned stream.

Only this service's delivery workers read it; it is declared in the fleet registry with its
message (``contracts.notification.DeliveryRequested``) so that the operator tools (``parley
events``: tail, dead letters, redrive), the ACLs and the AsyncAPI document know it. Partitioned by
user id: one user's deliveries stay in order, a slow webhook holds up only its own user. Jobs are
written to the outbox with the notifications they deliver, and appended after the commit.
"""

from __future__ import annotations

from contracts import registry
from contracts.notification import DELIVERY, DeliveryRequested
from notification.domain.delivery import DeliveryJob
from notification.store.wire import from_wire, to_wire

__all__ = ["DELIVERY_STREAM", "DeliveryRequested", "entry_of", "job_of"]

DELIVERY_STREAM = registry.stream(DELIVERY)


def entry_of(job: DeliveryJob) -> DeliveryRequested:
    """The stream entry that carries ``job``."""
    return DeliveryRequested(
        user_id=job.notification.user_id,
        channel=job.channel,
        notification=to_wire(job.notification),
        webhook_url=job.webhook_url,
    )


def job_of(entry: DeliveryRequested) -> DeliveryJob:
    """The domain job an entry carries."""
    return DeliveryJob(
        notification=from_wire(entry.notification),
        channel=entry.channel,
        webhook_url=entry.webhook_url,
    )
