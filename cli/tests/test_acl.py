"""parley.acl: the ACL users follow whatever the registry declares (no list to keep in step)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contracts import registry
from contracts.topology import ChannelSpec, GroupSpec
from parley import acl
from parley.main import app

pytestmark = pytest.mark.unit


def _selectors_with(user: acl.User, rule: str) -> list[tuple[str, ...]]:
    return [s for s in user.selectors if rule in s]


def test_a_new_channel_family_gives_rights_to_its_publishers_and_subscribers_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    family = ChannelSpec(
        family="rt.room",
        template="rt:{room:<id>}",
        publishers=("user",),
        subscribers=("notification",),
    )
    monkeypatch.setattr(registry, "CHANNELS", (*registry.CHANNELS, family))
    [publish] = _selectors_with(acl.service_user("user"), "&rt:{room:*}")
    assert "+spublish" in publish and "+ssubscribe" not in publish
    [subscribe] = _selectors_with(acl.service_user("notification"), "&rt:{room:*}")
    assert "+ssubscribe" in subscribe and "+spublish" not in subscribe
    assert not _selectors_with(acl.service_user("chat"), "&rt:{room:*}")


def test_a_new_consumer_group_and_sender_get_their_streams_and_nothing_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chat_commands = dataclasses.replace(registry.stream("chat.commands"), senders=("user",))
    streams = tuple(chat_commands if s.name == "chat.commands" else s for s in registry.STREAMS)
    monkeypatch.setattr(registry, "STREAMS", streams)
    monkeypatch.setattr(
        registry, "GROUPS", (*registry.GROUPS, GroupSpec(service="chat", streams=("auth.events",)))
    )
    chat = acl.service_user("chat")
    [consume] = _selectors_with(chat, "~auth:stream:{auth.events.*}")
    assert "+xreadgroup" in consume and "+xadd" not in consume
    assert _selectors_with(chat, "~auth:stream:{auth.events.dlq}")
    [send] = _selectors_with(acl.service_user("user"), "~chat:stream:{chat.commands.*}")
    assert "+xadd" in send and "+xreadgroup" not in send and "+del" not in send


def test_reply_channels_are_heard_by_their_caller_and_published_by_whom_it_calls() -> None:
    gateway, auth = acl.service_user("gateway"), acl.service_user("auth")
    [hear] = _selectors_with(gateway, "&reply:{gateway.*}")
    assert "+ssubscribe" in hear
    [answer] = _selectors_with(auth, "&reply:{gateway.*}")
    assert "+spublish" in answer and "+ssubscribe" not in answer
    assert all("&reply:{*}" not in s for u in acl.fleet_users() for s in u.selectors)


def test_the_cluster_options_hold_hashes_and_every_user() -> None:
    users = acl.ClusterAcl.random()
    args = users.node_args()
    assert users.passwords["chat"] not in args
    assert args.count("--user") == len(acl.fleet_users())
    replication = users.passwords["replication"]
    assert args[-4:] == ["--masteruser", "replication", "--masterauth", replication]


def test_export_then_check_passes_and_check_fails_on_an_edited_file(tmp_path: Path) -> None:
    file, tf = tmp_path / "users.acl", tmp_path / "acl.tf.json"
    files = ["--file", str(file), "--terraform-file", str(tf)]
    runner = CliRunner()
    assert runner.invoke(app, ["acl", "export", *files]).exit_code == 0
    assert runner.invoke(app, ["acl", "check", *files]).exit_code == 0
    file.write_text(file.read_text().replace("&rt:{conv:*}", "&rt:*"))
    result = runner.invoke(app, ["acl", "check", *files])
    assert result.exit_code == 1


def test_check_fails_on_an_edited_terraform_access_string(tmp_path: Path) -> None:
    file, tf = tmp_path / "users.acl", tmp_path / "acl.tf.json"
    files = ["--file", str(file), "--terraform-file", str(tf)]
    runner = CliRunner()
    assert runner.invoke(app, ["acl", "export", *files]).exit_code == 0
    tf.write_text(tf.read_text().replace("~chat:*", "~*", 1))
    result = runner.invoke(app, ["acl", "check", *files])
    assert result.exit_code == 1
    assert "acl.tf.json" in result.output


def test_the_managed_access_strings_are_the_template_rules_without_passwords() -> None:
    template = {
        line.split()[1]: line.split(maxsplit=4)[4]
        for line in acl.render().splitlines()
        if line.startswith("user ") and "{{password:" in line
    }
    strings = json.loads(acl.render_terraform())["locals"]["redis_access_strings"]
    assert set(strings) == {"admin", "monitor", "auth", "user", "chat", "notification", "gateway"}
    for name, access in strings.items():
        assert "password" not in access and ">" not in access.split()[1]
        assert access.startswith("on ") and access[3:] == template[name]
