"""``parley events``: tail, show, replay (dry and real), rewind, trace and dead letters."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from redis import RedisCluster
from typer.testing import CliRunner

from contracts.base import Envelope
from contracts.gateway import ConnectionOpened
from contracts.registry import stream
from parley.events_cmd import app
from shared.bus import wire
from shared.bus.deadletter import PREFIX

pytestmark = pytest.mark.integration

SPEC = stream("gateway.events")


@pytest.fixture
def sync_client(redis_url: str) -> Iterator[Any]:
    client = RedisCluster.from_url(redis_url)
    yield client
    client.close()


def run(redis_url: str, *args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(app, [*args, "--redis-url", redis_url])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def publish(client: Any, user: str, *, caused_by: Envelope | None = None) -> Envelope:
    msg = ConnectionOpened(user_id=user, device_id="d1", connection_id="c1", gateway_id="g1")
    env = Envelope.for_message(msg, producer="gateway", caused_by=caused_by)
    client.xadd(SPEC.key_for(user), wire.redis_fields(wire.entry_fields(env, msg)))
    return env


def entry_ids(client: Any, user: str) -> list[str]:
    return [wire.as_text(i) for i, _ in client.xrange(SPEC.key_for(user))]


def test_tail_and_show_print_decoded_entries(redis_url: str, sync_client: Any) -> None:
    user = f"u{uuid.uuid4().hex}"
    env = publish(sync_client, user)
    first = entry_ids(sync_client, user)[-1]
    lines = run(redis_url, "tail", "gateway.events", "--from", first)
    ours = [x for x in lines if x.get("payload", {}).get("user_id") == user]
    assert [x["envelope"]["id"] for x in ours] == [env.id]
    shown = run(redis_url, "show", "gateway.events", first)
    assert shown[0]["payload"]["user_id"] == user
    assert shown[0]["envelope"]["type"] == "gateway.connection_opened"


def test_replay_dry_run_changes_nothing_and_replay_reruns_for_one_group(
    redis_url: str, sync_client: Any
) -> None:
    user = f"u{uuid.uuid4().hex}"
    for _ in range(3):
        publish(sync_client, user)
    ids = entry_ids(sync_client, user)[-3:]
    key = SPEC.key_for(user)
    length = sync_client.xlen(key)

    dry = run(
        redis_url,
        "replay",
        "gateway.events",
        "--from",
        ids[0],
        "--to",
        ids[-1],
        "--group",
        "auditor",
        "--dry-run",
    )
    assert dry[0]["would_replay"] >= 3 and dry[0]["replayed"] == 0
    assert sync_client.xlen(key) == length

    done = run(
        redis_url,
        "replay",
        "gateway.events",
        "--from",
        ids[0],
        "--to",
        ids[-1],
        "--group",
        "auditor",
    )
    assert done[0]["replayed"] == dry[0]["would_replay"]
    copies = sync_client.xrange(key, "(" + entry_ids(sync_client, user)[-4], "+")
    assert len(copies) == 3
    assert all(f[wire.ONLY_GROUP] == b"auditor" and wire.REPLAY in f for _, f in copies)


def test_rewind_moves_the_group_back_only_when_not_a_dry_run(
    redis_url: str, sync_client: Any
) -> None:
    user, group = f"u{uuid.uuid4().hex}", f"g{uuid.uuid4().hex[:8]}"
    publish(sync_client, user)
    first = entry_ids(sync_client, user)[-1]
    key = SPEC.key_for(user)
    sync_client.xgroup_create(key, group, "$")
    before = _last_delivered(sync_client, key, group)

    rows = run(redis_url, "rewind", "gateway.events", "--group", group, "--to", first, "--dry-run")
    assert rows[0]["rerun"] >= 1
    assert _last_delivered(sync_client, key, group) == before

    run(redis_url, "rewind", "gateway.events", "--group", group, "--to", first)
    again = sync_client.xreadgroup(group, "c", {key: ">"}, count=1000)
    assert first in [wire.as_text(i) for i, _ in again[0][1]]


def test_trace_lists_everything_one_request_caused_in_order(
    redis_url: str, sync_client: Any
) -> None:
    origin = publish(sync_client, f"u{uuid.uuid4().hex}")
    child = publish(sync_client, f"u{uuid.uuid4().hex}", caused_by=origin)
    lines = run(redis_url, "trace", str(origin.correlation_id), "--since", "5m", "--json")
    assert [x["envelope"]["id"] for x in lines] == [origin.id, child.id]


def test_trace_says_which_group_handled_each_message_and_which_dead_lettered_it(
    redis_url: str, sync_client: Any
) -> None:
    user = f"u{uuid.uuid4().hex}"
    key = SPEC.key_for(user)
    done, stuck, late = (f"g{uuid.uuid4().hex[:8]}" for _ in range(3))
    for group in (done, stuck, late):
        sync_client.xgroup_create(key, group, "$", mkstream=True)
    origin = publish(sync_client, user)
    entry_id, fields = sync_client.xrange(key)[-1]
    sync_client.xreadgroup(done, "c", {key: ">"}, count=10)
    sync_client.xack(key, done, entry_id)
    sync_client.xreadgroup(stuck, "c", {key: ">"}, count=10)  # delivered, never acknowledged
    letter = {
        PREFIX + k.encode(): v.encode()
        for k, v in {
            "stream": SPEC.name,
            "partition": "0",
            "entry_id": wire.as_text(entry_id),
            "group": stuck,
            "error": "boom: the handler failed",
            "attempts": "5",
            "first_failure": "2026-01-01T00:00:00+00:00",
            "last_failure": "2026-01-01T00:00:01+00:00",
        }.items()
    }
    dlq_id = wire.as_text(sync_client.xadd(SPEC.dead_letter_key(), {**fields, **letter}))
    try:
        [item] = run(redis_url, "trace", origin.id, "--since", "5m", "--json")
        assert item["handled_by"][done] == "handled"
        assert item["handled_by"][stuck] == "pending"
        assert item["handled_by"][late] == "unread"
        assert item["dead_letters"] == [
            {"dlq_id": dlq_id, "group": stuck, "error": "boom: the handler failed", "attempts": 5}
        ]
        tree = CliRunner().invoke(
            app, ["trace", origin.id, "--since", "5m", "--redis-url", redis_url]
        )
        assert tree.exit_code == 0, tree.output
        assert f"trace {origin.id}  1 message(s)" in tree.output
        assert "gateway -> gateway.connection_opened v1" in tree.output
        assert f"group {done} handled" in tree.output
        assert f"group {stuck} pending" in tree.output
        assert f"dead letter {dlq_id} group {stuck} after 5 attempt(s)" in tree.output
    finally:
        sync_client.xdel(SPEC.dead_letter_key(), dlq_id)


def test_the_trace_tree_hangs_each_message_from_its_cause(redis_url: str, sync_client: Any) -> None:
    origin = publish(sync_client, f"u{uuid.uuid4().hex}")
    child = publish(sync_client, f"u{uuid.uuid4().hex}", caused_by=origin)
    grandchild = publish(sync_client, f"u{uuid.uuid4().hex}", caused_by=child)
    result = CliRunner().invoke(
        app, ["trace", str(origin.correlation_id), "--since", "5m", "--redis-url", redis_url]
    )
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "gateway.connection_opened" in line]
    depth = [len(row) - len(row.lstrip(" │├└─")) for row in rows]
    assert len(rows) == 3 and depth[0] < depth[1] < depth[2], result.output
    assert grandchild.causation_id == child.id


def test_a_trace_that_finds_nothing_says_so_and_fails(redis_url: str) -> None:
    result = CliRunner().invoke(
        app, ["trace", uuid.uuid4().hex, "--since", "1m", "--redis-url", redis_url]
    )
    assert result.exit_code == 1
    assert "no message with correlation id" in result.output


def test_dead_letters_are_listed_redriven_and_purged(redis_url: str, sync_client: Any) -> None:
    run(redis_url, "dlq", "purge", "gateway.events", "--all")
    user = f"u{uuid.uuid4().hex}"
    env = publish(sync_client, user)
    entry_id, fields = sync_client.xrange(SPEC.key_for(user))[-1]
    provenance = {
        PREFIX + k.encode(): v.encode()
        for k, v in {
            "stream": SPEC.name,
            "partition": str(SPEC.partition_for(user)),
            "entry_id": wire.as_text(entry_id),
            "group": "user",
            "error": "ValueError: boom",
            "attempts": "5",
            "first_failure": "2025-01-01T00:00:00+00:00",
            "last_failure": "2025-01-01T00:00:01+00:00",
        }.items()
    }
    sync_client.xadd(SPEC.dead_letter_key(), {**fields, **provenance})

    listed = run(redis_url, "dlq", "list", "gateway.events")
    assert [x["message"]["envelope"]["id"] for x in listed] == [env.id]
    assert listed[0]["provenance"]["attempts"] == "5"

    redriven = run(redis_url, "dlq", "redrive", "gateway.events", "--all")
    back = sync_client.xrange(SPEC.key_for(user), redriven[0]["entry_id"], redriven[0]["entry_id"])
    assert back[0][1][wire.ONLY_GROUP] == b"user"
    assert sync_client.xlen(SPEC.dead_letter_key()) == 0


def _last_delivered(client: Any, key: str, group: str) -> str:
    for g in client.xinfo_groups(key):
        if wire.as_text(g["name"]) == group:
            return wire.as_text(g["last-delivered-id"])
    raise AssertionError(f"no group {group}")


def test_streams_lists_every_declared_stream_with_its_groups(
    redis_url: str, sync_client: Any
) -> None:
    user, group = f"u{uuid.uuid4().hex}", f"g{uuid.uuid4().hex[:8]}"
    publish(sync_client, user)
    sync_client.xgroup_create(SPEC.key_for(user), group, "0")
    rows = {row["stream"]: row for row in run(redis_url, "streams", "--json")}
    assert rows["gateway.events"]["partitions"] == SPEC.partitions
    assert rows["gateway.events"]["groups"][group]["lag"] >= 1
    assert "chat.events" in rows


def test_streams_prints_a_table_of_streams_with_their_groups_lag_and_pending(
    redis_url: str, sync_client: Any
) -> None:
    user, group = f"u{uuid.uuid4().hex}", f"g{uuid.uuid4().hex[:8]}"
    publish(sync_client, user)
    sync_client.xgroup_create(SPEC.key_for(user), group, "0")
    result = CliRunner().invoke(app, ["streams", "--redis-url", redis_url], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    header, *rows = [line for line in result.stdout.splitlines() if line.strip()]
    assert header.split()[:4] == ["stream", "parts", "length", "dlq"]
    (row,) = [line for line in rows if line.split()[0] == "gateway.events"]
    cells = row.split()
    assert cells[1] == str(SPEC.partitions)
    assert int(cells[2]) >= 1
    assert f"{group} " in row  # the group with its lag/pending
    assert any(line.split()[0] == "chat.events" for line in rows)
