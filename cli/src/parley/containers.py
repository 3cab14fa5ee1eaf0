"""The same six-node cluster with every node in a container (testcontainers), where Docker runs.

``ContainerCluster`` is a :class:`~parley.cluster.LocalCluster` whose nodes are containers of
``PARLEY_TEST_REDIS_IMAGE`` (default ``valkey/valkey:8.1``) instead of local processes; forming,
repairing and inspecting the cluster are inherited unchanged. The containers use the host's network,
so each node listens on its loopback port exactly as a local process would, and the addresses the
cluster hands out (``CLUSTER SHARDS``, ``MOVED``) reach it from the host. Host networking needs a
Linux Docker engine (Docker Desktop: turn host networking on).

A container is named ``parley-node-<port>`` and labelled ``parley.cluster``; ``stop_node`` stops or
kills it and ``start_node`` starts the same container again, so the node keeps its ``nodes.conf``
and data and rejoins as itself. ``reset`` removes the containers.

The test fixtures use it when ``PARLEY_TEST_DOCKER=1`` (:func:`cluster_for_tests`);
``scripts/ensure-docker`` starts an engine and provides an image where neither is at hand.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from parley.acl import ClusterAcl
from parley.cluster import DEFAULT_PORTS, ClusterError, LocalCluster

DEFAULT_IMAGE = "valkey/valkey:8.1"
LABEL = "parley.cluster"


def docker_requested() -> bool:
    """Whether ``PARLEY_TEST_DOCKER=1`` asks for the container path."""
    return os.environ.get("PARLEY_TEST_DOCKER") == "1"


def cluster_for_tests(
    root: Path, ports: Sequence[int], *, acl: ClusterAcl | None = None
) -> LocalCluster:
    """A cluster on ``ports``: containers under ``PARLEY_TEST_DOCKER=1``, local processes else;
    with the fleet's ACL users when ``acl`` is given."""
    if docker_requested():
        return ContainerCluster(root, ports, acl=acl)
    return LocalCluster(root, ports, acl=acl)


class ContainerCluster(LocalCluster):
    """Six Valkey/Redis containers on the host's network forming one cluster."""

    def __init__(
        self,
        root: Path,
        ports: Sequence[int] = DEFAULT_PORTS,
        *,
        image: str | None = None,
        host: str = "127.0.0.1",
        node_timeout_ms: int = 2000,
        acl: ClusterAcl | None = None,
    ) -> None:
        super().__init__(root, ports, host=host, node_timeout_ms=node_timeout_ms, acl=acl)
        self.image = image or os.environ.get("PARLEY_TEST_REDIS_IMAGE", DEFAULT_IMAGE)
        self._client_of_docker: Any = None

    # ---------------------------------------------------------------- the engine

    def _docker(self) -> Any:
        if self._client_of_docker is None:
            import docker  # testcontainers' own dependency

            try:
                self._client_of_docker = docker.from_env()
                self._client_of_docker.ping()
            except Exception as e:
                raise ClusterError(
                    f"PARLEY_TEST_DOCKER=1 but no Docker engine answers ({e}); start one, "
                    "e.g. `scripts/ensure-docker start`"
                ) from e
        return self._client_of_docker

    def container_name(self, port: int) -> str:
        return f"parley-node-{port}"

    def _container(self, port: int) -> Any:
        from docker.errors import NotFound

        try:
            return self._docker().containers.get(self.container_name(port))
        except NotFound:
            return None

    # ---------------------------------------------------------------- nodes

    def pid(self, port: int) -> int | None:
        """The host pid of the node's container while it runs."""
        container = self._container(port)
        if container is None:
            return None
        container.reload()
        state = container.attrs.get("State", {})
        return int(state["Pid"]) if state.get("Running") and state.get("Pid") else None

    def start_node(self, port: int) -> None:
        """Start the node's container (the existing one again, so it rejoins as itself)."""
        if self._ping(port):
            return
        existing = self._container(port)
        if existing is not None:
            existing.start()
            return
        # Imported here: only the container path needs testcontainers (and a Docker engine).
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer

        # No reaper: a node's container must outlive this process (a stopped node is started
        # again, a later run reuses a healthy cluster); reset() removes them. The reaper would
        # also need its own image from Docker Hub.
        testcontainers_config.ryuk_disabled = True
        self._docker()  # a clear error when there is no engine
        container = (
            DockerContainer(self.image)
            .with_name(self.container_name(port))
            .with_command([*self.node_args(port), "--dir", "/data"])
            .with_kwargs(network_mode="host", labels={LABEL: ",".join(map(str, self.ports))})
        )
        try:
            container.start()
        except Exception as e:
            raise ClusterError(f"container {self.image} on port {port} failed: {e}") from e

    def log_tail(self, port: int, lines: int = 5) -> list[str]:
        """The last lines the node's container logged."""
        container = self._container(port)
        if container is None:
            return ["no container"]
        return list(container.logs(tail=lines).decode(errors="replace").splitlines())

    def stop_node(self, port: int, *, sig: signal.Signals = signal.SIGTERM) -> bool:
        """Stop (SIGTERM) or kill (any other signal) the node's container; keep it for a restart."""
        if self.pid(port) is None:
            return False
        container = self._container(port)
        if sig == signal.SIGTERM:
            container.stop(timeout=10)
        else:
            container.kill(signal=int(sig))
            container.wait(timeout=10)
        return True

    def reset(self) -> None:
        """Remove every node's container, data included."""
        for port in self.ports:
            container = self._container(port)
            if container is not None:
                container.remove(force=True)
