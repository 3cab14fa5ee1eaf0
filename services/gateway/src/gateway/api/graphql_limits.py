"""A query cost limit for GraphQL: list fields multiply the cost of what they select.

A field costs 1 plus the cost of its selection; a list field (one with a ``limit`` argument, or
listed in ``list_fields``) multiplies its selection's cost by its limit (the argument's value,
else ``default_limit``). A document whose operation costs more than ``max_cost`` is refused
during validation, before any resolver runs. (Depth is limited separately by strawberry's
``QueryDepthLimiter``.)

The same cost prices a request against the API rate limits (:func:`request_charge`): a REST
request counts 1, a GraphQL request ``ceil(cost / COST_PER_REQUEST)``, and never less than the
number of root fields of a mutation (each aliased mutation is a command of its own), so GraphQL
is no way around the budgets REST spends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationRule,
    VariableNode,
)

COST_PER_REQUEST: Final = 100
"""The cost that counts as one REST request against the rate limits."""


def cost_limit_rule(
    max_cost: int, *, default_limit: int = 50, list_fields: frozenset[str] = frozenset()
) -> type[ValidationRule]:
    """A graphql-core validation rule class enforcing ``max_cost``."""

    class CostLimit(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            fragments = _fragments(self.context.document)
            cost = _selection_cost(fragments, node.selection_set, default_limit, list_fields)
            if cost > max_cost:
                self.report_error(
                    GraphQLError(
                        f"query cost {cost} exceeds the limit of {max_cost}",
                        node,
                        extensions={"code": "query_too_complex"},
                    )
                )

    return CostLimit


def request_charge(
    document: DocumentNode,
    operation_name: str | None,
    *,
    default_limit: int = 50,
    list_fields: frozenset[str] = frozenset(),
) -> int:
    """How many requests' worth of the API budgets the chosen operation costs (at least 1).

    A document naming no operation the request chose (a later validation error) costs 1.
    """
    fragments = _fragments(document)
    charge = 1
    for op in document.definitions:
        if not isinstance(op, OperationDefinitionNode):
            continue
        if operation_name is not None and (op.name is None or op.name.value != operation_name):
            continue
        cost = _selection_cost(fragments, op.selection_set, default_limit, list_fields)
        charge = max(charge, math.ceil(cost / COST_PER_REQUEST))
        if op.operation == OperationType.MUTATION:
            charge = max(charge, _root_fields(fragments, op.selection_set))
        if operation_name is None:
            break  # an anonymous request runs its only operation
    return charge


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _root_fields(
    fragments: Mapping[str, FragmentDefinitionNode],
    selection_set: SelectionSetNode,
    seen: frozenset[str] = frozenset(),
) -> int:
    count = 0
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            count += 1
        elif isinstance(sel, InlineFragmentNode):
            count += _root_fields(fragments, sel.selection_set, seen)
        elif (
            isinstance(sel, FragmentSpreadNode)
            and sel.name.value not in seen
            and (fragment := fragments.get(sel.name.value)) is not None
        ):
            count += _root_fields(fragments, fragment.selection_set, seen | {sel.name.value})
    return count


def _selection_cost(
    fragments: Mapping[str, FragmentDefinitionNode],
    selection_set: SelectionSetNode | None,
    default_limit: int,
    list_fields: frozenset[str],
    seen: frozenset[str] = frozenset(),
) -> int:
    if selection_set is None:
        return 0
    total = 0
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            inner = _selection_cost(fragments, sel.selection_set, default_limit, list_fields, seen)
            total += 1 + _multiplier(sel, default_limit, list_fields) * inner
        elif isinstance(sel, InlineFragmentNode):
            total += _selection_cost(fragments, sel.selection_set, default_limit, list_fields, seen)
        elif isinstance(sel, FragmentSpreadNode) and sel.name.value not in seen:
            fragment = fragments.get(sel.name.value)
            if fragment is not None:  # unknown fragments are another rule's error
                total += _selection_cost(
                    fragments,
                    fragment.selection_set,
                    default_limit,
                    list_fields,
                    seen | {sel.name.value},
                )
    return total


def _multiplier(node: FieldNode, default_limit: int, list_fields: frozenset[str]) -> int:
    for arg in node.arguments or ():
        if arg.name.value == "limit":
            if isinstance(arg.value, IntValueNode):
                return max(1, int(arg.value.value))
            if isinstance(arg.value, VariableNode):
                return 100  # the most a resolver accepts: a variable is not known yet
    return default_limit if node.name.value in list_fields else 1
