"""GraphQL depth and cost limits refuse expensive documents before any resolver runs."""

from __future__ import annotations

import pytest

from gateway.api.graphql import build_schema, cache_key, parse_operation

pytestmark = pytest.mark.unit


async def test_a_query_nested_deeper_than_the_limit_is_refused() -> None:
    schema = build_schema(max_depth=1)
    result = await schema.execute("{ conversations { lastMessage { body } } }")
    assert result.errors and "exceeds maximum operation depth" in result.errors[0].message


async def test_a_query_costlier_than_the_limit_is_refused() -> None:
    schema = build_schema(max_cost=100)
    result = await schema.execute("{ conversations(limit: 100) { id lastMessage { body } } }")
    assert result.errors
    assert result.errors[0].extensions == {"code": "query_too_complex"}


def test_equivalent_documents_share_one_cache_key() -> None:
    a = parse_operation("query { me { id } }", None)
    b = parse_operation("query {\n  me {\n    id\n  }\n}", None)
    assert a is not None and b is not None and a.is_query
    assert cache_key("u1", a, {"x": 1, "y": 2}, None) == cache_key("u1", b, {"y": 2, "x": 1}, None)
    assert cache_key("u1", a, {}, None) != cache_key("u2", a, {}, None)


def test_a_mutation_is_not_a_cacheable_query() -> None:
    op = parse_operation('mutation { markRead(conversationId: "c", seq: 1) { seq } }', None)
    assert op is not None and not op.is_query
