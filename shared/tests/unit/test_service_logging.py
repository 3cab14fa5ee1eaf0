"""What a service's log lines carry, as the runner configures logging."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import ClassVar

import pytest

from contracts.base import Envelope, Event
from shared.bus import context
from shared.service.logging import WebSocketHandshakeLines
from shared.service.runner import run_service
from shared.service.settings import ServiceSettings

pytestmark = pytest.mark.unit


class Noted(Event, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "test.noted"
    STREAM: ClassVar[str] = "test.events"
    KEY: ClassVar[str | None] = "key"

    key: str


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.setenv("PARLEY_LOG_FORMAT", "json")
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_a_line_logged_while_a_message_is_handled_names_the_message(
    json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # An unknown command still configures logging the way `serve` does, then exits 2.
    assert run_service("chat", ServiceSettings, lambda runtime: None, argv=["nope"]) == 2
    cause = Envelope.for_message(Noted(key="k"), producer="gateway")
    env = Envelope.for_message(Noted(key="k"), producer="chat", caused_by=cause)
    with context.handling(env):
        logging.getLogger("chat.handlers").warning("stored the message")
    logging.getLogger("chat.handlers").warning("outside any message")
    inside, outside = lines(capsys.readouterr().err)[-2:]
    assert inside["service"] == "chat"
    assert inside["message_id"] == env.id
    assert inside["causation_id"] == cause.id
    assert inside["correlation_id"] == cause.correlation_id
    assert inside["traceparent"] == (env.traceparent or "-")
    assert outside["message_id"] == "-" and outside["correlation_id"] == "-"


def test_uvicorn_websocket_lines_lose_their_query_and_stay_out_of_info(
    json_logs: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn logs every handshake with its query string, where a client's token is."""
    uvicorn = logging.getLogger("uvicorn.error")
    filters, level = uvicorn.filters[:], uvicorn.level
    uvicorn.setLevel(logging.NOTSET)  # as a service leaves it (a test's uvicorn.Config sets it)
    try:
        assert run_service("gateway", ServiceSettings, lambda runtime: None, argv=["nope"]) == 2
        handshake = '%s - "WebSocket %s" [accepted]'
        uvicorn.info(handshake, "127.0.0.1:5000", "/ws?token=secret-token&device_id=a")
        uvicorn.info("connection open")
        uvicorn.info("Uvicorn running on %s", "http://127.0.0.1:8000")
        uvicorn.warning("something else")
        info = lines(capsys.readouterr().err)
        assert [e["message"] for e in info][-2:] == [
            "Uvicorn running on http://127.0.0.1:8000",
            "something else",
        ]

        monkeypatch.setenv("PARLEY_LOG_LEVEL", "DEBUG")
        assert run_service("gateway", ServiceSettings, lambda runtime: None, argv=["nope"]) == 2
        uvicorn.info(handshake, "127.0.0.1:5000", "/ws?token=secret-token&device_id=a")
        uvicorn.info("connection closed")
        debug = lines(capsys.readouterr().err)[-2:]
        assert [e["message"] for e in debug] == [
            '127.0.0.1:5000 - "WebSocket /ws" [accepted]',
            "connection closed",
        ]
        assert all(e["level"] == "debug" for e in debug)
        assert "secret-token" not in json.dumps(debug)
        assert sum(isinstance(f, WebSocketHandshakeLines) for f in uvicorn.filters) == 1
    finally:
        uvicorn.filters[:] = filters
        uvicorn.setLevel(level)
