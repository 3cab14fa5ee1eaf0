"""``parley events``: look into the live streams, and replay, rewind or redrive their messages.

    parley events streams                                  partitions, groups, lag, pending, DLQ
    parley events tail chat.events --from 10m --follow    decoded, one JSON object per line
    parley events show chat.events 1700000000000-0
    parley events replay chat.events --from 1h --to now --group notification [--dry-run]
    parley events dlq list|show|redrive|purge chat.events
    parley events rewind chat.events --group notification --to 2025-01-01T10:00:00Z [--dry-run]
    parley events trace <correlation id> [--json]         a timeline tree of what it caused

Positions (``--from``, ``--to``) are entry ids, ISO times or ages (``30s``, ``15m``, ``2h``).
The tools connect to ``PARLEY_REDIS_URL`` (default ``redis://127.0.0.1:7001``) or ``--redis-url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from parley.tables import show, streams_table
from parley.trace_view import trace_tree
from shared.bus import admin
from shared.bus.deadletter import DeadLetters, Provenance
from shared.bus.errors import BusError
from shared.redis.client import AnyRedis, RedisSettings, create_client

app = typer.Typer(
    help="Inspect, tail, replay, rewind and redrive stream messages.", no_args_is_help=True
)
dlq_app = typer.Typer(
    help="Dead letters of a stream: list, show, redrive, purge.", no_args_is_help=True
)
app.add_typer(dlq_app, name="dlq")

T = TypeVar("T")

RedisUrl = Annotated[
    str,
    typer.Option("--redis-url", envvar="PARLEY_REDIS_URL", help="A node of the cluster."),
]
Stream = Annotated[str, typer.Argument(help="Logical stream, e.g. chat.events.")]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Report what would change; change nothing.")
]
DEFAULT_URL = "redis://127.0.0.1:7001"


def _run(url: str, work: Callable[[AnyRedis], Awaitable[T]]) -> T:
    async def main() -> T:
        client = await create_client(RedisSettings(url=url))
        try:
            return await work(client)
        finally:
            await client.aclose()

    try:
        return asyncio.run(main())
    except (BusError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e


def _emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=str, sort_keys=True) + "\n")
    sys.stdout.flush()


@app.command("streams")
def streams_cmd(
    redis_url: RedisUrl = DEFAULT_URL, as_json: bool = typer.Option(False, "--json")
) -> None:
    """Every declared stream: partitions, length, each group's lag and pending, dead letters."""
    from contracts import registry

    async def work(client: AnyRedis) -> list[dict[str, Any]]:
        out = []
        for spec in registry.STREAMS:
            rows = await admin.partitions(client, spec)
            dlq = await DeadLetters(client, spec).size()
            groups: dict[str, dict[str, int]] = {}
            for row in rows:
                for g in row.groups:
                    agg = groups.setdefault(g.name, {"lag": 0, "pending": 0})
                    agg["lag"] += g.lag or 0
                    agg["pending"] += g.pending
            out.append(
                {
                    "stream": spec.name,
                    "partitions": spec.partitions,
                    "length": sum(r.length for r in rows),
                    "groups": groups,
                    "dead_letters": dlq,
                }
            )
        return out

    result = _run(redis_url, work)
    if as_json:
        for row in result:
            _emit(row)
        return
    show(streams_table(result))


@app.command("tail")
def tail_cmd(
    stream: Stream,
    start: Annotated[str, typer.Option("--from", help="Id, ISO time or age.")] = "5m",
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new ones.")] = False,
    redis_url: RedisUrl = DEFAULT_URL,
) -> None:
    """Print a stream's entries (all partitions, in id order), decoded, one JSON object per line."""

    async def work(client: AnyRedis) -> None:
        spec = admin.spec_of(stream)
        async for item in admin.tail(client, spec, admin.to_entry_id(start), follow=follow):
            _emit(item)

    with contextlib.suppress(KeyboardInterrupt):
        _run(redis_url, work)


@app.command("show")
def show_cmd(stream: Stream, entry_id: str, redis_url: RedisUrl = DEFAULT_URL) -> None:
    """Print one entry, decoded."""
    item = _run(redis_url, lambda c: admin.show(c, admin.spec_of(stream), entry_id))
    if item is None:
        typer.echo(f"no entry {entry_id} in {stream}", err=True)
        raise typer.Exit(1)
    _emit(item)


@app.command("replay")
def replay_cmd(
    stream: Stream,
    start: Annotated[str, typer.Option("--from", help="Id, ISO time or age.")],
    end: Annotated[str, typer.Option("--to", help="Id, ISO time, age, or 'now'.")] = "now",
    group: Annotated[str | None, typer.Option("--group", help="Re-run through this group.")] = None,
    to_stream: Annotated[str | None, typer.Option("--to-stream", help="Copy here.")] = None,
    dry_run: DryRun = False,
    redis_url: RedisUrl = DEFAULT_URL,
) -> None:
    """Re-run a range of entries through one group's handlers, or copy it to another stream."""
    if (group is None) == (to_stream is None):
        typer.echo("error: give exactly one of --group or --to-stream", err=True)
        raise typer.Exit(2)
    last = "+" if end == "now" else admin.to_entry_id(end)

    async def work(client: AnyRedis) -> int:
        target = admin.spec_of(to_stream) if to_stream else None
        source = admin.spec_of(stream)
        first = admin.to_entry_id(start)
        return await admin.replay(
            client, source, start=first, end=last, group=group, to_stream=target, dry_run=dry_run
        )

    count = _run(redis_url, work)
    _emit(
        {
            "replayed": 0 if dry_run else count,
            "would_replay": count,
            "dry_run": dry_run,
            "target": group or to_stream,
        }
    )


@app.command("rewind")
def rewind_cmd(
    stream: Stream,
    group: Annotated[str, typer.Option("--group", help="The consumer group to move.")],
    to: Annotated[str, typer.Option("--to", help="Id, ISO time or age to re-read from.")],
    dry_run: DryRun = False,
    redis_url: RedisUrl = DEFAULT_URL,
) -> None:
    """Move a group so it reads again from ``--to``; prints one line per partition."""
    position = admin.to_entry_id(to)
    rows = _run(
        redis_url,
        lambda c: admin.rewind(c, admin.spec_of(stream), group, position, dry_run=dry_run),
    )
    for row in rows:
        _emit(
            {
                "partition": row.partition,
                "before": row.before,
                "after": row.after,
                "rerun": row.rerun,
                "dry_run": dry_run,
            }
        )


@app.command("trace")
def trace_cmd(
    correlation_id: str,
    since: Annotated[str, typer.Option("--since", help="How far back to look.")] = "1d",
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per message, for machines.")
    ] = False,
    redis_url: RedisUrl = DEFAULT_URL,
) -> None:
    """Every message one request caused, across all streams: a timeline tree (or JSON lines)."""
    items = _run(redis_url, lambda c: admin.trace(c, correlation_id, since=since))
    if as_json:
        for item in items:
            _emit(item)
        return
    if not items:
        typer.echo(f"no message with correlation id {correlation_id} since {since}", err=True)
        raise typer.Exit(1)
    Console(soft_wrap=True).print(trace_tree(correlation_id, items))


@dlq_app.command("list")
def dlq_list(stream: Stream, limit: int = 100, redis_url: RedisUrl = DEFAULT_URL) -> None:
    """Dead letters with their provenance, one JSON object per line."""

    async def work(client: AnyRedis) -> list[tuple[str, Any]]:
        return await DeadLetters(client, admin.spec_of(stream)).entries(count=limit)

    for dlq_id, fields in _run(redis_url, work):
        _emit(_letter(dlq_id, fields, full=False))


@dlq_app.command("show")
def dlq_show(stream: Stream, dlq_id: str, redis_url: RedisUrl = DEFAULT_URL) -> None:
    """One dead letter, decoded, with its provenance."""
    fields = _run(redis_url, lambda c: DeadLetters(c, admin.spec_of(stream)).get(dlq_id))
    _emit(_letter(dlq_id, fields, full=True))


@dlq_app.command("redrive")
def dlq_redrive(
    stream: Stream,
    ids: Annotated[list[str] | None, typer.Argument(help="Dead letters to redrive.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Redrive every dead letter.")] = False,
    redis_url: RedisUrl = DEFAULT_URL,
) -> None:
    """Put dead letters back on their source partition, for the group that failed them."""

    async def work(client: AnyRedis) -> list[tuple[str, str]]:
        letters = DeadLetters(client, admin.spec_of(stream))
        chosen = ids or ([i for i, _ in await letters.entries(count=100_000)] if all_ else [])
        return [(i, await letters.redrive(i)) for i in chosen]

    for old, new in _run(redis_url, work):
        _emit({"dead_letter": old, "entry_id": new})


@dlq_app.command("purge")
def dlq_purge(
    stream: Stream,
    ids: Annotated[list[str] | None, typer.Argument(help="Dead letters to delete.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Delete every dead letter.")] = False,
    redis_url: RedisUrl = DEFAULT_URL,
) -> None:
    """Delete dead letters (given ids, or ``--all``)."""
    if not ids and not all_:
        typer.echo("error: give dead-letter ids or --all", err=True)
        raise typer.Exit(2)
    removed = _run(redis_url, lambda c: DeadLetters(c, admin.spec_of(stream)).purge(ids or None))
    _emit({"purged": removed})


def _letter(dlq_id: str, fields: Any, *, full: bool) -> dict[str, Any]:
    from shared.bus.deadletter import original_fields

    out: dict[str, Any] = {"id": dlq_id}
    try:
        prov = Provenance.from_fields(fields)
        out["provenance"] = {k: str(v) for k, v in vars(prov).items()}
    except BusError as e:
        out["provenance_error"] = str(e)
    entry = admin.render(dlq_id, original_fields(fields))
    out["message"] = entry if full else {k: entry[k] for k in ("envelope", "error") if k in entry}
    return out
