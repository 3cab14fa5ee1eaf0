"""Security headers on every response, and a Content-Security-Policy fitted to the docs pages.

Every answer carries ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
``Referrer-Policy: no-referrer`` and a CSP: for the API (JSON) ``default-src 'none';
frame-ancestors 'none'`` — nothing an answer could make a browser load or frame. With
``GATEWAY_HSTS`` (only behind TLS) ``Strict-Transport-Security`` too.

The docs pages (``/docs``, ``/redoc``, ``/docs/oauth2-redirect``) load their scripts, styles and
icon from the gateway itself (``/docs/static``, no CDN), so their CSP allows ``'self'`` and, for
the inline script that starts Swagger UI, that script's own hash (computed from the page served,
so it follows the library's version). ReDoc starts its search worker from a ``blob:``, so
``/redoc`` also allows ``blob:`` workers; styles are injected by both libraries at run time
(``'unsafe-inline'`` styles). No page may evaluate strings as code (no ``'unsafe-eval'``): both
render without it in Chromium, and ReDoc's "powered by" logo from its CDN is simply not loaded.

The browser chat client (``/``, docs/web-client.md) is one module script and one stylesheet
from ``/assets``, with no inline script: its CSP allows scripts, styles and images from the
gateway itself, and connections (``fetch`` and the WebSocket) to it alone.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Final

DOC_PATHS: Final = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
API_CSP: Final = "default-src 'none'; frame-ancestors 'none'"
WEB_CLIENT_PATHS: Final = frozenset({"/"})
WEB_CLIENT_CSP: Final = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",  # style attributes set by the components
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",  # REST and /ws on the same origin ('self' covers ws: and wss:)
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HSTS: Final = "max-age=63072000; includeSubDomains"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def common_headers(*, hsts: bool) -> list[tuple[bytes, bytes]]:
    """The headers every response carries (the CSP is added apart: it depends on the page)."""
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
    ]
    if hsts:
        headers.append((b"strict-transport-security", HSTS.encode()))
    return headers


def docs_csp(path: str, body: bytes) -> str:
    """The CSP of a docs page: its own origin, plus the hashes of the inline scripts it holds."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode()}'"
        for m in _INLINE_SCRIPT.finditer(body)
    )
    redoc = path == "/redoc"
    script = f"script-src 'self' {hashes}".rstrip()
    return "; ".join(
        [
            "default-src 'self'",
            script,
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "worker-src 'self' blob:" if redoc else "worker-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )
