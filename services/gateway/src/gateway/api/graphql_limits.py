"""A query cost limit for GraphQL: list fields multiply the cost of what they select.

A field costs 1 plus the cost of its selection; a list field (one with a ``limit`` argument, or
listed in ``list_fields``) multiplies its selection's cost by its limit (the argument's value,
else ``default_limit``). A document whose operation costs more than ``max_cost`` is refused
during validation, before any resolver runs. (Depth is limited separately by strawberry's
``QueryDepthLimiter``.)
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
)


def cost_limit_rule(
    max_cost: int, *, default_limit: int = 50, list_fields: frozenset[str] = frozenset()
) -> type[ValidationRule]:
    """A graphql-core validation rule class enforcing ``max_cost``."""

    class CostLimit(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            cost = _selection_cost(self.context, node.selection_set, default_limit, list_fields)
            if cost > max_cost:
                self.report_error(
                    GraphQLError(
                        f"query cost {cost} exceeds the limit of {max_cost}",
                        node,
                        extensions={"code": "query_too_complex"},
                    )
                )

    return CostLimit


def _selection_cost(
    ctx: ValidationContext,
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
            inner = _selection_cost(ctx, sel.selection_set, default_limit, list_fields, seen)
            total += 1 + _multiplier(sel, default_limit, list_fields) * inner
        elif isinstance(sel, InlineFragmentNode):
            total += _selection_cost(ctx, sel.selection_set, default_limit, list_fields, seen)
        elif isinstance(sel, FragmentSpreadNode) and sel.name.value not in seen:
            fragment = ctx.get_fragment(sel.name.value)
            if fragment is not None:  # unknown fragments are another rule's error
                total += _selection_cost(
                    ctx,
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
