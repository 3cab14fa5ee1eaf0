"""``parley cluster restore``: a backup into a fresh cluster of any shape, then verified.

Each master's RDB is opened by a private, non-cluster server on loopback (the same server binary
as the local cluster); its keys are copied to the target with DUMP / RESTORE, TTLs kept, so the
target's slot layout does not need to match the source's. Streams keep their consumer groups,
pending entries and last-delivered ids (DUMP carries them), so consumers resume where they were.
``--slots`` restores only the keys of those slots (the disaster procedure: a lost shard's slots).
Then every restored key is checked to exist on the target.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.crc import key_slot

from parley.cluster import find_server_binary
from parley.ops import databases
from parley.ops.backup import read_manifest
from parley.ops.databases import Database
from parley.ops.target import OpsError, Target
from parley.ops.topology import wait_for

BATCH = 500


@dataclass(frozen=True)
class Restored:
    source: str  # the node id the snapshot came from, or the database name
    kind: str
    keys: int = 0
    verified: bool = True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def opened_snapshot(rdb: Path) -> Iterator[redis.Redis]:
    """A private server on loopback that has loaded ``rdb``; stopped and deleted afterwards."""
    work = Path(tempfile.mkdtemp(prefix="parley-restore-"))
    shutil.copyfile(rdb, work / "dump.rdb")
    port = _free_port()
    args = [
        str(find_server_binary()),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(work),
        "--dbfilename",
        "dump.rdb",
        "--save",
        "",
        "--appendonly",
        "no",
        "--logfile",
        "server.log",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=30)
    try:

        def loaded() -> bool:
            if process.poll() is not None:
                log = (work / "server.log").read_text(errors="replace")[-500:]
                raise OpsError(f"the snapshot {rdb.name} did not load: {log}")
            return client.info("persistence").get("loading") == 0

        try:
            wait_for(f"the snapshot {rdb.name} to load", loaded, 120)
        except redis.RedisError as e:
            raise OpsError(f"the snapshot {rdb.name} did not load: {e}") from e
        yield client
    finally:
        client.close()
        process.kill()
        process.wait()
        shutil.rmtree(work, ignore_errors=True)


def _copy_keys(
    source: redis.Redis, target: redis.RedisCluster, slots: set[int] | None, *, replace: bool
) -> list[bytes]:
    copied: list[bytes] = []
    for keys in _batches(source, slots):
        pipe = source.pipeline(transaction=False)
        for key in keys:
            pipe.dump(key)
            pipe.pttl(key)
        answers = pipe.execute()
        out = target.pipeline()  # type: ignore[no-untyped-call]
        for i, key in enumerate(keys):
            payload, ttl = answers[2 * i], int(answers[2 * i + 1])
            if payload is None or ttl == -2:
                continue  # Expired while we read it.
            out.restore(key, max(ttl, 0), payload, replace=replace)
            copied.append(key)
        try:
            out.execute()
        except redis.ResponseError as e:
            if "BUSYKEY" in str(e):
                raise OpsError(
                    f"a key of the backup already exists on the target ({e}); "
                    "restore into a fresh cluster, or give --replace"
                ) from e
            raise OpsError(f"RESTORE failed: {e}") from e
    return copied


def _batches(source: redis.Redis, slots: set[int] | None) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for key in source.scan_iter(count=1000):
        if slots is None or key_slot(key) in slots:
            batch.append(key)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _verify(target: redis.RedisCluster, keys: Sequence[bytes]) -> bool:
    for i in range(0, len(keys), BATCH):
        pipe = target.pipeline()  # type: ignore[no-untyped-call]
        for key in keys[i : i + BATCH]:
            pipe.exists(key)
        if not all(pipe.execute()):
            return False
    return True


def restore(
    target: Target,
    folder: Path,
    dbs: Sequence[Database] = (),
    *,
    slots: Sequence[int] | None = None,
    replace: bool = False,
    databases_only: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> list[Restored]:
    """Restore the snapshots (only ``slots``' keys, when given) and the named databases."""
    manifest = read_manifest(folder)
    by_name = {f["database"]: f for f in manifest["files"] if "database" in f}
    for db in dbs:
        if db.name not in by_name:
            raise OpsError(f"the backup has no database {db.name!r} (it has {sorted(by_name)})")
    wanted = set(slots) if slots is not None else None
    results: list[Restored] = []
    if not databases_only:
        results += _restore_snapshots(target, folder, manifest, wanted, replace=replace, log=log)
    for db in dbs:
        entry = by_name[db.name]
        databases.load(db, folder / entry["path"])
        log(f"database {db.name}: restored from {entry['path']}")
        results.append(Restored(db.name, entry["kind"]))
    if not all(r.verified for r in results):
        raise OpsError("verification failed: some restored keys are missing on the target")
    return results


def _restore_snapshots(
    target: Target,
    folder: Path,
    manifest: dict[str, Any],
    wanted: set[int] | None,
    *,
    replace: bool,
    log: Callable[[str], None],
) -> list[Restored]:
    cluster = target.cluster()
    results: list[Restored] = []
    try:
        if wanted is None and not replace:
            size = int(cluster.dbsize(target_nodes=redis.RedisCluster.PRIMARIES))  # summed
            if size:
                raise OpsError(
                    f"the target holds {size} keys: restore into a fresh cluster, or give --replace"
                )
        for entry in (f for f in manifest["files"] if f["kind"] == "rdb"):
            with opened_snapshot(folder / entry["path"]) as snapshot:
                copied = _copy_keys(snapshot, cluster, wanted, replace=replace)
            ok = _verify(cluster, copied)
            log(
                f"{entry['address']} ({entry['node_id'][:8]}): {len(copied)} keys restored, "
                f"{'verified' if ok else 'MISSING KEYS'}"
            )
            results.append(Restored(entry["node_id"], "rdb", len(copied), ok))
    finally:
        cluster.close()
    return results
