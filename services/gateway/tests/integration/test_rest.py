"""The REST API against the real auth and user services: accounts, profiles, caching, limits."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from shared.bus import admin

from .conftest import Fleet, bearer

pytestmark = pytest.mark.integration


async def test_register_answers_tokens_and_the_profile_follows(fleet: Fleet) -> None:
    account = await fleet.register()
    assert set(account) >= {"user_id", "access_token", "refresh_token", "expires_in"}
    me = await fleet.wait_for(
        "GET", "/api/v1/users/me", 200, headers=bearer(account["access_token"])
    )
    assert me.status_code == 200, me.text
    assert me.json()["user_id"] == account["user_id"]
    assert me.json()["username"] == account["username"]


async def test_login_and_refresh_give_working_tokens(fleet: Fleet) -> None:
    account = await fleet.register()
    login = await fleet.http.post(
        "/api/v1/auth/login",
        json={"username": account["username"], "password": account["password"]},
    )
    assert login.status_code == 200, login.text
    refreshed = await fleet.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": login.json()["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != login.json()["refresh_token"]
    sessions = await fleet.http.get(
        "/api/v1/auth/sessions", headers=bearer(refreshed.json()["access_token"])
    )
    assert sessions.status_code == 200
    assert len(sessions.json()["items"]) == 2  # the registration's session and the login's


async def test_a_wrong_password_is_401_with_a_stable_code(fleet: Fleet) -> None:
    account = await fleet.register()
    response = await fleet.http.post(
        "/api/v1/auth/login", json={"username": account["username"], "password": "wrong-password-1"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


async def test_patch_me_changes_the_profile_and_the_next_get_sees_it(fleet: Fleet) -> None:
    account = await fleet.register()
    headers = bearer(account["access_token"])
    await fleet.wait_for("GET", "/api/v1/users/me", 200, headers=headers)
    patched = await fleet.http.patch(
        "/api/v1/users/me", json={"display_name": "Renamed", "bio": "hello"}, headers=headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["display_name"] == "Renamed"
    again = await fleet.http.get("/api/v1/users/me", headers=headers)
    assert again.json()["display_name"] == "Renamed"  # the cached answer was invalidated


async def test_missing_and_invalid_tokens_are_401(fleet: Fleet) -> None:
    assert (await fleet.http.get("/api/v1/users/me")).status_code == 401
    response = await fleet.http.get("/api/v1/users/me", headers=bearer("not.a.token"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert "www-authenticate" in response.headers


async def test_a_repeated_get_is_answered_304_for_its_etag(fleet: Fleet) -> None:
    viewer, other = await fleet.register(), await fleet.register()
    headers = bearer(viewer["access_token"])
    url = f"/api/v1/users/{other['user_id']}"
    first = await fleet.wait_for("GET", url, 200, headers=headers)
    etag = first.headers["etag"]
    second = await fleet.http.get(url, headers={**headers, "If-None-Match": etag})
    assert second.status_code == 304
    assert second.headers["etag"] == etag


async def test_a_change_by_another_user_invalidates_the_cached_answer(fleet: Fleet) -> None:
    viewer, other = await fleet.register(), await fleet.register()
    url = f"/api/v1/users/{other['user_id']}"
    first = await fleet.wait_for("GET", url, 200, headers=bearer(viewer["access_token"]))
    await fleet.http.patch(
        "/api/v1/users/me", json={"display_name": "New Name"}, headers=bearer(other["access_token"])
    )
    changed = await fleet.http.get(url, headers=bearer(viewer["access_token"]))
    assert changed.json()["display_name"] == "New Name"
    assert changed.headers["etag"] != first.headers["etag"]


async def test_logout_refuses_the_token_at_once(fleet: Fleet) -> None:
    account = await fleet.register()
    headers = bearer(account["access_token"])
    assert (await fleet.http.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    assert (await fleet.http.get("/api/v1/users/me", headers=headers)).status_code == 401


async def test_a_session_revoked_elsewhere_is_refused_when_its_event_arrives(fleet: Fleet) -> None:
    account = await fleet.register()
    login = await fleet.http.post(
        "/api/v1/auth/login",
        json={"username": account["username"], "password": account["password"]},
    )
    victim = bearer(login.json()["access_token"])
    await fleet.wait_for("GET", "/api/v1/users/me", 200, headers=victim)
    sessions = await fleet.http.get(
        "/api/v1/auth/sessions", headers=bearer(account["access_token"])
    )
    other = next(s["id"] for s in sessions.json()["items"] if not s["current"])
    revoked = await fleet.http.delete(
        f"/api/v1/auth/sessions/{other}", headers=bearer(account["access_token"])
    )
    assert revoked.status_code == 204
    refused = await fleet.wait_for("GET", "/api/v1/users/me", 401, headers=victim)
    assert refused.status_code == 401


async def test_flooding_gets_429_with_retry_after(fleet: Fleet) -> None:
    account = await fleet.register()
    headers = bearer(account["access_token"])
    # The test gateway allows a burst of 30 per user and refills 10 a second. The requests go
    # out together, so a slow machine's refill between them cannot keep up with the flood.
    responses = await asyncio.gather(
        *(fleet.http.get("/api/v1/auth/sessions", headers=headers) for _ in range(60))
    )
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {200, 429}
    limited = [response for response in responses if response.status_code == 429]
    assert limited, "60 requests at once were all admitted"
    assert int(limited[0].headers["retry-after"]) >= 1
    assert limited[0].json()["error"]["code"] == "rate_limited"
    assert "ratelimit-limit" in limited[0].headers


async def test_a_request_id_travels_into_the_commands_and_events(fleet: Fleet) -> None:
    request_id = f"req-{secrets.token_hex(8)}"
    response = await fleet.http.post(
        "/api/v1/auth/register",
        json={"username": f"u{secrets.token_hex(6)}", "password": "pw-" + secrets.token_hex(8),
              "display_name": "Traced"},
        headers={"X-Request-ID": request_id,
                 "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )  # fmt: skip
    assert response.headers["x-request-id"] == request_id
    assert response.headers["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    chain = await admin.trace(fleet.redis, request_id, since="5m")
    streams = [item["stream"] for item in chain]
    assert "auth.commands" in streams and "auth.events" in streams


async def test_bad_input_gets_clear_errors_and_no_5xx(fleet: Fleet) -> None:
    short = await fleet.http.post("/api/v1/auth/register", json={"username": "x"})
    assert short.status_code == 422
    assert short.json()["error"]["code"] == "invalid"
    not_json = await fleet.http.post(
        "/api/v1/auth/login", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert not_json.status_code in (400, 422)
    huge = await fleet.http.post("/api/v1/auth/login", content=b"x" * 200_000)
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "payload_too_large"
    missing = await fleet.http.get("/api/v1/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


async def test_openapi_lists_the_api(fleet: Fleet) -> None:
    spec = (await fleet.http.get("/openapi.json")).json()
    assert "/api/v1/conversations/{conversation_id}/messages" in spec["paths"]
    assert (await fleet.http.get("/docs")).status_code == 200
