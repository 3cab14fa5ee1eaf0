"""deploy/redis/users.acl, read as text: who may log in, with which secret, on which keys.

The file is generated from contracts.registry (``parley acl export``); what the rules *do* is
checked against a real server in test_redis_cluster.py (ACL DRYRUN and real clients); this module
checks that the committed file is the generated one, and the shape that keeps it safe.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from parley import acl

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ACL = ROOT / "deploy" / "redis" / "users.acl"
SERVICES = ("auth", "user", "chat", "notification", "gateway")
STREAM_COMMANDS_WRITE = {"+xadd", "+xtrim", "+xdel", "+xsetid", "+del", "+unlink"}
CHANNEL_COMMANDS = {"+publish", "+spublish", "+subscribe", "+ssubscribe", "+psubscribe"}


def _users() -> dict[str, tuple[list[str], list[list[str]]]]:
    """user -> (rules outside selectors, [rules of each selector])."""
    users = {}
    for line in ACL.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        selectors = [s.split() for s in re.findall(r"\(([^)]*)\)", line)]
        root = re.sub(r"\([^)]*\)", " ", line).split()
        assert root[0] == "user", line
        users[root[1]] = (root[2:], selectors)
    return users


def test_the_committed_file_is_the_one_generated_from_the_registry() -> None:
    assert ACL.read_text() == acl.render(), "run `parley acl export` (make contracts-export)"


def test_the_default_user_cannot_log_in() -> None:
    rules, selectors = _users()["default"]
    assert "off" in rules and "on" not in rules and "nopass" not in rules
    assert "-@all" in rules and not selectors


def test_every_user_logs_in_with_its_own_secret_and_no_password_is_written_down() -> None:
    for name, (rules, _) in _users().items():
        assert not [r for r in rules if r.startswith((">", "#"))], f"{name}: password in file"
        if name != "default":
            assert f"{{{{password:{name}}}}}" in rules, name
    assert set(_users()) >= {"default", "admin", "replication", "monitor", *SERVICES}


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_owns_only_its_prefix_and_no_dangerous_command(service: str) -> None:
    rules, selectors = _users()[service]
    assert [r for r in rules if r.startswith(("~", "%"))] == [f"~{service}:*"]
    assert [r for r in rules if r.startswith("&")] == [f"&{service}:*"]
    assert "resetkeys" in rules and "resetchannels" in rules
    assert rules.index("-@all") < rules.index("-@dangerous")
    assert "-@admin" in rules and "+@all" not in rules
    for selector in selectors:
        assert "-@all" in selector, f"{service}: a selector must start from nothing"
        grants = [i for i, rule in enumerate(selector) if rule.startswith("+")]
        assert selector.index("-@all") < min(grants), f"{service}: -@all comes first"
        assert not [r for r in selector if r.startswith("+@")], f"{service}: list commands"
        keys = [r for r in selector if r.startswith("~")]
        channels = [r for r in selector if r.startswith("&")]
        assert bool(keys) != bool(channels), f"{service}: a selector is on keys or on channels"
        if channels:
            assert set(selector) - {"-@all", *channels} <= CHANNEL_COMMANDS | {
                "+unsubscribe",
                "+sunsubscribe",
            }
            assert "&*" not in channels and "&rt:*" not in channels and "&reply:*" not in channels
            continue
        foreign = [k for k in keys if not k.startswith(f"~{service}:")]
        assert foreign and all(":stream:{" in k for k in foreign), "only streams of others"
        if STREAM_COMMANDS_WRITE & set(selector):
            assert "+xadd" in selector and not {"+xdel", "+xsetid", "+del", "+unlink"} & set(
                selector
            ), f"{service}: append (and trim) only"
            assert all(k.endswith(".dlq}") or ".commands." in k for k in keys), (
                f"{service} may append only to dead letters and command streams: {keys}"
            )


def test_no_service_both_publishes_and_subscribes_through_one_selector() -> None:
    for name, (_, selectors) in _users().items():
        for selector in selectors:
            publishes = {"+publish", "+spublish"} & set(selector)
            subscribes = {"+subscribe", "+ssubscribe"} & set(selector)
            assert not (publishes and subscribes), name


def test_only_the_gateway_appends_commands_to_other_services() -> None:
    for name, (_, selectors) in _users().items():
        for selector in selectors:
            if any(".commands." in rule for rule in selector):
                assert name == "gateway"


def test_the_monitor_user_reads_only() -> None:
    rules, selectors = _users()["monitor"]
    assert "%R~*" in rules and "~*" not in rules and not selectors
    assert not [r for r in rules if r.startswith("+@")]


def test_make_secrets_creates_every_password_the_acl_needs(tmp_path: Path) -> None:
    subprocess.run(
        ["sh", str(ROOT / "deploy" / "make-secrets.sh"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    needed = set(re.findall(r"\{\{password:([a-z0-9_-]+)\}\}", ACL.read_text()))
    assert needed == {n for n in _users() if n != "default"}
    for name in needed:
        assert (tmp_path / f"redis_{name}_password").read_text().strip()


def test_the_rendered_acl_holds_hashes_of_the_secrets_and_no_comment(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    subprocess.run(
        ["sh", str(ROOT / "deploy" / "make-secrets.sh"), str(secrets)],
        check=True,
        capture_output=True,
    )
    rendered = subprocess.run(
        ["sh", str(ROOT / "deploy" / "redis" / "render-acl.sh"), str(ACL), str(secrets)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = rendered.splitlines()
    assert lines and all(line.startswith("user ") for line in lines)
    assert "{{" not in rendered
    chat = (secrets / "redis_chat_password").read_text().strip()
    digest = hashlib.sha256(chat.encode()).hexdigest()
    assert any(line.startswith(f"user chat on #{digest} ") for line in lines)
    assert chat not in rendered


def test_rendering_fails_loudly_on_a_missing_secret(tmp_path: Path) -> None:
    result = subprocess.run(
        ["sh", str(ROOT / "deploy" / "redis" / "render-acl.sh"), str(ACL), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "missing secret" in result.stderr
