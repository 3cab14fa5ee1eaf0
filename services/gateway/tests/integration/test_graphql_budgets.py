"""GraphQL spends the same per-user and per-address budgets as REST, by its queries' cost."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.handlers.realtime_options import RealtimeOptions

from .ws_harness import Gateway, running_gateway, uid

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def gateway(redis_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(redis_url, RealtimeOptions()) as gw:
        yield gw


async def post(gw: Gateway, query: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=gw.http_url) as client:
        return await client.post("/graphql", json={"query": query}, headers=headers)


async def test_every_graphql_request_spends_the_users_budget(gateway: Gateway) -> None:
    token = gateway.mint.token(uid())
    first = await post(gateway, "{ __typename }", token)
    assert first.status_code == 200
    assert int(first.headers["RateLimit-Remaining"]) == int(first.headers["RateLimit-Limit"]) - 1


async def test_aliased_mutations_spend_one_request_each(gateway: Gateway) -> None:
    token = gateway.mint.token(uid())
    marks = " ".join(f'm{i}: markRead(conversationId: "c", seq: {i}) {{ seq }}' for i in range(10))
    r = await post(gateway, f"mutation {{ {marks} }}", token)
    assert r.status_code == 200
    assert int(r.headers["RateLimit-Remaining"]) <= int(r.headers["RateLimit-Limit"]) - 10


async def test_a_spent_budget_refuses_graphql_with_429_and_retry_after(gateway: Gateway) -> None:
    token = gateway.mint.token(uid())
    marks = " ".join(f'm{i}: markRead(conversationId: "c", seq: {i}) {{ seq }}' for i in range(15))
    statuses = [(await post(gateway, f"mutation {{ {marks} }}", token)) for _ in range(12)]
    refused = [r for r in statuses if r.status_code == 429]
    assert refused, [r.status_code for r in statuses]
    assert int(refused[0].headers["Retry-After"]) >= 1
    assert refused[0].json()["errors"][0]["extensions"]["code"] == "rate_limited"


async def test_requests_without_a_valid_token_spend_the_address_budget(gateway: Gateway) -> None:
    r = await post(gateway, "{ __typename }", "not-a-token")
    assert r.status_code == 401
    assert r.json()["errors"][0]["extensions"]["code"] == "unauthenticated"
