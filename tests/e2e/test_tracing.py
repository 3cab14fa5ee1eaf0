"""Tracing across the fleet: every service exports OTLP/HTTP to a receiver in this test.

One POST of a message must make one trace: the gateway's request span, its command to chat,
chat's handling (with its SQL and Redis round trips), the event chat emits and notification's
handling of it, and the gateway's delivery of the event to a connected member; each span the
child of the one that caused it. The fleet runs on a cluster of its own
(``PARLEY_TEST_TRACING_PORTS``, default 7137-7140,7147-7148): the shared fleet does not trace.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from parley.cluster import LocalCluster
from parley.fleet import SERVICES, Fleet
from parley.otlp import OtlpReceiver, ReceivedSpan

from .conftest import FAST_SETTINGS, fresh_cluster, next_frame

pytestmark = [pytest.mark.e2e]

DEFAULT_PORTS = "7137,7138,7139,7140,7147,7148"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def traced_fleet(
    receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    with fresh_cluster("PARLEY_TEST_TRACING_PORTS", DEFAULT_PORTS) as cluster:
        yield from _fleet(cluster, receiver, tmp_path_factory.mktemp("traced"))


def _fleet(cluster: LocalCluster, receiver: OtlpReceiver, home: Path) -> Iterator[Fleet]:
    users = {s: cluster.acl.credentials(s) for s in SERVICES} if cluster.acl else None
    env = {s: {**FAST_SETTINGS.get(s, {}), **receiver.env()} for s in SERVICES}
    with Fleet(cluster.url(), home, extra_env=env, redis_users=users) as running:
        running.start(timeout=180)  # the SDK's import is on every start-up path here
        yield running


def _register(fleet: Fleet) -> tuple[str, str]:
    name = f"u{uuid.uuid4().hex[:12]}"
    body = {"username": name, "password": f"pw-{uuid.uuid4().hex}", "display_name": name}
    r = httpx.post(f"{fleet.api}/api/v1/auth/register", json=body, timeout=15)
    assert r.status_code == 201, r.text
    return r.json()["user_id"], r.json()["access_token"]


def _by_id(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    return {s.span_id: s for s in spans}


def _ancestors(span: ReceivedSpan, index: dict[str, ReceivedSpan]) -> list[ReceivedSpan]:
    chain = []
    while span.parent_span_id in index:
        span = index[span.parent_span_id]
        chain.append(span)
    return chain


def _one(spans: list[ReceivedSpan], **match: str) -> ReceivedSpan:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in match.items())]
    assert len(found) == 1, (match, [(s.service, s.name) for s in spans])
    return found[0]


def test_one_post_makes_one_trace_across_gateway_chat_and_notification(
    traced_fleet: Fleet, receiver: OtlpReceiver
) -> None:
    _, alice_token = _register(traced_fleet)
    bob, bob_token = _register(traced_fleet)
    auth = {"Authorization": f"Bearer {alice_token}"}
    api = f"{traced_fleet.api}/api/v1"
    conv = httpx.post(
        f"{api}/conversations", json={"kind": "direct", "member_ids": [bob]}, headers=auth
    ).json()["id"]
    client_trace, client_span = secrets.token_hex(16), secrets.token_hex(8)
    with connect(f"{traced_fleet.ws}?token={bob_token}", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "auth", "token": bob_token, "device_id": "laptop"}))
        next_frame(ws, {"ready"})
        r = httpx.post(
            f"{api}/conversations/{conv}/messages",
            json={"body": "traced", "client_msg_id": uuid.uuid4().hex},
            headers={**auth, "traceparent": f"00-{client_trace}-{client_span}-01"},
            timeout=15,
        )
        assert r.status_code == 201, r.text
        assert next_frame(ws, {"message.posted"})["message"]["body"] == "traced"
        ws.send(json.dumps({"type": "view", "conversation_id": conv}))
        assert next_frame(ws, {"view.ok"})["conversation_id"] == conv
    request_id = r.headers["x-request-id"]
    returned = r.headers["traceparent"].split("-")
    assert returned[1] == client_trace

    def complete(spans: list[ReceivedSpan]) -> bool:
        mine = {(s.service, s.name) for s in spans if s.trace_id == client_trace}
        return {
            ("notification", "process chat.message_posted"),
            ("gateway", "ws deliver chat.message_posted"),
            ("chat", "process chat.post_message"),
        } <= mine

    spans = receiver.wait_for(complete, timeout=20)
    trace = [s for s in spans if s.trace_id == client_trace]
    index = _by_id(trace)

    # The gateway's request span continues the client's trace and is the one it returned.
    server = _one(trace, service="gateway", kind="server", parent_span_id=client_span)
    assert server.span_id == returned[2]
    assert server.name == "POST /api/v1/conversations/{conversation_id}/messages"
    assert server.attributes["http.response.status_code"] == 201
    assert server.attributes["http.route"] == "/api/v1/conversations/{conversation_id}/messages"

    # gateway send -> chat process: the command's handling is a child of the request.
    send = _one(trace, service="gateway", name="send chat.post_message")
    assert send.kind == "producer" and send.parent_span_id == server.span_id
    handled = _one(trace, service="chat", name="process chat.post_message")
    assert handled.kind == "consumer" and handled.parent_span_id == send.span_id
    assert handled.attributes["messaging.consumer.group.name"] == "chat"
    assert handled.attributes["messaging.message.conversation_id"] == request_id

    # chat's own round trips: SQL statements and the reply, inside its handling.
    sql = [s for s in trace if s.service == "chat" and "db.query.text" in s.attributes]
    assert any(s.attributes["db.operation.name"] == "INSERT" for s in sql)
    assert all(handled in _ancestors(s, index) for s in sql)
    reply = _one(trace, service="chat", name="PUBLISH reply")
    assert reply.parent_span_id == handled.span_id

    # The event's handlers descend from the command's handling: notification's and the
    # gateway's delivery to bob's socket.
    for service, name in (
        ("notification", "process chat.message_posted"),
        ("gateway", "ws deliver chat.message_posted"),
    ):
        span = _one(trace, service=service, name=name)
        assert span.kind == "consumer"
        assert handled in _ancestors(span, index), (service, name)
        assert server in _ancestors(span, index)

    # One trace: every span of the request's correlation id is in it, and every span of the
    # trace hangs from the client's span.
    correlated = [
        s for s in spans if s.attributes.get("messaging.message.conversation_id") == request_id
    ]
    assert {s.trace_id for s in correlated} == {client_trace}
    assert {"gateway", "chat", "notification"} <= {s.service for s in trace}
    for span in trace:
        assert span is server or server in _ancestors(span, index), (span.service, span.name)
    assert receiver.rejected == 0

    # A client frame is a span of its own, and the command it sends is its child.
    def viewing_handled(spans: list[ReceivedSpan]) -> bool:
        frames = [s for s in spans if s.name == "ws receive view"]
        return any(
            s.name == "process notification.set_viewing" and s.trace_id == f.trace_id
            for s in spans
            for f in frames
        )

    viewed = receiver.wait_for(viewing_handled)
    frame = _one(viewed, service="gateway", name="ws receive view")
    assert frame.kind == "server" and frame.attributes["parley.user_id"] == bob
    its_trace = [s for s in viewed if s.trace_id == frame.trace_id]
    command = _one(its_trace, service="notification", name="process notification.set_viewing")
    assert frame in _ancestors(command, _by_id(its_trace))
