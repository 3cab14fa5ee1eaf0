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


def charge(query: str, name: str | None = None) -> int:
    op = parse_operation(query, name)
    assert op is not None
    return op.charge


def test_a_cheap_query_is_charged_as_one_request() -> None:
    assert charge("{ me { id displayName } }") == 1


def test_a_query_is_charged_by_its_cost() -> None:
    # conversations(limit: 100) { id title }: 1 + 100 * 2 = 201, three requests' worth.
    assert charge("{ conversations(limit: 100) { id title } }") == 3


def test_each_aliased_mutation_is_charged() -> None:
    marks = " ".join(f'm{i}: markRead(conversationId: "c", seq: {i}) {{ seq }}' for i in range(7))
    assert charge(f"mutation {{ {marks} }}") == 7


def test_mutations_spread_from_fragments_are_charged_too() -> None:
    doc = (
        "mutation M { ...F } "
        'fragment F on Mutation { a: markRead(conversationId: "c", seq: 1) { seq } '
        'b: markRead(conversationId: "c", seq: 2) { seq } }'
    )
    assert charge(doc, "M") == 2


def test_only_the_chosen_operation_is_charged() -> None:
    doc = (
        "query Cheap { me { id } } "
        'mutation Many { a: markRead(conversationId: "c", seq: 1) { seq } '
        'b: markRead(conversationId: "c", seq: 2) { seq } '
        'c: markRead(conversationId: "c", seq: 3) { seq } }'
    )
    assert charge(doc, "Cheap") == 1
    assert charge(doc, "Many") == 3
