"""The transactional outbox on SQLite and PostgreSQL with the real cluster: no commit without its
event, no event without its commit, and the relay's recovery after a crash or a failed append."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
from sqlalchemy import Column, MetaData, String, Table, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.base import Event
from contracts.topology import StreamSpec
from shared.bus import Publisher, wire
from shared.bus.testing import RefusingPublisher
from shared.outbox import Outbox, outbox_table
from shared.redis.client import AnyRedis, RedisSettings, create_client
from shared.service.database import Database

pytestmark = pytest.mark.integration


class Changed(Event, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "outboxtest.changed"
    STREAM: ClassVar[str] = "outboxtest.events"
    KEY: ClassVar[str | None] = "key"

    key: str
    n: int


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[AnyRedis]:
    c = await create_client(RedisSettings(url=redis_url))
    yield c
    await c.aclose()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[tuple[AsyncEngine, Table, Table]]:
    metadata = MetaData()
    table = outbox_table(metadata)
    things = Table("things", metadata, Column("id", String(64), primary_key=True))
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database.engine, table, things
    await database.close()


def new_spec() -> StreamSpec:
    owner = f"t{uuid.uuid4().hex[:10]}"
    return StreamSpec(name=f"{owner}.events", owner=owner, partitions=4, max_len=1000)


def make(
    client: AnyRedis, db: tuple[AsyncEngine, Table, Table], spec: StreamSpec, **kw: Any
) -> Outbox:
    engine, table, _ = db
    publisher = kw.pop("publisher", None) or Publisher(
        client, producer="outboxtest", stream_of=lambda _: spec
    )
    return Outbox(engine, table, publisher, stream_of=lambda _: spec, **kw)


async def appended(client: AnyRedis, spec: StreamSpec, key: str) -> list[tuple[str, int]]:
    rows: Any = await client.xrange(spec.key_for(key))
    out = []
    for _, fields in rows:
        payload = wire.decode_payload(Changed, fields)
        assert isinstance(payload, Changed)
        out.append((wire.decode_envelope(fields).id, payload.n))
    return out


async def test_committed_events_are_appended_in_order_and_their_rows_forgotten(
    client: AnyRedis, db: tuple[AsyncEngine, Table, Table]
) -> None:
    spec = new_spec()
    outbox = make(client, db, spec)
    engine, _, things = db
    staged = [outbox.stage(Changed(key="k1", n=i)) for i in range(5)]
    async with engine.begin() as conn:
        await conn.execute(insert(things).values(id="a"))
        await outbox.write(conn, staged)
    assert await outbox.count() == 5
    assert await outbox.send(staged)
    got = await appended(client, spec, "k1")
    assert [n for _, n in got] == [0, 1, 2, 3, 4]
    assert [i for i, _ in got] == [s.message_id for s in staged]
    assert await outbox.forget_sent() == 5
    assert await outbox.count() == 0


async def test_a_rolled_back_change_leaves_no_event(
    client: AnyRedis, db: tuple[AsyncEngine, Table, Table]
) -> None:
    spec = new_spec()
    outbox = make(client, db, spec, relay_after=0.0)
    engine, _, things = db
    async with engine.begin() as conn:
        await conn.execute(insert(things).values(id="b"))

    async def change_with_event() -> None:
        async with engine.begin() as conn:
            await outbox.write(conn, [outbox.stage(Changed(key="k2", n=1))])
            await conn.execute(insert(things).values(id="b"))

    with pytest.raises(IntegrityError):  # the change fails: its event goes with it
        await change_with_event()
    assert await outbox.count() == 0
    assert await outbox.relay_once() == 0
    assert await appended(client, spec, "k2") == []


async def test_the_relay_appends_what_a_crash_left_after_the_commit_once_and_in_order(
    client: AnyRedis, db: tuple[AsyncEngine, Table, Table]
) -> None:
    spec = new_spec()
    engine, _, _ = db
    crashed = make(client, db, spec)
    staged = [crashed.stage(Changed(key="k3", n=i)) for i in range(3)]
    async with engine.begin() as conn:
        await crashed.write(conn, staged)
    # The process died here: no send. Another instance's relay finds the rows once they are old.
    survivor = make(client, db, spec, relay_after=3600.0)
    assert await survivor.relay_once() == 0  # not old enough yet: the writer may still send them
    survivor.relay_after = 0.0
    assert await survivor.relay_once() == 3
    assert await appended(client, spec, "k3") == [(s.message_id, n) for n, s in enumerate(staged)]
    assert await survivor.count() == 0
    assert await survivor.relay_once() == 0  # forgotten: never appended twice by the relay


async def test_a_failed_append_keeps_the_row_and_the_relay_appends_it_later(
    client: AnyRedis, db: tuple[AsyncEngine, Table, Table]
) -> None:
    spec = new_spec()
    engine, _, _ = db
    refusing = make(
        client,
        db,
        spec,
        publisher=RefusingPublisher(client, producer="outboxtest"),
        relay_after=0.0,
    )
    staged = refusing.stage(Changed(key="k4", n=7))
    async with engine.begin() as conn:
        await refusing.write(conn, [staged])
    assert await refusing.send([staged]) is False  # no raise: the change stands, the row stays
    assert await refusing.forget_sent() == 0
    assert [s.message_id for s in await refusing.pending()] == [staged.message_id]
    with pytest.raises(ConnectionError):  # Redis still refuses: the relay keeps the row
        await refusing.relay_once()
    assert await refusing.count() == 1
    recovered = make(client, db, spec, relay_after=0.0)  # Redis is back
    assert await recovered.relay_once() == 1
    assert await appended(client, spec, "k4") == [(staged.message_id, 7)]
    assert await recovered.count() == 0


async def test_an_event_appended_twice_keeps_its_message_id(
    client: AnyRedis, db: tuple[AsyncEngine, Table, Table]
) -> None:
    spec = new_spec()
    engine, _, _ = db
    first = make(client, db, spec)
    staged = first.stage(Changed(key="k5", n=1))
    async with engine.begin() as conn:
        await first.write(conn, [staged])
    assert await first.send([staged])
    # The instance died before forgetting the row; another relays it again.
    assert await make(client, db, spec, relay_after=0.0).relay_once() == 1
    got = await appended(client, spec, "k5")
    assert [i for i, _ in got] == [staged.message_id, staged.message_id]


async def test_the_background_task_relays_and_forgets_until_stopped(
    client: AnyRedis, db: tuple[AsyncEngine, Table, Table]
) -> None:
    spec = new_spec()
    engine, _, _ = db
    outbox = make(client, db, spec, relay_after=0.0, relay_interval=0.05, forget_interval=0.05)
    staged = outbox.stage(Changed(key="k6", n=2))
    async with engine.begin() as conn:
        await outbox.write(conn, [staged])
    outbox.start()
    try:
        for _ in range(100):
            if await outbox.count() == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        await outbox.stop()
    assert await outbox.count() == 0
    assert await appended(client, spec, "k6") == [(staged.message_id, 2)]


async def test_partitions_the_outbox_appends_to_are_trimmed_to_the_streams_retention(
    client: AnyRedis, db: tuple[AsyncEngine, Table, Table]
) -> None:
    owner = f"t{uuid.uuid4().hex[:10]}"
    spec = StreamSpec(name=f"{owner}.events", owner=owner, partitions=1, max_len=5)
    publisher = Publisher(client, producer="outboxtest", trim_interval=0.0)
    outbox = make(client, db, spec, publisher=publisher)
    engine, _, _ = db
    for n in range(20):
        staged = outbox.stage(Changed(key="k7", n=n))
        async with engine.begin() as conn:
            await outbox.write(conn, [staged])
        assert await outbox.send([staged])
    await publisher.aclose()  # waits for the trims the appends started
    assert [n for _, n in await appended(client, spec, "k7")] == [15, 16, 17, 18, 19]


async def test_a_transactions_events_are_one_row_and_keep_their_order(
    client: AnyRedis, db: tuple[AsyncEngine, Table, Table]
) -> None:
    spec = new_spec()
    engine, table, _ = db
    outbox = make(client, db, spec, relay_after=0.0)
    fan_out = [outbox.stage(Changed(key=f"u{n % 7}", n=n)) for n in range(200)]
    async with engine.begin() as conn:
        await outbox.write(conn, fan_out)
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(table))).scalar_one() == 1
    assert await outbox.count() == 200
    assert [(s.message_id, s.key) for s in await outbox.pending()] == [
        (s.message_id, s.key) for s in fan_out
    ]
    assert await outbox.relay_once() == 200  # as if the writer had died before its send
    for k in range(7):  # several keys share a partition: each key's events in staging order
        rows: Any = await client.xrange(spec.key_for(f"u{k}"))
        got = [wire.decode_payload(Changed, fields) for _, fields in rows]
        mine = [c.n for c in got if isinstance(c, Changed) and c.key == f"u{k}"]
        assert mine == [n for n in range(200) if n % 7 == k]
    assert await outbox.count() == 0
