"""``@cached``: cache-aside for async functions and methods, built on :class:`Cache`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ParamSpec, TypeVar

from shared.cache.core import Cache

P = ParamSpec("P")
T = TypeVar("T")


def _default_key(skip_first: bool) -> Callable[..., str]:
    def key(*args: Any, **kwargs: Any) -> str:
        positional = args[1:] if skip_first else args
        parts = [str(a) for a in positional]
        parts.extend(f"{k}={kwargs[k]}" for k in sorted(kwargs))
        return ":".join(parts) or "_"

    return key


def cached(
    cache: Cache[T],
    *,
    key: Callable[..., str] | None = None,
    tags: Callable[..., Iterable[str]] | None = None,
) -> Callable[[Callable[P, Awaitable[T | None]]], Callable[P, Awaitable[T | None]]]:
    """Cache an async function's results in ``cache``.

    ``key`` and ``tags`` receive the function's own arguments (``self`` included for a
    method). Without ``key``, the arguments joined with ``:`` are the key (``self``/``cls``
    left out).

    >>> @cached(profiles, key=lambda user_id: user_id, tags=lambda user_id: [f"user:{user_id}"])
    ... async def load_profile(user_id: str) -> Profile | None: ...
    """

    def decorate(fn: Callable[P, Awaitable[T | None]]) -> Callable[P, Awaitable[T | None]]:
        params = list(inspect.signature(fn).parameters)
        key_of = key or _default_key(bool(params) and params[0] in ("self", "cls"))

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T | None:
            return await cache.get_or_load(
                key_of(*args, **kwargs),
                lambda: fn(*args, **kwargs),
                tags=tags(*args, **kwargs) if tags is not None else (),
            )

        return wrapper

    return decorate
