"""Log lines carry the service name and the correlation id, as text or as JSON lines."""

from __future__ import annotations

import json
import logging

import pytest

from shared.service.logging import configure_logging, correlated

pytestmark = pytest.mark.unit


def test_json_lines_carry_service_and_correlation_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("chat", fmt="json", level="INFO")
    with correlated("req-42"):
        logging.getLogger("chat.handlers").info("posted", extra={"conversation": "c1"})
    logging.getLogger("chat.handlers").info("outside")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["service"] == "chat"
    assert lines[0]["correlation_id"] == "req-42"
    assert lines[0]["message"] == "posted"
    assert lines[0]["conversation"] == "c1"
    assert lines[1]["correlation_id"] == "-"


def test_human_lines_carry_service_and_correlation_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("auth", fmt="human", level="INFO")
    with correlated("abc"):
        logging.getLogger("auth").warning("locked out")
    line = capsys.readouterr().err.strip()
    assert "auth [abc]" in line and "locked out" in line and "WARNING" in line
