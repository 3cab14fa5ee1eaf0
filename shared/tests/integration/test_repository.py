"""The typed repository: entities stored with the service's TTL policy, read in bulk per slot."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest

from shared.codec import CodecError
from shared.keys import KeySpace, slot_of
from shared.redis.client import AnyRedis, RedisSettings, create_client
from shared.repository import Repository
from shared.ttl import TtlPolicy, TtlRule, UnknownEntityError

pytestmark = pytest.mark.integration

POLICY = TtlPolicy({"presence": TtlRule(ttl=60, jitter=0.2)})


class Presence(msgspec.Struct, frozen=True):
    state: str
    devices: int = 1


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[AnyRedis]:
    client = await create_client(RedisSettings(url=redis_url))
    yield client
    await client.aclose()


@pytest.fixture
def repo(client: AnyRedis) -> Repository[Presence]:
    keyspace = KeySpace(f"t{uuid.uuid4().hex[:8]}")
    return Repository(client, keyspace, "presence", Presence, policy=POLICY)


async def test_a_stored_entity_reads_back_typed(repo: Repository[Presence]) -> None:
    await repo.set("u1", Presence("online", devices=2))
    assert await repo.get("u1") == Presence("online", devices=2)
    assert await repo.get("u2") is None


async def test_every_write_gets_a_jittered_ttl_from_the_policy(
    repo: Repository[Presence], client: AnyRedis
) -> None:
    ids = [f"u{i}" for i in range(20)]
    await repo.set_many({i: Presence("online") for i in ids})
    ttls = [await client.pttl(repo.key(i)) for i in ids]
    assert all(47_000 <= t <= 72_000 for t in ttls)
    assert len(set(ttls)) > 1


async def test_get_many_spans_slots_and_leaves_out_the_absent(repo: Repository[Presence]) -> None:
    ids = [f"u{i}" for i in range(30)]
    assert len({slot_of(repo.key(i)) for i in ids}) > 3  # really several slots
    await repo.set_many({i: Presence(f"s{i}") for i in ids[:20]})
    found = await repo.get_many([*ids, "u1"])
    assert found == {i: Presence(f"s{i}") for i in ids[:20]}


async def test_delete_removes_entities_across_slots(repo: Repository[Presence]) -> None:
    await repo.set_many({"a": Presence("x"), "b": Presence("y"), "c": Presence("z")})
    assert await repo.delete("a", "b", "missing") == 2
    assert await repo.get_many(["a", "b", "c"]) == {"c": Presence("z")}


async def test_a_corrupt_entity_is_an_error_the_caller_sees(
    repo: Repository[Presence], client: AnyRedis
) -> None:
    await client.set(repo.key("u1"), b"garbage")
    with pytest.raises(CodecError):
        await repo.get("u1")


def test_an_entity_without_a_ttl_rule_is_refused_at_construction(client: AnyRedis) -> None:
    with pytest.raises(UnknownEntityError):
        Repository(client, KeySpace("svc"), "sessions", Presence, policy=POLICY)
