"""The browser chat client (``web/``, served by the gateway at ``/``) driven in real Chromium.

Playwright drives Debian's Chromium (``executable_path``; no browser download) against the e2e
fleet: two people in two browser contexts chat, see each other type, watch unread badges, live
through a gateway restart and an access token's expiry. Screenshots of the main screens go to
``.parley/screenshots/`` (CI keeps them as artifacts); axe-core checks the same screens.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from parley.fleet import Fleet

from .browsing import (
    PHONE,
    assert_accessible,
    axe_script,
    conversation_with,
    open_conversation,
    post,
    shot,
    sign_in,
)
from .conftest import User

pytestmark = pytest.mark.e2e


def test_two_people_register_find_each_other_and_chat_in_real_time_seeing_typing(
    open_page: Callable[..., Any], register: Callable[[], User]
) -> None:
    bob = register()
    alice_page = open_page()
    shot(alice_page, "sign-in")
    # Alice creates her account in the client itself.
    alice_page.get_by_role("button", name="No account? Create one").click()
    alice_name = f"a{bob.username[1:]}"
    alice_page.get_by_label("Username").fill(alice_name)
    alice_page.get_by_label("Display name").fill("Alice")
    alice_page.get_by_label("Password").fill("correct horse battery staple")
    alice_page.get_by_role("button", name="Create account").click()
    expect(alice_page.locator(".link-state.online")).to_be_visible()

    bob_page = open_page()
    sign_in(bob_page, bob)

    # She finds Bob by his username and starts a direct conversation.
    alice_page.get_by_role("button", name="New conversation").click()
    alice_page.get_by_label("Find people").fill(bob.username[:8])
    alice_page.get_by_role("button", name=f"Add {bob.username.upper()} (@{bob.username})").click()
    alice_page.get_by_role("button", name="Start").click()
    composer = alice_page.get_by_label("Message", exact=True)
    expect(composer).to_be_visible()

    # Bob's list gains the conversation live, over the socket.
    bob_item = bob_page.locator(".conversation", has_text="Alice")
    expect(bob_item).to_be_visible()
    bob_item.click()

    expect(alice_page.locator(".conversation-view .presence")).to_have_text("online")
    composer.press_sequentially("hello Bo", delay=30)
    expect(bob_page.locator(".typing")).to_have_text("Alice is typing…")
    composer.press_sequentially("b")
    composer.press("Enter")
    expect(bob_page.locator(".messages .message .body")).to_have_text(["hello Bob"])
    expect(bob_page.locator(".typing")).to_have_text("")

    bob_page.get_by_label("Message", exact=True).fill("hi Alice")
    bob_page.get_by_role("button", name="Send").click()
    expect(alice_page.locator(".messages .message:not(.pending) .body")).to_have_text(
        ["hello Bob", "hi Alice"]
    )
    shot(alice_page, "conversation")
    shot(bob_page, "conversation-other-side")


def test_unread_badges_count_up_live_and_clear_when_the_conversation_is_read(
    open_page: Callable[..., Any], register: Callable[[], User], eventually: Callable[..., None]
) -> None:
    alice, bob = register(), register()
    conversation = conversation_with(bob, alice, title="Lunch")
    page = open_page()
    sign_in(page, alice)
    item = page.locator(f"button[data-conversation='{conversation}']")
    expect(item).to_be_visible()
    for n in range(1, 4):
        post(bob, conversation, f"ping {n}")
        expect(item.locator(".badge.unread")).to_have_text(str(n))
    expect(item.locator(".preview")).to_contain_text("ping 3")
    # The messages notified Alice (she was not viewing the conversation): the badge counts them.
    expect(page.get_by_test_id("notifications")).not_to_have_text("0")
    shot(page, "conversation-list")

    item.click()
    expect(page.locator(".messages .message .body")).to_have_text(["ping 1", "ping 2", "ping 3"])
    expect(item.locator(".badge.unread")).to_have_count(0)

    def read_on_the_server() -> bool:
        listed = alice.get("/conversations").json()["items"]
        return any(c["id"] == conversation and c["unread_count"] == 0 for c in listed)

    eventually(read_on_the_server)


def test_history_scrolls_back_and_edits_and_deletions_reach_the_other_side_live(
    open_page: Callable[..., Any], register: Callable[[], User]
) -> None:
    alice, bob = register(), register()
    conversation = conversation_with(bob, alice)
    for n in range(1, 61):
        post(bob, conversation, f"m{n}")
    alice_page, bob_page = open_page(), open_page()
    sign_in(alice_page, alice)
    sign_in(bob_page, bob)
    open_conversation(alice_page, conversation)
    shown = alice_page.locator(".messages .message .body")
    expect(shown).to_have_count(50)
    expect(shown.first).to_have_text("m11")
    alice_page.get_by_role("button", name="Load older messages").click()
    expect(shown).to_have_count(60)
    assert shown.all_inner_texts() == [f"m{n}" for n in range(1, 61)]
    expect(alice_page.get_by_role("button", name="Load older messages")).to_have_count(0)

    open_conversation(bob_page, conversation)
    last = bob_page.locator(".message[data-seq='60']")
    last.get_by_role("button", name="Edit").click()
    bob_page.get_by_label("Edit message").fill("m60, edited")
    bob_page.get_by_role("button", name="Save").click()
    expect(alice_page.locator(".message[data-seq='60'] .body")).to_have_text("m60, edited")
    expect(alice_page.locator(".message[data-seq='60'] .meta")).to_contain_text("edited")
    bob_page.locator(".message[data-seq='59']").get_by_role("button", name="Delete").click()
    expect(alice_page.locator(".message[data-seq='59'] .body")).to_have_text("Message deleted")


def test_after_a_gateway_restart_the_client_reconnects_and_shows_every_message_once_in_order(
    open_page: Callable[..., Any], register: Callable[[], User], fleet: Fleet
) -> None:
    alice, bob = register(), register()
    conversation = conversation_with(bob, alice)
    post(bob, conversation, "before")
    page = open_page()
    sign_in(page, alice)
    open_conversation(page, conversation)
    expect(page.locator(".messages .message .body")).to_have_text(["before"])

    restart = threading.Thread(target=fleet.restart, args=("gateway",))
    restart.start()
    try:
        expect(page.get_by_role("status").filter(has_text="Reconnecting")).to_be_visible()
        shot(page, "reconnecting")
        # A message written while the gateway is away fails visibly and keeps its id.
        page.get_by_label("Message", exact=True).fill("written offline")
        page.get_by_role("button", name="Send").click()
        expect(page.locator(".message.failed")).to_be_visible()
    finally:
        restart.join()
    # Sent while Alice's client is still away (its backoff) or just back: resume brings them.
    for n in range(1, 4):
        post(bob, conversation, f"meanwhile {n}")
    expect(page.locator(".link-state.online")).to_be_visible(timeout=30_000)
    page.locator(".message.failed").get_by_role("button", name="Retry").click()
    expected = ["before", "meanwhile 1", "meanwhile 2", "meanwhile 3", "written offline"]
    expect(page.locator(".messages .message:not(.pending) .body")).to_have_text(expected)
    expect(page.locator(".message.pending")).to_have_count(0)
    # Retrying reused the client_msg_id: the server holds the offline message once.
    history = alice.get(f"/conversations/{conversation}/messages").json()["items"]
    assert [m["body"] for m in history] == expected


def test_an_expiring_access_token_is_refreshed_on_the_clock_and_after_a_401_unnoticed(
    open_page: Callable[..., Any], register: Callable[[], User], browser: Any, fleet: Fleet
) -> None:
    alice, bob = register(), register()
    conversation = conversation_with(bob, alice)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.clock.install()
        page.goto(f"{fleet.api}/")
        sign_in(page, alice)
        open_conversation(page, conversation)
        before = page.evaluate("JSON.parse(localStorage.getItem('parley.tokens')).access_token")

        # Ten minutes on: the client refreshes ahead of the token's expiry by itself.
        with page.expect_response(re.compile(r"/api/v1/auth/refresh$")) as refreshed:
            page.clock.fast_forward("10:00")
        assert refreshed.value.status == 200
        # The response reaches Playwright before the page has read its body and stored it.
        stored = "JSON.parse(localStorage.getItem('parley.tokens')).access_token"
        deadline = time.monotonic() + 10
        while page.evaluate(stored) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert page.evaluate(stored) != before

        # The gateway answers the next post 401 token_expired (as for a token that outlived its
        # schedule, e.g. a laptop asleep): the client refreshes and posts again, once.
        answered: list[str] = []

        def expire_once(route: Any) -> None:
            if answered:
                route.continue_()
                return
            answered.append(route.request.url)
            route.fulfill(
                status=401,
                content_type="application/json",
                body='{"error": {"code": "token_expired", "message": "token expired"}}',
            )

        page.route(re.compile(r"/api/v1/conversations/[^/]+/messages$"), expire_once)
        with page.expect_response(re.compile(r"/api/v1/auth/refresh$")):
            page.get_by_label("Message", exact=True).fill("still here")
            page.get_by_role("button", name="Send").click()
        expect(page.locator(".messages .message:not(.pending) .body")).to_have_text(["still here"])
        expect(page.locator("[role=alert]")).to_have_count(0)
        assert answered
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    finally:
        context.close()


def test_the_main_screens_have_no_serious_accessibility_violations_and_fit_a_phone(
    open_page: Callable[..., Any], register: Callable[[], User]
) -> None:
    axe = axe_script()
    alice, bob = register(), register()
    conversation = conversation_with(bob, alice, title="Accessible")
    post(bob, conversation, "is this readable?")
    page = open_page(viewport=PHONE)
    assert_accessible(page, axe, "sign-in")
    sign_in(page, alice)
    page.get_by_role("button", name="New conversation").click()
    assert_accessible(page, axe, "conversation list")
    shot(page, "phone-conversation-list")
    open_conversation(page, conversation)
    expect(page.locator(".messages .message .body")).to_have_text(["is this readable?"])
    assert_accessible(page, axe, "conversation")
    shot(page, "phone-conversation")
    # On a phone the conversation takes the whole screen, with a way back.
    page.get_by_role("button", name="Back to conversations").click()
    expect(page.locator(f"button[data-conversation='{conversation}']")).to_be_visible()


def test_settings_list_sessions_save_do_not_disturb_hours_and_refuse_an_internal_webhook(
    open_page: Callable[..., Any], register: Callable[[], User]
) -> None:
    axe = axe_script()
    alice = register()
    page = open_page()
    sign_in(page, alice)
    page.get_by_role("button", name=re.compile("^Settings")).click()
    expect(page.get_by_label("Sessions").locator("li")).to_have_count(2)  # the API's and ours
    expect(page.get_by_label("Sessions")).to_contain_text("(this one)")
    page.get_by_label("Notify me about").select_option("mentions")
    page.get_by_label("From").fill("22:00")
    page.get_by_label("Until").fill("07:30")
    # An internal address is refused by the SSRF guard, and the client says why in words.
    page.get_by_label("Webhook URL").fill("http://127.0.0.1:9090/-/quit")
    page.get_by_role("button", name="Save preferences").click()
    expect(page.get_by_role("alert")).to_contain_text("refused webhook URL")
    page.get_by_label("Webhook URL").fill("")
    page.get_by_role("button", name="Save preferences").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    assert_accessible(page, axe, "settings")
    shot(page, "settings")
    prefs = alice.get("/notifications/preferences").json()
    assert prefs["level"] == "mentions"
    assert (prefs["dnd_start"], prefs["dnd_end"]) == ("22:00", "07:30")
    assert not prefs.get("webhook_url")
