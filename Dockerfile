# One image recipe for the five Parley services:
#   docker build --build-arg SERVICE=chat -t parley-chat .
# Stages: `uv` (the uv binary, pinned), `builder` (resolves the locked dependencies of the five
# services into one /app/.venv), `runtime` (that venv on a slim Python, as a non-root user). The
# builder does not depend on SERVICE: building the five images resolves and installs once, and the
# five runtime stages share every layer up to the venv (docs/operations.md, "Images").
#
# Bases, as build arguments:
#   PYTHON_IMAGE  default python:3.11-slim from Docker Hub; any Debian-like image with python3.11
#                 on the PATH works, such as parley-debian:bookworm, built from Debian's packages
#                 by scripts/build-images where no registry can be reached.
#   UV_IMAGE      default the official ghcr.io/astral-sh/uv image; parley-uv:<version>, made by
#                 scripts/build-images from uv's PyPI wheel, has the same /uv.
# The Dockerfile needs no BuildKit feature: the classic builder and BuildKit both build it.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

# uv comes from a pinned image holding only its static binary rather than `pip install uv` in the
# builder: no extra Python package left there, and the version is pinned in one place.
FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
# UV_SYSTEM_CERTS (UV_NATIVE_TLS before uv 0.13.10): trust the base image's CA store, which is
# the one a site behind a TLS-inspecting proxy extends.
# UV_PYTHON by name: /usr/local/bin/python3.11 in the python image, /usr/bin/python3.11 in Debian's.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_NO_CACHE=1 \
    UV_SYSTEM_CERTS=1 \
    UV_NATIVE_TLS=1
WORKDIR /src
# The five services (not the `parley` developer CLI and its test dependencies).
ENV PACKAGES="--package parley-auth --package parley-user --package parley-chat --package parley-notification --package parley-gateway"

# Dependencies first, from the lock file and the workspace members' pyproject files only, so this
# layer is rebuilt when dependencies change, not on every source edit.
COPY pyproject.toml uv.lock ./
COPY cli/pyproject.toml cli/
COPY contracts/pyproject.toml contracts/
COPY shared/pyproject.toml shared/
COPY services/auth/pyproject.toml services/auth/
COPY services/user/pyproject.toml services/user/
COPY services/chat/pyproject.toml services/chat/
COPY services/notification/pyproject.toml services/notification/
COPY services/gateway/pyproject.toml services/gateway/
RUN uv sync --frozen --no-dev --no-install-workspace $PACKAGES

# Then the workspace itself (filtered by .dockerignore), installed as wheels (--no-editable) so
# the venv needs nothing from /src at run time.
COPY . .
RUN uv sync --frozen --no-dev --no-editable $PACKAGES

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 parley \
    && useradd --system --uid 10001 --gid parley --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin parley
# Owned by root (world-readable): the service user cannot rewrite its own code.
COPY --from=builder /app/.venv /app/.venv
COPY deploy/container/healthcheck.py /app/healthcheck.py
# SERVICE is used from here on only: the layers above are the same for the five images.
ARG SERVICE
RUN test -n "${SERVICE}" || (echo "build with --build-arg SERVICE=<auth|user|chat|notification|gateway>" >&2; exit 1)
LABEL org.opencontainers.image.title="parley-${SERVICE}" \
      org.opencontainers.image.description="Parley ${SERVICE} service"
# A stable name for the entry point, whatever SERVICE was built: compose and the runbook use it.
RUN test -x "/app/.venv/bin/parley-${SERVICE}" \
    && ln -s "/app/.venv/bin/parley-${SERVICE}" /app/.venv/bin/parley-service
# PARLEY_HOME: local state (used only without a database URL) goes to /tmp, the one writable
# place when compose runs the root filesystem read-only.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PARLEY_SERVICE=${SERVICE} \
    PARLEY_LOG_FORMAT=json \
    PARLEY_HOME=/tmp/parley
WORKDIR /app
USER 10001:10001
STOPSIGNAL SIGTERM
# Slim images have no curl: the probe is a few lines of standard-library Python that asks the
# service's own /health/ready on the port its <PREFIX>PORT variable names.
HEALTHCHECK --interval=10s --timeout=10s --start-period=30s --retries=5 \
    CMD ["python", "/app/healthcheck.py"]
ENTRYPOINT ["parley-service"]
CMD ["serve"]
