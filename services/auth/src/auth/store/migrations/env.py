"""Alembic environment of the auth service (run through ``parley-auth migrate``)."""

from auth.store.tables import metadata
from shared.service.database import run_migrations_env

run_migrations_env(metadata)
