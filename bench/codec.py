"""Codec: encode+decode of a typical profile and of a 20 KB value, msgspec vs json.

    uv run python bench/codec.py

No Redis needed. The baseline is the standard library's ``json`` on the same data (``dumps`` to
bytes and ``loads`` back to a dict, the cheapest honest comparison: it does not even rebuild the
typed object). Figures are microseconds per encode+decode and the ratio json/msgspec; sizes
are the stored bytes (the 20 KB value is compressed by the codec above its threshold).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import msgspec

from shared.codec import Codec

ROUNDS = 5


class Profile(msgspec.Struct, frozen=True):
    user_id: str
    username: str
    display_name: str
    bio: str
    avatar_url: str
    languages: list[str]
    created_at: float
    verified: bool


class Document(msgspec.Struct, frozen=True):
    id: str
    items: list[dict[str, str | int]]


def profile() -> Profile:
    return Profile(
        "01J9Z3K6Q2", "ada", "Ada Lovelace", "Analyst of the Analytical Engine.",
        "https://cdn.example/avatars/ada.png", ["en", "fr"], 1733011200.5, True,
    )  # fmt: skip


def document() -> Document:
    items: list[dict[str, str | int]] = [
        {"seq": n, "author": f"user{n % 7}", "body": f"message number {n} in the conversation"}
        for n in range(260)
    ]
    return Document("conv-42", items)


def per_op(op: Callable[[], object], count: int) -> float:
    best = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(count):
            op()
        best.append((time.perf_counter() - started) / count)
    return statistics.median(best)


def compare(name: str, value: msgspec.Struct, count: int) -> dict[str, float | int]:
    codec = Codec(type(value))
    as_builtins = msgspec.to_builtins(value)
    stored = codec.encode(value)
    as_json = json.dumps(as_builtins).encode()
    ours = per_op(lambda: codec.decode(codec.encode(value)), count)
    theirs = per_op(lambda: json.loads(json.dumps(as_builtins).encode()), count)
    return {
        f"{name}_msgspec_us": round(ours * 1e6, 2),
        f"{name}_json_us": round(theirs * 1e6, 2),
        f"{name}_json_over_msgspec": round(theirs / ours, 2),
        f"{name}_stored_bytes": len(stored),
        f"{name}_json_bytes": len(as_json),
    }


def main() -> None:
    doc = document()
    assert 18_000 <= len(json.dumps(msgspec.to_builtins(doc))) <= 22_000  # a 20 KB value
    figures = {**compare("profile", profile(), 20_000), **compare("value20k", doc, 300)}
    print(f"{'figure':<32} {'value':>12}")
    for key, val in figures.items():
        print(f"{key:<32} {val:>12}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
