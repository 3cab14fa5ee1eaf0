"""Alembic environment of the notification service (run through ``parley-notification migrate``)."""

from notification.store.tables import metadata
from shared.service.database import run_migrations_env

run_migrations_env(metadata)
