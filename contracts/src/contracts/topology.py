"""Declarations of streams, consumer groups and channel families, and the partition function.

Mechanism only; the fleet's actual declarations live in :mod:`contracts.registry`.

Key grammar (DESIGN.md §3): partition ``n`` of logical stream ``chat.events`` owned by ``chat`` is
the Redis stream ``chat:stream:{chat.events.<n>}``. The owner's prefix comes first so one ACL
pattern covers everything a service owns; the hash tag spreads partitions over cluster slots.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

from contracts.base import ContractError

__all__ = ["ChannelSpec", "GroupSpec", "StreamSpec", "partition_of"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_.]*$")
_SERVICE = re.compile(r"^[a-z][a-z0-9_]*$")


def partition_of(key: str, partitions: int) -> int:
    """The partition (0..partitions-1) of a partition key: CRC-32 of its UTF-8 bytes, mod P.

    CRC-32 (zlib) is stable across processes, machines and Python versions (unlike ``hash()``),
    is in the standard library and is fast enough for short keys. Changing this function or a
    stream's partition count re-shuffles keys and breaks per-key order: the contract check treats
    a changed partition count as breaking, and a test pins a table of key -> partition.
    """
    if partitions < 1:
        raise ContractError(f"partition count must be >= 1, got {partitions}")
    return zlib.crc32(key.encode("utf-8")) % partitions


@dataclass(frozen=True, kw_only=True)
class StreamSpec:
    """A logical, partitioned stream: ``name`` (``<owner>.<kind>``), owner, partitions, retention.

    Retention: ``max_len`` bounds each partition's length (approximate trimming) and ``max_age_s``
    its age; either or both. The bus never trims entries still pending in a group.

    ``private``: a work queue of its owner's events that only the owner reads (any name but
    ``.events`` / ``.commands``); declared so that tools, ACLs and documents know it.

    ``senders``: the services other than the owner that append to it (the callers of a command
    stream); each may append (``XADD``) and nothing else, and listens for replies on its own
    reply channels. The Redis ACLs (``parley acl export``) are generated from this.
    """

    name: str
    owner: str
    partitions: int
    max_len: int | None = None
    max_age_s: int | None = None
    description: str = ""
    private: bool = False
    senders: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or not _SERVICE.match(self.owner):
            raise ContractError(f"bad stream name/owner: {self.name!r} / {self.owner!r}")
        if not self.name.startswith(f"{self.owner}."):
            raise ContractError(f"stream {self.name!r} must start with its owner {self.owner!r}")
        if self.partitions < 1 or (self.max_len is None and self.max_age_s is None):
            raise ContractError(f"stream {self.name!r} needs partitions >= 1 and a retention")
        if self.private and self.name.endswith((".events", ".commands")):
            raise ContractError(f"private stream {self.name!r} may not be named like a public one")
        if self.owner in self.senders or not all(_SERVICE.match(s) for s in self.senders):
            raise ContractError(f"stream {self.name!r}: senders are other services by name")

    def key(self, partition: int) -> str:
        """The Redis key of one partition: ``<owner>:stream:{<name>.<n>}``."""
        if not 0 <= partition < self.partitions:
            raise ContractError(f"{self.name} has no partition {partition}")
        return f"{self.owner}:stream:{{{self.name}.{partition}}}"

    def partition_keys(self) -> list[str]:
        """The Redis keys of every partition, in partition order."""
        return [self.key(n) for n in range(self.partitions)]

    def partition_for(self, key: str) -> int:
        """The partition of a partition-key value."""
        return partition_of(key, self.partitions)

    def key_for(self, key: str) -> str:
        """The Redis key of the partition that holds messages with this partition-key value."""
        return self.key(self.partition_for(key))

    def dead_letter_key(self) -> str:
        """The Redis key of this stream's dead-letter stream: ``<owner>:stream:{<name>.dlq}``."""
        return f"{self.owner}:stream:{{{self.name}.dlq}}"


@dataclass(frozen=True, kw_only=True)
class GroupSpec:
    """A consumer group: the group name is the consuming service; it reads ``streams``.

    ``per_instance`` groups (named ``<service>.<instance id>``) give every instance of the service
    every message, for state each instance must hold in full (e.g. revoked sessions in gateways).
    A service with a second group names it by ``role`` (``<service>.<role>``): the gateway reads
    revocations per instance but cache invalidations once for the fleet.
    """

    service: str
    streams: tuple[str, ...]
    per_instance: bool = False
    role: str = ""
    description: str = ""

    @property
    def name(self) -> str:
        """The group name (for ``per_instance`` groups, the prefix before ``.<instance>``)."""
        return f"{self.service}.{self.role}" if self.role else self.service

    def instance_group(self, instance_id: str) -> str:
        """The group name an instance uses: ``name``, or ``<name>.<instance>`` per instance."""
        return f"{self.name}.{instance_id}" if self.per_instance else self.name


@dataclass(frozen=True, kw_only=True)
class ChannelSpec:
    """A pub/sub channel family, e.g. ``rt.conv`` with template ``rt:{conv:<id>}``.

    ``publishers`` may publish on it; ``subscribers`` listen. ``<id>`` is filled from the message
    field named by the payload's ``KEY``. Messages may be dropped (no durability, no replay).

    ``per_service``: every channel of the family belongs to one subscribing service, whose name
    starts its id (``<service>.<rest>``, see :meth:`service_key`), so an ACL can give each
    subscriber only its own channels (:meth:`pattern`) and publishers only those of the services
    they serve. Reply channels are such a family: ``reply:{gateway.<instance>}``.
    """

    family: str
    template: str
    publishers: tuple[str, ...]
    subscribers: tuple[str, ...]
    description: str = ""
    sharded: bool = False
    payloads: tuple[str, ...] = field(default=())
    per_service: bool = False

    def __post_init__(self) -> None:
        if self.template.count("<id>") != 1 or "{" not in self.template:
            raise ContractError(f"channel template {self.template!r} needs one <id> in a hash tag")

    def key(self, channel_id: str) -> str:
        """The channel name for one id, e.g. ``rt:{conv:42}``."""
        if not channel_id or any(c in channel_id for c in "{}\r\n "):
            raise ContractError(f"bad channel id {channel_id!r}")
        return self.template.replace("<id>", channel_id)

    def service_key(self, service: str, channel_id: str) -> str:
        """The channel ``channel_id`` of ``service`` in a ``per_service`` family:
        ``key("<service>.<channel_id>")``."""
        if not self.per_service or not _SERVICE.match(service):
            raise ContractError(f"{self.family}: no channels per service {service!r}")
        return self.key(f"{service}.{channel_id}")

    def pattern(self, service: str | None = None) -> str:
        """The glob (Redis ``PSUBSCRIBE`` / ACL ``&`` syntax) of every channel of the family, or
        of ``service``'s channels only (``per_service`` families), e.g. ``reply:{gateway.*}``."""
        if service is not None and (not self.per_service or not _SERVICE.match(service)):
            raise ContractError(f"{self.family}: no channels per service {service!r}")
        literal = re.sub(r"([\\*?\[\]])", r"\\\1", self.template)
        return literal.replace("<id>", "*" if service is None else f"{service}.*")
