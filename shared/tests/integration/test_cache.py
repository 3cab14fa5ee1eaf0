"""Cache-aside on the real cluster: one loader per cold key, misses, invalidation, early refresh."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest

from shared.cache import Cache, bypass_cache, cached
from shared.keys import KeyGrammarError, KeySpace
from shared.redis.client import AnyRedis, RedisSettings, create_client
from shared.ttl import TtlRule

pytestmark = pytest.mark.integration

RULE = TtlRule(ttl=60, jitter=0.1, negative_ttl=5)


class Profile(msgspec.Struct, frozen=True):
    user_id: str
    name: str


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[AnyRedis]:
    client = await create_client(RedisSettings(url=redis_url))
    yield client
    await client.aclose()


@pytest.fixture
def keyspace() -> KeySpace:
    return KeySpace(f"t{uuid.uuid4().hex[:8]}")


class CountingLoader:
    def __init__(self, *, delay: float = 0.0, result: Profile | None = None) -> None:
        self.calls = 0
        self.delay = delay
        self.result = result

    async def __call__(self) -> Profile | None:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return self.result


async def test_a_hit_is_served_without_the_loader(client: AnyRedis, keyspace: KeySpace) -> None:
    cache = Cache(client, keyspace, "profile", Profile, rule=RULE)
    loader = CountingLoader(result=Profile("u1", "Ada"))
    assert await cache.get_or_load("u1", loader) == Profile("u1", "Ada")
    assert await cache.get_or_load("u1", loader) == Profile("u1", "Ada")
    assert loader.calls == 1


async def test_a_hundred_concurrent_misses_call_the_loader_once(
    client: AnyRedis, keyspace: KeySpace
) -> None:
    cache = Cache(client, keyspace, "profile", Profile, rule=RULE)
    loader = CountingLoader(delay=0.1, result=Profile("u1", "Ada"))
    results = await asyncio.gather(*(cache.get_or_load("u1", loader) for _ in range(100)))
    assert results == [Profile("u1", "Ada")] * 100
    assert loader.calls == 1


async def test_one_loader_per_key_across_processes(redis_url: str, keyspace: KeySpace) -> None:
    # Two clients and two caches stand for two processes: only the Redis lock is shared.
    clients = [await create_client(RedisSettings(url=redis_url)) for _ in range(2)]
    try:
        caches = [Cache(c, keyspace, "profile", Profile, rule=RULE) for c in clients]
        loaders = [CountingLoader(delay=0.2, result=Profile("u1", "Ada")) for _ in caches]
        results = await asyncio.gather(
            *(caches[i % 2].get_or_load("u1", loaders[i % 2]) for i in range(100))
        )
        assert results == [Profile("u1", "Ada")] * 100
        assert loaders[0].calls + loaders[1].calls == 1
    finally:
        for c in clients:
            await c.aclose()


async def test_without_the_stampede_lock_each_process_loads_once_and_takes_no_lock(
    redis_url: str, keyspace: KeySpace
) -> None:
    clients = [await create_client(RedisSettings(url=redis_url)) for _ in range(2)]
    try:
        caches = [
            Cache(c, keyspace, "profile", Profile, rule=RULE, stampede_lock=False) for c in clients
        ]
        loaders = [CountingLoader(delay=0.2, result=Profile("u1", "Ada")) for _ in caches]
        pending = [caches[i % 2].get_or_load("u1", loaders[i % 2]) for i in range(100)]
        await asyncio.sleep(0)
        rkey = caches[0].key("u1", 0)
        results = await asyncio.gather(*pending)
        assert results == [Profile("u1", "Ada")] * 100
        assert [loader.calls for loader in loaders] == [1, 1]  # one load per process
        assert await clients[0].exists(f"{rkey}:lock") == 0
        assert await caches[1].get_or_load("u1", loaders[1]) == Profile("u1", "Ada")
        assert loaders[1].calls == 1  # stored: a hit
    finally:
        for c in clients:
            await c.aclose()


async def test_a_process_that_wins_the_lock_after_the_value_was_stored_does_not_load_again(
    redis_url: str, keyspace: KeySpace
) -> None:
    # Process B missed, then process A loaded, stored and released the lock, and only then did B
    # reach the election: B wins the lock but must serve A's value, not load a second time.
    clients = [await create_client(RedisSettings(url=redis_url)) for _ in range(2)]
    try:
        a, b = (Cache(c, keyspace, "profile", Profile, rule=RULE) for c in clients)
        first = CountingLoader(result=Profile("u1", "Ada"))
        late = CountingLoader(result=Profile("u1", "Stale"))
        assert await a.get_or_load("u1", first) == Profile("u1", "Ada")
        rkey = b.key("u1", 0)
        assert await b._load_across_processes(rkey, late, ()) == Profile("u1", "Ada")
        assert late.calls == 0
        assert await clients[0].exists(f"{rkey}:lock") == 0  # the lock B took is released
    finally:
        for c in clients:
            await c.aclose()


async def test_a_corrupt_cached_value_reads_as_a_miss_and_is_replaced(
    client: AnyRedis, keyspace: KeySpace
) -> None:
    cache = Cache(client, keyspace, "profile", Profile, rule=RULE)
    await client.set(cache.key("u1", 0), b"\x10\xc1garbage")
    loader = CountingLoader(result=Profile("u1", "Ada"))
    assert await cache.get_or_load("u1", loader) == Profile("u1", "Ada")
    assert loader.calls == 1
    assert await cache.get_or_load("u1", loader) == Profile("u1", "Ada")
    assert loader.calls == 1


async def test_absence_is_cached_with_the_shorter_negative_ttl(
    client: AnyRedis, keyspace: KeySpace
) -> None:
    cache = Cache(client, keyspace, "profile", Profile, rule=RULE)
    loader = CountingLoader(result=None)
    assert await cache.get_or_load("ghost", loader) is None
    assert await cache.get_or_load("ghost", loader) is None
    assert loader.calls == 1
    assert 0 < await client.pttl(cache.key("ghost", 0)) <= 5_500


async def test_entries_carry_a_jittered_ttl(client: AnyRedis, keyspace: KeySpace) -> None:
    cache = Cache(client, keyspace, "profile", Profile, rule=RULE)
    for i in range(10):
        await cache.set(f"u{i}", Profile(f"u{i}", "x"))
    ttls = {await client.pttl(cache.key(f"u{i}", 0)) for i in range(10)}
    assert all(53_000 <= t <= 66_000 for t in ttls) and len(ttls) > 1


async def test_invalidation_by_key(client: AnyRedis, keyspace: KeySpace) -> None:
    cache = Cache(client, keyspace, "profile", Profile, rule=RULE)
    loader = CountingLoader(result=Profile("u1", "Ada"))
    await cache.get_or_load("u1", loader)
    await cache.delete("u1")
    await cache.get_or_load("u1", loader)
    assert loader.calls == 2


async def test_invalidation_by_tag_reaches_every_namespace(
    client: AnyRedis, keyspace: KeySpace
) -> None:
    profiles = Cache(client, keyspace, "profile", Profile, rule=RULE)
    contacts = Cache(client, keyspace, "contacts", Profile, rule=RULE)
    loader = CountingLoader(result=Profile("u1", "Ada"))
    await profiles.get_or_load("u1", loader, tags=["user:u1"])
    await contacts.get_or_load("u1", loader, tags=["user:u1"])
    await profiles.get_or_load("u2", loader, tags=["user:u2"])
    assert await profiles.invalidate_tag("user:u1") == 2
    for cache in (profiles, contacts, profiles):
        await cache.get_or_load("u1", loader)
    assert loader.calls == 5  # u1 reloaded in both namespaces, then a hit
    await profiles.get_or_load("u2", loader)
    assert loader.calls == 5  # u2 was not tagged user:u1


async def test_invalidation_by_namespace_generation(client: AnyRedis, keyspace: KeySpace) -> None:
    cache = Cache(client, keyspace, "profile", Profile, rule=RULE)
    other = Cache(client, keyspace, "contacts", Profile, rule=RULE)
    loader = CountingLoader(result=Profile("u1", "Ada"))
    for key in ("u1", "u2"):
        await cache.get_or_load(key, loader)
    await other.get_or_load("u1", loader)
    assert await cache.invalidate_namespace() == 1
    for key in ("u1", "u2"):
        await cache.get_or_load(key, loader)
    await other.get_or_load("u1", loader)
    assert loader.calls == 5  # both profile keys reloaded, the other namespace untouched


async def test_an_entry_is_refreshed_early_before_it_expires(
    client: AnyRedis, keyspace: KeySpace
) -> None:
    # A slow loader (delta 0.3 s) and a large beta make XFetch refresh well before the 2 s TTL.
    cache = Cache(client, keyspace, "profile", Profile, rule=TtlRule(ttl=2, jitter=0), beta=20.0)
    loader = CountingLoader(delay=0.3, result=Profile("u1", "Ada"))
    await cache.get_or_load("u1", loader)
    first_ttl = await client.pttl(cache.key("u1", 0))
    for _ in range(20):
        assert await cache.get_or_load("u1", loader) == Profile("u1", "Ada")  # never a miss
        if loader.calls == 2:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # let the background refresh store its value
    assert loader.calls == 2
    assert await client.pttl(cache.key("u1", 0)) > first_ttl - 300  # the TTL was renewed


async def test_the_decorator_caches_functions_and_methods(
    client: AnyRedis, keyspace: KeySpace
) -> None:
    cache = Cache(client, keyspace, "profile", Profile, rule=RULE)
    calls: list[str] = []

    class Store:
        @cached(cache, tags=lambda self, user_id: [f"user:{user_id}"])
        async def profile(self, user_id: str) -> Profile | None:
            calls.append(user_id)
            return Profile(user_id, "Ada")

    @cached(cache, key=lambda user_id: f"fn:{user_id}")
    async def load(user_id: str) -> Profile | None:
        calls.append(user_id)
        return Profile(user_id, "Bob")

    store = Store()
    assert await store.profile("u1") == await store.profile("u1") == Profile("u1", "Ada")
    assert await load("u1") == await load("u1") == Profile("u1", "Bob")
    assert calls == ["u1", "u1"]
    await cache.invalidate_tag("user:u1")
    await store.profile("u1")
    assert calls == ["u1", "u1", "u1"]


async def test_the_bypass_switch_sends_calls_to_the_loader(
    client: AnyRedis, keyspace: KeySpace
) -> None:
    cache = Cache(client, keyspace, "profile", Profile, rule=RULE)
    loader = CountingLoader(result=Profile("u1", "Ada"))
    await cache.get_or_load("u1", loader)
    with bypass_cache():
        await cache.get_or_load("u1", loader)
    cache.enabled = False
    await cache.get_or_load("u1", loader)
    assert loader.calls == 3


async def test_a_failing_loader_fails_every_waiter_and_releases_the_lock(
    client: AnyRedis, keyspace: KeySpace
) -> None:
    cache = Cache(client, keyspace, "profile", Profile, rule=RULE)

    async def broken() -> Profile | None:
        await asyncio.sleep(0.05)
        raise RuntimeError("database down")

    results = await asyncio.gather(
        *(cache.get_or_load("u1", broken) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await client.exists(cache.key("u1", 0) + ":lock") == 0


def test_cache_keys_follow_the_key_grammar(client: AnyRedis, keyspace: KeySpace) -> None:
    cache = Cache(client, keyspace, "profile", Profile, rule=RULE)
    assert cache.key("u1", 7) == keyspace.key("cache", tag="profile:u1", rest="g7")
    with pytest.raises(KeyGrammarError):
        cache.key("u{1}", 0)


async def test_with_redis_unreachable_reads_come_from_the_loader_and_log_one_line(
    keyspace: KeySpace, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = await create_client(
        RedisSettings(url=f"redis://127.0.0.1:{port}", cluster=False, retry_attempts=0)
    )
    cache = Cache(down, keyspace, "profile", Profile, rule=RULE)
    loader = CountingLoader(result=Profile("u1", "Ada"))
    try:
        with caplog.at_level("INFO", logger="shared.cache.core"):
            for _ in range(20):
                assert await cache.get_or_load("u1", loader) == Profile("u1", "Ada")
    finally:
        await down.aclose()
    assert loader.calls == 20
    lines = [r.getMessage() for r in caplog.records if r.name == "shared.cache.core"]
    assert len(lines) == 1, lines
    assert "unavailable" in lines[0] and "profile" in lines[0]
