"""deploy/kubernetes: every kustomization renders (``kubectl kustomize``), every manifest is valid
against the Kubernetes API schemas (kubernetes-validate, strict), checkov finds no misconfiguration,
and what the manifests say matches the services: each setting is one the service reads, each secret
file is one the Secret holds, and the settings a pod would get load without error.

kubectl comes from the PATH or from Debian's kubernetes-client unpacked by .ci/run into
.parley/kubectl; checkov runs as a uv tool (pinned), apart from the workspace's dependencies.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from auth.config import Settings as AuthSettings
from chat.config import Settings as ChatSettings
from gateway.config import Settings as GatewaySettings
from notification.config import Settings as NotificationSettings
from shared.service.settings import ServiceSettings
from user.config import Settings as UserSettings

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
EXAMPLE = KUBE / "overlays" / "example"
KUSTOMIZATIONS = [
    "base",
    "migrate",
    "overlays/example",
    "overlays/example/migrate",
    "overlays/example/secrets",
]
KUBERNETES_VERSIONS = ["1.31.0", "1.34.0"]
Checkov = Callable[[str, Path], subprocess.CompletedProcess[str]]  # the conftest fixture
SETTINGS: dict[str, type[ServiceSettings]] = {
    "auth": AuthSettings,
    "user": UserSettings,
    "chat": ChatSettings,
    "notification": NotificationSettings,
    "gateway": GatewaySettings,
}


def _kubectl() -> str | None:
    local = ROOT / ".parley" / "kubectl" / "usr" / "bin" / "kubectl"
    return shutil.which("kubectl") or (str(local) if local.is_file() else None)


KUBECTL = _kubectl()
NO_KUBECTL = "kubectl not installed (.ci/run unpacks it)"
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason=NO_KUBECTL)


@pytest.fixture(scope="module")
def secret_files() -> Iterator[Path]:
    """The example overlay's secret files, made by deploy/make-secrets.sh (git-ignored); the ones
    this fixture made are removed afterwards."""
    files = EXAMPLE / "secrets" / "files"
    existed = files.is_dir()
    subprocess.run(
        ["sh", str(ROOT / "deploy" / "make-secrets.sh"), str(files)],
        check=True,
        capture_output=True,
    )
    yield files
    if not existed:
        shutil.rmtree(files)


def _render(kustomization: str) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "kustomize", str(KUBE / kustomization)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module")
def rendered(secret_files: Path) -> dict[str, list[dict[str, Any]]]:
    if KUBECTL is None:
        pytest.skip(NO_KUBECTL)
    return {k: _render(k) for k in KUSTOMIZATIONS}


def _kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@needs_kubectl
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(
    rendered: dict[str, list[dict[str, Any]]], version: str
) -> None:
    for name, docs in rendered.items():
        assert docs, name
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_refuses_a_misspelt_field() -> None:
    deployment = yaml.safe_load((KUBE / "base" / "chat.yaml").read_text().split("---\n")[2])
    assert deployment["kind"] == "Deployment"
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


@needs_kubectl
def test_each_service_runs_locked_down_with_probes_resources_and_a_budget(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["overlays/example"]
    deployments, pdbs = _kind(docs, "Deployment"), _kind(docs, "PodDisruptionBudget")
    assert set(deployments) == set(SETTINGS) == set(pdbs)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        (container,) = pod["containers"]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"]["drop"] == ["ALL"], name
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert probe in container, (name, probe)
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
        assert container["image"].startswith("registry.example.com/parley/"), name
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name


@needs_kubectl
def test_gateway_chat_and_notification_autoscale(rendered: dict[str, list[dict[str, Any]]]) -> None:
    hpas = _kind(rendered["overlays/example"], "HorizontalPodAutoscaler")
    assert set(hpas) == {"gateway", "chat", "notification"}
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


@needs_kubectl
def test_only_the_gateway_is_reachable_from_outside(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["overlays/example"]
    policies = _kind(docs, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    open_to_all = [
        p["spec"]["podSelector"]
        for p in policies.values()
        if any("from" not in rule for rule in p["spec"].get("ingress", []))
    ]
    assert open_to_all == [{"matchLabels": {"app.kubernetes.io/name": "gateway"}}]
    (ingress,) = _kind(docs, "Ingress").values()
    backends = {
        p["backend"]["service"]["name"]
        for r in ingress["spec"]["rules"]
        for p in r["http"]["paths"]
    }
    assert backends == {"gateway"}
    services = _kind(docs, "Service")
    assert all(s["spec"]["type"] == "ClusterIP" for s in services.values())
    # The admin port (/metrics) is reachable only from the monitoring namespace.
    gateway_public = policies["gateway-public"]["spec"]["ingress"]
    assert [p["port"] for rule in gateway_public for p in rule["ports"]] == [8080]


def _pod_environment(
    deployment: dict[str, Any],
    configmaps: dict[str, dict[str, Any]],
    secrets: dict[str, dict[str, Any]],
    tmp_path: Path,
) -> dict[str, str]:
    """The environment a pod of ``deployment`` gets, with its secret volume written to tmp_path
    (the *_FILE paths rewritten to it)."""
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]]["data"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    secret_volume = volumes["secrets"]["secret"]["secretName"]
    secret = secrets[secret_volume]
    # kustomize's secretGenerator stores the values base64-encoded under data.
    folder = tmp_path / deployment["metadata"]["name"]
    folder.mkdir()
    for key, value in secret["data"].items():
        (folder / key).write_bytes(base64.b64decode(value))
    for item in container.get("env", []):
        if "value" in item:
            value = item["value"]
            if value.startswith(mounts["secrets"] + "/"):
                key = value.removeprefix(mounts["secrets"] + "/")
                assert key in secret["data"], f"{item['name']} names {key}, not in {secret_volume}"
                value = str(folder / key)
            env[item["name"]] = value
        else:
            assert item["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            env[item["name"]] = f"{deployment['metadata']['name']}-7d9f-abcde"
    return env


@needs_kubectl
def test_every_setting_is_read_by_its_service_and_the_pod_settings_load(
    rendered: dict[str, list[dict[str, Any]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = rendered["overlays/example"]
    configmaps = _kind(docs, "ConfigMap")
    secrets = _kind(rendered["overlays/example/secrets"], "Secret")
    for name, deployment in _kind(docs, "Deployment").items():
        settings_class = SETTINGS[name]
        prefix = str(settings_class.model_config["env_prefix"])
        env = _pod_environment(deployment, configmaps, secrets, tmp_path)
        fields = set(settings_class.model_fields)
        for key in env:
            if key.startswith("PARLEY_"):
                continue
            assert key.startswith(prefix), key
            field = key.removeprefix(prefix).lower().removesuffix("_file")
            assert field in fields, f"{key}: {settings_class.__module__} has no setting {field}"
        for key in list(os.environ):
            if key.startswith(prefix):
                monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = settings_class()
        assert settings.redis_url.startswith("rediss://"), name
        assert settings.redis_password, name
        assert settings.instance.startswith(name), name
        if name != "gateway":
            assert settings.migrate_on_start is False, name
            assert settings.database_url and settings.database_url.startswith("postgresql+asyncpg")


@needs_kubectl
def test_the_migration_jobs_use_the_releases_images_and_the_services_secrets(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    jobs = _kind(rendered["overlays/example/migrate"], "Job")
    assert set(jobs) == {f"{s}-migrate" for s in SETTINGS if s != "gateway"}
    images = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
        for d in _kind(rendered["overlays/example"], "Deployment").values()
    }
    secrets = _kind(rendered["overlays/example/secrets"], "Secret")
    for name, job in jobs.items():
        service = name.removesuffix("-migrate")
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["migrate"]
        assert container["image"] == images[service]
        secret = pod["volumes"][0]["secret"]
        assert secret["secretName"] in secrets
        assert [i["key"] for i in secret["items"]] == ["database-url"]


@needs_kubectl
def test_checkov_finds_no_misconfiguration_in_the_rendered_manifests(
    rendered: dict[str, list[dict[str, Any]]],
    tmp_path: Path,
    checkov: Checkov,
) -> None:
    for name in ("overlays/example", "overlays/example/migrate"):
        out = tmp_path / (name.replace("/", "-") + ".yaml")
        out.write_text(yaml.safe_dump_all(rendered[name]))
    result = checkov("kubernetes", tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Failed checks: 0" in result.stdout and "Passed checks:" in result.stdout


@needs_kubectl
def test_checkov_fails_a_privileged_container(
    rendered: dict[str, list[dict[str, Any]]],
    tmp_path: Path,
    checkov: Checkov,
) -> None:
    """The scan reads what it is given: the same manifests with a privileged container fail."""
    docs = [dict(d) for d in rendered["overlays/example"]]
    chat = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "chat")
    chat["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump_all(docs))
    result = checkov("kubernetes", tmp_path)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "CKV_K8S_16" in result.stdout  # "Container should not be privileged"
