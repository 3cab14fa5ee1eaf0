"""``/health/ready`` follows the cluster: it turns false when a slot range loses its nodes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from parley.cluster import LocalCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def _eventually(url: str, expected: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _status(url) == expected:
            return
        time.sleep(0.3)
    raise AssertionError(f"{url} never answered {expected}")


@pytest.fixture
def chat_on(disposable_cluster: LocalCluster, tmp_path: Path) -> Iterator[str]:
    disposable_cluster.up()
    port = _free_port()
    env = dict(os.environ)
    env.update(
        CHAT_PORT=str(port),
        CHAT_REDIS_URL=disposable_cluster.url(),
        CHAT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/chat.db",
    )
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "parley-chat"), "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises SIGTERM after its graceful shutdown, so -SIGTERM is a clean stop.
        assert proc.wait(20) in (0, -signal.SIGTERM)


def test_ready_turns_false_when_a_slot_range_is_lost_and_true_after_repair(
    disposable_cluster: LocalCluster, chat_on: str
) -> None:
    _eventually(f"{chat_on}/health/ready", 200)
    assert httpx.get(f"{chat_on}/health/live").json()["status"] == "ok"
    assert "python_info" in httpx.get(f"{chat_on}/metrics").text

    status = disposable_cluster.status()
    master = next(n for n in status.nodes if n.role == "master")
    replica = next(n for n in status.nodes if n.master_id == master.node_id)
    disposable_cluster.stop_node(replica.port, sig=signal.SIGKILL)
    disposable_cluster.stop_node(master.port, sig=signal.SIGKILL)

    _eventually(f"{chat_on}/health/ready", 503)
    body = httpx.get(f"{chat_on}/health/ready", timeout=10).json()
    assert body["checks"]["redis"]["ok"] is False
    assert httpx.get(f"{chat_on}/health/live").status_code == 200

    disposable_cluster.up()
    _eventually(f"{chat_on}/health/ready", 200, timeout=60)
