"""deploy/terraform/aws: the module parses (python-hcl2), says what the docs say it does (cluster
mode, TLS, encryption at rest, one ACL user per service with the contracts' rights, Redis reachable
from the EKS nodes only, a private EKS API with encrypted Secrets), and checkov finds no
misconfiguration in it. No Terraform binary is installed here, so `terraform validate` and `plan`
are not run (docs/kubernetes.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hcl2
import pytest

from parley import acl

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "deploy" / "terraform" / "aws"
Checkov = Callable[[str, Path], subprocess.CompletedProcess[str]]  # the conftest fixture


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps HCL's quotes on names and strings ('"aws_eks_cluster"') and marks blocks
    with ``__is_block__``; drop both."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k != "__is_block__"}
    return value


@pytest.fixture(scope="module")
def module() -> dict[str, dict[str, dict[str, Any]]]:
    """Every resource of the module by type and name (HCL files), with its attributes."""
    resources: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(MODULE.glob("*.tf")):
        with path.open() as f:
            parsed = _unquote(hcl2.load(f))
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    resources.setdefault(kind, {})[name] = body
    return resources


def _value(body: dict[str, Any], key: str) -> Any:
    value = body[key]
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def test_the_redis_cluster_is_cluster_mode_with_tls_encryption_and_failover(
    module: dict[str, dict[str, dict[str, Any]]],
) -> None:
    group = module["aws_elasticache_replication_group"]["redis"]
    assert group["transit_encryption_enabled"] is True
    assert group["transit_encryption_mode"] == "required"
    assert group["at_rest_encryption_enabled"] is True
    assert group["automatic_failover_enabled"] is True and group["multi_az_enabled"] is True
    assert "aws_elasticache_user_group.parley" in str(group["user_group_ids"])
    assert "var.redis_shards" in str(group["num_node_groups"])
    params = module["aws_elasticache_parameter_group"]["redis"]["parameter"]
    assert {"name": "cluster-enabled", "value": "yes"} in params


def test_each_service_is_its_own_acl_user_with_the_contracts_rights(
    module: dict[str, dict[str, dict[str, Any]]],
) -> None:
    users = module["aws_elasticache_user"]
    assert "local.redis_access_strings" in str(users["service"]["for_each"])
    assert "each.value" in str(users["service"]["access_string"])
    assert users["default"]["access_string"].startswith("off ")
    generated = json.loads((MODULE / "acl.tf.json").read_text())["locals"]["redis_access_strings"]
    assert generated == acl.access_strings()
    assert "~chat:*" in generated["chat"] and "~auth:*" not in generated["chat"]


def test_redis_is_reachable_from_the_nodes_security_group_only(
    module: dict[str, dict[str, dict[str, Any]]],
) -> None:
    ingress = module.get("aws_vpc_security_group_ingress_rule", {})
    to_redis = [
        r for r in ingress.values() if "aws_security_group.redis" in str(r["security_group_id"])
    ]
    assert len(to_redis) == 1
    (rule,) = to_redis
    assert "aws_security_group.nodes" in str(rule["referenced_security_group_id"])
    assert "cidr_ipv4" not in rule and rule["from_port"] == rule["to_port"] == 6379


def test_the_eks_api_is_private_and_its_secrets_encrypted(
    module: dict[str, dict[str, dict[str, Any]]],
) -> None:
    cluster = module["aws_eks_cluster"]["parley"]
    vpc = _value(cluster, "vpc_config")
    assert vpc["endpoint_private_access"] is True
    assert "length(var.eks_public_access_cidrs) > 0" in str(vpc["endpoint_public_access"])
    encryption = _value(cluster, "encryption_config")
    assert encryption["resources"] == ["secrets"]
    assert set(cluster["enabled_cluster_log_types"]) >= {"api", "audit", "authenticator"}
    assert "remote_access" not in module["aws_eks_node_group"]["parley"]


def test_checkov_finds_no_misconfiguration_in_the_module(checkov: Checkov) -> None:
    result = checkov("terraform", MODULE)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Failed checks: 0" in result.stdout and "Passed checks:" in result.stdout


def test_checkov_fails_the_module_without_tls(tmp_path: Path, checkov: Checkov) -> None:
    copy = tmp_path / "aws"
    shutil.copytree(MODULE, copy)
    text = (copy / "elasticache.tf").read_text()
    (copy / "elasticache.tf").write_text(
        text.replace("transit_encryption_enabled = true", "transit_encryption_enabled = false")
    )
    result = checkov("terraform", copy)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "CKV_AWS_30" in result.stdout  # ElastiCache encrypted in transit
