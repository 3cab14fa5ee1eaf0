"""A real Prometheus and Alertmanager (Debian's binaries) around a running fleet, for the tests.

Prometheus scrapes every service's ``/metrics`` (the gateway's admin port) and evaluates the
shipped alert rules (deploy/prometheus/alerts.yml) with only their ``for:`` shortened; it sends
alerts to an Alertmanager that runs the shipped routing tree (deploy/alertmanager/alertmanager.yml)
with its webhook pointed at a receiver in the test and its waits shortened.
Ports come from ``PARLEY_TEST_MONITORING_PORTS`` (two: Prometheus, Alertmanager; default 7197-7198).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from parley.fleet import Fleet

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# .ci/run unpacks Debian's prometheus and prometheus-alertmanager packages here (and on the PATH).
UNPACKED = ROOT / ".parley" / "promtool" / "usr" / "bin"


def binary(*names: str) -> str | None:
    """The first of ``names`` on the PATH or among the unpacked Debian binaries."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path=str(UNPACKED))
        if found:
            return found
    return None


@dataclass
class WebhookReceiver:
    """An HTTP server that keeps every Alertmanager webhook payload it is sent."""

    payloads: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert of every payload received so far."""
        return [alert for payload in list(self.payloads) for alert in payload["alerts"]]


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A receiver on a free loopback port, stopped afterwards."""
    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.payloads.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def fast_rules(for_: str = "2s") -> dict[str, Any]:
    """The shipped alert rules with every ``for:`` at ``for_`` (the expressions untouched)."""
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = for_
    return dict(rules)


def alertmanager_config(webhook_url: str) -> dict[str, Any]:
    """The shipped Alertmanager config with its webhooks at ``webhook_url`` and short waits."""
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    config["route"].update(group_wait="1s", group_interval="1s")
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook_url
    return dict(config)


def prometheus_config(fleet: Fleet, alertmanager: str) -> dict[str, Any]:
    """One job per service, named and labelled as deploy/prometheus/prometheus.yml does."""
    jobs = [
        {
            "job_name": f"parley-{process.service}",
            "static_configs": [
                {
                    "targets": [fleet.admin_url(name).removeprefix("http://")],
                    "labels": {"service": process.service},
                }
            ],
        }
        for name, process in fleet.processes.items()
    ]
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": jobs,
    }


@dataclass
class Monitoring:
    """The running Prometheus and Alertmanager."""

    prometheus: str
    alertmanager: str
    receiver: WebhookReceiver

    def query(self, path: str, **params: str) -> Any:
        """``data`` of one Prometheus HTTP API answer."""
        r = httpx.get(f"{self.prometheus}{path}", params=params, timeout=5)
        r.raise_for_status()
        body = r.json()
        assert body["status"] == "success", body
        return body["data"]


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


def _wait_ready(url: str, popen: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{url} exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready:\n{log.read_text()[-2000:]}")


@contextmanager
def monitoring(
    fleet: Fleet, home: Path, *, prometheus_bin: str, alertmanager_bin: str
) -> Iterator[Monitoring]:
    """Prometheus and Alertmanager on the test ports, around ``fleet``; stopped afterwards."""
    first = int(os.environ.get("PARLEY_TEST_MONITORING_PORTS", "7197-7198").split("-")[0])
    prom_port, am_port = first, first + 1
    home.mkdir(parents=True, exist_ok=True)
    popens: list[subprocess.Popen[bytes]] = []
    with webhook_receiver() as receiver:
        (home / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config(receiver.url)))
        (home / "alerts.yml").write_text(yaml.safe_dump(fast_rules()))
        am = f"127.0.0.1:{am_port}"
        (home / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config(fleet, am)))
        try:
            am_log = home / "alertmanager.log"
            popens.append(
                _start(
                    [
                        alertmanager_bin,
                        f"--config.file={home / 'alertmanager.yml'}",
                        f"--storage.path={home / 'am-data'}",
                        f"--web.listen-address={am}",
                        "--cluster.listen-address=",  # one instance: no gossip port
                    ],
                    am_log,
                )
            )
            _wait_ready(f"http://{am}", popens[-1], am_log)
            prom = f"127.0.0.1:{prom_port}"
            prom_log = home / "prometheus.log"
            popens.append(
                _start(
                    [
                        prometheus_bin,
                        f"--config.file={home / 'prometheus.yml'}",
                        f"--storage.tsdb.path={home / 'prom-data'}",
                        f"--web.listen-address={prom}",
                    ],
                    prom_log,
                )
            )
            _wait_ready(f"http://{prom}", popens[-1], prom_log)
            yield Monitoring(f"http://{prom}", f"http://{am}", receiver)
        finally:
            for popen in popens:
                popen.terminate()
            for popen in popens:
                try:
                    popen.wait(10)
                except subprocess.TimeoutExpired:
                    popen.kill()
                    popen.wait(5)


def until(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """``check()``'s first truthy answer, polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.25)
