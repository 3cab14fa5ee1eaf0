"""The web client's group, muting, read-marker, recovery and account screens in real Chromium.

The same fleet and browser as ``test_web_client.py``: a group is built and pruned in the
client (the removed member is told in words), a muted conversation raises no notification while
its messages arrive, others' read markers from before the page opened show as "Seen by", a
resume past the server's bound reloads the history, and the profile and password are changed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
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

# docs/websocket.md: a resume past this many missed messages answers `recovered: false`.
RECOVERY_BOUND = 200


def test_a_group_is_built_and_pruned_in_the_client_and_the_removed_member_is_told(
    open_page: Callable[..., Any], register: Callable[[], User]
) -> None:
    axe = axe_script()
    alice, bob, carol = register(), register(), register()
    page, bob_page = open_page(), open_page()
    sign_in(page, alice)
    sign_in(bob_page, bob)

    page.get_by_role("button", name="New conversation").click()
    page.get_by_label("Find people").fill(bob.username[:9])
    page.get_by_role("button", name=f"Add {bob.username.upper()} (@{bob.username})").click()
    page.get_by_label("Group title (optional for two)").fill("Team")
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("heading", name="Team")).to_be_visible()
    conversation = page.locator(".conversation.selected").get_attribute("data-conversation")
    assert conversation

    page.get_by_role("button", name="Members").click()
    members = page.get_by_label("Members", exact=True)
    page.get_by_label("Add someone").fill(carol.username[:9])
    page.get_by_role("button", name=f"Add {carol.username.upper()} (@{carol.username})").click()
    expect(members.locator("li")).to_have_count(3)
    expect(members).to_contain_text(carol.username.upper())
    assert_accessible(page, axe, "group members")
    shot(page, "group-members")
    listed = carol.get(f"/conversations/{conversation}").json()
    assert sorted(listed["member_ids"]) == sorted([alice.id, bob.id, carol.id])

    # Bob has the group open when Alice removes him: he is told, and it is gone.
    open_conversation(bob_page, conversation)
    members.get_by_role("button", name=f"Remove {bob.username.upper()}").click()
    expect(members.locator("li")).to_have_count(2)
    told = bob_page.get_by_role("status").filter(has_text="You were removed from Team.")
    expect(told).to_be_visible()
    expect(bob_page.locator(f"button[data-conversation='{conversation}']")).to_have_count(0)
    expect(bob_page.get_by_text("Pick a conversation or start one.")).to_be_visible()
    assert bob.get(f"/conversations/{conversation}/messages").status_code == 404


def test_a_muted_conversation_raises_no_notification_while_its_messages_arrive(
    open_page: Callable[..., Any], register: Callable[[], User], eventually: Callable[..., None]
) -> None:
    alice, bob, carol = register(), register(), register()
    quiet = conversation_with(bob, alice, carol, title="Quiet")
    other = conversation_with(bob, alice, title="Other")
    page = open_page()
    sign_in(page, alice)
    open_conversation(page, quiet)
    mute = page.get_by_role("button", name="Mute", exact=True)
    expect(mute).to_have_attribute("aria-pressed", "false")
    mute.click()
    expect(mute).to_have_attribute("aria-pressed", "true")
    assert alice.get(f"/conversations/{quiet}/notifications").json()["muted"] is True
    # Away from it (a viewed conversation notifies nobody anyway): the list marks it muted.
    open_conversation(page, other)
    item = page.locator(f"button[data-conversation='{quiet}']")
    expect(item).to_contain_text("(muted)")

    mention(bob, quiet, "while muted", alice, carol)
    expect(item.locator(".badge.unread")).to_have_text("1")  # the message itself arrives
    expect(item.locator(".preview")).to_contain_text("while muted")
    # Carol is told of the very event Alice is not: once she is, it has been handled.
    eventually(lambda: carol.get("/notifications/unread-count").json()["count"] == 1)
    assert alice.get("/notifications/unread-count").json()["count"] == 0
    expect(page.get_by_test_id("notifications")).to_have_text("0")
    shot(page, "muted-conversation")

    open_conversation(page, quiet)
    expect(mute).to_have_attribute("aria-pressed", "true")  # read back when it opens
    mute.click()
    expect(mute).to_have_attribute("aria-pressed", "false")
    open_conversation(page, other)
    mention(bob, quiet, "after the mute", alice)
    expect(page.get_by_test_id("notifications")).to_have_text("1")


def test_others_read_markers_from_before_the_page_opened_show_as_seen_by(
    open_page: Callable[..., Any], register: Callable[[], User]
) -> None:
    axe = axe_script()
    alice, bob = register(), register()
    conversation = conversation_with(alice, bob)
    for body in ("one", "two", "three"):
        post(alice, conversation, body)
    assert bob.post(f"/conversations/{conversation}/read", {"seq": 2}).status_code == 200

    page = open_page(viewport=PHONE)
    sign_in(page, alice)
    open_conversation(page, conversation)
    expect(page.locator(".messages .message .body")).to_have_text(["one", "two", "three"])
    seen = page.locator(".message[data-seq='2'] .seen")
    expect(seen).to_have_text(f"Seen by {bob.username.upper()}")
    expect(page.locator(".seen")).to_have_count(1)
    assert_accessible(page, axe, "conversation with markers and mute")
    shot(page, "phone-seen-by")


def test_a_resume_past_the_servers_bound_reloads_the_history(
    browser: Any, fleet: Fleet, register: Callable[[], User]
) -> None:
    alice, bob, carol, dave = register(), register(), register(), register()
    conversation = conversation_with(bob, alice, carol, dave, title="Busy")
    post(bob, conversation, "first")
    offline = False
    links: list[Any] = []
    unrecovered: list[str] = []

    def socket(ws: Any) -> None:
        if offline:
            ws.close()
            return
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            if isinstance(message, str) and '"recovered":false' in message.replace(" ", ""):
                unrecovered.append(message)
            ws.send(message)

        server.on_message(to_page)
        links.append(ws)

    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.route_web_socket(re.compile(r"/ws$"), socket)
        page.goto(f"{fleet.api}/")
        sign_in(page, alice)
        open_conversation(page, conversation)
        expect(page.locator(".messages .message .body")).to_have_text(["first"])

        # The socket drops and stays down while more than the bound is posted.
        offline = True
        links[-1].close()
        expect(page.get_by_role("status").filter(has_text="Reconnecting")).to_be_visible()
        bodies = [f"m{n}" for n in range(1, RECOVERY_BOUND + 11)]
        posters = (bob, carol, dave)  # each within its own request budget
        for n, body in enumerate(bodies):
            post(posters[n % 3], conversation, body)
        offline = False

        expect(page.locator(".link-state.online")).to_be_visible(timeout=30_000)
        shown = page.locator(".messages .message .body")
        expect(shown.last).to_have_text(bodies[-1], timeout=30_000)
        expect(shown).to_have_count(50)
        assert shown.all_inner_texts() == bodies[-50:]  # the latest page, reloaded: no gap
        assert unrecovered and conversation in unrecovered[0]
    finally:
        context.close()


def test_the_profile_and_the_password_are_changed_with_errors_in_words(
    open_page: Callable[..., Any], register: Callable[[], User], fleet: Fleet
) -> None:
    axe = axe_script()
    alice = register()
    page = open_page()
    sign_in(page, alice)
    page.get_by_role("button", name=re.compile("^Settings")).click()

    profile = page.get_by_role("form", name="Profile")
    expect(profile.get_by_label("Display name")).to_have_value(alice.username.upper())
    profile.get_by_label("Display name").fill("Alice Liddell")
    profile.get_by_label("About you").fill("Down the rabbit hole")
    profile.get_by_label("Your time zone").fill("Mars/Olympus_Mons")
    profile.get_by_role("button", name="Save profile").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown time zone")
    profile.get_by_label("Your time zone").fill("Europe/London")
    profile.get_by_role("button", name="Save profile").click()
    expect(profile.get_by_text("Profile saved.")).to_be_visible()
    me = alice.get("/users/me").json()
    assert (me["display_name"], me["bio"], me["time_zone"]) == (
        "Alice Liddell",
        "Down the rabbit hole",
        "Europe/London",
    )
    expect(page.locator(".sidebar .bar strong")).to_have_text("Alice Liddell")

    password = page.get_by_role("form", name="Change password")
    new = f"pw-{uuid.uuid4().hex}"
    password.get_by_label("Current password").fill("not my password")
    password.get_by_label("New password", exact=True).fill(new)
    password.get_by_label("New password again").fill(new)
    password.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_contain_text("The current password is wrong.")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()  # still signed in
    password.get_by_label("Current password").fill(alice.password)
    password.get_by_label("New password again").fill(new + "x")
    password.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_contain_text("differ")
    password.get_by_label("New password again").fill(new)
    password.get_by_role("button", name="Change password").click()
    expect(password.get_by_text("Password changed.")).to_be_visible()
    assert_accessible(page, axe, "settings with profile and password")
    shot(page, "settings-account")

    page.get_by_role("button", name="Sign out").click()
    sign_in_with(page, alice.username, alice.password)
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    old = httpx.post(
        f"{fleet.api}/api/v1/auth/login",
        json={"username": alice.username, "password": alice.password},
        timeout=15,
    )
    assert old.status_code == 401
    sign_in_with(page, alice.username, new)
    expect(page.locator(".link-state.online")).to_be_visible()


def sign_in_with(page: Any, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def mention(sender: User, conversation: str, body: str, *mentioned: User) -> None:
    payload = {
        "body": body,
        "client_msg_id": uuid.uuid4().hex,
        "mentions": [m.id for m in mentioned],
    }
    r = sender.post(f"/conversations/{conversation}/messages", payload)
    assert r.status_code == 201, r.text
