"""Operator tools over the live streams (behind ``parley events``): inspect, tail, replay, rewind.

Everything here reads the registry for stream names and message classes, so tools decode what
services wrote. Writes are explicit (replay, rewind, redrive, purge) and each has a dry run that
reports what it would do and changes nothing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.exceptions import ResponseError

from contracts import registry
from contracts.base import DecodeError, Message, UnknownMessageError
from contracts.topology import StreamSpec
from shared.bus import naming, wire
from shared.bus.deadletter import Provenance
from shared.bus.errors import DeadLetterError, UnknownStreamError
from shared.bus.pending import id_before, id_key
from shared.redis.client import AnyRedis

_ID = re.compile(r"^\d+(-\d+)?$")
_AGO = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def spec_of(name: str) -> StreamSpec:
    """The declared stream ``name``; raises UnknownStreamError."""
    try:
        return registry.stream(name)
    except UnknownMessageError as e:
        raise UnknownStreamError(str(e)) from e


def to_entry_id(text: str, *, now: datetime | None = None) -> str:
    """An entry id from an id (``1700000000000-0``), an ISO time, or an age like ``15m``."""
    if text in ("-", "+", "0", "$"):
        return text
    if _ID.match(text):
        return text if "-" in text else f"{text}-0"
    if m := _AGO.match(text):
        at = (now or datetime.now(UTC)) - timedelta(seconds=int(m[1]) * _UNITS[m[2]])
    else:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
    return f"{int(at.timestamp() * 1000)}-0"


def message_class_of(fields: wire.Fields) -> type[Message] | None:
    """The registered class of an entry's message, or None when unknown or undecodable."""
    try:
        env = wire.decode_envelope(fields)
        return registry.message_class(env.type, env.version)
    except (DecodeError, UnknownMessageError):
        return None


def render(entry_id: str, fields: wire.Fields, *, partition: int | None = None) -> dict[str, Any]:
    """An entry as a JSON-ready dict (decoded where the registry knows its type)."""
    out = wire.to_json_obj(entry_id, fields, message_class_of(fields))
    if partition is not None:
        out["partition"] = partition
    return out


@dataclass
class GroupRow:
    """One group's state on one partition."""

    name: str
    lag: int | None
    pending: int
    last_delivered: str


@dataclass
class PartitionRow:
    """One partition of a stream."""

    stream: str
    partition: int
    length: int
    groups: list[GroupRow] = field(default_factory=list)


async def partitions(client: AnyRedis, spec: StreamSpec) -> list[PartitionRow]:
    """Length and per-group lag/pending of every partition of ``spec``."""
    rows = []
    for p in range(spec.partitions):
        key = spec.key(p)
        row = PartitionRow(spec.name, p, int(await client.xlen(key)))
        if row.length or await client.exists(key):
            for g in await client.xinfo_groups(key):
                row.groups.append(
                    GroupRow(
                        wire.as_text(g["name"]),
                        g.get("lag"),
                        int(g["pending"]),
                        wire.as_text(g["last-delivered-id"]),
                    )
                )
        rows.append(row)
    return rows


async def entries_between(
    client: AnyRedis, spec: StreamSpec, start: str, end: str = "+", *, limit: int = 10_000
) -> list[tuple[int, str, wire.Fields]]:
    """Entries of every partition between two ids (inclusive), merged in id order."""
    found: list[tuple[int, str, wire.Fields]] = []
    for p in range(spec.partitions):
        rows: Any = await client.xrange(spec.key(p), start, end, count=limit)
        found.extend((p, wire.as_text(i), f) for i, f in rows)
    found.sort(key=lambda r: id_key(r[1]))
    return found[:limit]


async def tail(
    client: AnyRedis, spec: StreamSpec, start: str, *, follow: bool, poll: float = 0.2
) -> AsyncIterator[dict[str, Any]]:
    """Entries from ``start`` on, in id order per poll; with ``follow``, keep polling for more."""
    cursors = dict.fromkeys(range(spec.partitions), start)
    while True:
        batch: list[tuple[int, str, wire.Fields]] = []
        for p, cursor in cursors.items():
            rows: Any = await client.xrange(spec.key(p), cursor, "+", count=1000)
            batch.extend((p, wire.as_text(i), f) for i, f in rows)
        batch.sort(key=lambda r: id_key(r[1]))
        for p, entry_id, fields in batch:
            cursors[p] = "(" + entry_id
            yield render(entry_id, fields, partition=p)
        if not follow:
            return
        if not batch:
            await asyncio.sleep(poll)


async def show(client: AnyRedis, spec: StreamSpec, entry_id: str) -> dict[str, Any] | None:
    """One entry by id, whichever partition holds it."""
    for p in range(spec.partitions):
        rows: Any = await client.xrange(spec.key(p), entry_id, entry_id, count=1)
        if rows:
            return render(wire.as_text(rows[0][0]), rows[0][1], partition=p)
    return None


async def replay(
    client: AnyRedis,
    spec: StreamSpec,
    *,
    start: str,
    end: str,
    group: str | None = None,
    to_stream: StreamSpec | None = None,
    dry_run: bool = False,
) -> int:
    """Re-run a range through one group's handlers, or copy it to another stream.

    For a group, each entry is appended again to its partition marked for that group only and as
    a replay (so the group's deduplication lets it through); other groups skip it. Returns how many
    entries were (or, with ``dry_run``, would be) appended.
    """
    if (group is None) == (to_stream is None):
        raise ValueError("give exactly one of group or to_stream")
    found = await entries_between(client, spec, start, end)
    if dry_run:
        return len(found)
    for p, _, fields in found:
        fresh = {k: v for k, v in fields.items() if k not in (wire.ONLY_GROUP, wire.REPLAY)}
        if group is not None:
            fresh |= {wire.ONLY_GROUP: group.encode(), wire.REPLAY: b"1"}
            await client.xadd(spec.key(p), wire.redis_fields(fresh))
        else:
            assert to_stream is not None
            await client.xadd(_target_key(to_stream, p, fields), wire.redis_fields(fresh))
    return len(found)


def _target_key(target: StreamSpec, partition: int, fields: wire.Fields) -> str:
    cls = message_class_of(fields)
    if cls is not None:
        from contracts import codec  # local: only re-publishing needs the payload decoded

        message = codec.decode(cls, fields[wire.PAYLOAD])
        env = wire.decode_envelope(fields)
        return target.key_for(message.partition_value() or env.id)
    return target.key(partition % target.partitions)


@dataclass
class RewindRow:
    """What a rewind does to one partition."""

    partition: int
    before: str
    after: str
    rerun: int


async def rewind(
    client: AnyRedis, spec: StreamSpec, group: str, to: str, *, dry_run: bool = False
) -> list[RewindRow]:
    """Move ``group``'s position on every partition to just before ``to``; clear the group's
    "handled" marks of the entries it will read again, so they run again.
    """
    rows = []
    position = id_before(to)
    for p in range(spec.partitions):
        key = spec.key(p)
        try:
            info = [g for g in await client.xinfo_groups(key) if wire.as_text(g["name"]) == group]
        except ResponseError:
            info = []
        if not info:
            continue
        before = wire.as_text(info[0]["last-delivered-id"])
        again: Any = await client.xrange(key, to, before) if id_key(to) <= id_key(before) else []
        rows.append(RewindRow(p, before, position, len(again)))
        if dry_run:
            continue
        await client.xgroup_setid(key, group, position)
        marks = _marks_of(spec, group, p, (f for _, f in again))
        for i in range(0, len(marks), 500):
            await client.delete(*marks[i : i + 500])
    return rows


def _marks_of(spec: StreamSpec, group: str, p: int, fields: Iterable[wire.Fields]) -> list[str]:
    prefix = naming.dedupe_prefix(spec, group, p)
    out = []
    for f in fields:
        try:
            out.append(prefix + wire.decode_envelope(f).id)
        except DecodeError:
            continue
    return out


async def trace(
    client: AnyRedis, correlation_id: str, *, since: str = "1d", limit: int = 100_000
) -> list[dict[str, Any]]:
    """Every entry of every declared stream whose correlation id is ``correlation_id``, in time
    order (scans entries newer than ``since``).

    Each item also says, per consumer group of its partition, whether the group has handled it
    (``handled_by``: ``handled``, ``pending`` or ``unread``), and lists the dead letters made of
    it (``dead_letters``: group, error, attempts).
    """
    start = to_entry_id(since)
    found: list[tuple[datetime, str, dict[str, Any]]] = []
    for spec in registry.STREAMS:
        hits = []
        for p, entry_id, fields in await entries_between(client, spec, start, limit=limit):
            try:
                env = wire.decode_envelope(fields)
            except DecodeError:
                continue
            if env.correlation_id == correlation_id or env.id == correlation_id:
                item = render(entry_id, fields, partition=p)
                item["stream"] = spec.name
                item["handled_by"] = await _group_states(client, spec.key(p), entry_id)
                hits.append((env, entry_id, item))
        if hits:
            letters = await _dead_letters_of(client, spec, {env.id for env, _, _ in hits})
            for env, entry_id, item in hits:
                item["dead_letters"] = letters.get(env.id, [])
                found.append((env.occurred_at, entry_id, item))
    # Entry ids of different partitions tie within a millisecond; the envelope's clock does not.
    found.sort(key=lambda r: (r[0], id_key(r[1])))
    return [item for _, _, item in found]


async def _group_states(client: AnyRedis, key: str, entry_id: str) -> dict[str, str]:
    """Group -> ``handled`` (delivered and acknowledged), ``pending`` or ``unread``."""
    states: dict[str, str] = {}
    for g in await client.xinfo_groups(key):
        group = wire.as_text(g["name"])
        last = wire.as_text(g["last-delivered-id"])
        if id_key(last) < id_key(entry_id):
            states[group] = "unread"
            continue
        pending: Any = await client.xpending_range(key, group, entry_id, entry_id, 1)
        states[group] = "pending" if pending else "handled"
    return states


async def _dead_letters_of(
    client: AnyRedis, spec: StreamSpec, message_ids: set[str]
) -> dict[str, list[dict[str, Any]]]:
    """Message id -> the dead letters of ``spec`` made of that message."""
    out: dict[str, list[dict[str, Any]]] = {}
    rows: Any = await client.xrange(spec.dead_letter_key(), "-", "+")
    for dlq_id, fields in rows:
        try:
            env = wire.decode_envelope(fields)
            prov = Provenance.from_fields(fields)
        except (DecodeError, DeadLetterError):
            continue
        if env.id in message_ids:
            out.setdefault(env.id, []).append(
                {
                    "dlq_id": wire.as_text(dlq_id),
                    "group": prov.group,
                    "error": prov.error,
                    "attempts": prov.attempts,
                }
            )
    return out


@dataclass(frozen=True, slots=True)
class SweptGroup:
    """A per-instance group removed from one partition because its instance is gone."""

    key: str
    group: str
    pending: int


async def sweep_instance_groups(
    client: AnyRedis,
    spec: StreamSpec,
    prefix: str,
    *,
    keep: Collection[str],
    dry_run: bool = False,
) -> list[SweptGroup]:
    """Destroy the per-instance groups ``<prefix>.<instance>`` on ``spec`` whose instance no longer
    heartbeats (its members set holds no live entry), except those in ``keep`` (the caller's own
    group, and any shared group whose name has the same prefix, such as ``gateway.cache``).

    A crashed instance cannot destroy its groups as a clean stop does, and a group that never
    reads again holds back trimming. A live instance always has a fresh heartbeat (renewed every
    lease TTL / 3); one whose group is removed by mistake (Redis unreachable for longer than its
    lease) gets NOGROUP and recreates the group where it left off, so nothing is lost.
    """
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    swept: list[SweptGroup] = []
    live: dict[str, bool] = {}
    for p in range(spec.partitions):
        key = spec.key(p)
        if not await client.exists(key):
            continue
        for g in await client.xinfo_groups(key):
            name = wire.as_text(g["name"])
            if not name.startswith(prefix + ".") or name in keep:
                continue
            if name not in live:
                members = naming.members_key(spec, name)
                fresh = await client.zrangebyscore(members, now_ms, "+inf", start=0, num=1)
                live[name] = bool(fresh)
            if live[name]:
                continue
            if not dry_run:
                await client.xgroup_destroy(key, name)
            swept.append(SweptGroup(key, name, int(g["pending"])))
    return swept
