"""A real Prometheus scrapes the running fleet; its alerts reach a webhook through Alertmanager;
every metric the dashboards and alerts name is one the fleet exports.

Prometheus and Alertmanager are Debian's binaries (``.ci/run`` unpacks them); the shipped rules
and routing are used, with only ``for:`` and the Alertmanager waits shortened
(:mod:`tests.e2e.monitoring_stack`).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from parley.fleet import Fleet

from .conftest import next_frame
from .monitoring_stack import DEPLOY, Monitoring, binary, monitoring, until

pytestmark = pytest.mark.e2e

PROMETHEUS = binary("prometheus")
ALERTMANAGER = binary("prometheus-alertmanager", "alertmanager")
# Debian's Alertmanager reads its default notification templates from this fixed path (.ci/run
# copies them there from the unpacked package).
TEMPLATES = Path("/usr/share/prometheus/alertmanager/default.tmpl")
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
# Series of redis_exporter (the Redis dashboard and alerts): not the fleet's, so not in its scrape.
REDIS_EXPORTER = re.compile(r"^redis_[a-z_]+$")
_METRIC = re.compile(r"\b((?:parley|redis)_[a-z0-9_]+|up)\b(?!\s*\()")


@pytest.fixture(scope="module")
def stack(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitoring]:
    if PROMETHEUS is None or ALERTMANAGER is None:
        pytest.skip("prometheus and prometheus-alertmanager not installed (see .ci/run)")
    if ALERTMANAGER.endswith("prometheus-alertmanager") and not TEMPLATES.exists():
        pytest.skip(f"Debian's Alertmanager needs {TEMPLATES} (see .ci/run)")
    with monitoring(
        fleet,
        tmp_path_factory.mktemp("monitoring"),
        prometheus_bin=PROMETHEUS,
        alertmanager_bin=ALERTMANAGER,
    ) as running:
        yield running


def _targets(stack: Monitoring) -> list[dict[str, Any]]:
    return list(stack.query("/api/v1/targets")["activeTargets"])


def test_prometheus_scrapes_every_service_of_the_fleet(stack: Monitoring, fleet: Fleet) -> None:
    def all_up() -> bool:
        targets = _targets(stack)
        return len(targets) == len(fleet.processes) and all(t["health"] == "up" for t in targets)

    until(all_up, timeout=20, what=f"every target up: {_targets(stack)}")
    jobs = {t["labels"]["job"] for t in _targets(stack)}
    assert jobs == {f"parley-{s}" for s in ("auth", "user", "chat", "notification", "gateway")}
    # The gateway's RED metrics are there, labelled by route template.
    # No token: 401 (or 429 once the suite has spent this address's budget). Earlier tests left
    # other statuses on this route: wait for the scrape that holds this one.
    status = str(httpx.get(f"{fleet.api}/api/v1/conversations", timeout=5).status_code)
    assert status in ("401", "429")
    until(
        lambda: (
            status
            in {
                s["metric"]["status"]
                for s in stack.query(
                    "/api/v1/query",
                    query='parley_gateway_http_requests_total{route="/api/v1/conversations"}',
                )["result"]
            }
        ),
        timeout=10,
        what=f"the gateway's request counter with status {status} in Prometheus",
    )
    # Every service reads its consumer groups' state from Redis (as its own ACL user) for the bus
    # gauges the alerts use.
    services = {"auth", "user", "chat", "notification", "gateway"}

    def reporting() -> bool:
        query = "count by (service) (parley_bus_oldest_pending_age_seconds)"
        found = stack.query("/api/v1/query", query=query)["result"]
        return {r["metric"]["service"] for r in found} == services

    until(reporting, timeout=20, what="every service's bus gauges in Prometheus")


def test_a_killed_service_fires_the_service_down_alert_that_reaches_the_webhook(
    stack: Monitoring, fleet: Fleet
) -> None:
    until(
        lambda: all(t["health"] == "up" for t in _targets(stack)),
        timeout=20,
        what="every target up before the kill",
    )
    victim = fleet.processes["user"]
    victim.popen.kill()
    victim.popen.wait(10)
    try:

        def firing() -> list[dict[str, Any]]:
            alerts = stack.query("/api/v1/alerts")["alerts"]
            return [
                a
                for a in alerts
                if a["labels"]["alertname"] == "ParleyServiceDown" and a["state"] == "firing"
            ]

        (alert,) = until(firing, timeout=30, what="ParleyServiceDown firing in Prometheus")
        assert alert["labels"]["service"] == "user"
        assert alert["labels"]["severity"] == "page"

        def delivered() -> list[dict[str, Any]]:
            return [
                a
                for a in stack.receiver.alerts()
                if a["labels"]["alertname"] == "ParleyServiceDown" and a["status"] == "firing"
            ]

        (sent, *_) = until(delivered, timeout=30, what="the alert at the webhook receiver")
        assert sent["labels"]["service"] == "user"
        assert sent["annotations"]["runbook"] == "docs/operations.md#parleyservicedown"
        assert "user" in sent["annotations"]["summary"]
        # Only the killed service is down.
        assert {a["labels"]["service"] for a in delivered()} == {"user"}
    finally:
        fleet.restart("user")


def _exported(fleet: Fleet) -> set[str]:
    """Every metric family any process of the fleet registers (``# TYPE`` lines: a labelled family
    that has seen no event yet has no samples but is declared)."""
    names: set[str] = set()
    with httpx.Client(timeout=5) as client:
        for name in fleet.processes:
            text = client.get(f"{fleet.admin_url(name)}/metrics").text
            for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE):
                names.add(family)
                if kind == "counter":
                    names.add(f"{family}_total")
                if kind == "histogram":
                    names.update(f"{family}_{s}" for s in ("bucket", "count", "sum"))
    return names


def _expressions() -> dict[str, str]:
    """Every PromQL expression of the dashboards and the alert rules, by where it is."""
    found: dict[str, str] = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                found[f"{path.name}: {panel['title']}"] = target["expr"]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            found[f"alerts.yml: {rule['alert']}"] = rule["expr"]
    return found


def test_every_metric_the_dashboards_and_alerts_name_is_exported_by_the_fleet(
    fleet: Fleet,
) -> None:
    exported = _exported(fleet)
    expressions = _expressions()
    assert len(expressions) > 40
    missing = {
        where: sorted(
            m
            for m in set(_METRIC.findall(expr))
            if m not in exported and not REDIS_EXPORTER.match(m) and m != "up"
        )
        for where, expr in expressions.items()
    }
    assert {k: v for k, v in missing.items() if v} == {}


def _sample(fleet: Fleet, name: str, labels: dict[str, str] | None = None) -> float:
    """One sample of the gateway's /metrics (0 when absent)."""
    text = httpx.get(f"{fleet.admin_url()}/metrics", timeout=5).text
    wanted = (labels or {}).items()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in wanted):
                return float(sample.value)
    return 0.0


def test_a_message_delivered_over_a_websocket_is_timed_from_its_creation(
    fleet: Fleet, register: Callable[[], Any]
) -> None:
    alice, bob = register(), register()
    r = alice.post("/conversations", {"kind": "direct", "member_ids": [bob.id]})
    assert r.status_code == 201, r.text
    conv = r.json()["id"]
    delivered = _sample(fleet, "parley_gateway_ws_delivery_seconds_count")
    top = {"le": "10.0"}
    within = _sample(fleet, "parley_gateway_ws_delivery_seconds_bucket", top)
    posted = {"type": "message.posted"}
    sent = _sample(fleet, "parley_gateway_ws_frames_sent_total", posted)
    closes = _sample(fleet, "parley_gateway_ws_closes_total", {"code": "1000", "by": "client"})
    with connect(f"{fleet.ws}?token={bob.access_token}", open_timeout=10) as ws:
        next_frame(ws, {"ready"})
        assert _sample(fleet, "parley_gateway_ws_connections") >= 1
        body = {"body": "timed", "client_msg_id": uuid.uuid4().hex}
        assert alice.post(f"/conversations/{conv}/messages", body).status_code == 201
        assert next_frame(ws, {"message.posted"})["message"]["body"] == "timed"
    assert _sample(fleet, "parley_gateway_ws_delivery_seconds_count") == delivered + 1
    assert _sample(fleet, "parley_gateway_ws_frames_sent_total", posted) == sent + 1
    # A live delivery on loopback takes well under the histogram's top bucket (10 s).
    assert _sample(fleet, "parley_gateway_ws_delivery_seconds_bucket", top) == within + 1
    until(
        lambda: (
            _sample(fleet, "parley_gateway_ws_closes_total", {"code": "1000", "by": "client"})
            == closes + 1
        ),
        timeout=5,
        what="the client's close counted",
    )
