# syntax=docker/dockerfile:1.7
# One image recipe for the five Parley services:
#   docker build --build-arg SERVICE=chat -t parley-chat .
# Stages: `uv` (the uv binary, pinned), `builder` (resolves the locked dependencies of one
# workspace package into /app/.venv), `runtime` (that venv on a slim Python, as a non-root user).

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# uv comes from its official, pinned distribution image rather than `pip install uv`: one static
# binary, no extra Python package left in the builder, and the version is pinned in one place.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM ${PYTHON_IMAGE} AS builder
ARG SERVICE
RUN test -n "${SERVICE}" || (echo "build with --build-arg SERVICE=<auth|user|chat|notification|gateway>" >&2; exit 1)
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src

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
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package "parley-${SERVICE}"

# Then the workspace itself (filtered by .dockerignore), installed as wheels (--no-editable) so
# the venv needs nothing from /src at run time.
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package "parley-${SERVICE}"

FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE
LABEL org.opencontainers.image.title="parley-${SERVICE}" \
      org.opencontainers.image.description="Parley ${SERVICE} service"
RUN groupadd --system --gid 10001 parley \
    && useradd --system --uid 10001 --gid parley --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin parley
# Owned by root (world-readable): the service user cannot rewrite its own code.
COPY --from=builder /app/.venv /app/.venv
COPY deploy/container/healthcheck.py /app/healthcheck.py
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
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "/app/healthcheck.py"]
ENTRYPOINT ["parley-service"]
CMD ["serve"]
