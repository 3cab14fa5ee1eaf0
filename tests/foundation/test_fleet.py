"""``parley up``: the cluster and five services as separate processes, stopped by Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from parley.cluster import LocalCluster, parse_ports

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("auth", "user", "chat", "notification", "gateway")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def test_up_starts_cluster_and_fleet_and_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    cluster_ports = os.environ.get("PARLEY_TEST_FLEET_PORTS", "7121-7126")
    cluster = LocalCluster(ROOT / ".parley", parse_ports(cluster_ports))
    cluster.reset()
    ports = {s: _free_port() for s in SERVICES}
    env = dict(os.environ)
    env.update({f"PARLEY_{s.upper()}_PORT": str(p) for s, p in ports.items()})
    env["PARLEY_CLUSTER_PORTS"] = cluster_ports
    env["PARLEY_GATEWAY_ADMIN_PORT"] = str(_free_port())
    for s in SERVICES[:-1]:
        env[f"{s.upper()}_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/{s}.db"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "parley"), "up", "--grace", "5"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if "Parley is up" in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(90), "".join(output[-40:])
        assert cluster.status().ok
        for service, port in ports.items():
            response = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5)
            assert response.status_code == 200, (service, response.text)
            assert response.json()["service"] == service
        text = "".join(output)
        client = f"http://127.0.0.1:{ports['gateway']}/"
        assert f"chat in a browser: {client}" in text
        assert '<div id="app">' in httpx.get(client, timeout=5).text
        for service in SERVICES:
            assert re.search(rf"^\S+ {service}\s+\| ", text, re.MULTILINE), (
                f"no prefixed lines of {service}"
            )
        pids = [int(p) for p in re.findall(r"started \(pid=(\d+)\)", text)]
        assert len(pids) == len(SERVICES)
        node_pids = [cluster.pid(p) for p in cluster.ports]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    reader.join(5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    assert not [p for p in pids if _alive(p)], "service processes left behind"
    assert not [p for p in node_pids if p and _alive(p)], "cluster nodes left behind"
    assert "stopped the local Redis Cluster" in "".join(output)
