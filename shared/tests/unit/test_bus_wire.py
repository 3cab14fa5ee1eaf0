"""Pure parts of the bus: entry layout, positions, provenance, the in-flight budget, context."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import ClassVar

import pytest

from contracts.base import DecodeError, Envelope, Event
from shared.bus import admin, context, wire
from shared.bus.budget import InFlightBudget
from shared.bus.deadletter import Provenance, original_fields
from shared.bus.handling import handler_table
from shared.service import logging as service_logging

pytestmark = pytest.mark.unit


class Posted(Event, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "bustest.posted"
    STREAM: ClassVar[str] = "bustest.events"
    KEY: ClassVar[str | None] = "conversation_id"

    conversation_id: str
    body: str


def test_an_entry_round_trips_and_is_keyed_by_its_partition_key() -> None:
    msg = Posted(conversation_id="c1", body="hi")
    env = Envelope.for_message(msg, producer="chat")
    fields = wire.entry_fields(env, msg)
    assert wire.decode_envelope(fields) == env
    decoded = wire.decode_payload(Posted, fields)
    delivery = wire.Delivery("1-0", 0, env, decoded)
    assert decoded == msg
    assert delivery.key == "c1"


@pytest.mark.parametrize(
    "fields",
    [
        {b"event": b"signup"},
        {wire.ENVELOPE: b"\xff\x00garbage", wire.PAYLOAD: b""},
    ],
)
def test_a_foreign_entry_raises_a_decode_error(fields: wire.Fields) -> None:
    with pytest.raises(DecodeError):
        wire.decode_envelope(fields)


def test_a_payload_of_the_wrong_shape_raises_a_decode_error() -> None:
    msg = Posted(conversation_id="c1", body="hi")
    fields = wire.entry_fields(Envelope.for_message(msg, producer="chat"), msg)
    fields[wire.PAYLOAD] = b"\x81\xa4body\x05"  # {"body": 5}
    with pytest.raises(DecodeError):
        wire.decode_payload(Posted, fields)


def test_positions_accept_ids_times_and_ages() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert admin.to_entry_id("1700000000000-5") == "1700000000000-5"
    assert admin.to_entry_id("1700000000000") == "1700000000000-0"
    assert admin.to_entry_id("2025-01-01T12:00:00Z") == f"{int(now.timestamp() * 1000)}-0"
    assert admin.to_entry_id("15m", now=now) == f"{int(now.timestamp() * 1000) - 900_000}-0"
    with pytest.raises(ValueError, match="isoformat"):
        admin.to_entry_id("yesterday-ish")


def test_provenance_survives_the_dead_letter_fields_and_is_stripped_on_redrive() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    prov = Provenance(
        stream="chat.events",
        partition=3,
        entry_id="1-2",
        group="notification",
        error="ValueError: boom",
        attempts=5,
        first_failure=at,
        last_failure=at,
    )
    fields = {wire.ENVELOPE: b"e", **prov.fields()}
    assert Provenance.from_fields(fields) == prov
    assert original_fields(fields) == {wire.ENVELOPE: b"e"}


async def test_the_budget_bounds_messages_in_flight() -> None:
    budget = InFlightBudget(10)
    assert await budget.take(8) == 8
    assert await budget.take(8) == 2
    waiter = asyncio.create_task(budget.take(5))
    await asyncio.sleep(0)
    assert not waiter.done()
    budget.give(3)
    assert await waiter == 3


async def test_the_budget_serves_waiters_first_come_first_served() -> None:
    budget = InFlightBudget(4)
    assert await budget.take(4) == 4
    waiter = asyncio.create_task(budget.take(4))
    await asyncio.sleep(0)
    budget.give(2)
    hog = asyncio.create_task(budget.take(4))  # asks again at once: must queue behind
    assert await waiter == 2
    await asyncio.sleep(0)
    assert not hog.done()
    budget.give(4)
    assert await hog == 4


def test_log_records_carry_the_ids_of_the_message_being_handled() -> None:
    msg = Posted(conversation_id="c1", body="hi")
    env = Envelope.for_message(msg, producer="chat")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "handled", (), None)
    with context.handling(env):
        assert context.current() is env
        assert service_logging.correlation_id.get() == env.correlation_id
        context.MessageContextFilter().filter(record)
    assert context.current() is None
    assert vars(record)["message_id"] == env.id
    assert vars(record)["correlation_id"] == env.correlation_id


def test_handlers_are_found_by_type_and_version() -> None:
    async def handle(msg: Posted, env: Envelope) -> None:
        return None

    assert handler_table({Posted: handle}) == {("bustest.posted", 1): handle}
