"""Alembic environment of the user service (run through ``parley-user migrate``)."""

from shared.service.database import run_migrations_env
from user.store.tables import metadata

run_migrations_env(metadata)
