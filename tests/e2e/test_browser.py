"""The fleet's pages in a real browser: headless Chromium renders the gateway's ``/docs`` and
``/redoc`` and a service's ``/docs/asyncapi``.

The pages must work where the fleet runs, which may have no way out to a CDN: their scripts and
styles are served by the processes themselves. Chromium runs the pages' JavaScript, which renders
the OpenAPI or AsyncAPI document; the test reads the rendered DOM.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile

import httpx
import pytest

from parley.fleet import Fleet

pytestmark = pytest.mark.e2e

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "no Chromium on PATH (apt-get install chromium); CI installs it, and there this skip "
        "fails the run"
    )


def rendered(url: str) -> str:
    """The DOM of ``url`` after its scripts have run (up to 20 s of page time)."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                browser(),
                "--headless",
                "--no-sandbox",  # CI runs as root
                "--disable-gpu",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=20000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_api_docs_render_in_a_browser_without_any_cdn(fleet: Fleet) -> None:
    dom = rendered(f"{fleet.url()}/docs")
    assert "cdn.jsdelivr.net" not in dom and "unpkg.com" not in dom
    # Swagger UI ran and rendered an operation block per route from /openapi.json.
    assert 'class="swagger-ui' in dom
    assert "/api/v1/auth/login" in dom and "opblock" in dom
    assert "/api/v1/conversations/{conversation_id}/messages" in dom


def test_the_reference_renders_in_a_browser_without_any_cdn(fleet: Fleet) -> None:
    dom = rendered(f"{fleet.url()}/redoc")
    assert "cdn.jsdelivr.net" not in dom
    # ReDoc ran: its rendered menu lists the API's operations.
    assert "Parley gateway" in dom
    assert "/api/v1/auth/login" in dom


@pytest.mark.parametrize("service", ["auth", "chat"])
def test_a_service_s_asyncapi_page_renders_the_fleet_s_contracts(
    fleet: Fleet, service: str
) -> None:
    dom = rendered(f"{fleet.url(service)}/docs/asyncapi")
    assert "unpkg.com" not in dom and "cdn.jsdelivr.net" not in dom
    # The viewer ran (the page's inline script, which holds the document, does not count): the
    # title, and an element per operation, the new auth.revocations group's included.
    shown = re.sub(r"<script>.*?</script>", "", dom, flags=re.S)
    assert 'class="aui-root' in shown and "Parley fleet" in shown
    assert 'id="operation-receive-auth.revocations.receive.auth.events"' in shown
    assert 'id="operation-send-chat.send.chat.events"' in shown


def test_no_service_publishes_what_an_unauthenticated_request_sends(fleet: Fleet) -> None:
    # FastStream's AsyncAPI page comes with a "try it out" endpoint that publishes the request's
    # body to the broker; the services serve their own page and no such endpoint.
    form = {
        "channelName": "rt",
        "message": {"message": {"forged": True}},
        "options": {"sendToRealBroker": True},
    }
    for service in ("auth", "user", "chat", "notification"):
        got = httpx.post(f"{fleet.url(service)}/docs/asyncapi/try", json=form, timeout=10)
        assert got.status_code == 404, (service, got.text)
