"""compose.yaml: valid against the Compose Specification, and coherent as a Parley deployment."""

from __future__ import annotations

import ipaddress
import json
import re
import tomllib
from importlib import import_module, resources
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("auth", "user", "chat", "notification", "gateway")
DATA_SERVICES = ("auth", "user", "chat", "notification")

ServiceMap = dict[str, dict[str, Any]]


def _schema() -> dict[str, Any]:
    # The Compose Specification schema that check-jsonschema vendors (a dev dependency).
    text = (
        resources.files("check_jsonschema.builtin_schemas.vendor")
        .joinpath("compose-spec.json")
        .read_text()
    )
    schema = json.loads(text)
    assert isinstance(schema, dict)
    return schema


def _one_shot(name: str, services: ServiceMap) -> bool:
    """A job others wait for with ``service_completed_successfully`` (it exits; no healthcheck)."""
    return any(
        (spec.get("depends_on") or {}).get(name, {}).get("condition")
        == "service_completed_successfully"
        for spec in services.values()
        if isinstance(spec.get("depends_on"), dict)
    )


def _env(spec: dict[str, Any]) -> dict[str, str]:
    env = spec.get("environment") or {}
    assert isinstance(env, dict), "write environment as a mapping"
    return {str(k): str(v) for k, v in env.items()}


def test_compose_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    errors = sorted(
        jsonschema.Draft7Validator(_schema()).iter_errors(compose), key=lambda e: list(e.path)
    )
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_every_long_running_service_has_a_healthcheck(compose_services: ServiceMap) -> None:
    missing = [
        name
        for name, spec in compose_services.items()
        if not _one_shot(name, compose_services) and not (spec.get("healthcheck") or {}).get("test")
    ]
    assert not missing


def test_one_shot_jobs_never_restart(compose_services: ServiceMap) -> None:
    jobs = [n for n in compose_services if _one_shot(n, compose_services)]
    assert "redis-cluster-init" in jobs
    assert {f"{s}-migrate" for s in DATA_SERVICES} <= set(jobs)
    assert all(compose_services[j].get("restart") == "no" for j in jobs)


def test_every_dependency_exists_and_waits_for_a_meaningful_condition(
    compose_services: ServiceMap,
) -> None:
    for name, spec in compose_services.items():
        for target, rule in (spec.get("depends_on") or {}).items():
            assert target in compose_services, f"{name} depends on unknown {target}"
            wanted = (
                "service_completed_successfully"
                if _one_shot(target, compose_services)
                else "service_healthy"
            )
            assert rule.get("condition") == wanted, f"{name} -> {target}"


def test_the_cluster_has_six_nodes_with_their_own_hostname_volume_and_fixed_address(
    compose: dict[str, Any], compose_services: ServiceMap
) -> None:
    nodes = {n: s for n, s in compose_services.items() if re.fullmatch(r"redis-\d", n)}
    assert len(nodes) == 6
    ipam = compose["networks"]["parley"]["ipam"]["config"][0]
    subnet, dynamic = ipaddress.ip_network(ipam["subnet"]), ipaddress.ip_network(ipam["ip_range"])
    addresses = set()
    for name, spec in nodes.items():
        assert spec["hostname"] == name
        assert spec["volumes"] == [f"{name}-data:/data", "./deploy/redis:/usr/local/etc/parley:ro"]
        address = ipaddress.ip_address(spec["networks"]["parley"]["ipv4_address"])
        assert address in subnet and address not in dynamic, name
        addresses.add(address)
    assert len(addresses) == 6
    # Every Redis client resolves the nodes from /etc/hosts, at their fixed addresses.
    fixed = sorted(f"{n}:{s['networks']['parley']['ipv4_address']}" for n, s in nodes.items())
    for name in ("auth", "user", "chat", "notification", "gateway", "redis-exporter"):
        assert sorted(compose_services[name]["extra_hosts"]) == fixed, name
    init_nodes = compose_services["redis-cluster-init"]["environment"]["PARLEY_REDIS_NODES"]
    assert init_nodes.split() == [f"{n}:6379" for n in sorted(nodes)]
    assert set(compose_services["redis-cluster-init"]["depends_on"]) == set(nodes)


def test_images_are_pinned_to_a_version(compose_services: ServiceMap) -> None:
    for name, spec in compose_services.items():
        # `${PARLEY_<NAME>_IMAGE:-default}`: the default (the registry image) must be pinned.
        image = re.sub(r"^\$\{PARLEY_[A-Z_]+_IMAGE:-(.+)\}$", r"\1", spec.get("image", ""))
        if "build" in spec:
            continue
        repository, _, tag = image.rpartition(":")
        assert repository and re.match(r"v?\d+\.\d+", tag), f"{name}: pin {image!r}"


def test_each_parley_service_runs_its_own_entry_point_from_the_dockerfile(
    compose_services: ServiceMap,
) -> None:
    built = {n: s for n, s in compose_services.items() if "build" in s}
    assert set(SERVICES) <= set(built)
    for name, spec in built.items():
        service = spec["build"]["args"]["SERVICE"]
        assert spec["build"]["dockerfile"] == "Dockerfile"
        assert name in (service, f"{service}-migrate")
        assert spec["image"].startswith(f"parley-{service}:")
        pyproject = ROOT / "services" / service / "pyproject.toml"
        scripts = tomllib.loads(pyproject.read_text())["project"]["scripts"]
        assert f"parley-{service}" in scripts, f"{pyproject} has no parley-{service} script"
        if name.endswith("-migrate"):
            assert spec["command"] == ["migrate"]


def test_published_host_ports_do_not_clash(compose_services: ServiceMap) -> None:
    published: list[str] = []
    for spec in compose_services.values():
        for port in spec.get("ports", []):
            host_part = str(port).rsplit(":", 1)[0]
            published.append(re.sub(r"\$\{[A-Z_]+:-(\d+)\}", r"\1", host_part))
    assert len(published) == len(set(published)), published
    assert published, "the gateway must be reachable from the host"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_gets_the_configuration_it_needs(
    service: str, compose_services: ServiceMap
) -> None:
    prefix = f"{service.upper()}_"
    env = _env(compose_services[service])
    needed = ["HOST", "PORT", "REDIS_URL", "REDIS_USERNAME", "REDIS_PASSWORD"]
    needed += ["DATABASE_URL", "MIGRATE_ON_START"] if service in DATA_SERVICES else []
    for name in needed:
        assert f"{prefix}{name}" in env or f"{prefix}{name}_FILE" in env, f"{prefix}{name}"
    assert env[f"{prefix}HOST"] == "0.0.0.0"
    assert env[f"{prefix}REDIS_USERNAME"] == service, "each service is its own ACL user"
    assert env[f"{prefix}REDIS_URL"].startswith("redis://redis-")
    assert env.get(f"{prefix}MIGRATE_ON_START", "false") == "false", "the migrate job migrates"
    assert env["PARLEY_LOG_FORMAT"] == "json"
    port = env[f"{prefix}PORT"]
    assert compose_services[service].get("expose") == [port] or any(
        str(p).endswith(f":{port}") for p in compose_services[service].get("ports", [])
    )


@pytest.mark.parametrize("service", SERVICES)
def test_every_prefixed_variable_names_a_real_setting(
    service: str, compose_services: ServiceMap
) -> None:
    # A typo (CHAT_REDIS_PASWORD) would be silently ignored by the service: catch it here.
    settings = import_module(f"{service}.config").Settings
    fields = {name.upper() for name in settings.model_fields}
    prefix = f"{service.upper()}_"
    for job in (service, f"{service}-migrate"):
        for variable in _env(compose_services.get(job, {})):
            if variable.startswith(prefix):
                name = variable.removeprefix(prefix).removesuffix("_FILE")
                assert name in fields, f"{job}: {variable} is not a {settings.__module__} field"


def test_secret_files_are_mounted_where_the_services_read_them(
    compose: dict[str, Any], compose_services: ServiceMap
) -> None:
    declared = set(compose["secrets"])
    for name, spec in compose_services.items():
        granted = set(spec.get("secrets", []))
        assert granted <= declared, name
        for variable, value in _env(spec).items():
            if variable.endswith("_FILE") and value.startswith("/run/secrets/"):
                assert value.removeprefix("/run/secrets/") in granted, f"{name}: {variable}"


def test_config_files_exist(compose: dict[str, Any], compose_services: ServiceMap) -> None:
    assert "configs" not in compose, "docker-compose 1.29 ignores configs: bind-mount the files"
    for name, spec in compose_services.items():
        for volume in spec.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source}"
