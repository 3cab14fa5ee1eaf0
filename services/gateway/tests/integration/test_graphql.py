"""GraphQL at /graphql against a real gateway, a real cluster and stand-in services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from contracts import user
from gateway.api.events import CACHE_GROUP, GatewayEvents
from gateway.api.graphql import build_schema
from gateway.handlers.invalidation import invalidation_handlers
from gateway.handlers.realtime_options import RealtimeOptions
from shared.bus import ConsumerSettings, Publisher

from .ws_harness import Gateway, running_gateway, uid

pytestmark = pytest.mark.integration

ME = "query Me { me { id displayName } }"


@pytest.fixture(scope="module")
async def gateway(redis_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(redis_url, RealtimeOptions()) as gw:
        events = GatewayEvents(
            gw.deps.runtime.redis,
            invalidation_handlers(gw.deps.responses),
            group=CACHE_GROUP,
            instance_id=gw.deps.instance_id,
            settings=ConsumerSettings(block_ms=50),
        )
        await events.start()
        try:
            yield gw
        finally:
            await events.stop()


def someone(gw: Gateway, name: str = "Ada") -> str:
    me = uid()
    gw.services.profiles[me] = user.Profile(user_id=me, username=me[:20], display_name=name)
    return me


async def ask(
    gw: Gateway, who: str, query: str, variables: dict[str, Any] | None = None
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gw.http_url) as client:
        return await client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {gw.mint.token(who)}"},
        )


def profile_reads(gw: Gateway, who: str) -> int:
    return sum(1 for c in gw.services.calls if isinstance(c, user.GetProfile) and c.user_id == who)


async def test_a_repeated_query_is_served_from_the_cache(gateway: Gateway) -> None:
    me = someone(gateway)
    first = await ask(gateway, me, ME)
    # The same document, formatted differently, is the same cached query.
    second = await ask(gateway, me, "query Me {\n  me {\n    id\n    displayName\n  }\n}")
    assert first.json() == second.json() == {"data": {"me": {"id": me, "displayName": "Ada"}}}
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert profile_reads(gateway, me) == 1


async def test_a_query_showing_notifications_is_never_cached(gateway: Gateway) -> None:
    me = someone(gateway)
    query = "query N { me { id } notifications { id } }"
    answers = [await ask(gateway, me, query) for _ in range(2)]
    assert [a.headers["x-cache"] for a in answers] == ["miss", "miss"]
    assert answers[1].json() == {"data": {"me": {"id": me}, "notifications": []}}
    assert profile_reads(gateway, me) == 2


async def test_results_are_cached_per_viewer(gateway: Gateway) -> None:
    ada, bob = someone(gateway, "Ada"), someone(gateway, "Bob")
    await ask(gateway, ada, ME)
    theirs = await ask(gateway, bob, ME)
    assert theirs.headers["x-cache"] == "miss"
    assert theirs.json()["data"]["me"]["displayName"] == "Bob"


async def test_an_event_about_a_contained_entity_invalidates_the_cached_result(
    gateway: Gateway,
) -> None:
    me = someone(gateway)
    await ask(gateway, me, ME)
    assert (await ask(gateway, me, ME)).headers["x-cache"] == "hit"
    renamed = user.Profile(user_id=me, username=me[:20], display_name="Ada L.")
    gateway.services.profiles[me] = renamed
    publisher = Publisher(gateway.deps.runtime.redis, producer="user")
    await publisher.publish(user.ProfileUpdated(user_id=me, profile=renamed))
    for _ in range(100):
        answer = await ask(gateway, me, ME)
        if answer.headers["x-cache"] == "miss":
            break
        await asyncio.sleep(0.05)
    assert answer.headers["x-cache"] == "miss"
    assert answer.json()["data"]["me"]["displayName"] == "Ada L."
    await publisher.aclose()


async def test_a_mutation_invalidates_the_viewers_cached_results_at_once(gateway: Gateway) -> None:
    me = someone(gateway)
    await ask(gateway, me, ME)
    changed = await ask(
        gateway,
        me,
        "mutation Rename($n: String!) { updateProfile(displayName: $n) { displayName } }",
        {"n": "Grace"},
    )
    assert changed.json() == {"data": {"updateProfile": {"displayName": "Grace"}}}
    after = await ask(gateway, me, ME)
    assert after.headers["x-cache"] == "miss"
    assert after.json()["data"]["me"]["displayName"] == "Grace"


async def test_a_user_that_does_not_exist_is_null(gateway: Gateway) -> None:
    me = someone(gateway)
    answer = await ask(gateway, me, "query U($id: ID!) { user(id: $id) { id } }", {"id": uid()})
    assert answer.json() == {"data": {"user": None}}


async def test_a_too_deep_query_is_refused_and_not_cached(gateway: Gateway) -> None:
    me = someone(gateway)
    nested = "{ conversations { lastMessage { id } } }"
    endpoint = gateway.app.state.graphql
    endpoint.schema = build_schema(max_depth=1)
    try:
        refused = await ask(gateway, me, nested)
        again = await ask(gateway, me, nested)
    finally:
        endpoint.schema = build_schema()
    assert "exceeds maximum operation depth" in refused.json()["errors"][0]["message"]
    assert refused.json()["data"] is None
    assert again.headers["x-cache"] == "miss"


async def test_a_request_without_a_valid_token_is_refused_with_401(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.http_url) as client:
        answer = await client.post("/graphql", json={"query": ME})
        forged = await client.post(
            "/graphql", json={"query": ME}, headers={"Authorization": "Bearer nope"}
        )
    assert answer.status_code == forged.status_code == 401
    assert answer.json()["errors"][0]["extensions"]["code"] == "unauthenticated"
