"""What the browser tests of the web client share: Chromium's arguments, sign-in and
conversation shortcuts, screenshots under ``.parley/screenshots/`` and the axe-core check.

The ``browser`` and ``open_page`` fixtures are in ``conftest.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import ROOT, User

SHOTS = ROOT / ".parley" / "screenshots"
WEB = ROOT / "web"
AXE = WEB / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 780}
# Events cross five processes on a shared, busy machine: wait as long as a page action does.
expect.set_options(timeout=15_000)


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def sign_in(page: Any, user: User) -> None:
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator(".link-state.online")).to_be_visible()


def conversation_with(owner: User, *others: User, title: str | None = None) -> str:
    kind = "direct" if len(others) == 1 and title is None else "group"
    body: dict[str, object] = {"kind": kind, "member_ids": [o.id for o in others]}
    if title:
        body["title"] = title
    r = owner.post("/conversations", body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def post(user: User, conversation: str, body: str) -> None:
    r = user.post(
        f"/conversations/{conversation}/messages",
        {"body": body, "client_msg_id": uuid.uuid4().hex},
    )
    assert r.status_code in (200, 201), r.text


def open_conversation(page: Any, conversation: str) -> None:
    page.locator(f"button[data-conversation='{conversation}']").click()
    expect(page.get_by_label("Message", exact=True)).to_be_visible()


def axe_script() -> Path:
    """axe-core from web/node_modules (``npm ci`` there once when it is missing)."""
    if not AXE.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("no npm for axe-core (apt-get install npm); CI installs it")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=WEB, check=True, timeout=600)
    return AXE


def assert_accessible(page: Any, axe: Path, screen: str) -> None:
    # Evaluated through the DevTools protocol: a <script> tag would be refused by the client's
    # CSP (script-src 'self'), which the test keeps on.
    page.evaluate(axe.read_text(encoding="utf-8") + "\n;undefined")
    result = page.evaluate("async () => (await axe.run(document)).violations")
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in result
        if v["impact"] in ("serious", "critical")
    ]
    assert not serious, f"{screen}: {serious}"
