"""Prometheus scrape config, alert rules and the Grafana dashboard of the compose deployment."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
SERVICES = ("auth", "user", "chat", "notification", "gateway")


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _load(PROMETHEUS / "alerts.yml")["groups"] for rule in group["rules"]]


def test_every_alert_has_an_expression_a_severity_a_summary_and_a_runbook() -> None:
    rules = _rules()
    assert len(rules) >= 8
    for rule in rules:
        assert rule["alert"] and rule["expr"].strip(), rule
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        # Events, not states: any dead letter added, any promotion, fires at once.
        if rule["alert"] not in {"DeadLettersGrowing", "RedisFailover"}:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))


def test_the_alerts_the_runbook_promises_exist() -> None:
    names = {rule["alert"] for rule in _rules()}
    assert {
        "RedisNodeDown",
        "RedisClusterStateNotOk",
        "RedisReplicationBroken",
        "RedisMemoryHigh",
        "StreamConsumerLagHigh",
        "DeadLettersGrowing",
        "ParleyRedisErrorRateHigh",
        "ParleyRedisLatencyP99High",
    } <= names


def test_every_runbook_link_points_at_a_section_of_the_operations_doc() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", doc, flags=re.MULTILINE)
    }
    for rule in _rules():
        link = rule["annotations"]["runbook"]
        assert link.startswith("docs/operations.md#"), rule["alert"]
        assert link.split("#", 1)[1] in anchors, f"{rule['alert']}: no section {link}"


def test_parley_metrics_used_by_alerts_and_dashboard_are_defined_in_the_code() -> None:
    # An alert on a metric nobody exports never fires: the names must exist in the sources.
    dashboards = "".join(path.read_text() for path in DASHBOARDS.glob("*.json"))
    used = set(re.findall(r"parley_[a-z_]+", (PROMETHEUS / "alerts.yml").read_text() + dashboards))
    used.discard("parley_")
    sources = "\n".join(
        path.read_text() for path in (ROOT / "shared" / "src").rglob("*.py")
    ) + "\n".join(path.read_text() for path in (ROOT / "services").rglob("src/**/*.py"))
    for metric in used:
        base = re.sub(r"_(total|count|bucket|sum)$", "", metric).removeprefix("parley_")
        assert base in sources, f"{metric} is not defined in shared/ or services/"


def test_every_service_is_scraped_on_the_port_compose_gives_it() -> None:
    # ...and the gateway's admin port is exposed on the internal network, never published.
    gateway = _load(ROOT / "compose.yaml")["services"]["gateway"]
    admin = gateway["environment"]["GATEWAY_ADMIN_PORT"]
    assert not any(str(p).endswith(f":{admin}") for p in gateway.get("ports", []))
    config = _load(PROMETHEUS / "prometheus.yml")
    compose = _load(ROOT / "compose.yaml")["services"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for service in SERVICES:
        (sd,) = jobs[f"parley-{service}"]["dns_sd_configs"]
        assert sd["names"] == [service]
        env = compose[service]["environment"]
        # The gateway's metrics are on its admin listener; the others' port is their admin port.
        admin = env.get(f"{service.upper()}_ADMIN_PORT", env[f"{service.upper()}_PORT"])
        assert str(sd["port"]) == admin
        assert str(admin) in [str(p) for p in compose[service].get("expose", [])] + [
            str(p).rsplit(":", 1)[-1] for p in compose[service].get("ports", [])
        ]
    redis_targets = jobs["redis"]["static_configs"][0]["targets"]
    assert redis_targets == [f"redis://redis-{n}:6379" for n in range(1, 7)]
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_the_fleet_dashboards_are_there_and_provisioned_from_prometheus() -> None:
    datasource = _load(
        ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
    )
    uid = datasource["datasources"][0]["uid"]
    dashboards = {path.stem: json.loads(path.read_text()) for path in DASHBOARDS.glob("*.json")}
    fleet = {"parley-api", "parley-websocket", "parley-bus", "parley-service", "parley-redis"}
    assert fleet <= set(dashboards)
    uids = [d["uid"] for d in dashboards.values()]
    assert len(uids) == len(set(uids))
    for name, dashboard in dashboards.items():
        assert dashboard["panels"], name
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == uid, (name, panel["title"])
            assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run(
        ["promtool", "check", "rules", str(PROMETHEUS / "alerts.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_the_alert_rules_pass_their_unit_tests() -> None:
    # deploy/prometheus/alerts_test.yml: input series, and when each alert fires (or does not).
    result = subprocess.run(
        ["promtool", "test", "rules", str(PROMETHEUS / "alerts_test.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    tests = _load(PROMETHEUS / "alerts_test.yml")
    assert tests["rule_files"] == ["alerts.yml"]
    fired = {
        re.search(r'alertname="([A-Za-z0-9]+)"', case["expr"]).group(1)  # type: ignore[union-attr]
        for test in tests["tests"]
        for case in test.get("promql_expr_test", [])
        if case["expr"].startswith("ALERTS{") and case["exp_samples"]
    }
    quiet = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if not case["exp_alerts"]
    }
    names = {rule["alert"] for rule in _rules()}
    assert names - fired == set(), "alerts no test fires"
    assert names - quiet == set(), "alerts no test shows quiet (before `for:`, or healthy)"


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool not installed")
def test_amtool_accepts_the_alertmanager_config() -> None:
    result = subprocess.run(
        ["amtool", "check-config", str(ROOT / "deploy" / "alertmanager" / "alertmanager.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_reaches_the_oncall_webhook() -> None:
    config = _load(ROOT / "deploy" / "alertmanager" / "alertmanager.yml")
    receivers = {r["name"]: r for r in config["receivers"]}
    routed = [config["route"]["receiver"], *(r["receiver"] for r in config["route"]["routes"])]
    for name in routed:
        hooks = receivers[name]["webhook_configs"]
        assert hooks and all(h["url"].startswith("http") and h["send_resolved"] for h in hooks)
