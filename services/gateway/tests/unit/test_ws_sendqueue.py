"""The send queue's drop policy: typing and presence go first, essential frames never silently."""

from __future__ import annotations

import pytest

from gateway.domain.sendqueue import Offer, SendQueue

pytestmark = pytest.mark.unit


def drain(queue: SendQueue) -> list[str]:
    out = []
    while (item := queue.pop()) is not None:
        out.append(item.text)
    return out


def test_frames_leave_in_the_order_they_were_queued() -> None:
    queue = SendQueue(10)
    for text, droppable in [("m1", False), ("t1", True), ("m2", False)]:
        assert queue.offer(text, droppable=droppable) is Offer.QUEUED
    assert drain(queue) == ["m1", "t1", "m2"]


def test_droppable_frames_are_refused_once_the_queue_is_half_full() -> None:
    queue = SendQueue(4)
    queue.offer("m1", droppable=False)
    queue.offer("m2", droppable=False)
    assert queue.offer("t1", droppable=True) is Offer.DROPPED
    assert queue.offer("m3", droppable=False) is Offer.QUEUED
    assert queue.dropped == 1
    assert drain(queue) == ["m1", "m2", "m3"]


def test_an_essential_frame_evicts_the_oldest_droppable_one_when_full() -> None:
    queue = SendQueue(3, droppable_limit=3)
    queue.offer("t1", droppable=True)
    queue.offer("m1", droppable=False)
    queue.offer("t2", droppable=True)
    assert queue.offer("m2", droppable=False) is Offer.QUEUED
    assert drain(queue) == ["m1", "t2", "m2"]
    assert queue.dropped == 1


def test_a_queue_full_of_essential_frames_overflows() -> None:
    queue = SendQueue(2)
    queue.offer("m1", droppable=False)
    queue.offer("m2", droppable=False)
    assert queue.offer("m3", droppable=False) is Offer.OVERFLOW
    assert drain(queue) == ["m1", "m2"]
