"""``parley events trace`` for people: one request's messages as a timeline tree.

Each node is a message: its time offset from the first, the producing service, its type, the
stream and partition it sits on, then each consumer group's state for it (handled, pending,
unread) and the dead letters made of it. Children are the messages it caused (their causation id
is its message id); a message whose cause is not among the found ones hangs from the root.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.text import Text
from rich.tree import Tree

_STATE_STYLE = {"handled": "green", "pending": "yellow", "unread": "dim"}


def trace_tree(correlation_id: str, items: list[dict[str, Any]]) -> Tree:
    """The tree of ``items`` (as ``shared.bus.admin.trace`` returns them, in time order)."""
    first = _at(items[0])
    span_ms = (_at(items[-1]) - first).total_seconds() * 1000
    root = Tree(
        Text.assemble(
            ("trace ", "bold"),
            (correlation_id, "bold cyan"),
            f"  {len(items)} message(s) over {span_ms:.1f} ms",
        )
    )
    ids = {_env(item).get("id") for item in items}
    nodes: dict[str, Tree] = {}
    for item in items:
        env = _env(item)
        cause = env.get("causation_id")
        parent = nodes.get(cause) if cause in ids and cause is not None else None
        node = (parent or root).add(_label(item, first))
        for group, state in sorted(item.get("handled_by", {}).items()):
            node.add(Text.assemble(("group ", "dim"), group, " ", (state, _STATE_STYLE[state])))
        for letter in item.get("dead_letters", []):
            node.add(
                Text.assemble(
                    ("dead letter ", "bold red"),
                    f"{letter['dlq_id']} group {letter['group']} after {letter['attempts']} "
                    f"attempt(s): {letter['error']}",
                )
            )
        if env.get("id"):
            nodes[env["id"]] = node
    return root


def _env(item: dict[str, Any]) -> dict[str, Any]:
    env = item.get("envelope")
    return env if isinstance(env, dict) else {}


def _at(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(_env(item).get("occurred_at")).replace("Z", "+00:00"))


def _label(item: dict[str, Any], first: datetime) -> Text:
    env = _env(item)
    offset_ms = (_at(item) - first).total_seconds() * 1000
    return Text.assemble(
        (f"+{offset_ms:8.1f} ms  ", "dim"),
        (str(env.get("producer", "?")), "bold"),
        " -> ",
        (f"{env.get('type', '?')} v{env.get('version', '?')}", "cyan"),
        (f"  {item.get('stream')}[{item.get('partition')}] {item.get('id')}", "dim"),
    )
