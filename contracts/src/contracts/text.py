"""The rule for free text that people write to each other: message bodies and titles.

The schemas bound the length only (adding a pattern to a published schema is a breaking change),
so producers and consumers apply this rule on top: no control character (Unicode category
``Cc``: the C0 set, DEL and the C1 set) except the line feed and the tab. NUL matters most:
PostgreSQL cannot store it in a text column, so it must be refused before any write.
Format characters (``Cf``) stay allowed, since emoji sequences need the zero-width joiner.
"""

from __future__ import annotations

import unicodedata

__all__ = ["ALLOWED_CONTROLS", "CONTROL_MESSAGE", "forbidden_control"]

ALLOWED_CONTROLS = frozenset("\n\t")
CONTROL_MESSAGE = "must not contain control characters (only line feeds and tabs)"


def forbidden_control(text: str) -> str | None:
    """The first control character of ``text`` that the rule refuses, or None."""
    for c in text:
        if c not in ALLOWED_CONTROLS and unicodedata.category(c) == "Cc":
            return c
    return None
