"""A typed repository for entities that live in Redis: get, get many, set, delete.

Values go through :class:`~shared.codec.Codec`; every write takes its TTL (with jitter) from
the service's :class:`~shared.ttl.TtlPolicy`, so no entry lives forever. ``get_many`` costs one
round trip per cluster slot involved (the cluster client sends one ``MGET`` per slot in a
single pipeline), never one per key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Generic, TypeVar

from redis.asyncio import RedisCluster

from shared.codec import Codec
from shared.keys import KeySpace
from shared.redis.client import AnyRedis
from shared.ttl import TtlPolicy

T = TypeVar("T")


class Repository(Generic[T]):
    """Entities of one type, stored under ``<prefix>:<entity>:{<id>}``.

    >>> repo = Repository(client, KeySpace("user"), "presence", Presence, policy=TTL)
    >>> await repo.set("42", Presence(state="online"))
    >>> await repo.get("42")
    Presence(state='online')

    A stored value that cannot be decoded raises :class:`~shared.codec.CodecError`: here Redis
    holds the entity itself, so a corrupt value is an error the caller must see.
    """

    def __init__(
        self,
        client: AnyRedis,
        keyspace: KeySpace,
        entity: str,
        type_: type[T],
        *,
        policy: TtlPolicy,
        codec: Codec[T] | None = None,
        key: Callable[[str], str] | None = None,
    ) -> None:
        policy[entity]  # fail at construction, not at the first write, on an undeclared entity
        self._client = client
        self._entity = entity
        self._policy = policy
        self._codec: Codec[T] = codec or Codec(type_)
        self._key = key or (lambda id_: keyspace.key(entity, tag=id_))

    def key(self, id_: str) -> str:
        """The Redis key of entity ``id_``."""
        return self._key(id_)

    async def get(self, id_: str) -> T | None:
        """The entity, or ``None`` when absent (or expired)."""
        raw = await self._client.get(self._key(id_))
        return None if raw is None else self._codec.decode(raw)

    async def get_many(self, ids: Iterable[str]) -> dict[str, T]:
        """The entities found among ``ids`` (absent ones are left out)."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        keys = [self._key(i) for i in ids]
        if isinstance(self._client, RedisCluster):
            raws = await self._client.mget_nonatomic(keys)
        else:
            raws = await self._client.mget(keys)
        return {i: self._codec.decode(r) for i, r in zip(ids, raws, strict=True) if r is not None}

    async def set(self, id_: str, value: T, *, ttl_ms: int | None = None) -> None:
        """Store ``value`` with the policy's TTL for this entity (or ``ttl_ms``)."""
        px = ttl_ms if ttl_ms is not None else self._policy.ttl_ms(self._entity)
        await self._client.set(self._key(id_), self._codec.encode(value), px=px)

    async def set_many(self, values: Mapping[str, T]) -> None:
        """Store several entities, each with its own jittered TTL, in one pipeline."""
        if not values:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for id_, value in values.items():
                pipe.set(
                    self._key(id_),
                    self._codec.encode(value),
                    px=self._policy.ttl_ms(self._entity),
                )
            await pipe.execute()

    async def delete(self, *ids: str) -> int:
        """Delete entities; returns how many existed. Keys in several slots are split per slot."""
        if not ids:
            return 0
        # RedisCluster.delete() splits a multi-key DEL by slot itself.
        return int(await self._client.delete(*(self._key(i) for i in ids)))
