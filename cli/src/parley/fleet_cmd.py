"""``parley up`` (the whole fleet as separate processes) and ``parley migrate <service>``."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Annotated

import httpx
import typer
from honcho import manager as honcho_manager

from parley.cluster import ClusterError, LocalCluster, ports_from_env
from parley.fleet import SERVICES, service_script
from parley.tables import fleet_table, show
from shared.service.paths import state_dir


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the fleet as the runner starts it."""

    name: str
    default_port: int
    owns_database: bool

    @property
    def env_prefix(self) -> str:
        return f"{self.name.upper()}_"

    def port(self) -> int:
        value = os.environ.get(f"PARLEY_{self.name.upper()}_PORT", str(self.default_port))
        try:
            return int(value)
        except ValueError as e:
            raise typer.BadParameter(f"PARLEY_{self.name.upper()}_PORT={value!r}") from e


FLEET = (
    ServiceSpec("auth", 8101, owns_database=True),
    ServiceSpec("user", 8102, owns_database=True),
    ServiceSpec("chat", 8103, owns_database=True),
    ServiceSpec("notification", 8104, owns_database=True),
    ServiceSpec("gateway", 8080, owns_database=False),
)


def _service_env(spec: ServiceSpec, redis_url: str, host: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PARLEY_HOME", str(state_dir().parent))
    env[f"{spec.env_prefix}PORT"] = str(spec.port())
    env[f"{spec.env_prefix}HOST"] = host
    if spec.name == "gateway":  # its admin listener (health details, metrics)
        env["GATEWAY_ADMIN_PORT"] = str(_gateway_admin_port())
    env.setdefault(f"{spec.env_prefix}REDIS_URL", redis_url)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _gateway_admin_port() -> int:
    value = os.environ.get("PARLEY_GATEWAY_ADMIN_PORT", "8105")
    try:
        return int(value)
    except ValueError as e:
        raise typer.BadParameter(f"PARLEY_GATEWAY_ADMIN_PORT={value!r}") from e


def _await_ready(host: str, timeout: float, done: threading.Event) -> None:
    """Poll every service's /health/ready; print the URLs once all answer 200, or give up."""
    pending = {s.name: f"http://{host}:{s.port()}" for s in FLEET}
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while pending and time.monotonic() < deadline and not done.is_set():
            for name, base in list(pending.items()):
                try:
                    if client.get(f"{base}/health/ready").status_code == 200:
                        del pending[name]
                except httpx.HTTPError:
                    pass
            time.sleep(0.3)
    if done.is_set():
        return
    if pending:
        print(
            f"parley up: not ready after {timeout:.0f}s: {', '.join(sorted(pending))}", flush=True
        )
        os.kill(os.getpid(), signal.SIGTERM)
        return
    gateway = next(s for s in FLEET if s.name == "gateway")
    admin = "admin: health, metrics"
    rows = []
    for s in FLEET:
        role = "public API" if s.name == "gateway" else admin
        rows.append((s.name, f"http://{host}:{s.port()}", role))
        if s.name == "gateway":
            rows.append(("gateway", f"http://{host}:{_gateway_admin_port()}", admin))
    print(f"\nParley is up:\n  chat in a browser: http://{host}:{gateway.port()}/", flush=True)
    show(fleet_table(rows))
    print("  Ctrl-C stops everything.", flush=True)


def up(
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 90.0,
    grace: Annotated[float, typer.Option(help="Seconds between SIGTERM and SIGKILL.")] = 10.0,
    host: Annotated[str, typer.Option(help="Address the services listen on.")] = "127.0.0.1",
) -> None:
    """Start the cluster if needed, then the five services; Ctrl-C stops all of it."""
    cluster = LocalCluster(state_dir(), ports_from_env())
    started_cluster = not cluster.status().ok
    try:
        if started_cluster:
            typer.echo(f"starting the local Redis Cluster on ports {cluster.ports}")
        cluster.up()
    except ClusterError as e:
        typer.echo(f"parley up: {e}", err=True)
        raise typer.Exit(1) from e
    honcho_manager.KILL_WAIT = grace
    fleet = honcho_manager.Manager()
    for spec in FLEET:
        fleet.add_process(
            spec.name,
            f"exec {shlex.quote(service_script(spec.name))} serve",
            env=_service_env(spec, cluster.url(), host),
        )
    done = threading.Event()
    watcher = threading.Thread(target=_await_ready, args=(host, ready_timeout, done), daemon=True)
    watcher.start()
    try:
        fleet.loop()
    finally:
        done.set()
        if started_cluster:
            stopped = cluster.down()
            typer.echo(f"stopped the local Redis Cluster ({len(stopped)} nodes)")
    raise typer.Exit(fleet.returncode or 0)


def migrate(
    service: Annotated[str, typer.Argument(help=f"One of: {', '.join(SERVICES)}.")],
) -> None:
    """Apply the service's database migrations (its ``<PREFIX>DATABASE_URL``, else SQLite)."""
    if service not in SERVICES:
        typer.echo(f"parley migrate: unknown service {service!r}", err=True)
        raise typer.Exit(2)
    result = subprocess.run([service_script(service), "migrate"], check=False)
    raise typer.Exit(result.returncode)
