"""Alembic environment of the user service (run through ``parley-user migrate``)."""

from user.store.tables import metadata
from shared.service.database import run_migrations_env

run_migrations_env(metadata)
