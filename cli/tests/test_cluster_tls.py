"""``parley cluster`` on a cluster reached over TLS, as an ACL user with its password in a file.

A cluster of its own (``PARLEY_TEST_TLS_PORTS``, 7157-7160,7167,7168): six nodes that speak only
TLS (``port 0``; clients, replication and the cluster bus all on TLS) with a certificate signed by
a CA made here, so the system's trust store does not know it and only ``--ca-file`` does; the
``default`` user is off and ``admin`` has a password.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from parley.cluster import find_server_binary, parse_ports
from parley.main import app

pytestmark = [pytest.mark.integration]

PASSWORD = "tls-admin-secret-0d9a"


@dataclass(frozen=True)
class TlsCluster:
    ports: tuple[int, ...]
    ca: Path
    password_file: Path

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.ports[0]}"

    def options(self, *extra: str) -> list[str]:
        return [
            "--url",
            self.url,
            "--user",
            "admin",
            "--password-file",
            str(self.password_file),
            "--ca-file",
            str(self.ca),
            *extra,
        ]

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=port,
            ssl=True,
            ssl_ca_certs=str(self.ca),
            username="admin",
            password=PASSWORD,
            socket_timeout=5,
        )


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _certificates(folder: Path) -> None:
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=parley-test-ca",
        cwd=folder,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "node.key",
        "-out",
        "node.csr",
        "-subj",
        "/CN=127.0.0.1",
        cwd=folder,
    )
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        "node.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "node.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        cwd=folder,
    )


def _wait(check: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsCluster]:
    ports = parse_ports(os.environ.get("PARLEY_TEST_TLS_PORTS", "7157,7158,7159,7160,7167,7168"))
    folder = tmp_path_factory.mktemp("tls-cluster")
    _certificates(folder)
    password_file = folder / "admin.password"
    password_file.write_text(PASSWORD + "\n")
    server = str(find_server_binary())
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            data = folder / str(port)
            data.mkdir()
            processes.append(
                subprocess.Popen(
                    [
                        server,
                        "--port",
                        "0",
                        "--tls-port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--tls-cert-file",
                        str(folder / "node.crt"),
                        "--tls-key-file",
                        str(folder / "node.key"),
                        "--tls-ca-cert-file",
                        str(folder / "ca.crt"),
                        "--tls-auth-clients",
                        "no",
                        "--tls-replication",
                        "yes",
                        "--tls-cluster",
                        "yes",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-node-timeout",
                        "2000",
                        "--dir",
                        str(data),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--masteruser",
                        "admin",
                        "--masterauth",
                        PASSWORD,
                        "--user",
                        "default",
                        "off",
                        "--user",
                        "admin",
                        "on",
                        f">{PASSWORD}",
                        "~*",
                        "&*",
                        "+@all",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=(data / "server.log").open("wb"),
                )
            )
        cluster = TlsCluster(ports, folder / "ca.crt", password_file)
        for port, process in zip(ports, processes, strict=True):
            if process.poll() is not None:
                log = (folder / str(port) / "server.log").read_text()
                pytest.skip(f"the server binary {server} cannot serve TLS: {log[-300:]}")
            _wait(lambda p=port: cluster.node(p).ping(), f"node {port} over TLS")
        masters, replicas = ports[:3], ports[3:]
        third = 16384 // 3
        for i, port in enumerate(masters):
            last = 16383 if i == 2 else (i + 1) * third - 1
            cluster.node(port).execute_command("CLUSTER ADDSLOTSRANGE", i * third, last)
        for port in ports[1:]:
            cluster.node(port).execute_command("CLUSTER MEET", "127.0.0.1", ports[0])
        _wait(
            lambda: all(
                len(cluster.node(p).execute_command("CLUSTER NODES")) == len(ports) for p in ports
            ),
            "every node to know the others",
        )
        for master, replica in zip(masters, replicas, strict=True):
            master_id = cluster.node(master).execute_command("CLUSTER MYID")
            cluster.node(replica).execute_command("CLUSTER REPLICATE", master_id)
        _wait(
            lambda: all(
                cluster.node(p).info("replication")["master_link_status"] == "up" for p in replicas
            ),
            "the replicas to sync over TLS",
        )
        _wait(
            lambda: all(
                cluster.node(p).execute_command("CLUSTER INFO")["cluster_state"] == "ok"
                for p in ports
            ),
            "cluster_state:ok",
        )
        yield cluster
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["cluster", *args])
    return result.exit_code, result.output


def test_status_over_tls_as_an_acl_user_with_the_ca_file(tls_cluster: TlsCluster) -> None:
    code, out = _run("status", *tls_cluster.options("--json"))
    assert code == 0, out
    report = json.loads(out)
    assert report["ok"] is True and report["slots_covered"] == 16384
    roles = sorted(n["role"] for n in report["nodes"])
    assert roles == ["master"] * 3 + ["replica"] * 3, roles


def test_without_the_ca_file_the_certificate_is_refused(tls_cluster: TlsCluster) -> None:
    code, out = _run(
        "status",
        "--url",
        tls_cluster.url,
        "--user",
        "admin",
        "--password-file",
        str(tls_cluster.password_file),
        "--json",
    )
    assert code == 1
    assert "certificate verify failed" in json.loads(out)["error"]


def test_a_wrong_password_or_a_plain_connection_fails_with_its_reason(
    tls_cluster: TlsCluster, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    code, out = _run(
        "status",
        "--url",
        tls_cluster.url,
        "--user",
        "admin",
        "--password-file",
        str(wrong),
        "--ca-file",
        str(tls_cluster.ca),
        "--json",
    )
    assert code == 1
    error = json.loads(out)["error"].lower()
    assert "invalid username-password" in error or "wrongpass" in error, error
    plain = tls_cluster.url.replace("rediss://", "redis://")
    code, out = _run(
        "status",
        "--url",
        plain,
        "--user",
        "admin",
        "--password-file",
        str(tls_cluster.password_file),
        "--json",
    )
    assert code == 1 and json.loads(out)["ok"] is False


def test_memory_and_a_failover_work_over_tls(tls_cluster: TlsCluster) -> None:
    client = redis.RedisCluster(
        host="127.0.0.1",
        port=tls_cluster.ports[0],
        ssl=True,
        ssl_ca_certs=str(tls_cluster.ca),
        username="admin",
        password=PASSWORD,
    )
    try:
        for i in range(200):
            client.set(f"chat:msg:{{conv:{i}}}:recent", "x" * 100)
    finally:
        client.close()
    code, out = _run("memory", *tls_cluster.options("--json"))
    assert code == 0, out
    (family,) = json.loads(out)["families"]
    assert family["family"] == "chat:msg:{…}:recent" and family["keys"] == 200

    replica = tls_cluster.ports[3]
    code, out = _run("failover", f"127.0.0.1:{replica}", *tls_cluster.options("--yes", "--json"))
    assert code == 0, out
    assert json.loads(out)["address"].endswith(f":{replica}")
    assert tls_cluster.node(replica).info("replication")["role"] == "master"
