"""The gateway's RED metrics per route template and its WebSocket frame metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts import chat
from contracts.base import Envelope, new_message_id
from gateway.api.middleware import RequestTracking
from gateway.domain.sendqueue import Offer, SendQueue
from gateway.handlers.realtime import Close, Connection, Identity
from gateway.handlers.realtime_metrics import count_sent
from gateway.handlers.realtime_options import RealtimeOptions
from gateway.handlers.subscriptions import ChannelHub

pytestmark = pytest.mark.unit


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def app() -> RequestTracking:
    async def thing(request: Request) -> Response:
        code = int(request.query_params.get("status", "200"))
        return JSONResponse({"id": request.path_params["thing_id"]}, status_code=code)

    inner = Starlette(routes=[Route("/things/{thing_id}", thing)])
    return RequestTracking(inner, max_body_bytes=1024)


async def test_requests_are_counted_by_route_template_method_and_status() -> None:
    ok = {"method": "GET", "route": "/things/{thing_id}", "status": "200"}
    failed = {**ok, "status": "503"}
    before_ok = sample("parley_gateway_http_requests_total", ok)
    before_failed = sample("parley_gateway_http_requests_total", failed)
    timed = {"method": "GET", "route": "/things/{thing_id}"}
    before_timed = sample("parley_gateway_http_request_duration_seconds_count", timed)
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        for thing in ("a", "b", new_message_id()):
            assert (await client.get(f"/things/{thing}")).status_code == 200
        assert (await client.get("/things/c?status=503")).status_code == 503
    assert sample("parley_gateway_http_requests_total", ok) == before_ok + 3
    assert sample("parley_gateway_http_requests_total", failed) == before_failed + 1
    assert sample("parley_gateway_http_request_duration_seconds_count", timed) == before_timed + 4
    assert sample("parley_gateway_http_requests_in_flight") == 0


async def test_paths_no_route_serves_share_one_series() -> None:
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    before = sample("parley_gateway_http_requests_total", unmatched)
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        for path in ("/wp-admin", "/.env", f"/{new_message_id()}"):
            assert (await client.get(path)).status_code == 404
    assert sample("parley_gateway_http_requests_total", unmatched) == before + 3
    raw = [
        s.labels["route"]
        for m in REGISTRY.collect()
        if m.name == "parley_gateway_http_requests"
        for s in m.samples
    ]
    assert "/wp-admin" not in raw and "/.env" not in raw


async def test_a_route_behind_nested_router_prefixes_is_labelled_with_its_whole_template() -> None:
    inner = APIRouter(prefix="/things")

    @inner.get("/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    outer = APIRouter(prefix="/api/v1")
    outer.include_router(inner)
    api = FastAPI()
    api.include_router(outer)
    labels = {"method": "GET", "route": "/api/v1/things/{thing_id}", "status": "200"}
    before = sample("parley_gateway_http_requests_total", labels)
    transport = httpx.ASGITransport(app=RequestTracking(api, max_body_bytes=1024))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        assert (await client.get(f"/api/v1/things/{new_message_id()}")).status_code == 200
    assert sample("parley_gateway_http_requests_total", labels) == before + 1


def test_the_send_queue_reports_the_type_of_every_frame_it_drops() -> None:
    dropped: list[str] = []
    queue = SendQueue(2, droppable_limit=1, on_drop=dropped.append)
    assert queue.offer("t1", droppable=True, kind="typing") is Offer.QUEUED
    assert queue.offer("p1", droppable=True, kind="presence") is Offer.DROPPED
    assert queue.offer("m1", droppable=False, kind="message.posted") is Offer.QUEUED
    assert queue.offer("m2", droppable=False, kind="message.posted") is Offer.QUEUED  # evicts t1
    assert dropped == ["presence", "typing"]
    assert queue.dropped == 2


class _Hub:
    async def acquire(self, channel: str, listener: object) -> None:
        pass


async def test_a_live_message_frame_carries_its_creation_time_to_the_writer() -> None:
    ident = Identity(user_id="me", session_id="s", device_id="d", connection_id="c", expires_at=2e9)
    conn = Connection(
        ident, hub=cast(ChannelHub, _Hub()), backend=cast(Any, None), options=RealtimeOptions()
    )
    created = datetime.now(UTC) - timedelta(seconds=2)
    msg = chat.ChatMessage(
        id="m1", conversation_id="c1", seq=1, sender_id="x", body="hi", client_msg_id="k1",
        created_at=created,
    )  # fmt: skip
    event = chat.MessagePosted(conversation_id="c1", message=msg)
    env = Envelope(
        id=new_message_id(), type=event.TYPE, version=1, occurred_at=created, producer="chat"
    )
    conn.on_frame("rt:{conv:c1}", env, event)
    item = await conn.next_outgoing()
    assert not isinstance(item, Close)
    assert item.kind == "message.posted"
    assert item.born == created.timestamp()
    before = sample("parley_gateway_ws_delivery_seconds_count")
    slow = sample("parley_gateway_ws_delivery_seconds_bucket", {"le": "1.0"})
    sent = sample("parley_gateway_ws_frames_sent_total", {"type": "message.posted"})
    count_sent(item.kind, item.born)
    assert sample("parley_gateway_ws_delivery_seconds_count") == before + 1
    # two seconds old: above the 1 s bucket
    assert sample("parley_gateway_ws_delivery_seconds_bucket", {"le": "1.0"}) == slow
    assert sample("parley_gateway_ws_frames_sent_total", {"type": "message.posted"}) == sent + 1
