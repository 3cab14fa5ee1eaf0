"""``parley cluster backup``: every master's snapshot, the cluster map and the services' databases.

One dated folder holds ``redis/<node id>.rdb`` (BGSAVE on every master, waited for), the node's
view of the cluster (``redis/<node id>.nodes.txt``), ``db/<service>.sqlite|.pgdump`` and
``manifest.json`` listing every file with its size and SHA-256. The RDB is copied from the node's
data folder when the node runs on this machine, else fetched over the network with
``redis-cli --rdb`` (which does the replica handshake; nothing is needed on the node's host).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from parley.ops import databases
from parley.ops.databases import Database
from parley.ops.target import OpsError, Target
from parley.ops.topology import Node, Topology, _text, wait_for

MANIFEST = "manifest.json"
FORMAT = 1
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _snapshot(target: Target, node: Node, timeout: float) -> dict[str, Any]:
    """BGSAVE on ``node`` and wait until that save (not an older one) has finished well."""
    with target.node(node.host, node.port) as r:
        before = int(r.info("persistence").get("rdb_saves", 0))
        r.execute_command("BGSAVE", "SCHEDULE")  # after a running AOF rewrite, if any

        def saved() -> bool:
            info = r.info("persistence")
            done = int(info.get("rdb_saves", 0)) > before and not info.get("rdb_bgsave_in_progress")
            if done and info.get("rdb_last_bgsave_status") != "ok":
                raise OpsError(f"BGSAVE failed on {node.address}; see its log")
            return done

        wait_for(f"BGSAVE on {node.address}", saved, timeout, interval=0.2)
        folder = _text(r.config_get("dir")["dir"])
        name = _text(r.config_get("dbfilename")["dbfilename"])
        return {"file": Path(folder) / name, "keys": int(r.dbsize())}


def _fetch_rdb(target: Target, node: Node, local: Path, dest: Path) -> str:
    """Copy the node's snapshot into ``dest``; returns how ("copied" or "redis-cli --rdb")."""
    if node.host in _LOOPBACK and local.is_file():
        shutil.copyfile(local, dest)
        return "copied"
    cli = shutil.which("redis-cli") or shutil.which("valkey-cli")
    if cli is None:
        raise OpsError(
            f"{node.address} is remote and neither redis-cli nor valkey-cli is on the PATH"
        )
    args = [cli, "-h", node.host, "-p", str(node.port), "--no-auth-warning", "--rdb", str(dest)]
    if target.username:
        args += ["--user", target.username]
    if target.tls:
        args += ["--tls", *(["--cacert", target.ca_file] if target.ca_file else [])]
    env = {**os.environ, **({"REDISCLI_AUTH": target.password} if target.password else {})}
    result = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise OpsError(f"redis-cli --rdb from {node.address} failed: {result.stderr.strip()}")
    return "redis-cli --rdb"


def backup(
    target: Target,
    dest: Path,
    dbs: Sequence[Database] = (),
    *,
    timeout: float = 300.0,
    log: Callable[[str], None] = lambda _: None,
) -> Path:
    """Write one dated backup folder under ``dest``; returns it."""
    topo = Topology.read(target)
    if not topo.serving:
        raise OpsError("the cluster has no master with slots")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = dest / f"parley-backup-{stamp}"
    (folder / "redis").mkdir(parents=True)
    (folder / "db").mkdir()
    files: list[dict[str, Any]] = []
    for master in topo.serving:
        snap = _snapshot(target, master, timeout)
        rdb = folder / "redis" / f"{master.id}.rdb"
        how = _fetch_rdb(target, master, snap["file"], rdb)
        log(f"{master.address}: {snap['keys']} keys, snapshot {how}")
        with target.node(master.host, master.port) as r:
            view = _text(r.execute_command("CLUSTER NODES"))
        (folder / "redis" / f"{master.id}.nodes.txt").write_text(view)
        files.append(
            {
                "path": f"redis/{master.id}.rdb",
                "kind": "rdb",
                "node_id": master.id,
                "address": master.address,
                "keys": snap["keys"],
                "slots": [list(r) for r in master.slots],
            }
        )
        files.append(
            {"path": f"redis/{master.id}.nodes.txt", "kind": "cluster-config", "node_id": master.id}
        )
    for db in dbs:
        databases.dump(db, folder / "db" / db.file_name)
        log(f"database {db.name}: {db.kind} dumped")
        files.append(
            {"path": f"db/{db.file_name}", "kind": db.kind, "database": db.name, "url": db.redacted}
        )
    for entry in files:
        path = folder / entry["path"]
        entry["bytes"] = path.stat().st_size
        entry["sha256"] = sha256(path)
    manifest = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(),
        "source": target.url,
        "nodes": [
            {
                "id": n.id,
                "address": n.address,
                "role": "master" if n.is_master else "replica",
                "master_id": n.master_id,
                "slots": [list(r) for r in n.slots],
            }
            for n in topo.nodes
        ],
        "files": files,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return folder


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest, with every file's checksum verified; a clear error for any mismatch."""
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise OpsError(f"{folder} is not a backup: {MANIFEST} unreadable ({e})") from e
    if manifest.get("format") != FORMAT:
        raise OpsError(f"{folder}: backup format {manifest.get('format')!r}, expected {FORMAT}")
    for entry in manifest["files"]:
        path = folder / entry["path"]
        if not path.is_file():
            raise OpsError(f"{folder}: {entry['path']} is missing")
        if sha256(path) != entry["sha256"]:
            raise OpsError(f"{folder}: {entry['path']} does not match its checksum")
    return manifest


__all__ = ["backup", "read_manifest", "sha256"]
