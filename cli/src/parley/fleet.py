"""Launch the five services as separate processes on free ports, for end-to-end tests and benches.

``parley up`` (``fleet_cmd``) runs the fleet in the foreground on fixed ports for a developer; this
module is the programmatic counterpart, one implementation for the e2e suite and ``bench/e2e.py``::

    with Fleet(redis_url, home, extra_env={"auth": {...}}) as fleet:
        fleet.start()                       # the five services, waits for /health/ready
        fleet.add("gateway", name="gateway-uncached", env={"GATEWAY_RESPONSE_CACHE": "false"})
        fleet.wait_ready()
        httpx.get(f"{fleet.api}/health/ready")

Every process gets ``<SVC>_PORT``, ``<SVC>_REDIS_URL``, ``<SVC>_DATABASE_URL`` (the four data
services: a SQLite file in ``home`` unless a ``database_url`` factory says otherwise),
``PARLEY_HOME=home`` and ``PARLEY_LOG_FORMAT=json``, ``<SVC>_REDIS_USERNAME`` / ``_PASSWORD`` when
the cluster has ACL users (``redis_users``: each service logs in as its own), then its extra env;
its output goes to
``<home>/<name>.log``. Plain ``subprocess`` rather than honcho (which ``parley up`` uses): callers
need each process's handle, port and exit status, not a foreground multiplexer.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

SERVICES: tuple[str, ...] = ("auth", "user", "chat", "notification", "gateway")
"""Every service of the fleet, in start order."""
DATA_SERVICES: tuple[str, ...] = ("auth", "user", "chat", "notification")
"""The services that own a database (the gateway keeps nothing durable)."""

DatabaseUrls = Callable[[str], str]
"""Gives the database URL of one data service, by service name."""

RedisUsers = Mapping[str, tuple[str, str]]
"""The Redis ACL (username, password) of each service, by service name."""


class FleetError(Exception):
    """A service of the fleet could not be started or did not become ready."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host`` (the OS picks it; a tiny race with other binders)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def sqlite_url(home: Path, service: str) -> str:
    """The default database of ``service``: ``<home>/<service>.db`` through aiosqlite."""
    return f"sqlite+aiosqlite:///{home}/{service}.db"


def service_env(
    service: str,
    *,
    port: int,
    redis_url: str,
    home: Path,
    database_url: str | None,
    host: str = "127.0.0.1",
    extra: Mapping[str, str] | None = None,
    base: Mapping[str, str] | None = None,
    redis_user: tuple[str, str] | None = None,
) -> dict[str, str]:
    """A service process's environment: ``base`` (default: ours), the fleet's variables, ``extra``.

    ``database_url`` is required for the data services and ignored for the gateway.
    """
    if service not in SERVICES:
        raise FleetError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    prefix = service.upper()
    env = dict(os.environ if base is None else base)
    env["PARLEY_HOME"] = str(home)
    env["PARLEY_LOG_FORMAT"] = "json"
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach the file before a crash, for log_tail
    env[f"{prefix}_HOST"] = host
    env[f"{prefix}_PORT"] = str(port)
    env[f"{prefix}_REDIS_URL"] = redis_url
    if redis_user is not None:
        env[f"{prefix}_REDIS_USERNAME"], env[f"{prefix}_REDIS_PASSWORD"] = redis_user
    if service in DATA_SERVICES:
        if database_url is None:
            raise FleetError(f"{service} needs a database URL")
        env[f"{prefix}_DATABASE_URL"] = database_url
    env.update(extra or {})
    return env


def service_script(service: str) -> str:
    """The service's console script (``parley-<service>``): beside this interpreter, else the
    one on the PATH."""
    candidate = Path(sys.executable).parent / f"parley-{service}"
    return str(candidate) if candidate.exists() else f"parley-{service}"


@dataclass(frozen=True)
class ServiceProcess:
    """One running service process: ``name`` is unique in the fleet (``gateway-uncached``)."""

    name: str
    service: str
    port: int
    log: Path
    popen: subprocess.Popen[bytes]
    admin_port: int | None = None
    """The gateway's admin listener (health details, metrics); others serve those on ``port``."""


def _terminate(popens: Iterable[subprocess.Popen[bytes]], grace: float) -> None:
    running = [p for p in popens if p.poll() is None]
    for popen in running:
        popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for popen in running:
        try:
            popen.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(5)


class Fleet:
    """Service processes on free ports against one Redis URL; ``stop()`` (or ``with``) ends them."""

    def __init__(
        self,
        redis_url: str,
        home: Path,
        *,
        database_url: DatabaseUrls | None = None,
        extra_env: Mapping[str, Mapping[str, str]] | None = None,
        host: str = "127.0.0.1",
        grace: float = 20.0,
        redis_users: RedisUsers | None = None,
    ) -> None:
        """``extra_env`` maps a service name to variables set after the fleet's own (overrides).

        ``redis_users``: the ACL user each service logs in as (none: no credentials).

        ``grace`` is how long ``stop()`` waits after SIGTERM before it sends SIGKILL.
        """
        self.redis_url = redis_url
        self.home = home
        self.host = host
        self.grace = grace
        self._database_url = database_url or (lambda service: sqlite_url(home, service))
        self._extra_env = {k: dict(v) for k, v in (extra_env or {}).items()}
        self._redis_users = dict(redis_users or {})
        self.processes: dict[str, ServiceProcess] = {}

    @property
    def ports(self) -> dict[str, int]:
        """The port of every process, by name (``"gateway"``, ``"gateway-uncached"``, ...)."""
        return {name: p.port for name, p in self.processes.items()}

    def url(self, name: str = "gateway") -> str:
        """The HTTP base URL of one process."""
        return f"http://{self.host}:{self.processes[name].port}"

    def admin_url(self, name: str = "gateway") -> str:
        """The admin base URL of one process (``/health/*``, ``/metrics``)."""
        process = self.processes[name]
        return f"http://{self.host}:{process.admin_port or process.port}"

    @property
    def api(self) -> str:
        """The public gateway's base URL."""
        return self.url("gateway")

    @property
    def ws(self) -> str:
        """The public gateway's WebSocket URL."""
        return f"ws://{self.host}:{self.processes['gateway'].port}/ws"

    def log_tail(self, name: str, lines: int = 30) -> str:
        """The last ``lines`` lines of a process's log (empty when it wrote nothing yet)."""
        path = self.home / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def add(
        self,
        service: str,
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
    ) -> ServiceProcess:
        """Start one process of ``service``, without waiting; ``env`` overrides its extra env.

        Several processes of one service share its database and consumer groups, as scaled
        instances do; give each a distinct ``name``. ``port`` defaults to a free one.
        """
        name = name or service
        if name in self.processes:
            raise FleetError(f"a process named {name!r} is already running")
        port = port or free_port(self.host)
        extra = {**self._extra_env.get(service, {}), **(env or {})}
        admin_port = None
        if service == "gateway":  # its admin listener, never on the default port of another
            admin_port = free_port(self.host)
            extra = {"GATEWAY_ADMIN_PORT": str(admin_port), **extra}
        full_env = service_env(
            service,
            port=port,
            redis_url=self.redis_url,
            home=self.home,
            database_url=self._database_url(service) if service in DATA_SERVICES else None,
            host=self.host,
            extra=extra,
            redis_user=self._redis_users.get(service),
        )
        log = self.home / f"{name}.log"
        self.home.mkdir(parents=True, exist_ok=True)
        # The child keeps its own copy of the descriptor; ours can close right away.
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [service_script(service), "serve"],
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        process = ServiceProcess(name, service, port, log, popen, admin_port)
        self.processes[name] = process
        return process

    def start(self, *, timeout: float = 90.0) -> Fleet:
        """Start the five services and wait until all are ready; stops them all on failure."""
        try:
            for service in SERVICES:
                self.add(service)
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, names: Iterable[str] | None = None, *, timeout: float = 90.0) -> None:
        """Poll ``/health/ready`` of ``names`` (default: all) until each answers 200.

        Raises ``FleetError`` with the log tail of a process that exited, or of those still
        pending at the deadline.
        """
        pending = set(self.processes if names is None else names)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while pending:
                for name in sorted(pending):
                    process = self.processes[name]
                    if process.popen.poll() is not None:
                        raise FleetError(
                            f"{name} exited with {process.popen.returncode}:\n{self.log_tail(name)}"
                        )
                    try:
                        if client.get(f"{self.url(name)}/health/ready").status_code == 200:
                            pending.discard(name)
                    except httpx.HTTPError:
                        pass  # not listening yet
                if pending and time.monotonic() > deadline:
                    tails = "\n".join(f"--- {n}:\n{self.log_tail(n, 10)}" for n in sorted(pending))
                    raise FleetError(f"not ready after {timeout:.0f}s: {sorted(pending)}\n{tails}")
                if pending:
                    time.sleep(0.2)

    def restart(self, name: str, *, timeout: float = 90.0) -> ServiceProcess:
        """Stop one process (SIGTERM, then SIGKILL after the grace period) and start it again on
        the same port, so its clients reconnect to the address they knew; waits until ready."""
        old = self.processes.pop(name)
        _terminate([old.popen], self.grace)
        process = self.add(old.service, name=name, port=old.port)
        self.wait_ready([name], timeout=timeout)
        return process

    def stop(self) -> None:
        """SIGTERM every process, SIGKILL those still running after the grace period."""
        _terminate([p.popen for p in self.processes.values()], self.grace)
        self.processes.clear()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
