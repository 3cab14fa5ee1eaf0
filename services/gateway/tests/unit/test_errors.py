"""Errors reach clients as {"error": {"code", "message"}} with the documented HTTP status."""

from __future__ import annotations

import json

import pytest

from contracts.base import ErrorCode, Reply
from gateway.api.errors import gateway_error_response
from gateway.domain.errors import GatewayError, http_status
from gateway.handlers.backend import BackendError, unwrap
from gateway.handlers.tokens import TokenExpiredError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (ErrorCode.INVALID, 422),
        (ErrorCode.UNAUTHENTICATED, 401),
        (ErrorCode.FORBIDDEN, 403),
        (ErrorCode.NOT_FOUND, 404),
        (ErrorCode.CONFLICT, 409),
        (ErrorCode.RATE_LIMITED, 429),
        (ErrorCode.UNAVAILABLE, 503),
        (ErrorCode.EXPIRED, 504),
        (ErrorCode.INTERNAL, 500),
    ],
)
def test_every_reply_error_code_maps_to_its_http_status(code: ErrorCode, status: int) -> None:
    with pytest.raises(BackendError) as caught:
        unwrap(Reply.failure(code, "why"))
    assert caught.value.code == code.value
    assert caught.value.status == status
    assert http_status(code.value) == status


def test_a_successful_reply_gives_its_result() -> None:
    assert unwrap(Reply.success({"x": 1})) == {"x": 1}


def test_a_rate_limited_reply_carries_retry_after_to_the_client() -> None:
    with pytest.raises(BackendError) as caught:
        unwrap(Reply.failure(ErrorCode.RATE_LIMITED, "slow down", retry_after=2.2))
    response = gateway_error_response(caught.value)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert json.loads(bytes(response.body)) == {
        "error": {"code": "rate_limited", "message": "slow down"}
    }


def test_an_expired_token_is_401_with_a_code_that_says_refresh() -> None:
    response = gateway_error_response(TokenExpiredError())
    assert response.status_code == 401
    assert json.loads(bytes(response.body))["error"]["code"] == "token_expired"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_an_unknown_code_is_a_500_not_a_crash() -> None:
    assert GatewayError("something_new").status == 500


def test_an_invalid_field_is_named() -> None:
    response = gateway_error_response(GatewayError("invalid", "bad", field="ids"))
    assert json.loads(bytes(response.body))["error"] == {
        "code": "invalid",
        "message": "bad",
        "field": "ids",
    }
