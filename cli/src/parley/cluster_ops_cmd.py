"""``parley cluster`` operations on any cluster: status, add-node, reshard, rebalance, resume,
remove-node, failover, fix, backup, restore, memory.

on any cluster: ``--url`` (or PARLEY_CLUSTER_URL; default: the local cluster), ``--user`` with
``--password-file``, ``--ca-file`` for TLS (``rediss://``). Every command has ``--json``; the
destructive ones ask first unless ``--yes``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import redis
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from parley.cluster import ClusterError, parse_ports, ports_from_env
from parley.ops import OpsError, Target
from parley.ops import backup as backups
from parley.ops import memory as memory_ops
from parley.ops import nodes as node_ops
from parley.ops import restore as restores
from parley.ops import slots as slot_moves
from parley.ops.databases import Database
from parley.ops.status import ClusterReport, format_ranges, report
from parley.ops.topology import Topology, parse_slots

Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="PARLEY_CLUSTER_URL",
        show_default=False,
        help="A node of the cluster: redis://host:port or rediss://host:port"
        " (default: the local cluster).",
    ),
]
User = Annotated[
    str | None,
    typer.Option(
        "--user",
        envvar="PARLEY_CLUSTER_USER",
        show_default=False,
        help="ACL user (an administrator: admin in the fleet's ACL).",
    ),
]
PasswordFile = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        envvar="PARLEY_CLUSTER_PASSWORD_FILE",
        show_default=False,
        help="File holding the user's password.",
    ),
]
CaFile = Annotated[
    Path | None,
    typer.Option(
        "--ca-file",
        envvar="PARLEY_CLUSTER_CA_FILE",
        show_default=False,
        help="CA certificate that signed the nodes' TLS certificates (with rediss://).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Ports = Annotated[
    str | None,
    typer.Option(
        "--ports",
        show_default=False,
        help="With no --url: the local cluster's six ports"
        " (default PARLEY_CLUSTER_PORTS or 7001-7006).",
    ),
]
Databases = Annotated[
    list[str] | None,
    typer.Option(
        "--database",
        show_default=False,
        help="NAME=URL of a service's database (sqlite:///path or postgresql://...), repeatable.",
    ),
]


def target_of(
    url: str | None,
    user: str | None,
    password_file: Path | None,
    ca_file: Path | None,
    ports: str | None = None,
) -> Target:
    try:
        if url is None:
            chosen = parse_ports(ports) if ports else ports_from_env()
            url = f"redis://127.0.0.1:{chosen[0]}"
        return Target.from_options(url, user=user, password_file=password_file, ca_file=ca_file)
    except (OpsError, ClusterError) as e:
        typer.echo(f"parley cluster: {e}", err=True)
        raise typer.Exit(2) from e


@contextmanager
def failing_clearly(command: str, as_json: bool) -> Iterator[None]:
    """An OpsError ends the command with its message (as JSON with --json) and exit status 1."""
    try:
        yield
    except (OpsError, redis.RedisError) as e:
        if as_json:
            typer.echo(json.dumps({"ok": False, "error": str(e)}))
        else:
            typer.echo(f"parley cluster {command}: {e}", err=True)
        raise typer.Exit(1) from e


def confirm(question: str, yes: bool) -> None:
    if not yes and not typer.confirm(question, default=False):
        typer.echo("aborted", err=True)
        raise typer.Exit(1)


def emit(as_json: bool, data: Any, text: Callable[[], None]) -> None:
    if as_json:
        typer.echo(json.dumps(data, default=str))
    else:
        text()


@contextmanager
def progress_bar(total: int, label: str, quiet: bool) -> Iterator[slot_moves.Progress]:
    """A rich progress bar over slots (nothing with --json); yields the per-slot callback."""
    if quiet or total == 0:
        yield lambda _move, _keys: None
        return
    columns = (
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[keys]} keys"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(label, total=total, keys=0)
        moved = 0

        def advance(_move: slot_moves.Move, keys: int) -> None:
            nonlocal moved
            moved += keys
            bar.update(task, advance=1, keys=moved)

        yield advance


def print_report(rep: ClusterReport) -> None:
    for n in rep.nodes:
        role = n.role if n.role == "master" else f"replica of {n.master_id[:8]}"
        lag = "" if n.lag_bytes is None else f"  lag {n.lag_bytes} B"
        mem = f"{n.used_memory / 2**20:.1f} MiB"
        slots = f"{n.slots} slots {format_ranges(n.slot_ranges)}" if n.role == "master" else ""
        typer.echo(
            f"{n.address}  {n.id[:8]}  {role}  {slots}  offset {n.replication_offset}{lag}  "
            f"{mem}  {n.keys} keys{'  ' + n.error if n.error else ''}"
        )
    typer.echo(
        f"cluster: {rep.state}, {rep.slots_covered} slots covered"
        + ("" if rep.ok else "; NOT ok: " + "; ".join(rep.problems))
    )


def remote_status(target: Target, as_json: bool) -> None:
    with failing_clearly("status", as_json):
        rep = report(target)
    emit(as_json, rep.as_json(), lambda: print_report(rep))
    if not rep.ok:
        raise typer.Exit(1)


def add_node(
    address: Annotated[str, typer.Argument(help="host:port of an empty cluster-enabled node.")],
    replica_of: Annotated[
        str | None,
        typer.Option(
            "--replica-of",
            show_default=False,
            help="Join as a replica of this master (node id or host:port);"
            " default: as a master without slots.",
        ),
    ] = None,
    url: Url = None,
    user: User = None,
    password_file: PasswordFile = None,
    ca_file: CaFile = None,
    ports: Ports = None,
    as_json: Json = False,
) -> None:
    """Join an empty node as a master (no slots until a reshard) or as a replica of a master."""
    target = target_of(url, user, password_file, ca_file, ports)
    with failing_clearly("add-node", as_json):
        node = node_ops.add_node(target, address, replica_of=replica_of)
    role = "master" if node.is_master else f"replica of {node.master_id[:8]}"
    emit(
        as_json,
        {"ok": True, "id": node.id, "address": node.address, "role": role},
        lambda: typer.echo(f"{node.address} joined as {role}: {node.id}"),
    )


def _run_moves(target: Target, moves: Sequence[slot_moves.Move], as_json: bool, label: str) -> int:
    with progress_bar(len(moves), label, as_json) as advance:
        return slot_moves.execute(target, moves, advance)


def reshard(
    to: Annotated[
        str, typer.Option("--to", help="The master receiving the slots (id or host:port).")
    ],
    count: Annotated[
        int | None,
        typer.Option(
            "--count",
            show_default=False,
            help="How many slots, taken from the other masters in proportion.",
        ),
    ] = None,
    slots: Annotated[
        str | None,
        typer.Option("--slots", show_default=False, help="Exactly these slots, e.g. 0-99,512."),
    ] = None,
    from_: Annotated[
        list[str] | None,
        typer.Option(
            "--from", show_default=False, help="Only from these masters (repeatable; with --count)."
        ),
    ] = None,
    url: Url = None,
    user: User = None,
    password_file: PasswordFile = None,
    ca_file: CaFile = None,
    ports: Ports = None,
    yes: Yes = False,
    as_json: Json = False,
) -> None:
    """Move slots to a master live (MIGRATE in pipelined batches); finishes an interrupted move
    first."""
    target = target_of(url, user, password_file, ca_file, ports)
    with failing_clearly("reshard", as_json):
        if (count is None) == (slots is None):
            raise OpsError("give exactly one of --count and --slots")
        topo = Topology.read(target)
        dest = topo.find(to)
        if slots is not None:
            moves = slot_moves.plan_slots(topo, dest, parse_slots(slots))
        else:
            sources = [topo.find(s) for s in from_ or []]
            moves = slot_moves.plan_count(topo, dest, count or 0, sources)
        confirm(f"Move {len(moves)} slots to {dest.address}?", yes or not moves)
        keys = _run_moves(target, moves, as_json, f"to {dest.address}")
    emit(
        as_json,
        {"ok": True, "slots": len(moves), "keys": keys, "to": dest.id},
        lambda: typer.echo(f"moved {len(moves)} slots ({keys} keys) to {dest.address}"),
    )


def rebalance(
    url: Url = None,
    user: User = None,
    password_file: PasswordFile = None,
    ca_file: CaFile = None,
    ports: Ports = None,
    yes: Yes = False,
    as_json: Json = False,
) -> None:
    """Even out the slots over every master, empty ones included (after add-node)."""
    target = target_of(url, user, password_file, ca_file, ports)
    with failing_clearly("rebalance", as_json):
        moves = slot_moves.plan_rebalance(Topology.read(target))
        confirm(f"Move {len(moves)} slots to even out the masters?", yes or not moves)
        keys = _run_moves(target, moves, as_json, "rebalancing")
    emit(
        as_json,
        {"ok": True, "slots": len(moves), "keys": keys},
        lambda: typer.echo(f"moved {len(moves)} slots ({keys} keys)"),
    )


def resume(
    url: Url = None,
    user: User = None,
    password_file: PasswordFile = None,
    ca_file: CaFile = None,
    ports: Ports = None,
    as_json: Json = False,
) -> None:
    """Finish every slot an interrupted move left MIGRATING or IMPORTING."""
    target = target_of(url, user, password_file, ca_file, ports)
    with failing_clearly("resume", as_json):
        done = slot_moves.finish_open_slots(target)
    emit(
        as_json,
        {"ok": True, "slots": [m.slot for m in done]},
        lambda: typer.echo(f"finished {len(done)} open slot(s)"),
    )


def remove_node(
    node: Annotated[str, typer.Argument(help="Node id or host:port.")],
    url: Url = None,
    user: User = None,
    password_file: PasswordFile = None,
    ca_file: CaFile = None,
    ports: Ports = None,
    yes: Yes = False,
    as_json: Json = False,
) -> None:
    """Drain the node's slots to the other masters, then remove it (a master's replicas go too)."""
    target = target_of(url, user, password_file, ca_file, ports)
    with failing_clearly("remove-node", as_json):
        topo = Topology.read(target)
        gone = topo.find(node)
        confirm(f"Drain {gone.slot_count} slots from {gone.address} and remove it?", yes)
        moves = slot_moves.plan_drain(topo, gone) if gone.is_master else []
        with progress_bar(len(moves), f"draining {gone.address}", as_json) as advance:
            removed = node_ops.remove_node(target, gone.id, progress=advance)
    emit(
        as_json,
        {"ok": True, "removed": [n.id for n in removed]},
        lambda: typer.echo("removed " + ", ".join(f"{n.address} ({n.id[:8]})" for n in removed)),
    )


def failover(
    node: Annotated[
        str, typer.Argument(help="The replica to promote, or a master (its best replica).")
    ],
    force: Annotated[
        bool, typer.Option("--force", help="CLUSTER FAILOVER FORCE: the master is unreachable.")
    ] = False,
    url: Url = None,
    user: User = None,
    password_file: PasswordFile = None,
    ca_file: CaFile = None,
    ports: Ports = None,
    yes: Yes = False,
    as_json: Json = False,
) -> None:
    """Manual failover: a replica takes over its master's slots; the master becomes its replica."""
    target = target_of(url, user, password_file, ca_file, ports)
    with failing_clearly("failover", as_json):
        confirm(f"Fail over {node}?", yes)
        promoted = node_ops.failover(target, node, force=force)
    emit(
        as_json,
        {"ok": True, "promoted": promoted.id, "address": promoted.address},
        lambda: typer.echo(f"{promoted.address} is now a master"),
    )


def fix(
    to: Annotated[
        str, typer.Option("--to", help="The master that takes every slot without a live owner.")
    ],
    url: Url = None,
    user: User = None,
    password_file: PasswordFile = None,
    ca_file: CaFile = None,
    ports: Ports = None,
    yes: Yes = False,
    as_json: Json = False,
) -> None:
    """Forget failed nodes and give their slots to a master (empty: restore them from a backup)."""
    target = target_of(url, user, password_file, ca_file, ports)
    with failing_clearly("fix", as_json):
        confirm(f"Forget failed nodes and assign their slots to {to}?", yes)
        assigned = node_ops.fix(target, to)
    text = format_ranges(assigned)
    emit(as_json, {"ok": True, "slots": text}, lambda: typer.echo(f"assigned slots {text} to {to}"))


def backup(
    dest: Annotated[Path, typer.Argument(help="Folder under which a dated backup folder is made.")],
    database: Databases = None,
    url: Url = None,
    user: User = None,
    password_file: PasswordFile = None,
    ca_file: CaFile = None,
    ports: Ports = None,
    as_json: Json = False,
) -> None:
    """BGSAVE every master; copy the RDBs and cluster map with each service's database, with a
    manifest and checksums, into one dated folder."""
    target = target_of(url, user, password_file, ca_file, ports)
    with failing_clearly("backup", as_json):
        dbs = [Database.parse(d) for d in database or []]
        folder = backups.backup(target, dest, dbs, log=(lambda _: None) if as_json else typer.echo)
    emit(as_json, {"ok": True, "folder": str(folder)}, lambda: typer.echo(f"backup: {folder}"))


def restore(
    folder: Annotated[Path, typer.Argument(help="A backup folder (with manifest.json).")],
    database: Databases = None,
    slots: Annotated[
        str | None,
        typer.Option(
            "--slots",
            show_default=False,
            help="Only the keys of these slots (a lost shard's), e.g. 0-5460.",
        ),
    ] = None,
    into_slots_of: Annotated[
        str | None,
        typer.Option(
            "--into-slots-of",
            show_default=False,
            help="Only the keys of the slots this node serves now (after fix: the lost shard's).",
        ),
    ] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite keys that exist.")] = False,
    databases_only: Annotated[
        bool, typer.Option("--databases-only", help="Restore only the --database ones, no keys.")
    ] = False,
    url: Url = None,
    user: User = None,
    password_file: PasswordFile = None,
    ca_file: CaFile = None,
    ports: Ports = None,
    yes: Yes = False,
    as_json: Json = False,
) -> None:
    """Restore a backup into a (fresh) cluster and the named databases, then verify every key."""
    target = target_of(url, user, password_file, ca_file, ports)
    with failing_clearly("restore", as_json):
        dbs = [Database.parse(d) for d in database or []]
        wanted = parse_slots(slots) if slots else None
        if into_slots_of is not None:
            served = Topology.read(target).find(into_slots_of).slot_list()
            wanted = sorted(set(wanted or []) | set(served))
        named = ", ".join(d.name for d in dbs) or "no database"
        confirm(
            f"Restore {folder.name} into {target.url} and {named} (their contents are replaced)?",
            yes,
        )
        done = restores.restore(
            target,
            folder,
            dbs,
            slots=wanted,
            replace=replace,
            databases_only=databases_only,
            log=(lambda _: None) if as_json else typer.echo,
        )
    emit(
        as_json,
        {"ok": True, "restored": [asdict(r) for r in done]},
        lambda: typer.echo(
            f"restored {sum(r.keys for r in done)} keys and {len(dbs)} database(s); verified"
        ),
    )


def memory(
    samples: Annotated[int, typer.Option("--samples", help="Keys measured per family.")] = 50,
    url: Url = None,
    user: User = None,
    password_file: PasswordFile = None,
    ca_file: CaFile = None,
    ports: Ports = None,
    as_json: Json = False,
) -> None:
    """MEMORY USAGE sampled per key family (prefix) and per stream."""
    target = target_of(url, user, password_file, ca_file, ports)
    with failing_clearly("memory", as_json):
        rep = memory_ops.sample(target, samples=samples)

    def text() -> None:
        typer.echo(f"{'family':<48} {'type':<7} {'keys':>8} {'mean B':>8} {'est. MiB':>9}")
        for f in rep.families:
            typer.echo(
                f"{f['family']:<48} {f['type']:<7} {f['keys']:>8} {f['mean_bytes']:>8} "
                f"{f['estimated_bytes'] / 2**20:>9.2f}"
            )
        for s in rep.streams:
            typer.echo(f"stream {s.key:<41} {s.length:>8} entries {s.bytes / 2**20:>9.2f} MiB")
        typer.echo(
            f"keys {rep.keys}, estimated {rep.estimated_bytes / 2**20:.1f} MiB, "
            f"used_memory of the masters {rep.used_memory / 2**20:.1f} MiB"
        )

    emit(as_json, rep.as_json(), text)


def register(app: typer.Typer) -> None:
    """Add the commands above to ``parley cluster``."""
    for name, command in (
        ("add-node", add_node),
        ("reshard", reshard),
        ("rebalance", rebalance),
        ("resume", resume),
        ("remove-node", remove_node),
        ("failover", failover),
        ("fix", fix),
        ("backup", backup),
        ("restore", restore),
        ("memory", memory),
    ):
        app.command(name)(command)
