"""Container health probe: exit 0 when this container's service answers 200 on /health/ready.

Runs inside the image as ``python /app/healthcheck.py`` (slim images have no curl). The service
is named by ``PARLEY_SERVICE`` (set at build time); its port by ``<SERVICE>_PORT`` as the service
itself reads it, else the service's default port. Standard library only, on purpose.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORTS = {"gateway": 8080, "auth": 8101, "user": 8102, "chat": 8103, "notification": 8104}
"""The ports each service listens on unless its ``<SERVICE>_PORT`` variable says otherwise."""


def probe_url(environ: dict[str, str]) -> str:
    """The readiness URL of the service this environment describes."""
    service = environ.get("PARLEY_SERVICE", "")
    if service not in DEFAULT_PORTS:
        raise SystemExit(f"healthcheck: PARLEY_SERVICE={service!r} is not a Parley service")
    port = environ.get(f"{service.upper()}_PORT") or str(DEFAULT_PORTS[service])
    return f"http://127.0.0.1:{port}/health/ready"


def main() -> int:
    """Probe once; 0 = ready, 1 = not ready (what Docker's HEALTHCHECK expects)."""
    url = probe_url(dict(os.environ))
    try:
        with urllib.request.urlopen(url, timeout=2.5) as response:  # noqa: S310 (fixed http URL)
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as e:
        print(f"healthcheck: {url}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
