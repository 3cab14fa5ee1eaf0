"""Redis keys and channels the bus owns beside the streams themselves.

Per-group state lives under the consuming service's prefix (the group name), in the hash tag of the
partition it concerns, so one Lua script can acknowledge an entry and mark it handled atomically.
"""

from __future__ import annotations

from contracts.topology import StreamSpec


def _service(group: str) -> str:
    # Per-instance groups are "<service>.<instance>": keys stay under the service's ACL prefix.
    return group.split(".", 1)[0]


def partition_tag(spec: StreamSpec, partition: int) -> str:
    """The hash tag of a partition's stream key (``<stream>.<n>``)."""
    return f"{spec.name}.{partition}"


def lease_key(spec: StreamSpec, group: str, partition: int) -> str:
    """Who owns a partition within ``group``: ``<svc>:lease:{<stream>.<n>}:<group>``."""
    return f"{_service(group)}:lease:{{{partition_tag(spec, partition)}}}:{group}"


def members_key(spec: StreamSpec, group: str) -> str:
    """The live instances of ``group`` on ``spec`` (a sorted set scored by expiry in ms)."""
    return f"{_service(group)}:members:{{{spec.name}}}:{group}"


def dedupe_prefix(spec: StreamSpec, group: str, partition: int) -> str:
    """Prefix of "message handled by this group" marks; the message id follows."""
    return f"{_service(group)}:handled:{{{partition_tag(spec, partition)}}}:{group}:"


def kept_reply_key(prefix: str, message_id: str) -> str:
    """Where a handled command's reply is kept for its duplicates (the slot of its mark)."""
    return f"{prefix}{message_id}:reply"
