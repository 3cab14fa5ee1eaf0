"""The gateway's pages in a real browser: headless Chromium renders ``/docs`` and ``/redoc``.

The pages must work where the fleet runs, which may have no way out to a CDN: their scripts and
styles are served by the gateway itself. Chromium runs the pages' JavaScript, which fetches
``/openapi.json`` and renders the operations; the test reads the rendered DOM.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile

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
